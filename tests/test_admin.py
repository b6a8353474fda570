"""The app's backend API: API keys, introspection, bindings, listing and revoking sessions."""

import asyncio

import pytest

from tests.conftest import make_config, on_both_stores

API_KEY = "admin-api-key-0123456789abcdefghijklmnop"
OTHER_KEY = "second-admin-key-0123456789abcdefghijklm"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [API_KEY, OTHER_KEY]})


async def admin(client, method, path, body=None, headers=ADMIN):
    return await client.request(method, path, headers=headers,
                                json_body=body if isinstance(body, dict) else None,
                                body=body if isinstance(body, str) else None)


async def login(client, openid, user_agent="MicroMessenger/8.0 miniProgram"):
    response = await client.login(f"dev:{openid}", headers={"User-Agent": user_agent})
    assert response.code == 200, response.body
    return response.json


# -- API keys ---------------------------------------------------------------------------------

ENDPOINTS = [("POST", "/introspect"), ("GET", "/admin/bindings/alice"),
             ("PUT", "/admin/bindings/alice"), ("DELETE", "/admin/bindings/alice"),
             ("GET", "/admin/sessions?openid=alice"), ("DELETE", "/admin/sessions?openid=alice"),
             ("DELETE", "/admin/sessions/" + "A" * 43)]


@pytest.mark.parametrize("method, path", ENDPOINTS)
@pytest.mark.gen_test(timeout=10)
async def test_every_admin_call_needs_a_valid_key(client, method, path):
    body = '{"token": "x", "user_id": "u"}' if method in ("POST", "PUT") else None
    response = await admin(client, method, path, body, headers={})
    assert (response.code, response.json["error"]) == (401, "missing_api_key")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in ("Bearer nope", f"Bearer {API_KEY}x", f"Bearer {API_KEY[:-1]}", "Bearer  "):
        response = await admin(client, method, path, body, headers={"Authorization": wrong})
        expected = (401, "missing_api_key") if wrong.strip() == "Bearer" else (
            403, "invalid_api_key")
        assert (response.code, response.json["error"]) == expected, wrong
    response = await admin(client, method, path, body,
                           headers={"Authorization": f"Basic {API_KEY}"})
    assert response.code == 401
    # Either configured key works, in any case of the scheme name.
    for key in (API_KEY, OTHER_KEY):
        response = await admin(client, method, path, body,
                               headers={"Authorization": f"bearer {key}"})
        assert response.code not in (401, 403), response.body


@pytest.mark.parametrize("config", [make_config()])
@pytest.mark.parametrize("method, path", ENDPOINTS)
@pytest.mark.gen_test(timeout=10)
async def test_the_admin_api_does_not_exist_unless_enabled(client, method, path):
    response = await admin(client, method, path, '{"token": "x"}' if method in (
        "POST", "PUT") else None)
    assert (response.code, response.json["error"]) == (404, "not_found")


# -- introspection ----------------------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_introspection_says_who_a_session_is(client, clock):
    session = await login(client, "alice")
    token = session["session_id"]
    await client.request("PUT", "/session/data", headers={"X-Session": token},
                         json_body={"cart": [1]})
    for body in ({"token": token}, f"token={token}"):  # JSON, or a form as RFC 7662 has it
        response = await admin(client, "POST", "/introspect", body)
        answer = response.json
        assert answer["active"] is True and answer["openid"] == "alice"
        assert answer["data"] == {"cart": [1]} and answer["bound"] is False
        assert answer["user_id"] is None and answer["unionid"] is None
        assert answer["expires_at"] == session["expires_at"] and answer["sub"] == "alice"
        assert answer["exp"] - answer["iat"] == 7200


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_introspection_does_not_slide_the_expiry_unless_asked(client, clock):
    token = (await login(client, "bob"))["session_id"]
    clock.advance(3600)
    answer = (await admin(client, "POST", "/introspect", {"token": token})).json
    assert answer["expires_in"] == 3600
    answer = (await admin(client, "POST", "/introspect", {"token": token, "touch": True})).json
    assert answer["expires_in"] == 7200


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_expired_forged_revoked_and_unknown_ids_are_inactive(client, clock):
    expired = (await login(client, "carl"))["session_id"]
    clock.advance(7201)
    revoked = (await login(client, "dana"))["session_id"]
    await client.request("DELETE", "/session", headers={"X-Session": revoked})
    live = (await login(client, "erik"))["session_id"]
    forged = live[:-2] + ("AA" if not live.endswith("AA") else "BB")
    for token in (expired, revoked, forged, "A" * 32 + "." + "B" * 22, "garbage", "x" * 5000):
        response = await admin(client, "POST", "/introspect", {"token": token})
        assert (response.code, response.json) == (200, {"active": False}), token[:20]
    assert (await admin(client, "POST", "/introspect", {"token": live})).json["active"] is True


