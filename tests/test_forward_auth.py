"""``/auth``: forward authentication for nginx ``auth_request``, Traefik ``ForwardAuth`` and
Caddy ``forward_auth`` (issue 14, part 1).

A proxy asks minisession about each request it receives, passing the request's headers: a
live session is ``200`` with the identity in ``X-Auth-Request-*`` headers (which the proxy
copies into the request to its upstream); anything else is minisession's ``401`` JSON, which
the proxy passes on. The answer never carries a cookie or the session id: the proxy may hand
the auth answer's headers to the client or the upstream.
"""

import asyncio
import socket
import time
from urllib.parse import unquote, urlsplit

import pytest

from server.ids import SessionIdSigner
from server.stores.mongodb import MongoStore, mongodb_client
from tests.conftest import SECRET, make_config, on_both_stores
from tests.rawhttp import HEAD_END, connect, drain, read_response, request, send
from tests.test_apps import ADMIN, apps_config, login

ADMIN_KEY = ADMIN["Authorization"].removeprefix("Bearer ")
IDLE = 7200
TOUCH_AFTER = 60
#: Every method a proxy may ask with: nginx's subrequest keeps the client's method.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "PURGE"]
IDENTITY = ("X-Auth-Request-User", "X-Auth-Request-App", "X-Auth-Request-User-Id",
            "X-Auth-Request-Unionid")


@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [ADMIN_KEY]},
                       session={"idle_timeout": IDLE, "touch_after": TOUCH_AFTER})


async def new_session(client, openid="alice") -> str:
    response = await client.login(f"dev:{openid}")
    assert response.code == 200, response.body
    return response.json["session_id"]


async def auth(client, method="GET", headers=None):
    body = b"" if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, "/auth", headers=headers, body=body)


def assert_nothing_secret_sent(response, token):
    """No cookie, and the id in no header: the proxy may pass these headers anywhere."""
    assert response.headers.get_list("Set-Cookie") == []
    for name, value in response.headers.get_all():
        assert token not in value, name


def assert_refused(response, code):
    assert response.code == 401, (response.code, response.body)
    assert response.json["error"] == code and response.json["message"]
    assert response.headers["Content-Type"].startswith("application/json")
    assert not any(name in response.headers for name in IDENTITY)
    assert response.headers.get_list("Set-Cookie") == []


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_a_live_session_is_200_with_its_identity_whatever_the_method(client):
    token = await new_session(client)
    for method in METHODS:
        response = await auth(client, method, {"X-Session": token})
        assert response.code == 200, (method, response.code, response.body)
        assert response.headers["X-Auth-Request-User"] == "alice"
        assert response.headers["X-Auth-Request-App"] == "default"
        # Not bound, and the dev platform knows no unionid: no header rather than an empty one.
        assert "X-Auth-Request-User-Id" not in response.headers
        assert "X-Auth-Request-Unionid" not in response.headers
        assert response.body == b""
        assert_nothing_secret_sent(response, token)
    # By cookie as well as by header, as on every endpoint.
    response = await auth(client, headers={"Cookie": f"other=1; sessionid={token}"})
    assert (response.code, response.headers["X-Auth-Request-User"]) == (200, "alice")
    assert_nothing_secret_sent(response, token)


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_no_bad_or_expired_session_is_a_401_json_whatever_the_method(client, clock):
    token = await new_session(client)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    clock.advance(IDLE + 1)
    assert_refused(await auth(client, "POST", {"X-Session": token}), "session_expired")
    # Seen expired, the session is gone: its id is then as good as an unknown one.
    for method in METHODS:
        for headers, code in (({}, "no_session"), ({"X-Session": "not-a-session"},
                                                   "invalid_session"),
                              ({"X-Session": forged}, "invalid_session"),
                              ({"Cookie": f"sessionid={token}"}, "invalid_session"),
                              ({"X-Session": token}, "invalid_session")):
            response = await auth(client, method, headers)
            if method == "HEAD":
                assert response.code == 401 and response.body == b"", (headers, response.code)
                continue
            assert_refused(response, code)


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_the_identity_of_a_bound_user(client):
    token = await new_session(client, "bob")
    bound = await client.request("PUT", "/admin/bindings/bob", headers=ADMIN,
                                 json_body={"user_id": 1001})
    assert bound.code == 200, bound.body
    response = await auth(client, headers={"X-Session": token})
    assert response.headers["X-Auth-Request-User-Id"] == "1001"
    assert response.headers["X-Auth-Request-User"] == "bob"


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_a_user_id_unsafe_in_a_header_is_percent_encoded(client):
    """User ids are any printable string: what no header can carry (non-ASCII, which Tornado
    cannot even send; spaces, which proxies trim) is percent-encoded UTF-8, and so are "%" and
    "+", so that every decoder (rawurldecode, urldecode, decodeURIComponent) gives it back."""
    token = await new_session(client, "carol")
    for user_id, sent in (("李雷 x", "%E6%9D%8E%E9%9B%B7%20x"),
                          ("50%+1 ", "50%25%2B1%20"),
                          ("u-42:ok/é", "u-42:ok/%C3%A9"),
                          ("user@example.com", "user@example.com")):
        bound = await client.request("PUT", "/admin/bindings/carol", headers=ADMIN,
                                     json_body={"user_id": user_id})
        assert bound.code == 200, bound.body
        response = await auth(client, headers={"X-Session": token})
        assert response.code == 200, response.body
        assert response.headers["X-Auth-Request-User-Id"] == sent
        assert unquote(sent) == user_id


