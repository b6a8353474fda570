"""No request, however malformed, puts a header value in the log (issue 11, item 10).

Tornado refuses a header block with a NUL, a control character, a bad obs-fold or a bad header
name, and logs why at INFO, quoting the offending value: a session id from ``X-Session`` or
``Cookie``, or an admin key from ``Authorization``, in clear. Each case below sends a real
signed session id (or the server's admin key) inside such a request over a raw socket, and
every log record of any level, from any logger, must hold nothing of it: not the whole value,
not any 12 characters of it, whatever Tornado quoted or escaped around them. The refusal is
still logged, with the peer's address and what was wrong.

Nothing here reaches a store (these requests are refused while their headers are parsed), so
the memory store suffices.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import tornado.testing
import tornado.web

from server.app import Minisession
from server.http.httpserver import make_http_server
from tests.conftest import make_config
from tests.rawhttp import connect, drain, exchange, read_response, request, send

ADMIN_KEY = "admin-key-of-the-redaction-test-0123456789abcdef"
CONFIG = make_config(
    server={"client_timeout": 2.0},
    admin={"enabled": True, "api_keys": [ADMIN_KEY]},
    login={"rate_per_address": 0, "rate_overall": 0},
)
WINDOW = 12  # "nothing of it": no run of this many characters of the secret may be logged


def head(*lines: bytes, request_line: bytes = b"GET /session HTTP/1.1") -> bytes:
    """A request made of raw header lines (Host first, unless a case replaces it)."""
    return b"\r\n".join([request_line, *lines]) + b"\r\n\r\n"


def host(*lines: bytes) -> bytes:
    return head(b"Host: 127.0.0.1", *lines)


@dataclass
class Case:
    id: str
    #: The request's bytes, given the secret's.
    make: Callable[[bytes], bytes]
    #: The refusal must still be logged, saying this (None: Tornado closes without a word).
    logged: str | None = None


CASES = [
    Case("nul-in-x-session", lambda s: host(b"X-Session: " + s[:20] + b"\x00" + s[20:]),
         "Invalid header value"),
    Case("nul-after-cookie", lambda s: host(b"Cookie: sessionid=" + s + b"\x00"),
         "Invalid header value"),
    Case("nul-in-authorization", lambda s: host(b"Authorization: Bearer " + s + b"\x00"),
         "Invalid header value"),
    Case("bare-cr-in-x-session", lambda s: host(b"X-Session: " + s[:30] + b"\r" + s[30:]),
         "Invalid header value"),
    Case("ctl-01-in-cookie", lambda s: host(b"Cookie: a=1; sessionid=" + s + b"\x01"),
         "Invalid header value"),
    Case("ctl-1f-in-authorization", lambda s: host(b"Authorization: Bearer \x1f" + s),
         "Invalid header value"),
    Case("del-7f-in-x-session", lambda s: host(b"X-Session: " + s + b"\x7f"),
         "Invalid header value"),
    Case("vertical-tab-in-x-session", lambda s: host(b"X-Session: " + s[:13] + b"\x0b" + s[13:]),
         "Invalid header value"),
    Case("escape-sequence-in-x-session", lambda s: host(b"X-Session: \x1b[2J" + s),
         "Invalid header value"),
    Case("obs-fold-with-ctl", lambda s: host(b"X-Session: x", b" " + s + b"\x02"),
         "Invalid header continuation"),
    Case("obs-fold-first-line",
         lambda s: host().replace(b"Host", b" X-Session: " + s + b"\r\nHost"),
         "first header line cannot start with whitespace"),
    Case("bad-header-name", lambda s: host(s + b"@: x"), "Invalid header name"),
    Case("no-colon", lambda s: host(s), "no colon in header line"),
    Case("invalid-host", lambda s: head(b"Host: " + s + b"@x"), "Invalid Host header"),
    Case("two-hosts", lambda s: head(b"Host: a", b"Host: " + s),
         "Multiple host headers not allowed"),
    # Answered by our handler (400), then Tornado reads on and refuses the framing itself.
    Case("content-length-secret", lambda s: request("POST", "/login", [("Content-Length", s)],
                                                    length=False),
         "Only integer Content-Length is allowed"),
    Case("transfer-encoding-secret", lambda s: request(
        "POST", "/login", [("Transfer-Encoding", s)], length=False),
         "Unsupported Transfer-Encoding"),
    Case("huge-header-line", lambda s: host(b"X-Session: " + s + b"a" * 40000)),
]


class _Records(logging.Handler):
    """Every record, whatever its level and logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def everything_in(record: logging.LogRecord) -> str:
    """What any handler could write of a record: its message, raw parts and traceback."""
    text = f"{record.getMessage()}\n{record.msg!r}\n{record.args!r}"
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
        text += f"\n{record.exc_info[1]!r}"
    return text


