"""The store contract, run against both backends: MemoryStore and MongoStore on a real server,
the latter through each driver (motor, PyMongo's AsyncMongoClient)."""

import asyncio
import uuid

import pytest

from server.gateway.cookie_jar import cookie_key
from server.stores.base import (
    Binding,
    DataTooLarge,
    SessionKeys,
    SessionRecord,
    UserLogin,
    VerifiedPhone,
    data_size,
)
from server.stores.mongodb import MongoStore, mongodb_client
from tests.conftest import on_every_store

NOW = 1_800_000_000.0
pytestmark = on_every_store


def record(openid="alice", now=NOW, lifetime=7200.0, data=None, app="default",
           unionid=None) -> SessionRecord:
    return SessionRecord(id=uuid.uuid4().hex, app=app, openid=openid, unionid=unionid,
                         created_at=now, touched_at=now, expires_at=now + lifetime,
                         data=data or {})


def identity(openid="alice", key="key-1", unionid=None, app="default") -> UserLogin:
    # Stores keep sealed values as given: any text stands in for them here.
    return UserLogin(app=app, openid=openid, unionid=unionid, sealed_session_key=key,
                     sealed_session_id=f"sealed-id-of-{key}")


@pytest.mark.gen_test(timeout=20)
async def test_login_stores_a_new_session_that_reads_back(store):
    candidate = record(data={"a": 1})
    session, reused, _ = await store.login(identity(), candidate, NOW - 30, NOW)
    assert (session.id, reused) == (candidate.id, False)
    assert await store.get(candidate.id) == candidate
    assert await store.get("no-such-session") is None


@pytest.mark.gen_test(timeout=20)
async def test_login_within_the_window_reuses_the_recent_session(store):
    first, _, _ = await store.login(identity(key="k1"), record(), NOW - 30, NOW)
    second, reused, sealed_id = await store.login(identity(key="k2"), record(now=NOW + 10),
                                                  NOW + 10 - 30, NOW + 10)
    assert reused is True
    assert second.id == first.id
    # The reused session comes with the sealed id recorded when it was issued.
    assert sealed_id == "sealed-id-of-k1"
    # The newest session_key replaces the stored one even when the session is reused.
    assert await store.session_key("default", "alice") == "k2"


@pytest.mark.gen_test(timeout=20)
async def test_login_after_the_window_or_without_reuse_makes_a_new_session(store):
    first, _, _ = await store.login(identity(), record(), NOW - 30, NOW)
    later = NOW + 31
    second, reused, _ = await store.login(identity(), record(now=later), later - 30, later)
    assert reused is False and second.id != first.id
    third, reused, _ = await store.login(identity(), record(now=later), None, later)
    assert reused is False and third.id not in (first.id, second.id)
    # Older sessions stay valid: a new login does not log other devices out.
    assert await store.get(first.id) is not None


@pytest.mark.gen_test(timeout=20)
async def test_login_does_not_reuse_an_ended_or_expired_session(store):
    first, _, _ = await store.login(identity(), record(), NOW - 30, NOW)
    await store.delete(first.id)
    second, reused, _ = await store.login(identity(), record(), NOW - 30, NOW + 1)
    assert reused is False and second.id != first.id

    short, _, _ = await store.login(identity("bob"), record("bob", lifetime=5), NOW - 30, NOW)
    again, reused, _ = await store.login(identity("bob"), record("bob", now=NOW + 6), NOW + 6 - 30,
                                      NOW + 6)
    assert reused is False and again.id != short.id


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_logins_converge_on_one_session(store, backend, driver, io_loop,
                                                         request):
    # For MongoDB, half the logins go through a second client: two processes' worth of races.
    stores = [store]
    if backend == "mongodb":
        uri = request.getfixturevalue("mongodb_uri")
        twin = MongoStore(mongodb_client(uri, 5.0, driver), store._database_name, 5.0)
        await twin.open()
        stores.append(twin)
    candidates = [record("carol") for _ in range(20)]
    try:
        results = await asyncio.gather(*(
            stores[i % len(stores)].login(identity("carol", key=f"k{i}"), c, NOW - 30, NOW)
            for i, c in enumerate(candidates)
        ))
    finally:
        if len(stores) > 1:
            await stores[1].close()
    assert len({session.id for session, _, _ in results}) == 1
    assert sum(not reused for _, reused, _ in results) == 1
    # Every login is handed the sealed id recorded by the one that created the session.
    winner = next(i for i, (_, reused, _) in enumerate(results) if not reused)
    assert {sealed for _, _, sealed in results} == {f"sealed-id-of-k{winner}"}
    # Exactly one session exists: the losers' candidates were not left behind.
    stored = [c.id for c in candidates if await store.get(c.id) is not None]
    assert stored == [results[0][0].id]


