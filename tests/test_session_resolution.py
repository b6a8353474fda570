"""One answer to "which session is this request", for every endpoint that acts on it.

A client may send a stale id next to a live one (an old X-Session header beside a fresh cookie).
Authentication takes the first signed id whose session is live; logout, rotation and
introspection must act on that same session, or a logout answers 204 and leaves the live
session working.
"""

import pytest

from tests.conftest import make_config, on_both_stores

ADMIN_KEY = "admin-api-key-0123456789abcdefghijklmnop"
STALE_KINDS = ["logged-out", "expired", "never-issued"]


@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [ADMIN_KEY]})


async def stale_and_live(client, clock, server, kind: str) -> tuple[str, str]:
    """A signed id whose session is gone (of the given kind), and a live session's id."""
    if kind == "never-issued":
        stale = server.service.signer.sign("A" * 32)
    else:
        stale = (await client.login("dev:alice")).json["session_id"]
        if kind == "logged-out":
            await client.request("DELETE", "/session", headers={"X-Session": stale})
        else:
            clock.advance(7201)
    live = (await client.login("dev:alice")).json["session_id"]
    assert live != stale
    return stale, live


async def status_of(client, token: str) -> tuple[int, str | None]:
    response = await client.request("GET", "/session", headers={"X-Session": token})
    return response.code, (response.json or {}).get("error")


@pytest.mark.parametrize("kind", STALE_KINDS)
@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_logout_ends_the_session_the_request_is_authenticated_as(client, clock, server,
                                                                       kind):
    stale, live = await stale_and_live(client, clock, server, kind)
    both = {"X-Session": stale, "Cookie": f"sessionid={live}"}
    # The request is the live session...
    assert (await client.request("GET", "/session", headers=both)).code == 200
    # ...so logging it out ends the live session.
    response = await client.request("DELETE", "/session", headers=both)
    assert response.code == 204
    assert response.headers.get_list("Set-Cookie") == [
        "sessionid=; Path=/; HttpOnly; Max-Age=0; SameSite=Lax"]
    assert await status_of(client, live) == (401, "invalid_session")
    # Again: nothing live is left, still not an error.
    assert (await client.request("DELETE", "/session", headers=both)).code == 204


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_logout_with_only_unsigned_or_no_ids_is_refused_and_ends_nothing(client):
    live = (await client.login("dev:alice")).json["session_id"]
    response = await client.request("DELETE", "/session", headers={"X-Session": "forged",
                                                                   "Cookie": "sessionid=x.y"})
    assert (response.code, response.json["error"]) == (401, "invalid_session")
    response = await client.request("DELETE", "/session")
    assert (response.code, response.json["error"]) == (401, "no_session")
    assert response.headers.get_list("Set-Cookie") == []
    assert (await status_of(client, live))[0] == 200


@pytest.mark.parametrize("kind", STALE_KINDS)
@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_rotation_rotates_the_live_session(client, clock, server, kind):
    stale, live = await stale_and_live(client, clock, server, kind)
    await client.request("PUT", "/session/data", headers={"X-Session": live},
                         json_body={"cart": [1]})
    response = await client.request("POST", "/session/rotate",
                                    headers={"X-Session": stale, "Cookie": f"sessionid={live}"})
    assert response.code == 200, response.body
    fresh = response.json["session_id"]
    assert await status_of(client, live) == (401, "invalid_session")
    data = await client.request("GET", "/session/data", headers={"X-Session": fresh})
    assert data.json == {"cart": [1]}


@pytest.mark.parametrize("kind", STALE_KINDS)
@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_a_live_id_beyond_the_lookup_limit_is_no_ones(client, clock, server, kind):
    """A request may spend 3 lookups on its ids: a live session named only after 3 dead signed
    ids is not this request's, for authentication, rotation and logout alike."""
    stale, live = await stale_and_live(client, clock, server, kind)
    dead = [server.service.signer.sign(c * 32) for c in "BC"]
    cookies = "; ".join(f"sessionid={token}" for token in [*dead, live])
    headers = {"X-Session": stale, "Cookie": cookies}
    for method, path, status in (("GET", "/session", 401), ("POST", "/session/rotate", 401),
                                 ("DELETE", "/session", 204)):
        response = await client.request(method, path, headers=headers)
        assert response.code == status, (method, path)
    assert (await status_of(client, live))[0] == 200


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_introspection_answers_for_the_session_a_request_would_be(client, clock, server):
    stale, live = await stale_and_live(client, clock, server, "logged-out")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for token, active in ((stale, False), (live, True)):
        response = await client.request("POST", "/introspect", headers=admin,
                                        json_body={"token": token})
        assert response.json["active"] is active
