"""Clients that keep a cookie jar stay logged in exactly as long as the server keeps the session.

weapp-cookie (the most used jar for ``wx.request``), browsers and H5 web-views drop a cookie
when its ``Max-Age`` runs out. The server slides a used session's expiry, so each slide must
tell the jar, with a ``Set-Cookie`` whose ``Max-Age`` is the session's new remaining lifetime.
"""

import asyncio

import pytest
import tornado.web

from handlers.extend import SessionRequestHandler
from tests.conftest import make_config, on_both_stores, run_minisession

ADMIN_KEY = "admin-api-key-0123456789abcdefghijklmnop"
IDLE = 7200


class CookieJar:
    """A client's cookie jar, as browsers and weapp-cookie keep one: Set-Cookie stores a
    cookie, ``Max-Age`` (counted on the test's clock) says when it is dropped, 0 drops it."""

    def __init__(self, clock):
        self.clock = clock
        self._cookies: dict[str, tuple[str, float]] = {}  # name -> (value, dropped at)

    def receive(self, response) -> None:
        for line in response.headers.get_list("Set-Cookie"):
            pair, *attributes = line.split(";")
            name, _, value = pair.strip().partition("=")
            max_age = float("inf")
            for attribute in attributes:
                key, _, number = attribute.strip().partition("=")
                if key.lower() == "max-age":
                    max_age = int(number)
            if max_age <= 0:
                self._cookies.pop(name, None)
            else:
                self._cookies[name] = (value, self.clock.now() + max_age)

    def headers(self) -> dict:
        now = self.clock.now()
        live = [f"{name}={value}" for name, (value, until) in self._cookies.items() if until > now]
        return {"Cookie": "; ".join(live)} if live else {}


async def use(client, jar, method="GET", path="/session/data", body=None):
    """One request of the jar's client: its cookies out, the answer's cookies in."""
    response = await client.request(method, path, headers=jar.headers(), json_body=body)
    jar.receive(response)
    return response


class WhoAmIHandler(SessionRequestHandler):
    """An app's own endpoint built on SessionRequestHandler (handlers/extend.py)."""

    @tornado.web.authenticated
    def get(self):
        self.write_json({"openid": self.current_user.openid})


@pytest.fixture
def server(config, store, clock, io_loop):
    yield from run_minisession(io_loop, config, clock=clock, store=store,
                               extra_routes=[(r"/whoami", WhoAmIHandler)])


@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [ADMIN_KEY]})


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_an_active_cookie_jar_client_stays_logged_in_until_the_session_ends(client, clock):
    jar = CookieJar(clock)
    login = await use(client, jar, "POST", "/login", {"code": "dev:alice"})
    token = login.json["session_id"]
    # Ten hours of use, a request every 30 minutes: far past one idle_timeout (2 h).
    for step in range(20):
        clock.advance(1800)
        response = await use(client, jar)
        assert response.code == 200, (step, response.body)
    # Idle, the cookie lasts exactly as long as the session: usable one second before the end...
    clock.advance(IDLE - 1)
    assert (await use(client, jar, path="/session")).code == 200
    # ...and gone from the jar at the very moment the server ends the session.
    clock.advance(IDLE)
    assert jar.headers() == {}
    response = await client.request("GET", "/session", headers={"X-Session": token})
    assert (response.code, response.json["error"]) == (401, "session_expired")


@pytest.mark.parametrize("config", [make_config(session={"max_lifetime": 10800})])
@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_the_cookie_never_outlives_max_lifetime(client, clock):
    jar = CookieJar(clock)
    token = (await use(client, jar, "POST", "/login", {"code": "dev:alice"})).json["session_id"]
    ends_at = clock.now() + 10800
    for _ in range(10):  # 10 x 1000 s of constant use
        clock.advance(1000)
        response = await use(client, jar, path="/session")
        assert response.code == 200
        cookies = response.headers.get_list("Set-Cookie")
        # The cookie's lifetime is the session's: the idle timeout, capped by max_lifetime.
        assert cookies == [f"sessionid={token}; Path=/; HttpOnly; "
                           f"Max-Age={response.json['expires_in']}; SameSite=Lax"]
        assert response.json["expires_in"] == min(IDLE, ends_at - clock.now())
    clock.advance(799)  # 10799 s after login: both still there
    assert (await use(client, jar, path="/session")).code == 200
    clock.advance(1)
    assert jar.headers() == {}
    response = await client.request("GET", "/session", headers={"X-Session": token})
    assert (response.code, response.json["error"]) == (401, "session_expired")