@pytest.mark.gen_test(timeout=20)
async def test_touch_slides_and_never_moves_backwards(store):
    session, _, _ = await store.login(identity(), record(), None, NOW)
    await store.touch(session.id, NOW + 100, NOW + 7300)
    await store.touch(session.id, NOW + 50, NOW + 7250)  # a slower, older request
    stored = await store.get(session.id)
    assert (stored.touched_at, stored.expires_at) == (NOW + 100, NOW + 7300)
    await store.touch("no-such-session", NOW, NOW + 1)  # no error, nothing created
    assert await store.get("no-such-session") is None


@pytest.mark.gen_test(timeout=20)
async def test_delete_ends_the_session_and_is_idempotent(store):
    session, _, _ = await store.login(identity(), record(), None, NOW)
    assert await store.delete(session.id) is True
    assert await store.get(session.id) is None
    assert await store.delete(session.id) is False


@pytest.mark.gen_test(timeout=20)
async def test_data_replace_and_field_level_update(store):
    session, _, _ = await store.login(identity(), record(data={"keep": 1, "drop": 2}), None, NOW)
    value = {"nested": {"list": [1, "two", None, True, 2.5]}, "text": "中文 ✓", "big": 2**62}
    assert await store.update_data(session.id, {"new": value}, ["drop"]) is True
    assert (await store.get(session.id)).data == {"keep": 1, "new": value}
    assert await store.replace_data(session.id, {"only": []}) is True
    assert (await store.get(session.id)).data == {"only": []}
    assert await store.update_data("no-such-session", {"a": 1}, []) is False
    assert await store.replace_data("no-such-session", {"a": 1}) is False
    assert await store.update_data(session.id, {}, []) is True


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_field_updates_and_touches_lose_nothing(store):
    session, _, _ = await store.login(identity(), record(), None, NOW)
    writes = [store.update_data(session.id, {f"k{i}": i}, []) for i in range(20)]
    touches = [store.touch(session.id, NOW + i, NOW + 7200 + i) for i in range(20)]
    await asyncio.gather(*[op for pair in zip(writes, touches) for op in pair])
    stored = await store.get(session.id)
    assert stored.data == {f"k{i}": i for i in range(20)}
    assert stored.expires_at == NOW + 7200 + 19


@pytest.mark.gen_test(timeout=20)
async def test_reads_are_copies(store):
    session, _, _ = await store.login(identity(), record(data={"a": [1]}), None, NOW)
    got = await store.get(session.id)
    got.data["a"].append(2)
    got.expires_at = 0
    again = await store.get(session.id)
    assert again.data == {"a": [1]} and again.expires_at == NOW + 7200


@pytest.mark.gen_test(timeout=20)
async def test_purge_removes_only_expired_sessions(store):
    old, _, _ = await store.login(identity("old"), record("old", lifetime=10), None, NOW)
    live, _, _ = await store.login(identity("live"), record("live", lifetime=100), None, NOW)
    assert await store.purge_expired(NOW + 10) == 1
    assert await store.get(old.id) is None
    assert await store.get(live.id) is not None


@pytest.mark.gen_test(timeout=20)
async def test_unionid_is_kept(store):
    with_union = record()
    with_union.unionid = "u-1"
    session, _, _ = await store.login(identity(unionid="u-1"), with_union, None, NOW)
    assert (await store.get(session.id)).unionid == "u-1"


@pytest.mark.gen_test(timeout=20)
async def test_rename_moves_the_session_and_the_old_id_finds_nothing(store):
    session, _, _ = await store.login(identity(), record(data={"role": "guest"}), None, NOW)
    await store.touch(session.id, NOW + 100, NOW + 7300)
    moved = await store.rename(session.id, "new-key")
    assert moved.id == "new-key"
    assert await store.get(session.id) is None
    stored = await store.get("new-key")
    assert stored == moved
    assert (stored.openid, stored.data, stored.created_at, stored.expires_at) == (
        "alice", {"role": "guest"}, NOW, NOW + 7300)
    # Writes through the old id find nothing; the moved session is untouched by them.
    assert await store.update_data(session.id, {"role": "admin"}, []) is False
    assert (await store.get("new-key")).data == {"role": "guest"}
    assert await store.rename(session.id, "other-key") is None
    assert await store.get("other-key") is None


