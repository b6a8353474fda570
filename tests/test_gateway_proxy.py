"""The built-in reverse proxy (issue 14, part 2): ``[[gateway.routes]]`` in front of a backend.

Real parts only: a real ``minisession serve`` process with gateway routes, in front of a real
backend process (devtools/echo_backend.py) that echoes what it receives, streams, stalls,
fails and speaks WebSocket; clients over real HTTP (httpx, Tornado's WebSocket client).
"""

import asyncio
import base64
import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import tornado.httpclient
import tornado.websocket

from devtools.processes import ServerProcess, server_config, wait_for
from tests.rawhttp import connect, exchange, read_response, send
from tests.rawhttp import request as raw_request

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = ("x-auth-request-user", "x-auth-request-app", "x-auth-request-user-id",
            "x-auth-request-unionid")
SLOW_TIMEOUT = 1.0
BIG = 50 * 1024 * 1024
#: Largest growth of the server's resident memory allowed while 50 MB pass each way.
RSS_GROWTH_LIMIT_KIB = 20 * 1024


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The backend process; its base URL."""
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    with open(log, "wb") as errors:
        process = subprocess.Popen([sys.executable, "-m", "devtools.echo_backend"], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=errors,
                                   stdin=subprocess.DEVNULL)
    line = process.stdout.readline().decode()
    assert line.startswith("listening on "), log.read_text()
    yield line.split()[-1]
    process.terminate()
    process.wait(10)


def routes(upstream: str) -> list[dict]:
    return [
        {"prefix": "/api/", "upstream": upstream, "auth": "required", "cookie_jar": False},
        # Longer, so it wins under /api/v2/; a base path replaces the prefix.
        {"prefix": "/api/v2/", "upstream": upstream + "/v2base/", "auth": "optional"},
        {"prefix": "/open/", "upstream": upstream, "auth": "none", "cookie_jar": False},
        {"prefix": "/jar/", "upstream": upstream, "auth": "required", "cookie_jar": True},
        {"prefix": "/slow/", "upstream": upstream, "timeout": SLOW_TIMEOUT},
        {"prefix": "/down/", "upstream": f"http://127.0.0.1:{free_port()}"},
        {"prefix": "/small/", "upstream": upstream, "max_body": 1000},
        {"prefix": "/big/", "upstream": upstream, "auth": "none", "max_body": 2 * BIG},
        # Everything else goes to the backend too: minisession's own paths still win.
        {"prefix": "/", "upstream": upstream, "auth": "none"},
    ]


def start_proxy(tmp_path, upstream, store_uri=None, **sections) -> ServerProcess:
    config = server_config(store_uri=store_uri, gateway={"routes": routes(upstream)},
                           **sections)
    return ServerProcess(config, tmp_path).start().wait_ready()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, upstream):
    """minisession with the routes above (memory store), shared by this module's tests."""
    server = start_proxy(tmp_path_factory.mktemp("proxy"), upstream)
    yield server
    server.stop()


@pytest.fixture(params=["memory", "mongodb"])
def proxy_on(request, tmp_path, upstream):
    """The same, on each store."""
    uri = request.getfixturevalue("mongodb_uri") if request.param == "mongodb" else None
    server = start_proxy(tmp_path, upstream, uri, database=f"gw_{time.time_ns()}")
    yield server
    server.stop()


