"""Hostile HTTP input, sent as raw bytes over a real socket (see tests/rawhttp.py).

Each row of ``TABLE`` is one request and the answer it must get: a status and a JSON ``error``
code, or, where Tornado refuses the request before any of our code sees it, Tornado's own
behaviour (``BARE_400``: a bare ``400 Bad Request`` without a body, or no answer at all), and
whether the connection is then closed. The table runs against one real server per store
backend, on a free loopback port, configured through ``server.http.httpserver`` exactly as
``minisession serve`` is. After every row the server must still answer; after the whole table
it must still log users in and serve their sessions, and the stored sessions and users must be
exactly what they were before the table.

Slow clients (slowloris, on headers and on the body) are disconnected after
``server.client_timeout`` while other clients are served meanwhile.
"""

import asyncio
import copy
import logging
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import tornado.testing

from handlers.base import ApiHandler
from server.app import Minisession
from server.clock import FakeClock
from server.http.httpserver import hard_body_limit, make_http_server
from server.ids import SessionIdSigner
from server.stores.memory import MemoryStore
from server.stores.mongodb import MongoStore, mongodb_client
from tests.conftest import BACKENDS, make_config
from tests.rawhttp import (
    chunked,
    connect,
    drain,
    exchange,
    read_response,
    request,
    send,
)

# Room for JSON nested 10**5 levels deep (600 kB), which must reach the JSON parser.
MAX_BODY = 1 << 20
MAX_HEADER = 16384  # the default
CLIENT_TIMEOUT = 0.5  # seconds; short, so that the slow-client rows take about that long
CONFIG = make_config(
    server={"max_body_size": MAX_BODY, "max_header_size": MAX_HEADER,
            "client_timeout": CLIENT_TIMEOUT},
    # The table sends dozens of /login requests from one address; the rate limits have
    # their own tests.
    login={"provider": "dev", "rate_per_address": 0, "rate_overall": 0},
)

#: Tornado's answer to a request it cannot parse, written before closing the connection.
BARE_400 = b"HTTP/1.1 400 Bad Request\r\n\r\n"
NO_ANSWER = None  # the connection is closed without a single byte of answer

# Placeholders in the table, filled in when a row runs.
TOKEN = b"@TOKEN@"      # alice's live session id
FORGED = b"@FORGED@"    # well-formed, but signed with a secret this server does not have
TAMPERED = b"@TAMPERED@"  # alice's id with one character of its MAC changed
TRUNCATED = b"@TRUNCATED@"  # alice's id without its last 3 characters
FORGED_TOKEN = SessionIdSigner(["another-server-secret-0123456789abcdef"]).new_token()[1]


@dataclass
class Case:
    id: str
    raw: bytes
    status: int | None
    #: The JSON ``error`` code; None for a success, or when the answer cannot carry JSON.
    error: str | None = None
    #: The connection must be closed after the answer (or instead of one).
    closes: bool = False
    #: The answer is Tornado's ``BARE_400``: no JSON is possible, because Tornado refused the
    #: request while parsing it, before our code saw it or while our code waited for its body.
    bare: bool = False
    head: bool = False
    half_close: bool = False
    #: For successful answers: items their JSON body must contain.
    expect: dict | None = None


ALICE = {"openid": "alice"}


def get(path, headers=None, **kw):
    return request("GET", path, headers, **kw)


def post_login(body: bytes, headers=None):
    return request("POST", "/login", headers, body)


def patch_data(body: bytes, headers=None):
    return request("PATCH", "/session/data", [("X-Session", TOKEN), *(headers or [])], body)


def session_with(*headers):
    return get("/session", list(headers))


def nested(depth: int, opening: bytes, leaf: bytes, closing: bytes) -> bytes:
    return opening * depth + leaf + closing * depth


def _bare(id, raw, **kw):
    # Tornado's parser refused it: a bare 400, then the connection is closed.
    return Case(id, raw, 400, bare=True, closes=True, **kw)