class TestApps:
    """Several apps (test_apps.py's config): the app and the unionid of the session."""

    @pytest.fixture
    def config(self, api_base, fake, backend):
        fake.unionid = True  # WeChat answers carry "union-<openid>"
        return apps_config(api_base, backend)

    @on_both_stores
    @pytest.mark.gen_test(timeout=60)
    async def test_the_app_and_unionid_of_a_session(self, client):
        shop = await login(client, "/login/shop", "user:erin")
        lab = await login(client, "/login/lab", "dev:erin")
        response = await auth(client, headers={"X-Session": shop["session_id"]})
        assert (response.headers["X-Auth-Request-App"], response.headers["X-Auth-Request-User"],
                response.headers["X-Auth-Request-Unionid"]) == ("shop", "erin", "union-erin")
        response = await auth(client, headers={"X-Session": lab["session_id"]})
        assert (response.headers["X-Auth-Request-App"], response.headers["X-Auth-Request-User"]
                ) == ("lab", "erin")
        assert "X-Auth-Request-Unionid" not in response.headers
        # A unionid binding reaches the app user header.
        bound = await client.request("PUT", "/admin/unionids/union-erin/binding", headers=ADMIN,
                                     json_body={"user_id": "u-7"})
        assert bound.code == 200, bound.body
        response = await auth(client, headers={"X-Session": shop["session_id"]})
        assert response.headers["X-Auth-Request-User-Id"] == "u-7"


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_auth_slides_the_expiry_without_ever_setting_a_cookie(client, clock):
    token = await new_session(client)
    for _ in range(3):
        # Each use comes before the idle timeout runs out, and well after touch_after: each
        # one slides the expiry, which (elsewhere) sends the cookie again. Not here.
        clock.advance(IDLE - 100)
        for headers in ({"X-Session": token}, {"Cookie": f"sessionid={token}"}):
            response = await auth(client, headers=headers)
            assert response.code == 200, response.body
            assert_nothing_secret_sent(response, token)
    # 3 x 7100 s after login, far past one idle timeout: alive only because /auth slid it.
    session = await client.request("GET", "/session", headers={"X-Session": token})
    assert session.code == 200 and session.json["expires_in"] == IDLE
    clock.advance(IDLE + 1)
    assert_refused(await auth(client, headers={"X-Session": token}), "session_expired")


def _ask_without_the_body(port, head: bytes) -> tuple:
    """Send only the head of a request that announces a body; the answer, read before any
    body byte is sent, and whether the server then closed the connection."""
    with connect(port, timeout=5) as sock:
        send(sock, head)
        response = read_response(sock, timeout=3)
        closed, after = drain(sock, timeout=3)
        assert after == b"", after  # nothing after the answer (no second, bare answer)
        return response, closed


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_a_body_announced_by_the_proxy_is_never_waited_for(client, base_url):
    """Some proxies pass the original request's Content-Length (or chunked framing) on the auth
    request without its body: the answer must come at once, whatever the length (even over
    server.max_body_size: /auth reads no body, so it has no limit to enforce), and the
    connection is then closed, so that body bytes are never read as a next request."""
    token = await new_session(client)
    port = urlsplit(base_url).port
    loop = asyncio.get_running_loop()
    heads = [
        request("POST", "/auth", [("X-Session", token), ("Content-Length", "1000")],
                length=False),
        request("PUT", "/auth", [("X-Session", token), ("Content-Length", "50000000")],
                length=False),
        request("POST", "/auth", [("X-Session", token), ("Content-Length", str(10**15))],
                length=False),
        request("POST", "/auth", [("X-Session", token), ("Transfer-Encoding", "chunked")],
                length=False),
        request("POST", "/auth", [("X-Session", token), ("Transfer-Encoding", "chunked"),
                                  ("Content-Length", "10")], length=False),
        request("POST", "/auth", [("X-Session", "bad"), ("Content-Length", "1000")],
                length=False),
    ]
    for head in heads:
        assert head.endswith(HEAD_END)
        response, closed = await loop.run_in_executor(None, _ask_without_the_body, port, head)
        if b"bad" in head:
            assert (response.status, response.error) == (401, "invalid_session"), response.raw
        else:
            assert response.status == 200, response.raw
            assert response.header("X-Auth-Request-User") == "alice"
        assert closed, "the connection must close rather than read the unsent body"
    # Without a body, the connection stays open for the proxy's next auth request.
    with connect(port, timeout=5) as sock:
        for _ in range(2):
            await loop.run_in_executor(None, send, sock, request(
                "GET", "/auth", [("X-Session", token)]))
            response = await loop.run_in_executor(None, read_response, sock, 3)
            assert response.status == 200 and response.header("Connection") != "close"


class TestStoreDown:
    """A store outage is not "logged out": the proxy passes on a 503 (Retry-After), never a
    401 that would send every user to log in again, and never a 200."""

    @pytest.fixture
    def config(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))  # closed once the block ends: nothing listens there
            port = sock.getsockname()[1]
        return make_config(store={"backend": "mongodb", "timeout": 0.5,
                                  "mongodb_uri": f"mongodb://127.0.0.1:{port}/"})

    @pytest.fixture
    def store(self, config):
        return MongoStore(mongodb_client(config.store.mongodb_uri, config.store.timeout),
                          "minisession_down", config.store.timeout)

    @pytest.mark.gen_test(timeout=30)
    async def test_a_store_outage_is_a_503_json(self, client):
        _, token = SessionIdSigner([SECRET]).new_token()  # well signed: the store is asked
        started = time.monotonic()
        response = await auth(client, headers={"X-Session": token})
        assert (response.code, response.json["error"]) == (503, "store_unavailable")
        assert response.headers["Retry-After"]
        assert not any(name in response.headers for name in IDENTITY)
        assert response.headers.get_list("Set-Cookie") == []
        assert time.monotonic() - started < 5  # bounded by the store timeout, never a hang
