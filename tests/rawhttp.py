"""A tiny HTTP/1.1 client over a raw socket, for hostile-input tests.

Tornado's client (and every other) normalizes what it sends: it fixes line endings, refuses
control characters, merges duplicate headers and computes Content-Length. Here the test writes
the exact bytes that go on the wire, and reads back the exact answer, if any.
"""

import json
import socket
import time
from dataclasses import dataclass, field

HEAD_END = b"\r\n\r\n"


@dataclass
class Response:
    """What came back on one connection for one request."""

    status: int | None  # None: the server sent no answer at all
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw: bytes = b""
    #: The server closed the connection after its answer (or instead of one).
    closed: bool = False
    #: Bytes that came after the answer, before the close.
    trailing: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def error(self) -> str | None:
        """The ``error`` code of a JSON error body, else None."""
        try:
            value = self.json
        except ValueError:
            return None
        return value.get("error") if isinstance(value, dict) else None


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send(sock: socket.socket, data: bytes) -> bool:
    """Send ``data``; False when the server had already closed (it may still have answered)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _recv(sock: socket.socket, deadline: float) -> bytes:
    """One read; b"" on close, reset or deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return b""
    sock.settimeout(remaining)
    try:
        return sock.recv(65536)
    except (ConnectionResetError, TimeoutError):
        return b""


def read_response(sock: socket.socket, timeout: float = 5.0, head: bool = False) -> Response:
    """Read one answer (``head``: to a HEAD request, so without a body)."""
    deadline = time.monotonic() + timeout
    raw = b""
    while HEAD_END not in raw:
        data = _recv(sock, deadline)
        if not data:
            return Response(status=None, raw=raw, closed=True)
        raw += data
    head_bytes, _, rest = raw.partition(HEAD_END)
    lines = head_bytes.decode("latin-1").split("\r\n")
    _version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    response = Response(status=int(status), reason=reason, headers=headers)
    length = 0 if head or response.status in (204, 304) else int(
        response.header("Content-Length") or 0)
    while len(rest) < length:
        data = _recv(sock, deadline)
        if not data:
            break
        raw += data
        rest += data
    response.body, response.raw = rest[:length], raw
    return response


def drain(sock: socket.socket, timeout: float = 2.0) -> tuple[bool, bytes]:
    """Read on until the server closes: ``(closed within timeout, bytes received meanwhile)``."""
    deadline = time.monotonic() + timeout
    extra = b""
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return True, extra
        except TimeoutError:
            break
        if not data:
            return True, extra
        extra += data
    return False, extra


def exchange(port: int, data: bytes, *, timeout: float = 5.0, head: bool = False,
             half_close: bool = False, expect_close: bool = False) -> Response:
    """Send ``data`` on a new connection and read one answer.

    ``half_close``: then shut our side down, as a client that has nothing more to say.
    ``expect_close``: then read on until the server closes the connection (at most
    ``timeout``), setting ``closed`` and ``trailing`` (anything sent after the answer).
    """
    with connect(port, timeout) as sock:
        send(sock, data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = read_response(sock, timeout, head=head)
        if response.status is not None and expect_close:
            response.closed, response.trailing = drain(sock, timeout)
        return response


def request(method: str, path: str, headers: list[tuple[str, str | bytes]] | None = None,
            body: bytes = b"", *, version: str = "HTTP/1.1", length: bool = True) -> bytes:
    """The bytes of a request: Host and (when ``length``) Content-Length are added.

    Header values given as ``bytes`` go on the wire untouched (control characters included).
    """
    lines = [f"{method} {path} {version}".encode("latin-1"), b"Host: 127.0.0.1"]
    for name, value in headers or []:
        raw = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name.encode("latin-1") + b": " + raw)
    if length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + HEAD_END + body


def chunked(method: str, path: str, chunks: list[bytes], headers=None) -> bytes:
    """A request with a ``Transfer-Encoding: chunked`` body made of ``chunks``."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    return request(method, path, [("Transfer-Encoding", "chunked"), *(headers or [])], body,
                   length=False)