TABLE = [
    # --- JSON bodies: malformed, deeply nested, non-standard numbers, not an object --------
    Case("json-truncated", post_login(b'{"code":'), 400, "invalid_json"),
    Case("json-trailing-comma", patch_data(b'{"a":1,}'), 400, "invalid_json"),
    Case("json-single-quotes", patch_data(b"{'a':1}"), 400, "invalid_json"),
    Case("json-arrays-1e5-deep", patch_data(nested(10**5, b"[", b"", b"]")), 400,
         "invalid_json"),
    Case("json-objects-1e5-deep", patch_data(nested(10**5, b'{"a":', b"1", b"}")), 400,
         "invalid_json"),
    Case("json-login-1e5-deep", post_login(nested(10**5, b"[", b"", b"]")), 400,
         "invalid_json"),
    Case("json-33-levels", patch_data(nested(33, b'{"a":', b"1", b"}")), 400,
         "invalid_data"),
    Case("json-NaN", patch_data(b'{"a":NaN}'), 400, "invalid_json"),
    Case("json-Infinity", patch_data(b'{"a":Infinity}'), 400, "invalid_json"),
    Case("json-nested-minus-Infinity", patch_data(b'{"a":{"b":[-Infinity]}}'), 400,
         "invalid_json"),
    Case("json-array", patch_data(b'[{"a":1}]'), 400, "invalid_json"),
    Case("json-string", patch_data(b'"{\\"a\\":1}"'), 400, "invalid_json"),
    Case("json-null", patch_data(b"null"), 400, "invalid_json"),
    Case("json-number", patch_data(b"42"), 400, "invalid_json"),
    Case("json-not-utf8", patch_data(b'{"a":"\xff\xfe"}'), 400, "invalid_json"),
    Case("json-utf8-bom", patch_data(b'\xef\xbb\xbf{"a":1}'), 400, "invalid_json"),
    Case("json-dollar-key", patch_data(b'{"$where":"1"}'), 400, "invalid_data"),
    Case("json-int-over-64-bits", patch_data(b'{"a":' + b"9" * 4000 + b"}"), 400,
         "invalid_data"),
    # Past 4300 digits Python's int() refuses the number (CVE-2020-10735), as the parser.
    Case("json-int-5000-digits", patch_data(b'{"a":' + b"9" * 5000 + b"}"), 400,
         "invalid_json"),
    Case("json-array-login", post_login(b'["dev:alice"]'), 400, "invalid_json"),
    # --- Content types and form bodies -------------------------------------------------------
    Case("ctype-text-plain-json", post_login(b'{"code":"nope"}', [("Content-Type", "text/plain")]),
         400, "code_invalid"),
    Case("ctype-json-on-form-body",
         post_login(b"code=nope", [("Content-Type", "application/json")]), 400, "code_invalid"),
    Case("ctype-multipart", post_login(
        b'--zz\r\nContent-Disposition: form-data; name="code"\r\n\r\ndev:x\r\n--zz--',
        [("Content-Type", "multipart/form-data; boundary=zz")]), 400, "missing_code"),
    Case("ctype-xml", patch_data(b"<a>1</a>", [("Content-Type", "application/xml")]), 400,
         "invalid_json"),
    Case("form-not-utf8", post_login(b"code=\xff\xfe"), 400, "invalid_body"),
    Case("form-10k-fields", post_login(b"&".join(b"f%d=1" % i for i in range(10_000))), 400,
         "missing_code"),
    Case("form-percent-nul", post_login(b"code=dev%3Aal%00ice"), 400, "code_invalid"),
    # --- Login codes ---------------------------------------------------------------------------
    Case("code-empty", post_login(b'{"code":""}'), 400, "missing_code"),
    Case("code-10kB", post_login(b'{"code":"dev:' + b"a" * 10_240 + b'"}'), 400,
         "code_invalid"),
    Case("code-nul", post_login(b'{"code":"dev:al\\u0000ice"}'), 400, "code_invalid"),
    Case("code-fullwidth", post_login('{"code":"dev:ａｌｉｃｅ"}'.encode()), 400, "code_invalid"),
    Case("code-rtl-override", post_login(b'{"code":"dev:alice\\u202e"}'), 400, "code_invalid"),
    Case("code-lone-surrogate", post_login(b'{"code":"dev:\\ud800"}'), 400, "code_invalid"),
    Case("code-not-a-string", post_login(b'{"code":["dev:alice"]}'), 400, "code_invalid"),
    Case("code-query-nul", get("/login?code=dev:al%00ice"), 400, "code_invalid"),
    Case("code-query-not-utf8", get("/login?code=%ff%fe"), 400, "bad_request"),
    Case("code-query-fragment", get("/login?code=dev:alice#x"), 400, "code_invalid"),
    Case("code-query-last-wins", get("/login?code=dev:alice&code=nope"), 400, "code_invalid"),
    # --- Bodies over the limit, framing, request smuggling -----------------------------------
    # A body of exactly the limit is read whole (here: blank, so no code).
    Case("body-exactly-at-limit", post_login(b" " * MAX_BODY), 400, "missing_code"),
    Case("chunked-exactly-at-limit", chunked("POST", "/login", [b" " * 4096] * (MAX_BODY // 4096)),
         400, "missing_code"),
    Case("body-over-limit", post_login(b"x" * (MAX_BODY + 1)), 413, "body_too_large",
         closes=True),
    Case("body-length-20-digits", request("POST", "/login", [
        ("Content-Length", "9" * 20)], length=False), 413, "body_too_large", closes=True),
    Case("body-over-limit-expect-100", request("POST", "/login", [
        ("Content-Length", str(MAX_BODY + 1)), ("Expect", "100-continue")], length=False),
        413, "body_too_large", closes=True),
    Case("body-over-limit-unknown-path", request("PUT", "/nowhere", body=b"x" * (MAX_BODY + 1)),
         413, "body_too_large", closes=True),
    Case("chunked-over-limit", chunked("POST", "/login", [b"x" * 4096] * (MAX_BODY // 4096 + 1)),
         413, "body_too_large", closes=True),
    Case("chunked-small-pieces-over-limit", chunked(
        "PATCH", "/session/data", [b" " * 512] * (MAX_BODY // 512 + 1),
        [("X-Session", TOKEN)]), 413, "body_too_large", closes=True),
    # A single chunk declaring more than Tornado's backstop is refused by Tornado when it
    # reads the chunk size, before any of it reaches our byte count.
    _bare("chunked-one-huge-chunk", request("POST", "/login", [
        ("Transfer-Encoding", "chunked")], b"%x\r\n" % (hard_body_limit(CONFIG) + 1) + b"x" * 100,
        length=False)),
    Case("smuggling-te-and-cl", request("POST", "/login", [
        ("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
        b'0\r\n\r\nGET /session HTTP/1.1\r\nHost: x\r\n\r\n', length=False),
        400, "bad_request", closes=True),
    Case("smuggling-cl-and-te", request("POST", "/login", [
        ("Content-Length", "5"), ("Transfer-Encoding", "chunked")], b"0\r\n\r\n", length=False),
        400, "bad_request", closes=True),
    Case("smuggling-two-unequal-cl", request("POST", "/login", [
        ("Content-Length", "2"), ("Content-Length", "30")], b'{}' + b" " * 28, length=False),
        400, "bad_request", closes=True),
    Case("te-gzip", request("POST", "/login", [("Transfer-Encoding", "gzip")], length=False),
         400, "bad_request", closes=True),
    Case("te-chunked-twice", request("POST", "/login", [
        ("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], b"0\r\n\r\n",
        length=False), 400, "bad_request", closes=True),
    Case("cl-not-a-number", request("POST", "/login", [("Content-Length", "0x10")],
                                    length=False), 400, "bad_request", closes=True),
    Case("cl-negative", request("POST", "/login", [("Content-Length", "-1")], length=False),
         400, "bad_request", closes=True),
    # Chunk sizes are read by Tornado after our handler accepted the headers: bare 400.
    _bare("chunk-size-not-hex", request("POST", "/login", [("Transfer-Encoding", "chunked")],
                                        b"zz\r\nabc\r\n0\r\n\r\n", length=False)),
    _bare("chunk-size-with-extension", request("POST", "/login", [
        ("Transfer-Encoding", "chunked")], b"1;a=b\r\nx\r\n0\r\n\r\n", length=False)),
    # A chunk-size line over Tornado's 64 bytes: it closes the connection without an answer.
    Case("chunk-size-line-too-long", request("POST", "/login", [
        ("Transfer-Encoding", "chunked")], b"0" * 70 + b"1\r\nx\r\n0\r\n\r\n", length=False),
        NO_ANSWER),
    # --- Headers over the limit, lots of headers -----------------------------------------------
    Case("headers-over-limit", session_with(("Cookie", "a=" + "b" * MAX_HEADER)), 431,
         "headers_too_large", closes=True),
    # Past Tornado's backstop (twice the limit) our code never sees the request: closed.
    Case("headers-over-backstop", session_with(("Cookie", "a=" + "b" * 2 * MAX_HEADER)),
         NO_ANSWER),
    Case("headers-200-forged-cookies", session_with(
        *[("Cookie", b"sessionid=" + FORGED)] * 200), 401, "invalid_session"),
    Case("headers-3000-small-over-limit", get("/healthz", [(f"X-{i}", "1") for i in range(3000)]),
         431, "headers_too_large", closes=True),
    Case("uri-over-limit", get("/" + "a" * MAX_HEADER), 414, "uri_too_long", closes=True),
    Case("uri-8kB-path", get("/" + "a" * 8192), 404, "not_found"),
    # --- Control characters and raw bytes in Cookie / X-Session ------------------------------
    # Tornado refuses control characters in header values while parsing: bare 400.
    _bare("cookie-nul", session_with(("Cookie", b"sessionid=" + TOKEN + b"\x00"))),
    _bare("cookie-del", session_with(("Cookie", b"sessionid=\x7f" + TOKEN))),
    _bare("x-session-escape", session_with(("X-Session", b"\x1b[31m" + TOKEN))),
    _bare("x-session-bare-cr", session_with(("X-Session", TOKEN + b"\rX-Evil: 1"))),
    _bare("header-name-not-ascii", session_with(("X-Sessi\xf6n", TOKEN))),
    # obs-text bytes (0x80-0xFF) are legal in header values and reach our parser.
    Case("cookie-not-utf8", session_with(("Cookie", b"sessionid=\xff\xfe" + TOKEN)), 401,
         "invalid_session"),
    Case("x-session-not-utf8", session_with(("X-Session", b"\xc3\x28\xa0\xa1")), 401,
         "invalid_session"),
    Case("x-session-utf8-cjk", session_with(("X-Session", "会话".encode())), 401,
         "invalid_session"),
    Case("x-session-tab-inside", session_with(("X-Session", b"abc\tdef")), 401,
         "invalid_session"),
    Case("cookie-percent-nul", session_with(("Cookie", b"sessionid=" + TOKEN + b"%00")), 401,
         "invalid_session"),
    Case("cookie-name-homoglyph", session_with(("Cookie", "ѕessionid=".encode() + TOKEN)), 401,
         "no_session"),
    Case("cookie-10kB-value", session_with(("Cookie", b"sessionid=" + b"A" * 10_240)), 401,
         "no_session"),
    Case("cookie-only-separators", session_with(("Cookie", ";;;,,, ; =;=")), 401, "no_session"),
    Case("x-session-empty", session_with(("X-Session", "")), 401, "no_session"),
    Case("x-session-tampered", session_with(("X-Session", TAMPERED)), 401, "invalid_session"),
    Case("x-session-truncated", session_with(("X-Session", TRUNCATED)), 401, "invalid_session"),
    Case("x-session-other-secret", session_with(("X-Session", FORGED)), 401, "invalid_session"),
    # --- Duplicate headers: a forged id never hides nor replaces the real one --------------
    Case("dup-x-session-forged-first", session_with(("X-Session", FORGED), ("X-Session", TOKEN)),
         200, expect=ALICE),
    Case("dup-x-session-valid-first", session_with(("X-Session", TOKEN), ("X-Session", FORGED)),
         200, expect=ALICE),
    Case("dup-cookie-forged-first", session_with(
        ("Cookie", b"sessionid=" + FORGED), ("Cookie", b"sessionid=" + TOKEN)), 200,
        expect=ALICE),
    Case("dup-cookie-valid-first", session_with(
        ("Cookie", b"sessionid=" + TOKEN), ("Cookie", b"sessionid=" + FORGED)), 200,
        expect=ALICE),
    Case("forged-x-session-valid-cookie", session_with(
        ("X-Session", FORGED), ("Cookie", b"sessionid=" + TOKEN)), 200, expect=ALICE),
    Case("dup-x-session-both-forged", session_with(("X-Session", FORGED), ("X-Session", TAMPERED)),
         401, "invalid_session"),
    # Writes with a forged id change nothing (checked after the table).
    Case("logout-forged", request("DELETE", "/session", [("X-Session", FORGED)]), 401,
         "invalid_session"),
    Case("put-data-forged", request("PUT", "/session/data", [("X-Session", FORGED)],
                                    b'{"owned":true}'), 401, "invalid_session"),
    # --- Paths ----------------------------------------------------------------------------------
    Case("path-dot-dot", get("/nowhere/../session", [("X-Session", TOKEN)]), 404, "not_found"),
    Case("path-encoded-dot-dot", get("/session/%2e%2e/healthz"), 404, "not_found"),
    Case("path-double-slash", get("//login?code=dev:mallory"), 404, "not_found"),
    Case("path-encoded-nul", get("/login%00?code=dev:mallory"), 404, "not_found"),
    Case("path-upper-case", get("/LOGIN?code=dev:mallory"), 404, "not_found"),
    Case("path-trailing-slash", get("/login/?code=dev:mallory"), 404, "not_found"),
    Case("path-semicolon", get("/login;x=1?code=dev:mallory"), 404, "not_found"),
    Case("path-encoded-slash", get("/session%2Fdata", [("X-Session", TOKEN)]), 404, "not_found"),
    Case("path-raw-byte", get("/heal\xffthz"), 404, "not_found"),
    _bare("path-raw-nul", b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n"),
    # Tornado routes on the whole request target, so the absolute form matches no route.
    Case("uri-absolute-form", get("http://127.0.0.1/healthz"), 404, "not_found"),
    Case("uri-asterisk", request("OPTIONS", "*"), 404, "not_found"),
    Case("query-session-id-ignored", get("/session?X-Session=@TOKEN@&sessionid=@TOKEN@"), 401,
         "no_session"),
    # --- Methods --------------------------------------------------------------------------------
    Case("method-trace", request("TRACE", "/session"), 405, "method_not_allowed", closes=True),
    Case("method-connect", b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405,
         "method_not_allowed", closes=True),
    Case("method-propfind", request("PROPFIND", "/session"), 405, "method_not_allowed",
         closes=True),
    Case("method-lower-case", get("/healthz").replace(b"GET", b"get", 1), 405,
         "method_not_allowed", closes=True),
    # HEAD answers carry no body (RFC 9110), so no JSON: status and Allow only.
    Case("method-head", request("HEAD", "/session"), 405, head=True),
    Case("method-options", request("OPTIONS", "/login"), 405, "method_not_allowed"),
    Case("method-post-session", request("POST", "/session", body=b"{}"), 405,
         "method_not_allowed"),
    # --- Request lines and versions -------------------------------------------------------------
    Case("http-1.0", get("/healthz", version="HTTP/1.0"), 200, closes=True,
         expect={"status": "ok"}),
    # RFC 9112, 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; refused,
    # and the connection closed, so that the pipelined request behind it is never answered.
    Case("http-1.0-chunked-keep-alive", request("POST", "/login", [
        ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
        b'12\r\n{"code":"dev:eve"}\r\n0\r\n\r\n' + get("/healthz"), version="HTTP/1.0",
        length=False), 400, "bad_request", closes=True),
    Case("http-1.0-get-chunked-keep-alive", request("GET", "/healthz", [
        ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
        b"0\r\n\r\n" + get("/healthz"), version="HTTP/1.0", length=False),
        400, "bad_request", closes=True),
    _bare("http-2.0", get("/healthz", version="HTTP/2.0")),
    _bare("http-0.9", b"GET /healthz\r\n\r\n"),
    _bare("http-version-lower-case", get("/healthz", version="http/1.1")),
    _bare("request-line-garbage", b"HELLO THERE\r\n\r\n"),
    _bare("request-line-double-space", b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    _bare("no-host", b"GET /healthz HTTP/1.1\r\n\r\n"),
    _bare("two-hosts", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    # A TLS ClientHello on the plain port, then the client stops sending: no answer, closed.
    Case("tls-client-hello", bytes.fromhex("16030100a5010000a10303") + bytes(160), NO_ANSWER,
         half_close=True),
]


@dataclass
class Slow:
    """A client that starts a request and then trickles bytes, slower than the server waits."""

    id: str
    opening: bytes
    drip: bytes  # sent every DRIP seconds until the server hangs up
    #: The opening is a whole request, answered before the client goes quiet.
    complete: bool = False


DRIP = 0.1
SLOW = [
    Slow("idle-connection", b"", b""),
    Slow("request-line-trickled", b"GET /heal", b"t"),
    Slow("headers-trickled", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-A: b\r\n"),
    Slow("body-trickled", request("POST", "/login", [("Content-Length", "1000")], length=False),
         b"x"),
    Slow("chunked-body-trickled", request("POST", "/login", [("Transfer-Encoding", "chunked")],
                                          length=False), b"1\r\nx\r\n"),
    Slow("idle-after-a-request", get("/healthz"), b"", complete=True),
]


# --------------------------------------------------------------------------- the live server

class LiveServer:
    """A minisession server on its own thread and event loop, on a free loopback port."""

    def __init__(self, backend: str, mongodb_uri: str | None):
        self.backend = backend
        self.mongodb_uri = mongodb_uri
        self.database = f"minisession_test_{uuid.uuid4().hex[:12]}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.done: set[str] = set()  # ids of the table rows already run

    def call(self, coroutine, timeout: float = 30):
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.call(self._start())

    async def _start(self) -> None:
        if self.backend == "memory":
            self.store = MemoryStore()
        else:
            self.store = MongoStore(mongodb_client(self.mongodb_uri, 5.0), self.database,
                                    timeout=5.0)
        # A clock that stands still: no session slides or expires while the table runs, so
        # any change in the store would be the table's doing.
        self.app = Minisession(CONFIG, clock=FakeClock(), store=self.store)
        await self.app.start()
        self.http, _ = make_http_server(self.app.application, CONFIG)
        sock, self.port = tornado.testing.bind_unused_port()
        self.http.add_sockets([sock])

    def stop(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _stop(self) -> None:
        if hasattr(self, "http"):
            self.http.stop()
            await asyncio.wait_for(self.http.close_all_connections(), 5)
        if hasattr(self, "app"):
            if self.backend == "mongodb":
                await self.store.drop()
            await self.app.stop()

    def snapshot(self) -> dict:
        """Everything stored about sessions and users (not locks), comparable with ==."""
        return self.call(self._snapshot())

    async def _snapshot(self) -> dict:
        if self.backend == "memory":
            # The store API has no way to list sessions: read the in-process state itself.
            return {"sessions": copy.deepcopy(self.store._sessions),
                    "users": {openid: _state(user) for openid, user in self.store._users.items()}}
        from motor.motor_asyncio import AsyncIOMotorClient

        client = AsyncIOMotorClient(self.mongodb_uri)
        try:
            db = client[self.database]
            # Sorted by their whole content, whatever form "_id" takes.
            return {name: sorted(await db[name].find({}).to_list(None), key=repr)
                    for name in ("sessions", "users")}
        finally:
            client.close()


def _state(obj) -> dict:
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    return {name: getattr(obj, name) for name in obj.__slots__}


def login(port: int, openid: str) -> dict:
    response = exchange(port, post_login(b'{"code":"dev:%s"}' % openid.encode()))
    assert response.status == 200, response.raw
    return response.json


def fill(live, raw: bytes) -> bytes:
    token = live.tokens["alice"].encode()
    # One MAC character changed (to another valid base64url character).
    tampered = token[:-1] + (b"A" if token[-1:] != b"A" else b"B")
    return (raw.replace(TOKEN, token).replace(FORGED, FORGED_TOKEN.encode())
            .replace(TAMPERED, tampered).replace(TRUNCATED, token[:-3]))


@pytest.fixture(scope="module", params=BACKENDS)
def live(request):
    uri = request.getfixturevalue("mongodb_uri") if request.param == "mongodb" else None
    server = LiveServer(request.param, uri)
    try:
        server.start()
        server.tokens = {name: login(server.port, name)["session_id"] for name in ("alice", "bob")}
        response = exchange(server.port, request_put_data(server.tokens["alice"]))
        assert response.status == 200, response.raw
        server.before = server.snapshot()
        assert len(server.before["sessions"]) == 2
        yield server
    finally:
        server.stop()


def request_put_data(token: str) -> bytes:
    return request("PUT", "/session/data", [("X-Session", token)], b'{"cart":[1,2],"step":"pay"}')


def run_case(live, case: Case) -> None:
    response = exchange(live.port, fill(live, case.raw), head=case.head,
                        half_close=case.half_close, expect_close=case.closes)
    assert response.status == case.status, response.raw[:300]
    if case.status is None:
        assert response.closed and response.raw == b""
    elif case.bare:
        assert response.raw == BARE_400
    elif case.head:
        assert response.body == b"" and response.header("Allow") == "GET, DELETE"
    else:
        assert response.header("Content-Type") == "application/json; charset=UTF-8"
        assert b"Traceback" not in response.body
        if case.error is None:
            assert case.expect.items() <= response.json.items()
        else:
            assert response.error == case.error, response.body
            assert response.json["message"]
    if case.closes:
        assert response.closed, "the connection was left open"
        assert response.trailing == b"", "something was sent after the answer"
    if case.status == 405:
        # Empty for a path that serves nothing (CONNECT's "host:port"), which RFC 9110 allows.
        assert response.header("Allow") is not None
    live.done.add(case.id)
    # Whatever the row did, the server goes on answering.
    assert exchange(live.port, get("/healthz")).status == 200


def test_the_table_is_big_and_its_ids_unique():
    assert len(TABLE) >= 50
    assert len({case.id for case in TABLE}) == len(TABLE)


@pytest.mark.parametrize("case", TABLE, ids=[case.id for case in TABLE])
def test_hostile_input(live, case):
    run_case(live, case)


def test_after_the_table_the_server_serves_and_the_store_is_unchanged(live):
    for case in TABLE:  # normally all done already; this test may also run alone
        if case.id not in live.done:
            run_case(live, case)
    assert live.snapshot() == live.before
    # Existing sessions still work, with their data...
    response = exchange(live.port, session_with(("X-Session", live.tokens["alice"])))
    assert (response.status, response.json["openid"]) == (200, "alice")
    response = exchange(live.port, get("/session/data", [("X-Session", live.tokens["alice"])]))
    assert (response.status, response.json) == (200, {"cart": [1, 2], "step": "pay"})
    response = exchange(live.port, get("/session", [("Cookie", f"sessionid={live.tokens['bob']}")]))
    assert (response.status, response.json["openid"]) == (200, "bob")
    # ...and new users can log in and use theirs.
    carol = login(live.port, "carol")
    response = exchange(live.port, session_with(("X-Session", carol["session_id"])))
    assert (response.status, response.json["openid"]) == (200, "carol")


@pytest.mark.parametrize("slow", SLOW, ids=[slow.id for slow in SLOW])
# No store is involved before a request is complete: once, on the memory store, is enough.
@pytest.mark.parametrize("live", ["memory"], indirect=True)
def test_slow_clients_are_dropped_while_others_are_served(live, slow):
    started = time.monotonic()
    received = b""
    with connect(live.port) as sock:
        send(sock, slow.opening)
        if slow.complete:
            assert read_response(sock).status == 200
        closed = False
        while not closed and time.monotonic() - started < CLIENT_TIMEOUT + 2:
            # Another client is served meanwhile.
            assert exchange(live.port, get("/healthz"), timeout=1).status == 200
            if slow.drip:
                send(sock, slow.drip)
            closed, data = drain(sock, DRIP)
            received += data
        elapsed = time.monotonic() - started
    assert closed, "the slow client was never disconnected"
    assert received == b"", "a slow client gets no answer, only a closed connection"
    # Disconnected by the timeout, not before it and not much after.
    assert CLIENT_TIMEOUT * 0.9 <= elapsed <= CLIENT_TIMEOUT + 1.0, elapsed


def test_http_1_0_with_transfer_encoding_is_refused_and_the_connection_closed(live):
    """RFC 9112, 6.1: the answer says Connection: close, and the pipelined request behind
    the refused one is never read."""
    pipelined = request("POST", "/login", [
        ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
        b'12\r\n{"code":"dev:eve"}\r\n0\r\n\r\n', version="HTTP/1.0", length=False)
    with connect(live.port) as sock:
        send(sock, pipelined + get("/healthz"))
        response = read_response(sock)
        closed, after = drain(sock)
    assert (response.status, response.error) == (400, "bad_request")
    assert response.header("Connection") == "close"
    assert closed and after == b"", "the pipelined request was answered"


def test_keep_alive_survives_well_formed_requests(live):
    """Streaming bodies must not cost keep-alive: several requests on one connection."""
    with connect(live.port) as sock:
        for _ in range(3):
            send(sock, post_login(b'{"code":""}'))
            response = read_response(sock)
            assert (response.status, response.error) == (400, "missing_code")
            assert response.header("Connection") is None
        send(sock, get("/healthz"))
        assert read_response(sock).status == 200


def test_minisession_serve_applies_the_same_limits(tmp_path):
    """The real command builds its HTTPServer from the same options (server/cli.py)."""
    config = tmp_path / "limits.toml"
    config.write_text('[server]\nport = 0\nmax_body_size = 1024\nmax_header_size = 4096\n'
                      'client_timeout = 0.5\nshutdown_grace = 1.0\n[login]\nprovider = "dev"\n'
                      '[admin]\nmetrics_listen = "127.0.0.1:0"\n')  # metrics on a free port
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--config", str(config)],
            cwd=Path(__file__).resolve().parent.parent, stderr=log, stdout=log)
    try:
        deadline = time.monotonic() + 15
        while not (port := _listening_port(log_path.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        response = exchange(port, post_login(b"x" * 1025), expect_close=True)
        assert (response.status, response.error, response.closed) == (413, "body_too_large", True)
        response = exchange(port, get("/healthz", [("Cookie", "a=" + "b" * 4096)]))
        assert (response.status, response.error) == (431, "headers_too_large")
        started = time.monotonic()
        with connect(port) as sock:
            send(sock, b"GET /healthz HTTP/1.1\r\n")
            closed, received = drain(sock, 3)
        assert closed and received == b"" and time.monotonic() - started < 1.5
        assert exchange(port, post_login(b'{"code":"dev:alice"}')).status == 200
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listening_port(log: str) -> int | None:
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log)
    return int(match.group(1)) if match else None


def test_a_login_code_in_a_bad_query_string_is_not_logged(live, caplog):
    caplog.set_level(logging.DEBUG)
    response = exchange(live.port, get("/login?code=dev:leaked-code-4711%ff"))
    assert (response.status, response.error) == (400, "bad_request")
    deadline = time.monotonic() + 2
    while "400 GET /login" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)  # the access line is written on the server's thread
    assert "400 GET /login" in caplog.text
    assert "leaked-code-4711" not in caplog.text


class _Broken(ApiHandler):
    def get(self) -> None:
        raise RuntimeError("a bug")


@pytest.mark.gen_test
async def test_a_bug_answers_500_and_its_log_has_no_query_string(app, client, caplog):
    app.add_handlers(r".*", [(r"/broken", _Broken)])
    response = await client.request("GET", "/broken?code=dev:leaked-code-4711")
    assert (response.code, response.json["error"]) == (500, "internal_error")
    assert b"a bug" not in response.body
    assert "uncaught exception in GET /broken" in caplog.text
    assert "RuntimeError: a bug" in caplog.text  # the traceback is logged...
    assert "leaked-code-4711" not in caplog.text  # ...but not the query string
