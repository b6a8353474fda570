"""The gateway's pool of upstream connections (server/gateway/pool.py), as a user notices it.

A real ``minisession serve`` process proxies to a small raw HTTP/1.1 backend run by the test
(real sockets on loopback, one thread per connection), whose connection handling each test
chooses: closing kept-alive connections, restarting, breaking off an answer, answering slowly.
The backend counts connections, so the tests see what the pool does with them.
"""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from devtools.processes import ServerProcess, server_config, wait_for
from server.config import ConfigError
from tests.conftest import make_config

ROUTE_TIMEOUT = 1.0
#: An answer no request asked for.
UNASKED = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nunasked"


class RawBackend:
    """An HTTP/1.1 backend on a loopback port. Every answer's body names the connection that
    served it (``conn-<n>``). ``mode``:

    - "keep": keeps connections alive;
    - "close-after-answer": closes each connection right after its first answer, without
      saying so (no ``Connection: close``): its keep-alive timer fired at once;
    - "close-on-next": answers a connection's first request, closes it when a second arrives
      (the keep-alive timer firing just as the proxy reuses the connection);
    - "close-framed": answers without ``Content-Length``, its end marked by closing, as
      HTTP/1.0-style backends (CGI, old PHP setups) do.

    - "extra-bytes": sends, right behind each answer, the bytes of a second answer nobody
      asked for (a broken backend, or one that desynchronised);
    - "408-when-idle": keeps connections alive, but a connection left idle 0.2 s gets a
      ``408 Request Timeout`` answer nobody asked for, then is closed (as Node and Apache do).

    ``/partial`` answers 10 of 100 announced bytes, then stalls; ``/slow`` answers after 0.3 s.
    """

    def __init__(self, mode: str = "keep", port: int = 0):
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0  # accepted so far
        self.open = 0
        self.most_open = 0
        self.requests: list[tuple[int, str, bytes]] = []  # (connection, path, body)
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # stopped
            with self.lock:
                self.connections += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
                self.sockets.append(sock)
                number = self.connections
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        buffered = b""
        answered = 0
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split()[1]
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                while len(buffered) < length:
                    buffered += sock.recv(65536)
                body, buffered = buffered[:length], buffered[length:]
                if self.mode == "close-on-next" and answered:
                    return  # closed without an answer
                with self.lock:
                    self.requests.append((number, path, body))
                if path.endswith("/partial"):
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
                    time.sleep(3 * ROUTE_TIMEOUT)  # stalls: the proxy gives up first
                    return
                if path.endswith("/slow"):
                    time.sleep(0.3)
                answer = f"conn-{number}".encode() + b" " + body
                if self.mode == "close-framed":
                    sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + answer)
                    return
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                             + str(len(answer)).encode() + b"\r\n\r\n" + answer
                             + (UNASKED if self.mode == "extra-bytes" else b""))
                answered += 1
                if self.mode == "408-when-idle":
                    sock.settimeout(0.2)
                    try:
                        buffered += sock.recv(65536)  # the next request, if it comes in time
                    except TimeoutError:
                        sock.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 6\r\n"
                                     b"Connection: close\r\n\r\nunsent")
                        return
                    finally:
                        sock.settimeout(None)
                if self.mode == "close-after-answer":
                    return
        except OSError:
            return
        finally:
            sock.close()
            with self.lock:
                self.open -= 1

    def stop(self) -> None:
        """Close the listener and every connection, as a backend that exits does."""
        if self.listener.fileno() == -1:
            return  # stopped already
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def backend():
    servers = []

    def start(mode="keep", port=0):
        servers.append(RawBackend(mode, port))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def start_proxy(tmp_path, upstream: str, **gateway) -> ServerProcess:
    config = server_config(gateway={"routes": [
        {"prefix": "/api/", "upstream": upstream, "auth": "none", "timeout": ROUTE_TIMEOUT}],
        **gateway})
    return ServerProcess(config, tmp_path).start().wait_ready()