@pytest.mark.gen_test(timeout=20)
async def test_rename_keeps_the_handle_and_revoke_handle_ends_the_session(store):
    session, _, _ = await store.login(identity(), record(), None, NOW)
    assert session.handle == session.id
    moved = await store.rename(session.id, "new-key")
    moved = await store.rename(moved.id, "newer-key")
    assert moved.handle == session.id
    assert [s.handle for s in await store.list_sessions(NOW, app="default", openid="alice")] == [session.id]
    assert await store.revoke_handle("no-such-handle", NOW) is False
    assert await store.revoke_handle(session.id, NOW) is True
    assert await store.get("newer-key") is None
    assert await store.revoke_handle(session.id, NOW) is False


async def _rename_until_refused(store, key):
    while (moved := await store.rename(key, uuid.uuid4().hex)) is not None:
        key = moved.id
        await asyncio.sleep(0)  # the memory store never yields by itself


@pytest.mark.parametrize("how", ["openid", "handle"])
@pytest.mark.gen_test(timeout=60)
async def test_a_revoke_leaves_nothing_of_a_session_being_renamed(store, how):
    """Once a revoke returns, a rename under way does not bring the session back."""
    survived = 0
    for i in range(30):
        session, _, _ = await store.login(identity(f"r{i}"), record(f"r{i}"), None, NOW)
        renames = asyncio.ensure_future(_rename_until_refused(store, session.id))
        await asyncio.sleep(0.001 * (i % 10))
        if how == "openid":
            await store.delete_sessions(app="default", openid=f"r{i}")
        else:
            await store.revoke_handle(session.handle, NOW)
        await asyncio.wait_for(renames, 20)
        survived += bool(await store.list_sessions(NOW, app="default", openid=f"r{i}"))
    assert survived == 0


@pytest.mark.gen_test(timeout=20)
async def test_update_data_judges_the_limit_on_the_data_as_stored(store):
    session, _, _ = await store.login(identity(), record(data={"a": "x" * 10000}), None, NOW)
    # The caller's view may be older than the store's: the store judges what it holds.
    with pytest.raises(DataTooLarge) as refused:
        await store.update_data(session.id, {"b": "y" * 10000}, [], max_bytes=16384)
    assert refused.value.size == data_size({"a": "x" * 10000, "b": "y" * 10000})
    assert (await store.get(session.id)).data == {"a": "x" * 10000}
    assert await store.update_data(session.id, {"b": "y" * 10000}, ["a"], max_bytes=16384)
    assert (await store.get(session.id)).data == {"b": "y" * 10000}
    assert await store.replace_data(session.id, {"c": 1}) is True
    assert await store.update_data(session.id, {"d": "z" * 16000}, [], max_bytes=16384)
    assert await store.update_data("no-such-session", {"a": 1}, [], max_bytes=16384) is False


# -- the users contract and the owner filters (issue 12: identities are (app, openid)) --------

@pytest.mark.gen_test(timeout=20)
async def test_ping_answers_once_open(store):
    assert await store.ping() is None


@pytest.mark.gen_test(timeout=30)
async def test_a_binding_belongs_to_one_identity_and_reaches_its_sessions(store):
    shop, _, _ = await store.login(identity(app="shop"), record(app="shop"), None, NOW)
    lab, _, _ = await store.login(identity(app="lab"), record(app="lab"), None, NOW)
    assert await store.binding("shop", "alice") is None

    await store.bind("shop", "alice", "u-1", NOW + 1)
    assert await store.binding("shop", "alice") == Binding("u-1", NOW + 1)
    assert await store.binding("lab", "alice") is None  # same openid, another app
    assert (await store.get(shop.id)).user_id == "u-1"
    assert (await store.get(lab.id)).user_id is None
    later, _, _ = await store.login(identity(app="shop", key="k2"), record(app="shop"), None, NOW)
    assert later.user_id == "u-1"  # sessions created after the bind carry it too

    await store.bind("shop", "alice", "u-2", NOW + 2)  # replaces
    assert [(await store.get(s.id)).user_id for s in (shop, later)] == ["u-2", "u-2"]
    assert await store.unbind("shop", "alice") is True
    assert await store.unbind("shop", "alice") is False
    assert await store.binding("shop", "alice") is None
    assert (await store.get(shop.id)).user_id is None
    # A binding made before the identity ever logged in holds at its first login.
    await store.bind("lab", "nina", "u-3", NOW)
    first, _, _ = await store.login(identity("nina", app="lab"), record("nina", app="lab"),
                                    None, NOW)
    assert first.user_id == "u-3"