ENDPOINTS = [("GET", "/session", None), ("GET", "/session/data", None),
             ("PUT", "/session/data", {"a": 1}), ("PATCH", "/session/data", {"b": 2}),
             ("POST", "/session/data", {"c": 3}), ("GET", "/whoami", None)]


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_every_authenticated_endpoint_refreshes_the_cookie_when_it_slides(
        client, clock, method, path, body):
    token = (await client.login("dev:alice")).json["session_id"]
    h = {"X-Session": token}
    clock.advance(59)  # inside touch_after: no slide, no header
    response = await client.request(method, path, headers=h, json_body=body)
    assert response.code == 200 and response.headers.get_list("Set-Cookie") == []
    clock.advance(1)  # the slide: one Set-Cookie, ours, with the new lifetime
    response = await client.request(method, path, headers=h, json_body=body)
    assert response.code == 200, response.body
    assert response.headers.get_list("Set-Cookie") == [
        f"sessionid={token}; Path=/; HttpOnly; Max-Age={IDLE}; SameSite=Lax"]
    # At most once per touch_after.
    response = await client.request(method, path, headers=h, json_body=body)
    assert response.headers.get_list("Set-Cookie") == []


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_the_refreshed_cookie_carries_the_live_id_not_a_stale_one(client, clock):
    stale = (await client.login("dev:alice")).json["session_id"]
    await client.request("DELETE", "/session", headers={"X-Session": stale})
    live = (await client.login("dev:bob")).json["session_id"]
    clock.advance(60)
    response = await client.request("GET", "/session",
                                    headers={"Cookie": f"sessionid={stale}; sessionid={live}"})
    assert response.headers.get_list("Set-Cookie") == [
        f"sessionid={live}; Path=/; HttpOnly; Max-Age={IDLE}; SameSite=Lax"]


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_rotation_on_a_slide_sends_one_cookie_the_new_one(client, clock):
    token = (await client.login("dev:alice")).json["session_id"]
    clock.advance(600)
    response = await client.request("POST", "/session/rotate", headers={"X-Session": token})
    fresh = response.json["session_id"]
    assert fresh != token
    assert response.headers.get_list("Set-Cookie") == [
        f"sessionid={fresh}; Path=/; HttpOnly; Max-Age={IDLE}; SameSite=Lax"]


@pytest.mark.parametrize("config", [make_config(session={"data_max_bytes": 100})])
@pytest.mark.gen_test(timeout=20)
async def test_no_cookie_on_an_error_answer_even_when_it_slid(client, clock):
    h = {"X-Session": (await client.login("dev:alice")).json["session_id"]}
    clock.advance(60)
    response = await client.request("PUT", "/session/data", headers=h, json_body={"a": "x" * 200})
    assert (response.code, response.json["error"]) == (413, "data_too_large")
    assert response.headers.get_list("Set-Cookie") == []


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_introspection_never_sets_a_cookie(client, clock):
    token = (await client.login("dev:alice")).json["session_id"]
    clock.advance(600)
    response = await client.request("POST", "/introspect", json_body={"token": token, "touch": True},
                                    headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.json["active"] is True and response.json["expires_in"] == IDLE  # it slid
    assert response.headers.get_list("Set-Cookie") == []


@pytest.mark.gen_test(timeout=20)
async def test_concurrent_requests_at_a_slide_each_send_at_most_one_cookie(client, clock):
    token = (await client.login("dev:alice")).json["session_id"]
    clock.advance(60)
    responses = await asyncio.gather(*(
        client.request("GET", "/session", headers={"X-Session": token}) for _ in range(5)))
    assert all(r.code == 200 and len(r.headers.get_list("Set-Cookie")) <= 1 for r in responses)
    assert any(r.headers.get_list("Set-Cookie") for r in responses)
