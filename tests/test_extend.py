"""A business handler of the app's own, built on SessionRequestHandler, as README shows it."""

from typing import ClassVar

import pytest
import tornado.web

from handlers.extend import SessionRequestHandler
from tests.conftest import make_config, on_both_stores, run_minisession

ADMIN_KEY = "admin-api-key-0123456789abcdefghijklmnop"


class OrdersHandler(SessionRequestHandler):
    """The README's example: the caller's orders, by the app's user id once bound."""

    ORDERS: ClassVar = {"acct-1": [{"id": 1, "total": 990}]}

    @tornado.web.authenticated
    async def get(self):
        user = self.current_user
        self.write_json({"openid": user.openid, "user_id": user.user_id,
                         "orders": self.ORDERS.get(user.user_id, [])})

    @tornado.web.authenticated
    async def post(self):
        self.write_json({"ordered_by": self.current_user.openid}, status=201)


class GreetingHandler(SessionRequestHandler):
    """Not @authenticated: works for everyone, knows who is logged in."""

    def get(self):
        who = self.current_user.openid if self.current_user else "stranger"
        self.write_json({"hello": who})


@pytest.fixture
def server(config, store, clock, io_loop):
    yield from run_minisession(io_loop, config, clock=clock, store=store,
                               extra_routes=[(r"/orders", OrdersHandler), (r"/hello", GreetingHandler)])


@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [ADMIN_KEY]})


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_current_user_is_the_session_and_sees_the_binding(client):
    token = (await client.login("dev:ann")).json["session_id"]
    response = await client.request("GET", "/orders", headers={"Cookie": f"sessionid={token}"})
    assert response.code == 200
    assert response.json == {"openid": "ann", "user_id": None, "orders": []}
    await client.request("PUT", "/admin/bindings/ann", json_body={"user_id": "acct-1"},
                         headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    response = await client.request("GET", "/orders", headers={"X-Session": token})
    assert response.json["orders"] == [{"id": 1, "total": 990}]
    response = await client.request("POST", "/orders", headers={"X-Session": token}, body="")
    assert (response.code, response.json) == (201, {"ordered_by": "ann"})


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.gen_test(timeout=20)
async def test_authenticated_answers_our_401_json_not_a_redirect_or_403(client, clock, method):
    response = await client.request(method, "/orders")
    assert (response.code, response.json["error"]) == (401, "no_session")
    assert "Location" not in response.headers
    response = await client.request(method, "/orders", headers={"X-Session": "forged"})
    assert (response.code, response.json["error"]) == (401, "invalid_session")
    token = (await client.login("dev:bo")).json["session_id"]
    clock.advance(7201)
    response = await client.request(method, "/orders", headers={"X-Session": token})
    assert (response.code, response.json["error"]) == (401, "session_expired")


@pytest.mark.gen_test(timeout=20)
async def test_handlers_without_authenticated_see_who_is_logged_in(client):
    assert (await client.request("GET", "/hello")).json == {"hello": "stranger"}
    token = (await client.login("dev:cy")).json["session_id"]
    response = await client.request("GET", "/hello", headers={"X-Session": token})
    assert response.json == {"hello": "cy"}