@pytest.mark.gen_test(timeout=30)
async def test_identities_are_found_by_unionid_across_apps(store):
    await store.login(identity("a", app="shop", unionid="U1"), record("a", app="shop"), None, NOW)
    await store.login(identity("b", app="mall", unionid="U1"), record("b", app="mall"), None, NOW)
    await store.login(identity("c", app="shop", unionid="U2"), record("c", app="shop"), None, NOW)
    await store.login(identity("d", app="lab"), record("d", app="lab"), None, NOW)
    assert sorted(await store.identities_with_unionid("U1")) == [("mall", "b"), ("shop", "a")]
    assert await store.identities_with_unionid("U3") == []


@pytest.mark.gen_test(timeout=30)
async def test_sessions_are_listed_and_ended_by_identity_user_or_unionid(store):
    def login(openid, app, unionid=None):
        return store.login(identity(openid, key=uuid.uuid4().hex, app=app, unionid=unionid),
                           record(openid, app=app, unionid=unionid), None, NOW)

    shop, _, _ = await login("alice", "shop", "U1")
    lab, _, _ = await login("alice", "lab")
    mall, _, _ = await login("bob", "mall", "U1")
    await store.bind("lab", "alice", "u-9", NOW)

    def ids(records):
        return sorted(r.id for r in records)

    assert ids(await store.list_sessions(NOW, app="shop", openid="alice")) == [shop.id]
    assert ids(await store.list_sessions(NOW, unionid="U1")) == sorted([shop.id, mall.id])
    assert ids(await store.list_sessions(NOW, app="mall", unionid="U1")) == [mall.id]
    assert ids(await store.list_sessions(NOW, user_id="u-9")) == [lab.id]
    for bad in ({}, {"app": "shop"}, {"openid": "alice"}):
        with pytest.raises(ValueError):
            await store.list_sessions(NOW, **bad)
        with pytest.raises(ValueError):
            await store.delete_sessions(**bad)

    assert await store.delete_sessions(unionid="U1") == 2
    assert await store.get(shop.id) is None and await store.get(mall.id) is None
    assert await store.delete_sessions(app="shop", openid="alice") == 0
    assert await store.delete_sessions(user_id="u-9") == 1
    assert await store.get(lab.id) is None


@pytest.mark.gen_test(timeout=20)
async def test_a_unionid_binding_is_kept_replaced_and_removed(store):
    assert await store.unionid_binding("U1") is None
    await store.bind_unionid("U1", "p-1", NOW)
    await store.bind_unionid("U2", "p-2", NOW)
    assert await store.unionid_binding("U1") == Binding("p-1", NOW)
    await store.bind_unionid("U1", "p-3", NOW + 5)
    assert await store.unionid_binding("U1") == Binding("p-3", NOW + 5)
    assert await store.unbind_unionid("U1") is True
    assert await store.unbind_unionid("U1") is False
    assert await store.unionid_binding("U1") is None
    assert await store.unionid_binding("U2") == Binding("p-2", NOW)


# -- session_keys (the newest and the one it replaced) and the verified phone (issue 13) ----

@pytest.mark.gen_test(timeout=20)
async def test_a_login_with_a_new_key_keeps_the_replaced_one_with_its_time(store):
    assert await store.session_keys("default", "alice") is None
    await store.login(identity(key="k1"), record(), None, NOW)
    assert await store.session_keys("default", "alice") == SessionKeys("k1")
    await store.login(identity(key="k2"), record(), None, NOW + 10)
    assert await store.session_keys("default", "alice") == SessionKeys("k2", "k1", NOW + 10)
    # The same key again (the platform gave the same one) changes nothing.
    await store.login(identity(key="k2"), record(), None, NOW + 20)
    assert await store.session_keys("default", "alice") == SessionKeys("k2", "k1", NOW + 10)
    await store.login(identity(key="k3"), record(), None, NOW + 30)
    assert await store.session_keys("default", "alice") == SessionKeys("k3", "k2", NOW + 30)
    assert await store.session_key("default", "alice") == "k3"
    # Per identity: another app's alice is untouched.
    assert await store.session_keys("other", "alice") is None