def pieces(secret: str) -> set[str]:
    return {secret[i:i + WINDOW] for i in range(len(secret) - WINDOW + 1)}


class _PlainForm(tornado.web.RequestHandler):
    """An embedder's handler that does not stream its body: Tornado parses its form body."""

    def post(self) -> None:
        self.write("ok")


class LiveServer:
    """A minisession server on its own thread and loop (the raw sockets block this one)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    async def _start(self) -> None:
        self.app = Minisession(CONFIG, extra_routes=[(r"/form", _PlainForm)])
        await self.app.start()
        self.http, _ = make_http_server(self.app.application, CONFIG)
        sock, self.port = tornado.testing.bind_unused_port()
        self.http.add_sockets([sock])

    async def _stop(self) -> None:
        self.http.stop()
        await asyncio.wait_for(self.http.close_all_connections(), 5)
        await self.app.stop()

    def __enter__(self):
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def live():
    with LiveServer() as server:
        response = exchange(server.port, request("POST", "/login", body=b'{"code":"dev:alice"}'))
        assert response.status == 200, response.raw
        server.token = response.json["session_id"]
        yield server


@pytest.fixture
def records():
    capture = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture.records
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


def settle(live, records: list, expected: str | None) -> None:
    """Wait until the server has dealt with the request (and logged what it logs)."""
    deadline = time.monotonic() + 3
    while expected and not any(expected in r.getMessage() for r in records):
        assert time.monotonic() < deadline, [r.getMessage() for r in records]
        time.sleep(0.01)
    # A request on another connection, answered after the first was dealt with.
    assert exchange(live.port, host(b"X-A: b").replace(b"/session", b"/healthz")).status == 200


@pytest.mark.parametrize("secret_kind", ["session-id", "admin-key"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_malformed_request_puts_nothing_of_a_header_value_in_the_log(
        live, records, case, secret_kind):
    secret = live.token if secret_kind == "session-id" else ADMIN_KEY
    with connect(live.port) as sock:
        send(sock, case.make(secret.encode()))
        response = read_response(sock)
        closed, _ = drain(sock)
    # Refused (Tornado's bare 400, or our JSON 400), or dropped; and the connection closed.
    assert response.status in (400, None), response.raw[:200]
    assert closed
    settle(live, records, case.logged)
    leaked = [everything_in(r) for r in records
              if any(piece in everything_in(r) for piece in pieces(secret))]
    assert not leaked, leaked[0][:500]
    if case.logged:
        refusal = [r.getMessage() for r in records if case.logged in r.getMessage()]
        assert refusal == [f"Malformed HTTP message from 127.0.0.1: {case.logged}"]


@pytest.mark.parametrize("secret_kind", ["session-id", "admin-key"])
def test_a_malformed_form_body_puts_nothing_of_it_in_the_log(live, records, secret_kind):
    """A handler of the embedding app that takes form bodies: Tornado refuses a part header
    with a NUL, and its warning quoted the header."""
    secret = (live.token if secret_kind == "session-id" else ADMIN_KEY).encode()
    body = (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Session: " + secret
            + b"\x00\r\n\r\nv\r\n--b--\r\n")
    response = exchange(live.port, request(
        "POST", "/form", [("Content-Type", "multipart/form-data; boundary=b")], body))
    assert response.status == 400
    settle(live, records, "Invalid body")
    assert not [r for r in records if any(p in everything_in(r) for p in pieces(secret.decode()))]
    assert [r.getMessage() for r in records if "Invalid body" in r.getMessage()] == [
        "400 POST /form (127.0.0.1): Invalid body: Invalid multipart/form-data: "
        "Invalid header value"]


def test_the_log_guard_watches_tokens_signed_before_the_test(live):
    """The suite's guard (tests/log_guard.py) must know this module's token, signed by a
    module-scoped fixture before the guard of this test started."""
    from tests import log_guard

    assert live.token in log_guard._ambient
