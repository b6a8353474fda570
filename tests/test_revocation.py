"""Revocation holds against a thief who rotates a stolen id as fast as he can.

Over real HTTP: a thief loops ``POST /session/rotate``, following the new id each time, while
the admin revokes (by openid, by bound user, or by the handle a listing gave). Once the revoke
has returned, every id the thief holds or obtains must get 401.
"""

import asyncio
import random

import pytest

from tests.conftest import make_config, on_both_stores
from tests.test_admin import ADMIN, API_KEY, admin, login

ROUNDS = 50


@pytest.fixture
def config():
    # One login per round: more than the per-address login limit allows in a minute.
    return make_config(admin={"enabled": True, "api_keys": [API_KEY]},
                       login={"rate_per_address": 0})


async def _status(client, token) -> int:
    return (await client.request("GET", "/session", headers={"X-Session": token})).code


class Thief:
    """Rotates a stolen id in a loop until the server refuses it."""

    def __init__(self, client, token):
        self.client = client
        self.held = [token]
        self.revoked = False
        #: Rotations answered 200 to a request sent after the revoke returned.
        self.won_after_revoke = 0
        self.task = asyncio.ensure_future(self._loop())

    async def _loop(self):
        while True:
            sent_after_revoke = self.revoked
            response = await self.client.request(
                "POST", "/session/rotate", headers={"X-Session": self.held[-1]})
            if response.code != 200:
                assert response.code == 401, response.body
                return
            self.held.append(response.json["session_id"])
            self.won_after_revoke += sent_after_revoke
            if self.won_after_revoke >= 3:
                return  # the thief won this round

    async def rotations(self, count):
        """Return at a random moment after ``count`` rotations."""
        while len(self.held) < count and not self.task.done():
            await asyncio.sleep(0.001)
        await asyncio.sleep(random.random() * 0.01)

    async def survived(self) -> bool:
        """After the revoke returned: did any id the thief holds or obtains still work?"""
        self.revoked = True
        await asyncio.wait_for(self.task, 30)
        statuses = [await _status(self.client, token) for token in self.held[-3:]]
        return self.won_after_revoke > 0 or any(code != 401 for code in statuses)


async def _revoke_while_rotating(client, revoke, name, bind=False) -> int:
    missed = 0
    for i in range(ROUNDS):
        openid = f"{name}-{i}"
        if bind:
            await admin(client, "PUT", f"/admin/bindings/{openid}", {"user_id": f"acct-{openid}"})
        token = (await login(client, openid))["session_id"]
        thief = Thief(client, token)
        await thief.rotations(2)
        await revoke(openid)
        missed += await thief.survived()
    print(f"\n{name}: revocations missed: {missed} of {ROUNDS}")
    return missed


@on_both_stores
@pytest.mark.gen_test(timeout=240)
async def test_revoke_by_openid_ends_a_session_rotating_in_a_loop(client):
    async def revoke(openid):
        response = await admin(client, "DELETE", f"/admin/sessions?openid={openid}")
        assert response.code == 200, response.body

    assert await _revoke_while_rotating(client, revoke, "by-openid") == 0


@on_both_stores
@pytest.mark.gen_test(timeout=240)
async def test_revoke_by_user_id_ends_a_session_rotating_in_a_loop(client):
    async def revoke(openid):
        response = await admin(client, "DELETE", f"/admin/sessions?user_id=acct-{openid}")
        assert response.code == 200, response.body

    assert await _revoke_while_rotating(client, revoke, "by-user-id", bind=True) == 0


@on_both_stores
@pytest.mark.gen_test(timeout=240)
async def test_revoke_by_handle_ends_a_session_rotating_in_a_loop(client):
    """A handle names the session, not one of its ids: it survives rotation."""
    missed = 0
    for i in range(ROUNDS):
        openid = f"by-handle-{i}"
        token = (await login(client, openid))["session_id"]
        listed = (await admin(client, "GET", f"/admin/sessions?openid={openid}")).json
        handle = listed["sessions"][0]["handle"]
        thief = Thief(client, token)
        await thief.rotations(2)
        response = await client.request("DELETE", f"/admin/sessions/{handle}", headers=ADMIN)
        assert response.code in (204, 404), response.body
        missed += await thief.survived()
    print(f"\nby-handle: revocations missed: {missed} of {ROUNDS}")
    assert missed == 0


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_handle_stays_the_same_across_rotations(client):
    token = (await login(client, "rita"))["session_id"]
    other = (await login(client, "rita-2"))["session_id"]
    await admin(client, "PUT", "/admin/bindings/rita", {"user_id": "acct-r"})
    await admin(client, "PUT", "/admin/bindings/rita-2", {"user_id": "acct-r"})
    listed = (await admin(client, "GET", "/admin/sessions?openid=rita")).json["sessions"]
    handle = listed[0]["handle"]
    for _ in range(3):
        token = (await client.request("POST", "/session/rotate",
                                      headers={"X-Session": token})).json["session_id"]
    listed = (await admin(client, "GET", "/admin/sessions?user_id=acct-r")).json["sessions"]
    assert handle in {session["handle"] for session in listed} and len(listed) == 2
    assert (await admin(client, "DELETE", f"/admin/sessions/{handle}")).code == 204
    assert await _status(client, token) == 401
    assert await _status(client, other) == 200
    response = await admin(client, "DELETE", f"/admin/sessions/{handle}")
    assert (response.code, response.json["error"]) == (404, "no_such_session")