@pytest.mark.gen_test(timeout=20)
async def test_the_same_key_sealed_anew_is_told_apart_by_its_id(store):
    """Each sealing of one key differs: the key id says it is the same key."""
    def login_with(sealed, key_id):
        return UserLogin(app="default", openid="alice", unionid=None, sealed_session_key=sealed,
                         sealed_session_id="sealed-id", session_key_id=key_id)

    await store.login(login_with("k1-sealed-a", "id-1"), record(), None, NOW)
    await store.login(login_with("k2-sealed-a", "id-2"), record(), None, NOW + 10)
    await store.login(login_with("k2-sealed-b", "id-2"), record(), None, NOW + 20)
    assert await store.session_keys("default", "alice") == SessionKeys(
        "k2-sealed-b", "k1-sealed-a", NOW + 10)
    assert await store.replace_session_key("default", "alice", "k2-sealed-c", NOW + 30, "id-2")
    assert await store.session_keys("default", "alice") == SessionKeys(
        "k2-sealed-c", "k1-sealed-a", NOW + 10)
    assert await store.replace_session_key("default", "alice", "k3-sealed", NOW + 40, "id-3")
    assert await store.session_keys("default", "alice") == SessionKeys(
        "k3-sealed", "k2-sealed-c", NOW + 40)


@pytest.mark.gen_test(timeout=20)
async def test_a_login_without_a_key_leaves_no_previous_one(store):
    await store.login(identity(key="k1"), record(), None, NOW)
    await store.login(identity(key=None), record(), None, NOW + 1)
    assert await store.session_keys("default", "alice") == SessionKeys(None)


@pytest.mark.gen_test(timeout=20)
async def test_replace_session_key_keeps_the_replaced_one(store):
    assert await store.replace_session_key("default", "nobody", "k9", NOW) is False
    assert await store.session_keys("default", "nobody") is None
    await store.login(identity(key="k1"), record(), None, NOW)
    assert await store.replace_session_key("default", "alice", "reset-1", NOW + 5) is True
    assert await store.session_keys("default", "alice") == SessionKeys("reset-1", "k1", NOW + 5)
    assert await store.session_key("default", "alice") == "reset-1"


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_replacements_end_with_the_last_written_and_its_predecessor(store):
    await store.login(identity(key="k0"), record(), None, NOW)
    keys = [f"k{n}" for n in range(1, 9)]
    await asyncio.gather(*(store.replace_session_key("default", "alice", key, NOW + 1)
                           for key in keys))
    final = await store.session_keys("default", "alice")
    assert final.newest in keys
    # The previous one is a key that really was the newest just before: never the newest
    # itself, never lost to None.
    assert final.previous in ["k0", *keys] and final.previous != final.newest


@pytest.mark.gen_test(timeout=20)
async def test_phone_is_kept_per_identity_as_given(store):
    assert await store.set_phone("default", "alice", VerifiedPhone("sealed-1", NOW)) is False
    await store.login(identity(key="k1"), record(), None, NOW)
    assert await store.phone("default", "alice") is None
    assert await store.set_phone("default", "alice", VerifiedPhone("sealed-1", NOW)) is True
    assert await store.set_phone("default", "alice", VerifiedPhone("sealed-2", NOW + 3)) is True
    assert await store.phone("default", "alice") == VerifiedPhone("sealed-2", NOW + 3)
    assert await store.phone("other", "alice") is None
    # A later login keeps it.
    await store.login(identity(key="k2"), record(), None, NOW + 4)
    assert await store.phone("default", "alice") == VerifiedPhone("sealed-2", NOW + 3)
# -- the gateway's cookie jars (issue 14): kept with the session, never in its data -----------

def jar_cookie(name, value="v", path="/") -> tuple[str, dict]:
    """A cookie as the gateway's jar stores it, with its key."""
    return cookie_key(name, "127.0.0.1", path), {
        "name": name, "value": value, "domain": "127.0.0.1", "host_only": True, "path": path,
        "expires": None, "secure": False, "created": NOW}


