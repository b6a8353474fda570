"""The store contract for an identity's session_keys and verified phone (issue 13), on both
stores: the newest key, the one it replaced (kept for a grace period by the service), an
explicit replacement (the platform's reset), and the phone number."""

import asyncio

import pytest

from server.stores.base import SessionKeys, UserLogin, VerifiedPhone
from tests.conftest import on_both_stores
from tests.test_store_contract import NOW, identity, record

pytestmark = on_both_stores


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
