"""The app's user ids are strings, end to end: an integer sent to a binding is its decimal string.

So the app's user 1001 is one user whether it was bound as 1001 or "1001", and listing or
revoking by ``?user_id=1001`` (a query string is always a string) finds it. Bindings stored as
integers by earlier versions keep working.
"""

from datetime import UTC, datetime

import pytest
from bson import Int64

from tests.conftest import make_config, on_both_stores
from tests.test_admin import API_KEY, admin, login


@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [API_KEY]})


async def _user_id_everywhere(client, openid, token) -> set:
    """The user_id as each answer gives it: binding, GET /session, introspection, listing."""
    seen = [(await admin(client, "GET", f"/admin/bindings/{openid}")).json["user_id"],
            (await client.request("GET", "/session", headers={"X-Session": token})).json[
                "user_id"],
            (await admin(client, "POST", "/introspect", {"token": token})).json["user_id"]]
    listed = (await admin(client, "GET", f"/admin/sessions?openid={openid}")).json["sessions"]
    return set(seen) | {session["user_id"] for session in listed}


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_an_integer_user_id_is_its_decimal_string_everywhere(client):
    token = (await login(client, "ada"))["session_id"]
    response = await admin(client, "PUT", "/admin/bindings/ada", {"user_id": 1001})
    assert (response.code, response.json["user_id"]) == (200, "1001")
    assert await _user_id_everywhere(client, "ada", token) == {"1001"}
    assert (await login(client, "ada"))["user_id"] == "1001"
    for value, text in ((2**63 - 1, "9223372036854775807"), (-5, "-5"), ("007", "007")):
        response = await admin(client, "PUT", "/admin/bindings/ada", {"user_id": value})
        assert (response.code, response.json["user_id"]) == (200, text)
        assert await _user_id_everywhere(client, "ada", token) == {text}


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_listing_and_revoking_by_user_id_find_it_however_it_was_bound(client):
    as_integer = (await login(client, "bea"))["session_id"]
    as_string = (await login(client, "cid"))["session_id"]
    other = (await login(client, "dee"))["session_id"]
    await admin(client, "PUT", "/admin/bindings/bea", {"user_id": 1001})
    await admin(client, "PUT", "/admin/bindings/cid", {"user_id": "1001"})
    await admin(client, "PUT", "/admin/bindings/dee", {"user_id": 1002})
    listed = (await admin(client, "GET", "/admin/sessions?user_id=1001")).json["sessions"]
    assert sorted(s["openid"] for s in listed) == ["bea", "cid"]
    assert {s["user_id"] for s in listed} == {"1001"}
    assert (await admin(client, "DELETE", "/admin/sessions?user_id=1001")).json == {"revoked": 2}
    for token, code in ((as_integer, 401), (as_string, 401), (other, 200)):
        assert (await client.request("GET", "/session", headers={"X-Session": token})).code == code
    response = await admin(client, "GET", "/admin/sessions?user_id=" + "x" * 300)
    assert (response.code, response.json["error"]) == (400, "invalid_user_id")


@pytest.mark.parametrize("backend", ["mongodb"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_integer_user_ids_stored_by_earlier_versions_keep_working(client, store):
    """Earlier versions stored an integer user_id in the user's document and in its sessions."""
    token = (await login(client, "eve"))["session_id"]
    kept = (await login(client, "fox"))["session_id"]
    bound_at = datetime(2026, 1, 1, tzinfo=UTC)
    await store._users.update_one({"_id": "default:eve"},
                                  {"$set": {"user_id": Int64(1001), "bound_at": bound_at}})
    await store._sessions.update_many({"openid": "eve"}, {"$set": {"user_id": 1001}})
    await store._users.update_one({"_id": "default:fox"}, {"$set": {"user_id": 7, "bound_at": bound_at}})
    await store._sessions.update_many({"openid": "fox"}, {"$set": {"user_id": 7}})

    assert await _user_id_everywhere(client, "eve", token) == {"1001"}
    assert (await login(client, "eve"))["user_id"] == "1001"
    listed = (await admin(client, "GET", "/admin/sessions?user_id=1001")).json["sessions"]
    assert {(s["openid"], s["user_id"]) for s in listed} == {("eve", "1001")}
    assert (await admin(client, "DELETE", "/admin/sessions?user_id=1001")).json["revoked"] >= 1
    assert (await client.request("GET", "/session", headers={"X-Session": token})).code == 401
    assert (await client.request("GET", "/session", headers={"X-Session": kept})).json[
        "user_id"] == "7"
    # Rebinding to the same user, sent either way, leaves one user.
    await admin(client, "PUT", "/admin/bindings/fox", {"user_id": "7"})
    assert await _user_id_everywhere(client, "fox", kept) == {"7"}
    listed = (await admin(client, "GET", "/admin/sessions?user_id=7")).json["sessions"]
    assert [s["openid"] for s in listed] == ["fox"]