@pytest.mark.gen_test(timeout=10)
async def test_introspection_takes_the_id_in_the_body_only(client):
    token = (await login(client, "fay"))["session_id"]
    response = await admin(client, "POST", f"/introspect?token={token}", "")
    assert (response.code, response.json["error"]) == (400, "missing_token")
    response = await admin(client, "POST", "/introspect", {"token": 12})
    assert (response.code, response.json["error"]) == (400, "missing_token")


# -- bindings ---------------------------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_binding_shows_at_once_in_every_session_of_the_openid(client):
    first = await login(client, "gus")
    assert (first["bound"], first["user_id"]) == (False, None)
    response = await admin(client, "GET", "/admin/bindings/gus")
    # The identity is (app, openid): the single-app path means the default app.
    assert response.json == {"app": "default", "openid": "gus", "bound": False, "user_id": None}

    response = await admin(client, "PUT", "/admin/bindings/gus", {"user_id": "u-42"})
    assert response.code == 200 and response.json["bound"] is True
    assert response.json["user_id"] == "u-42" and response.json["bound_at"].endswith("Z")
    # The session issued before the binding sees it, and so does a new login.
    check = await client.request("GET", "/session", headers={"X-Session": first["session_id"]})
    assert (check.json["bound"], check.json["user_id"]) == (True, "u-42")
    assert (await login(client, "gus"))["user_id"] == "u-42"
    introspected = await admin(client, "POST", "/introspect", {"token": first["session_id"]})
    assert introspected.json["user_id"] == "u-42"

    await admin(client, "PUT", "/admin/bindings/gus", {"user_id": 7})  # rebinding, an integer
    check = await client.request("GET", "/session", headers={"X-Session": first["session_id"]})
    assert check.json["user_id"] == "7"  # user ids are strings (issue 11)

    response = await admin(client, "DELETE", "/admin/bindings/gus")
    assert response.code == 204
    check = await client.request("GET", "/session", headers={"X-Session": first["session_id"]})
    assert (check.json["bound"], check.json["user_id"]) == (False, None)
    assert (await admin(client, "DELETE", "/admin/bindings/gus")).code == 204  # idempotent


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_an_openid_can_be_bound_before_its_first_login(client):
    await admin(client, "PUT", "/admin/bindings/hal", {"user_id": "pre-bound"})
    assert (await login(client, "hal"))["user_id"] == "pre-bound"


@pytest.mark.parametrize("body, error", [
    ({"user_id": ""}, "invalid_user_id"), ({"user_id": None}, "invalid_user_id"),
    ({"user_id": True}, "invalid_user_id"), ({"user_id": [1]}, "invalid_user_id"),
    ({"user_id": "x" * 257}, "invalid_user_id"), ({"user_id": "a\x00b"}, "invalid_user_id"),
    ({"user_id": 2**63}, "invalid_user_id"), ({}, "invalid_user_id"),
    ("not json", "invalid_json"),
])
@pytest.mark.gen_test(timeout=10)
async def test_bad_bindings_are_400_and_change_nothing(client, body, error):
    await admin(client, "PUT", "/admin/bindings/ivy", {"user_id": "kept"})
    response = await admin(client, "PUT", "/admin/bindings/ivy", body)
    assert (response.code, response.json["error"]) == (400, error)
    assert (await admin(client, "GET", "/admin/bindings/ivy")).json["user_id"] == "kept"


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_binds_and_logins_leave_no_stale_copy(client):
    sessions = [await login(client, "jon")]
    ops = []
    for i in range(8):
        ops.append(admin(client, "PUT", "/admin/bindings/jon", {"user_id": f"u{i}"}))
        ops.append(client.login("dev:jon"))
        ops.append(client.request("POST", "/session/rotate",
                                  headers={"X-Session": sessions[0]["session_id"]}))
    results = await asyncio.gather(*ops)
    assert all(r.code in (200, 401) for r in results)
    final = (await admin(client, "GET", "/admin/bindings/jon")).json["user_id"]
    # Every live session of jon carries the binding the user record ends with.
    listed = (await admin(client, "GET", "/admin/sessions?openid=jon")).json["sessions"]
    assert listed and {s["user_id"] for s in listed} == {final}
    tokens = {r.json["session_id"] for r in results if r.code == 200 and r.json
              and "session_id" in r.json}
    for token in tokens:
        check = await client.request("GET", "/session", headers={"X-Session": token})
        assert check.code == 401 or check.json["user_id"] == final


@pytest.mark.gen_test(timeout=10)
async def test_odd_openids_in_the_path(client):
    response = await admin(client, "GET", "/admin/bindings/a%00b")
    assert (response.code, response.json["error"]) == (400, "invalid_openid")
    response = await admin(client, "GET", "/admin/bindings/" + "o" * 129)
    assert (response.code, response.json["error"]) == (400, "invalid_openid")
    response = await admin(client, "GET", "/admin/bindings/%E4%B8%AD")  # unicode is fine
    assert response.json == {"app": "default", "openid": "中", "bound": False, "user_id": None}