@pytest.mark.gen_test(timeout=20)
async def test_cookie_jars_are_kept_beside_the_data_and_written_cookie_by_cookie(store):
    session, _, _ = await store.login(identity(), record(data={"a": 1}), None, NOW)
    assert (await store.get(session.id)).cookie_jars == {}
    (k1, c1), (k2, c2), (k3, c3) = jar_cookie("PHPSESSID"), jar_cookie("b"), jar_cookie("c")
    assert await store.update_cookie_jar(session.id, "php", {k1: c1, k2: c2}, []) is True
    assert await store.update_cookie_jar(session.id, "node", {k1: c3}, []) is True
    assert await store.update_cookie_jar(session.id, "php", {k3: c3}, [k1]) is True
    stored = await store.get(session.id)
    assert stored.cookie_jars == {"php": {k2: c2, k3: c3}, "node": {k1: c3}}
    # Data writes leave the jars alone, and the jars never show in the data.
    assert await store.update_data(session.id, {"b": 2}, []) is True
    assert await store.replace_data(session.id, {"c": 3}) is True
    stored = await store.get(session.id)
    assert stored.data == {"c": 3} and stored.cookie_jars["php"] == {k2: c2, k3: c3}
    # Reads are copies.
    stored.cookie_jars["php"][k2]["value"] = "changed"
    assert (await store.get(session.id)).cookie_jars["php"][k2]["value"] == "v"
    assert await store.update_cookie_jar("no-such-session", "php", {k1: c1}, []) is False


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_cookie_jar_updates_lose_no_cookie(store):
    """20 responses at once, each setting another cookie, among data writes and slides."""
    session, _, _ = await store.login(identity(), record(), None, NOW)
    cookies = [jar_cookie(f"c{i}", f"value-{i}") for i in range(20)]
    jars = [store.update_cookie_jar(session.id, "api", {key: value}, [], max_bytes=16384)
            for key, value in cookies]
    writes = [store.update_data(session.id, {f"k{i}": i}, [], max_bytes=16384)
              for i in range(20)]
    touches = [store.touch(session.id, NOW + i, NOW + 7200 + i) for i in range(20)]
    results = await asyncio.gather(*[op for ops in zip(jars, writes, touches) for op in ops])
    assert all(result is not False for result in results)
    stored = await store.get(session.id)
    assert stored.cookie_jars == {"api": dict(cookies)}
    assert stored.data == {f"k{i}": i for i in range(20)}
    assert stored.expires_at == NOW + 7200 + 19


@pytest.mark.gen_test(timeout=20)
async def test_the_cookie_jar_limit_is_judged_on_the_jar_as_stored(store):
    session, _, _ = await store.login(identity(), record(), None, NOW)
    (k1, big), (k2, other) = jar_cookie("a", "x" * 3000), jar_cookie("b", "y" * 3000)
    assert await store.update_cookie_jar(session.id, "api", {k1: big}, [], max_bytes=4000)
    # The caller's view may be older than the store's: the store judges what it holds.
    with pytest.raises(DataTooLarge) as refused:
        await store.update_cookie_jar(session.id, "api", {k2: other}, [], max_bytes=4000)
    assert refused.value.size == data_size({k1: big, k2: other})
    assert (await store.get(session.id)).cookie_jars == {"api": {k1: big}}
    # Each jar has its own limit; a removal in the same write makes room.
    assert await store.update_cookie_jar(session.id, "web", {k2: other}, [], max_bytes=4000)
    assert await store.update_cookie_jar(session.id, "api", {k2: other}, [k1], max_bytes=4000)
    assert (await store.get(session.id)).cookie_jars == {"api": {k2: other}, "web": {k2: other}}


@pytest.mark.gen_test(timeout=20)
async def test_rename_carries_the_cookie_jars_and_the_end_of_the_session_drops_them(store):
    session, _, _ = await store.login(identity(), record(), None, NOW)
    key, cookie = jar_cookie("PHPSESSID")
    await store.update_cookie_jar(session.id, "php", {key: cookie}, [])
    moved = await store.rename(session.id, "new-key")
    assert moved.cookie_jars == {"php": {key: cookie}}
    assert (await store.get("new-key")).cookie_jars == {"php": {key: cookie}}
    assert await store.update_cookie_jar(session.id, "php", {key: cookie}, []) is False
    assert await store.delete("new-key") is True
    assert await store.update_cookie_jar("new-key", "php", {key: cookie}, []) is False