@pytest.fixture
def proxy_to(tmp_path):
    servers = []

    def start(upstream: str, **gateway) -> ServerProcess:
        servers.append(start_proxy(tmp_path / str(len(servers)), upstream, **gateway))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def test_a_backend_that_closes_kept_alive_connections_gets_every_request(backend, proxy_to):
    upstream = backend("close-after-answer")
    proxy = proxy_to(upstream.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        statuses = [client.get(f"/api/get{n}").status_code for n in range(30)]
        statuses += [client.post(f"/api/post{n}", content=f"body{n}").status_code
                     for n in range(30)]
    assert statuses == [200] * 60
    assert len(upstream.requests) == 60
    assert [body for _, _, body in upstream.requests[30:]] == [
        f"body{n}".encode() for n in range(30)]


def test_a_connection_closed_as_the_next_request_arrives_is_retried(backend, proxy_to):
    """The upstream's keep-alive timer fires just as the proxy sends on that connection: an
    idempotent request without a streamed body goes again on a new connection, never a 502."""
    upstream = backend("close-on-next")
    proxy = proxy_to(upstream.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        answers = [client.get(f"/api/n{n}") for n in range(20)]
    assert [answer.status_code for answer in answers] == [200] * 20
    assert [path for _, path, _ in upstream.requests] == [f"/api/n{n}" for n in range(20)]


def test_a_backend_restart_between_requests(backend, proxy_to):
    upstream = backend()
    proxy = proxy_to(upstream.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        assert client.get("/api/before").status_code == 200
        upstream.stop()
        time.sleep(0.2)
        restarted = backend(port=upstream.port)
        after = [client.get("/api/after"), client.post("/api/after", content=b"posted")]
    assert [answer.status_code for answer in after] == [200, 200], [a.text for a in after]
    assert [(path, body) for _, path, body in restarted.requests] == [
        ("/api/after", b""), ("/api/after", b"posted")]


def test_a_connection_broken_mid_answer_is_not_reused(backend, proxy_to):
    upstream = backend()
    proxy = proxy_to(upstream.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        first = client.get("/api/first")
        assert first.status_code == 200
        with pytest.raises(httpx.HTTPError):  # cut off: never a complete-looking answer
            client.get("/api/partial")
        after = [client.get(f"/api/after{n}") for n in range(5)]
    partial_connection = next(number for number, path, _ in upstream.requests
                              if path == "/api/partial")
    assert [answer.status_code for answer in after] == [200] * 5
    # Each answer is whole and its own (the stalled answer's 90 missing bytes never show up).
    assert all(answer.text.startswith("conn-") and len(answer.text.split()) == 1
               for answer in after)
    assert all(answer.text != f"conn-{partial_connection}" for answer in after)


def test_the_pool_holds_no_more_connections_than_its_bound(backend, proxy_to):
    upstream = backend()
    proxy = proxy_to(upstream.url, max_upstream_connections=3, upstream_idle_timeout=0.5)
    started = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(
            lambda n: httpx.get(f"{proxy.url}/api/slow", timeout=20).status_code, range(12)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 12
    assert upstream.most_open <= 3, upstream.most_open
    assert elapsed >= 4 * 0.3 - 0.05  # 12 slow answers, 3 at a time: they queued
    # Idle past upstream_idle_timeout, the pool closes its connections.
    assert wait_for(lambda: upstream.open == 0, timeout=5)


def test_pool_settings_defaults_and_bad_values():
    assert (make_config().gateway.max_upstream_connections,
            make_config().gateway.upstream_idle_timeout) == (100, 4.0)
    for key, value in (("max_upstream_connections", 0), ("max_upstream_connections", "many"),
                       ("upstream_idle_timeout", 0), ("upstream_idle_timeout", float("inf"))):
        with pytest.raises(ConfigError) as info:
            make_config(gateway={key: value})
        assert f"gateway.{key}" in str(info.value)


def test_an_answer_framed_by_closing_arrives_whole(backend, proxy_to):
    upstream = backend("close-framed")
    proxy = proxy_to(upstream.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        answers = [client.post("/api/x", content=f"body{n}") for n in range(5)]
    assert [(answer.status_code, answer.text.split()[1]) for answer in answers] == [
        (200, f"body{n}") for n in range(5)]


@pytest.mark.parametrize("mode", ["extra-bytes", "408-when-idle"])
def test_bytes_nobody_asked_for_are_never_the_next_requests_answer(backend, proxy_to, mode):
    """A connection holding bytes beyond its answer is closed, not reused: reused, they would be
    read as the answer to the next request, which may be another user's."""
    upstream = backend(mode)
    proxy = proxy_to(upstream.url)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        answers = []
        for n in range(6):
            answers.append(client.post(f"/api/n{n}", content=f"body{n}"))
            time.sleep(0.4 if mode == "408-when-idle" else 0)  # the backend's 408 arrives
    assert [(answer.status_code, answer.text.split()[-1]) for answer in answers] == [
        (200, f"body{n}") for n in range(6)]
    assert len(upstream.requests) == 6