# -- listing and revoking ---------------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_listing_shows_a_users_live_sessions_but_never_their_ids(client, clock):
    phone = await login(client, "kay", user_agent="MicroMessenger/8.0.50 iPhone")
    clock.advance(60)  # past the reuse window: a second device gets its own session
    tablet = await login(client, "kay", user_agent="MicroMessenger/8.0.50 iPad")
    await login(client, "lou")
    await admin(client, "PUT", "/admin/bindings/kay", {"user_id": "acct-9"})
    for query in ("openid=kay", "user_id=acct-9", "openid=kay&user_id=acct-9"):
        response = await admin(client, "GET", f"/admin/sessions?{query}")
        listed = response.json["sessions"]
        assert [s["user_agent"] for s in listed] == ["MicroMessenger/8.0.50 iPhone",
                                                     "MicroMessenger/8.0.50 iPad"]
        assert all(s["client_ip"] == "127.0.0.1" and s["openid"] == "kay" for s in listed)
        assert listed[0]["created_at"] == phone["created_at"]
        assert set(listed[0]) == {"handle", "app", "openid", "anonymous", "unionid", "user_id",
                                  "created_at", "last_used_at", "expires_at", "client_ip",
                                  "user_agent"}
        assert listed[0]["app"] == "default"
        text = response.body.decode()
        for session in (phone, tablet):
            assert session["session_id"] not in text
            assert session["session_id"].split(".")[0] not in text
    assert (await admin(client, "GET", "/admin/sessions?openid=nobody")).json == {"sessions": []}
    response = await admin(client, "GET", "/admin/sessions")
    assert (response.code, response.json["error"]) == (400, "missing_filter")


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_revoking_all_of_a_users_sessions(client, clock):
    mine = [(await login(client, "max"))["session_id"]]
    clock.advance(60)
    mine.append((await login(client, "max"))["session_id"])
    other = (await login(client, "ned"))["session_id"]
    response = await admin(client, "DELETE", "/admin/sessions?openid=max")
    assert response.json == {"revoked": 2}
    for token in mine:
        check = await client.request("GET", "/session", headers={"X-Session": token})
        assert (check.code, check.json["error"]) == (401, "invalid_session")
        assert (await admin(client, "POST", "/introspect", {"token": token})).json == {
            "active": False}
    assert (await client.request("GET", "/session", headers={"X-Session": other})).code == 200
    # A login right after gets a fresh session, not the revoked one.
    again = await login(client, "max")
    assert again["session_id"] not in mine and again["reused"] is False
    response = await admin(client, "DELETE", "/admin/sessions")
    assert (response.code, response.json["error"]) == (400, "missing_filter")
    assert (await client.request("GET", "/session", headers={"X-Session": other})).code == 200


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_revoking_by_user_id_and_by_handle(client, clock):
    first = (await login(client, "oz"))["session_id"]
    clock.advance(60)
    second = (await login(client, "oz"))["session_id"]
    await admin(client, "PUT", "/admin/bindings/oz", {"user_id": "acct-1"})
    listed = (await admin(client, "GET", "/admin/sessions?user_id=acct-1")).json["sessions"]
    handle = listed[0]["handle"]
    assert (await admin(client, "DELETE", f"/admin/sessions/{handle}")).code == 204
    assert (await client.request("GET", "/session", headers={"X-Session": first})).code == 401
    assert (await client.request("GET", "/session", headers={"X-Session": second})).code == 200
    response = await admin(client, "DELETE", f"/admin/sessions/{handle}")
    assert (response.code, response.json["error"]) == (404, "no_such_session")
    response = await admin(client, "DELETE", "/admin/sessions/not-a-handle")
    assert (response.code, response.json["error"]) == (404, "no_such_session")
    assert (await admin(client, "DELETE", "/admin/sessions?user_id=acct-1")).json == {
        "revoked": 1}
    assert (await client.request("GET", "/session", headers={"X-Session": second})).code == 401


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_revoke_all_while_requests_are_in_flight(client):
    token = (await login(client, "pam"))["session_id"]
    headers = {"X-Session": token}
    stop = asyncio.Event()
    after_revoke = []

    async def user():
        i = 0
        while not stop.is_set():
            revoked_before = revoked.is_set()
            response = await client.request("PATCH", "/session/data", headers=headers,
                                             json_body={f"k{i}": i})
            if revoked_before:
                after_revoke.append(response.code)
            i += 1

    revoked = asyncio.Event()
    users = [asyncio.ensure_future(user()) for _ in range(4)]
    await asyncio.sleep(0.2)
    response = await admin(client, "DELETE", "/admin/sessions?openid=pam")
    assert response.json["revoked"] == 1
    revoked.set()
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*users)
    # Every request sent after the revocation returned was refused.
    assert after_revoke and set(after_revoke) == {401}
    stored = await admin(client, "POST", "/introspect", {"token": token})
    assert stored.json == {"active": False}