def login(server, openid="alice") -> str:
    answer = httpx.post(server.url + "/login", json={"code": f"dev:{openid}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["session_id"]


def get(server, path, **kwargs) -> httpx.Response:
    return httpx.request(kwargs.pop("method", "GET"), server.url + path, timeout=20, **kwargs)


def echoed(answer: httpx.Response) -> dict:
    assert answer.status_code == 200, (answer.status_code, answer.text)
    assert answer.headers["X-Upstream"] == "echo"
    seen = answer.json()
    seen["body"] = base64.b64decode(seen["body"])
    return seen


def header_values(seen: dict, name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key.lower() == name.lower()]


def assert_no_token_sent(seen: dict, token: str) -> None:
    for name, value in seen["headers"]:
        assert token not in value, name
        assert name.lower() != "x-session", name


# -- identity -------------------------------------------------------------------------------

def test_identity_headers_arrive_and_the_client_cannot_send_its_own(proxy_on):
    token = login(proxy_on, "alice")
    forged = [("X-Auth-Request-User", "mallory"), ("x-auth-request-app", "evil"),
              ("X-AUTH-REQUEST-USER-ID", "1"), ("X-Auth-Request-Anything", "x")]
    seen = echoed(get(proxy_on, "/api/me", headers=[("X-Session", token), *forged]))
    assert header_values(seen, "X-Auth-Request-User") == ["alice"]
    assert header_values(seen, "X-Auth-Request-App") == ["default"]
    assert header_values(seen, "X-Auth-Request-User-Id") == []  # not bound: no header
    assert header_values(seen, "X-Auth-Request-Anything") == []
    assert all("mallory" not in value and value not in ("evil", "1")
               for _, value in seen["headers"])
    assert_no_token_sent(seen, token)


def test_the_session_cookie_never_goes_upstream_other_cookies_do(proxy_on):
    token = login(proxy_on)
    for cookie in (f"theme=dark; sessionid={token}; lang=zh",
                   f"theme=dark, sessionid={token}; lang=zh"):  # a comma-joining client
        seen = echoed(get(proxy_on, "/api/c", headers={"Cookie": cookie}))
        assert header_values(seen, "X-Auth-Request-User") == ["alice"]
        assert_no_token_sent(seen, token)
        assert "lang=zh" in header_values(seen, "Cookie")[0]
    seen = echoed(get(proxy_on, "/api/c", headers={"Cookie": f"theme=dark; sessionid={token}"}))
    assert header_values(seen, "Cookie") == ["theme=dark"]


def test_auth_modes(proxy_on):
    token = login(proxy_on, "bob")
    # required: no session is minisession's 401, as /auth gives it; the backend never asked.
    for headers in ({}, {"X-Session": "forged.token"}):
        answer = get(proxy_on, "/api/x", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.json()["error"] in ("no_session", "invalid_session")
        assert "X-Upstream" not in answer.headers
        assert answer.json() == get(proxy_on, "/auth", headers=headers).json()
    # optional: forwarded either way, with the identity only when there is one.
    seen = echoed(get(proxy_on, "/api/v2/x"))
    assert not any(header_values(seen, name) for name in IDENTITY)
    seen = echoed(get(proxy_on, "/api/v2/x", headers={"X-Session": token}))
    assert header_values(seen, "X-Auth-Request-User") == ["bob"]
    # none: never an identity, and never the session id.
    seen = echoed(get(proxy_on, "/open/x", headers={"X-Session": token,
                                                     "X-Auth-Request-User": "mallory"}))
    assert not any(header_values(seen, name) for name in IDENTITY)
    assert_no_token_sent(seen, token)


def test_use_through_the_proxy_slides_the_expiry(tmp_path, upstream, request):
    for backend in ("memory", "mongodb"):
        uri = request.getfixturevalue("mongodb_uri") if backend == "mongodb" else None
        server = start_proxy(tmp_path / backend, upstream, uri, database=f"gw_{time.time_ns()}",
                             session={"idle_timeout": 3, "touch_after": 0,
                                      "login_reuse_window": 0})
        try:
            token = login(server)
            time.sleep(2)
            assert get(server, "/api/x", headers={"X-Session": token}).status_code == 200
            time.sleep(2)  # 4 s after the login: alive only because the proxied use slid it
            assert get(server, "/api/x", headers={"X-Session": token}).status_code == 200, backend
            time.sleep(3.5)
            assert get(server, "/api/x", headers={"X-Session": token}).status_code == 401
        finally:
            server.stop()


# -- what goes up and comes down ------------------------------------------------------------

def test_hop_by_hop_headers_are_dropped_both_ways(proxy):
    seen = echoed(get(proxy, "/open/hop-up", headers=[
        ("Connection", "keep-alive, X-Private-Hop"), ("X-Private-Hop", "secret"),
        ("Keep-Alive", "timeout=300"), ("TE", "trailers"), ("Proxy-Authorization", "Basic x"),
        ("X-End-To-End", "kept")]))
    names = {name.lower() for name, _ in seen["headers"]}
    assert not names & {"x-private-hop", "keep-alive", "te", "proxy-authorization"}
    assert header_values(seen, "X-End-To-End") == ["kept"]
    answer = get(proxy, "/open/hop")
    assert answer.status_code == 200 and answer.text == "hop"
    assert "X-Hop" not in answer.headers and "Keep-Alive" not in answer.headers
    assert answer.headers["X-End-To-End"] == "kept"


def test_x_forwarded_headers(proxy):
    seen = echoed(get(proxy, "/open/f", headers={"X-Forwarded-For": "203.0.113.9",
                                                "X-Forwarded-Host": "evil.example",
                                                "X-Forwarded-Proto": "https"}))
    # Not from a trusted proxy: the client's own claims are replaced, not passed on.
    assert header_values(seen, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(seen, "X-Forwarded-Proto") == ["http"]
    assert header_values(seen, "X-Forwarded-Host") == [f"127.0.0.1:{proxy.port}"]
    assert header_values(seen, "Host") != [f"127.0.0.1:{proxy.port}"]  # the upstream's own


def test_x_forwarded_headers_behind_a_trusted_proxy(tmp_path, upstream):
    server = start_proxy(tmp_path, upstream, server={"trusted_proxies": ["127.0.0.1"]})
    try:
        seen = echoed(get(server, "/open/f", headers={
            "X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Host": "api.example",
            "X-Forwarded-Proto": "https"}))
    finally:
        server.stop()
    # The address the trusted proxy saw; how the client came, as it says.
    assert header_values(seen, "X-Forwarded-For") == ["203.0.113.9"]
    assert header_values(seen, "X-Forwarded-Proto") == ["https"]
    assert header_values(seen, "X-Forwarded-Host") == ["api.example"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_method_path_query_and_body_arrive_intact(proxy, method):
    query = "a=1&b=%E4%BD%A0&c=x+y&d&e=%2F"
    bodies = [bytes(range(256)) * 16, "你好, upstream".encode(), b""]
    for body in bodies:
        seen = echoed(get(proxy, f"/open/some/path%20x?{query}", method=method, content=body))
        assert seen["method"] == method
        assert seen["uri"] == f"/open/some/path%20x?{query}"
        assert seen["body"] == body


def test_expect_100_continue(proxy):
    """A client that waits for 100 Continue before its body gets it, and its body arrives."""
    sock = connect(proxy.port)
    with sock:
        send(sock, b"POST /open/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Expect: 100-continue\r\n\r\n")
        interim = read_response(sock, timeout=5)
        assert interim.status == 100
        send(sock, b"hello")
        answer = read_response(sock, timeout=10)
    assert answer.status == 200
    seen = answer.json
    assert base64.b64decode(seen["body"]) == b"hello"
    assert not any(name.lower() == "expect" for name, _ in seen["headers"])


def test_a_chunked_body_arrives_intact(proxy):
    body = [b"first piece ", "第二".encode(), bytes(range(256))]

    def pieces():
        yield from body

    seen = echoed(get(proxy, "/open/chunked", method="POST", content=pieces()))
    assert seen["body"] == b"".join(body)
    assert header_values(seen, "Transfer-Encoding") == ["chunked"]


@pytest.mark.parametrize("code", [404, 500, 503])
def test_the_upstreams_errors_pass_through_unchanged(proxy, code):
    answer = get(proxy, f"/open/status/{code}")
    assert answer.status_code == code
    assert answer.text == f"upstream says {code}"
    assert answer.headers["X-Upstream-Error"] == "yes"
    assert answer.headers["Content-Type"] == "text/plain"


def test_a_redirect_is_passed_on_not_followed(proxy):
    answer = get(proxy, "/open/redirect")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/elsewhere?x=1"


def test_head(proxy):
    answer = get(proxy, "/open/download?size=1000", method="HEAD")
    assert answer.status_code == 200
    assert answer.headers["Content-Length"] == "1000"
    assert answer.content == b""
    # The connection still works for the next request (no body bytes were expected).
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        assert client.head("/open/download?size=5").headers["Content-Length"] == "5"
        assert client.get("/open/download?size=5").content == bytes(range(5))


def test_set_cookie_passes_through_or_not_by_route(proxy):
    answer = get(proxy, "/open/cookies")
    assert answer.headers.get_list("Set-Cookie") == [
        "a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"]
    # auth = "none" without cookie_jar: no session, so no jar; the cookies pass through both
    # ways rather than being dropped.
    answer = get(proxy, "/anything/cookies")
    assert answer.headers.get_list("Set-Cookie") == [
        "a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"]
    assert header_values(echoed(get(proxy, "/anything/x", headers={"Cookie": "a=1"})),
                         "Cookie") == ["a=1"]
    # cookie_jar = true: the upstream's cookies stay in the session's jar, which alone sends
    # them back (the client's own Cookie header does not go up).
    token = login(proxy)
    answer = get(proxy, "/jar/cookies", headers={"X-Session": token})
    assert answer.status_code == 200 and answer.headers.get_list("Set-Cookie") == []
    seen = echoed(get(proxy, "/jar/x", headers={"X-Session": token, "Cookie": "theme=dark"}))
    assert header_values(seen, "Cookie") == ["a=1; b=2"]


def test_a_websocket_handshake_carries_the_jars_cookies(proxy):
    token = login(proxy, "dave")
    assert get(proxy, "/jar/cookies", headers={"X-Session": token}).status_code == 200

    async def scenario():
        socket_ = await ws_connect(proxy, "/jar/ws", {"X-Session": token, "Cookie": "x=planted"})
        hello = json.loads(await socket_.read_message())
        socket_.close()
        return header_values({"headers": hello["headers"]}, "Cookie")

    assert asyncio.run(scenario()) == ["a=1; b=2"]


def test_longest_prefix_wins_and_a_base_path_replaces_the_prefix(proxy):
    token = login(proxy)
    assert echoed(get(proxy, "/api/v2/items?x=1"))["uri"] == "/v2base/items?x=1"
    assert echoed(get(proxy, "/api/items", headers={"X-Session": token}))["uri"] == "/api/items"
    assert get(proxy, "/api/v2x").status_code == 401  # /api/, not /api/v2/
    assert echoed(get(proxy, "/anything/else"))["uri"] == "/anything/else"  # the "/" route


def test_minisessions_own_paths_win_over_a_catch_all_route(proxy):
    assert "X-Upstream" not in get(proxy, "/healthz").headers
    assert "X-Upstream" not in get(proxy, "/openapi.json").headers
    token = login(proxy)  # POST /login is ours
    answer = get(proxy, "/session", headers={"X-Session": token})
    assert answer.json()["openid"] == "alice" and "X-Upstream" not in answer.headers
    # Beside them, the catch-all route serves what is not ours.
    assert echoed(get(proxy, "/sessions"))["uri"] == "/sessions"


# -- failures -------------------------------------------------------------------------------

def test_an_upstream_that_is_down_is_502(proxy):
    token = login(proxy)
    started = time.monotonic()
    answer = get(proxy, "/down/x", headers={"X-Session": token})
    assert answer.status_code == 502
    assert answer.json()["error"] == "upstream_unavailable" and answer.json()["message"]
    assert time.monotonic() - started < 5


def test_a_slow_upstream_is_504_within_the_timeout(proxy):
    token = login(proxy)
    started = time.monotonic()
    answer = get(proxy, "/slow/slow?seconds=10", headers={"X-Session": token})
    elapsed = time.monotonic() - started
    assert answer.status_code == 504
    assert answer.json()["error"] == "upstream_timeout"
    assert SLOW_TIMEOUT <= elapsed < SLOW_TIMEOUT + 1.5, elapsed
    # Within the timeout, the answer comes.
    answer = get(proxy, "/slow/slow?seconds=0.2", headers={"X-Session": token})
    assert answer.status_code == 200 and answer.json() == {"slow": True}


def test_a_client_that_leaves_before_the_answer_leaves_no_traceback(proxy):
    token = login(proxy)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(proxy.url + "/slow/slow?seconds=0.8", headers={"X-Session": token},
                  timeout=0.3)
    time.sleep(1.2)  # past the upstream's answer
    assert "Traceback" not in proxy.log() and "CancelledError" not in proxy.log()
    assert get(proxy, "/slow/slow?seconds=0", headers={"X-Session": token}).status_code == 200


def test_a_body_over_the_routes_limit_is_413(proxy):
    token = login(proxy)
    headers = {"X-Session": token}
    answer = get(proxy, "/small/x", method="POST", content=b"x" * 1001, headers=headers)
    assert answer.status_code == 413 and answer.json()["error"] == "body_too_large"

    def pieces():
        for _ in range(20):
            yield b"y" * 100

    answer = get(proxy, "/small/x", method="POST", content=pieces(), headers=headers)
    assert answer.status_code == 413 and answer.json()["error"] == "body_too_large"
    seen = echoed(get(proxy, "/small/x", method="POST", content=b"z" * 1000, headers=headers))
    assert seen["body"] == b"z" * 1000


def test_ambiguous_framing_is_refused_before_the_upstream(proxy):
    """Request smuggling: a body whose length two parsers could read differently never goes
    up; the client gets minisession's 400 and the connection is closed."""
    for headers in ([("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                    [("Content-Length", "5"), ("Content-Length", "6")],
                    [("Transfer-Encoding", "gzip")]):
        answer = exchange(proxy.port, raw_request("POST", "/open/smuggle", headers, b"hello",
                                                  length=False), expect_close=True)
        assert answer.status == 400 and answer.error == "bad_request", headers
        assert answer.header("X-Upstream") is None and answer.closed


def test_the_access_log_names_the_route_never_the_path(proxy):
    token = login(proxy)
    get(proxy, "/api/users/o-secret-openid-42?code=zzsecretcode", headers={"X-Session": token})
    log = proxy.log()
    assert "/api/{}" in log
    assert "o-secret-openid-42" not in log and "zzsecretcode" not in log


# -- streaming ------------------------------------------------------------------------------

def vm_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field}")


def test_50_mb_each_way_in_bounded_memory(tmp_path, upstream):
    server = start_proxy(tmp_path, upstream)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.get("/big/download?size=100000")  # warm: the code paths loaded
            before = vm_kib(server.pid, "VmRSS")
            digest, size = hashlib.sha256(), 0
            with client.stream("GET", f"/big/download?size={BIG}") as answer:
                assert answer.status_code == 200
                assert answer.headers["Content-Length"] == str(BIG)
                for piece in answer.iter_raw():
                    digest.update(piece)
                    size += len(piece)
            piece = bytes(range(256)) * 256
            expected = hashlib.sha256(piece * (BIG // len(piece))).hexdigest()
            assert (size, digest.hexdigest()) == (BIG, expected)

            def upload():
                for _ in range(BIG // len(piece)):
                    yield piece

            answer = client.put("/big/upload", content=upload(),
                                headers={"Content-Length": str(BIG)})
            assert answer.json() == {"size": BIG, "sha256": expected}
            answer = client.post("/big/upload", content=upload())  # chunked
            assert answer.json() == {"size": BIG, "sha256": expected}
        growth = vm_kib(server.pid, "VmHWM") - before
        print(f"RSS growth while 50 MB passed each way: {growth} KiB")
        assert growth < RSS_GROWTH_LIMIT_KIB, growth
    finally:
        server.stop()


# -- WebSocket ------------------------------------------------------------------------------

def ws_url(server, path):
    return server.url.replace("http://", "ws://") + path


async def ws_connect(server, path, headers=None):
    request = tornado.httpclient.HTTPRequest(ws_url(server, path), headers=headers or {},
                                             connect_timeout=10, request_timeout=10)
    return await tornado.websocket.websocket_connect(request)


def test_websocket_relay_both_ways_with_identity(proxy):
    token = login(proxy, "carol")

    async def scenario():
        socket_ = await ws_connect(proxy, "/api/chat/ws?room=1", {
            "X-Session": token, "X-Auth-Request-User": "mallory"})
        hello = json.loads(await socket_.read_message())
        handshake = {"headers": hello["headers"]}
        assert header_values(handshake, "X-Auth-Request-User") == ["carol"]
        assert_no_token_sent(handshake, token)
        assert hello["uri"] == "/api/chat/ws?room=1"
        await socket_.write_message("héllo")
        assert await socket_.read_message() == "héllo"
        await socket_.write_message(bytes(range(256)), binary=True)
        assert await socket_.read_message() == bytes(range(256))
        # The upstream closes: the client sees its code and reason.
        await socket_.write_message("close 4001 bye")
        assert await socket_.read_message() is None
        assert (socket_.close_code, socket_.close_reason) == (4001, "bye")

        # The client closes: the upstream side goes too, and the relay still works after.
        socket_ = await ws_connect(proxy, "/api/chat/ws", {"X-Session": token})
        await socket_.read_message()
        socket_.close(4002, "client leaves")
        assert await socket_.read_message() is None
        assert socket_.close_code == 4002

    asyncio.run(scenario())
    closes = wait_for(lambda: [c for c in get(proxy, "/open/closes").json()
                               if c == [4002, "client leaves"]], 5, what="upstream closed")
    assert closes == [[4002, "client leaves"]]


def test_a_websocket_message_over_the_routes_limit_closes_the_socket(proxy):
    token = login(proxy)

    async def scenario():
        socket_ = await ws_connect(proxy, "/small/ws", {"X-Session": token})
        await socket_.read_message()
        await socket_.write_message("x" * 1000)
        assert await socket_.read_message() == "x" * 1000  # at the limit: relayed
        await socket_.write_message("y" * 1001)
        assert await socket_.read_message() is None
        assert socket_.close_code == 1009  # message too big

    asyncio.run(scenario())


def test_a_cross_origin_websocket_is_refused_and_leaves_no_upstream_socket(proxy):
    """A page of another site opening a socket with the browser's cookies (cross-site WebSocket
    hijacking) is refused; a mini-program host sending the session in X-Session and an Origin
    of its own is not (a page cannot set X-Session on a handshake)."""
    token = login(proxy)
    closes = len(get(proxy, "/open/closes").json())

    async def scenario():
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await ws_connect(proxy, "/api/chat/ws", {"Cookie": f"sessionid={token}",
                                                     "Origin": "https://evil.example"})
        assert refused.value.code == 403

    asyncio.run(scenario())
    # The upstream socket opened for it is closed again.
    wait_for(lambda: len(get(proxy, "/open/closes").json()) == closes + 1, 5,
             what="upstream socket closed")

    async def from_a_mini_program_host():
        socket = await ws_connect(proxy, "/api/chat/ws", {
            "X-Session": token, "Origin": "https://servicewechat.com"})
        handshake = json.loads(await socket.read_message())
        await socket.write_message("hello")
        echoed = await socket.read_message()
        socket.close()
        return header_values(handshake, "X-Auth-Request-User"), echoed

    assert asyncio.run(from_a_mini_program_host()) == (["alice"], "hello")


def test_websocket_without_a_session_on_a_required_route_is_401(proxy):
    async def scenario():
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await ws_connect(proxy, "/api/chat/ws")
        assert refused.value.code == 401
        assert json.loads(refused.value.response.body)["error"] == "no_session"
        with pytest.raises(tornado.httpclient.HTTPClientError) as down:
            await ws_connect(proxy, "/down/ws", {"X-Session": login(proxy)})
        assert down.value.code == 502

    asyncio.run(scenario())


# -- metrics --------------------------------------------------------------------------------

def test_metrics_count_upstream_requests_by_route_and_status_class(proxy):
    token = login(proxy)
    get(proxy, "/api/x", headers={"X-Session": token})
    get(proxy, "/open/status/500")
    get(proxy, "/down/x", headers={"X-Session": token})
    text = httpx.get(proxy.metrics_url, timeout=10).text
    assert 'minisession_gateway_upstream_requests_total{route="/api/",status="2xx"}' in text
    assert 'minisession_gateway_upstream_requests_total{route="/open/",status="5xx"}' in text
    assert ('minisession_gateway_upstream_errors_total{error="unavailable",route="/down/"}'
            in text)
    assert 'minisession_gateway_upstream_duration_seconds_count{route="/api/"}' in text
    assert token not in text and "/open/status" not in text
