"""A lean keep-alive pool for the gateway: an ``httpx`` transport speaking HTTP/1.1 with ``h11``.

Why not httpx's own transport (httpcore's pool): measured on the gateway (bench/gateway.py,
an authenticated GET, py-spy), httpcore's ``AsyncConnectionPool`` re-scans every request and
connection under a lock at each request start and end (``_assign_requests_to_connections``,
~40% of the time at 16 connections), and its layers (anyio streams, sniffio, per-request
locks and weak references) cost more CPU than the HTTP parsing itself. The gateway needs
little of it: plain HTTP/1.1 to a few configured origins, no proxies, no HTTP/2. So this pool
keeps, per origin, a stack of idle connections (the most recently used first) and a count of
open ones, on asyncio streams; ``h11`` (already under httpcore) does the HTTP. httpx stays the
client API (requests, responses, timeouts, errors), as for WeChat. Measured (bench/gateway.py,
16 connections, shared 2-core machine): minisession's CPU per proxied GET went from 4.2 ms
(httpcore's pool) to 1.3 ms (this one), and throughput from 68 to 431 requests/s.

Its rules: at most ``max_per_origin`` connections open to one origin (more requests wait for
one, up to the request's pool timeout); an idle connection is closed after ``idle_timeout``;
one that broke, or whose answer was not read to its end, is closed, never reused; one the
upstream closed while it was idle is noticed and replaced; a request that finds a reused
connection already closed by the upstream (nothing answered) is sent again on a new one when
it can be (an idempotent method whose body is known, not streaming). Bodies stream both ways
with backpressure (``drain`` on the way up, one read per piece on the way down).
"""

import asyncio
import collections
import ssl
import time

import h11
import httpx

#: Bytes asked of the socket per read: the size of the pieces an answer streams down in.
READ_SIZE = 64 * 1024
#: Methods that may be sent again when a kept-alive connection turns out closed (RFC 9110 §9.2.2).
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


class _Connection:
    """One HTTP/1.1 connection: its socket and the h11 state machine that reads and writes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.received = 0  # bytes of the current answer read so far

    def usable(self) -> bool:
        """Still open both ways (the upstream may have closed it while idle), and nothing
        received since its last answer: bytes that came unasked (a 408 before closing, a
        desynchronised backend) would be read as the next request's answer, maybe another
        user's. asyncio has no public way to peek at a StreamReader's buffer."""
        return not (self.reader.at_eof() or self.writer.is_closing()
                    or self.reader._buffer)  # noqa: SLF001 (see above)

    async def send(self, event, timeout: float | None) -> None:
        self.writer.write(self.h11.send(event))
        if self.writer.transport.get_write_buffer_size():  # the socket did not take it all
            async with asyncio.timeout(timeout):
                await self.writer.drain()  # backpressure: as fast as the upstream reads

    async def next_event(self, timeout: float | None):
        while (event := self.h11.next_event()) is h11.NEED_DATA:
            async with asyncio.timeout(timeout):
                data = await self.reader.read(READ_SIZE)
            self.received += len(data)
            self.h11.receive_data(data)
        return event

    def end_unread(self) -> None:
        """Take the end of an answer already received (a HEAD's, a 204's) without reading
        more, so that the connection can be reused; anything else leaves it unreusable."""
        try:
            while self.h11.their_state is h11.SEND_BODY:
                event = self.h11.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
        except h11.RemoteProtocolError:
            pass

    def reusable(self) -> bool:
        """Both sides done with a request and answer that allow another one, and no byte
        received beyond that answer (it would be taken for the next answer)."""
        return (self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE
                and not self.h11.trailing_data[0])

    def close(self) -> None:
        self.writer.close()


class _Origin:
    """The connections to one upstream origin: a bounded count, the idle ones on a stack."""

    def __init__(self, key: tuple[str, str, int], max_open: int, idle_timeout: float):
        self.key, self.max_open, self.idle_timeout = key, max_open, idle_timeout
        self.idle: collections.deque[_Connection] = collections.deque()
        self.open = 0  # idle and busy
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self._sweep: asyncio.TimerHandle | None = None

    async def acquire(self, timeout: float | None) -> tuple[_Connection, bool]:
        """A connection (idle or new) and whether it was reused."""
        while True:
            while self.idle:
                connection = self.idle.pop()
                if connection.usable():
                    return connection, True
                self._closed(connection)  # the upstream closed it while idle
            if self.open < self.max_open:
                break
            await self._wait_for_room(timeout)
        self.open += 1
        try:
            return await self._connect(timeout), False
        except BaseException:
            self.open -= 1
            self._wake()
            raise

    async def _wait_for_room(self, timeout: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise httpx.PoolTimeout("no connection to the upstream free in time") from None
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)

    async def _connect(self, timeout: float | None) -> _Connection:
        scheme, host, port = self.key
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ssl.create_default_context() if scheme == "https" else None,
                    limit=READ_SIZE)
        except TimeoutError:
            raise httpx.ConnectTimeout("the upstream did not accept in time") from None
        except OSError as error:
            raise httpx.ConnectError(f"cannot connect to the upstream: {error}") from None
        return _Connection(reader, writer)

    def release(self, connection: _Connection) -> None:
        """Back on the idle stack if another request may use it, else closed."""
        if connection.reusable() and connection.usable():
            connection.h11.start_next_cycle()
            connection.received = 0
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
            self._wake()
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(
                    self.idle_timeout, self._close_expired)
        else:
            connection.close()
            self._closed(connection)

    def _closed(self, connection: _Connection) -> None:
        connection.close()
        self.open -= 1
        self._wake()

    def _wake(self) -> None:
        """Let the longest-waiting request try again (a connection or room is free)."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_expired(self) -> None:
        self._sweep = None
        expired = time.monotonic() - self.idle_timeout
        while self.idle and self.idle[0].idle_since <= expired:  # the oldest are first
            self._closed(self.idle.popleft())
        if self.idle:
            self._sweep = asyncio.get_running_loop().call_later(
                self.idle[0].idle_since + self.idle_timeout - time.monotonic(),
                self._close_expired)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        while self.idle:
            self._closed(self.idle.pop())


class _AnswerBody(httpx.AsyncByteStream):
    """An answer's body, read from its connection piece by piece as the caller asks; the
    connection goes back to the pool when the body was read to its end, else is closed."""

    def __init__(self, origin: _Origin, connection: _Connection, read_timeout: float | None):
        self._origin, self._connection, self._timeout = origin, connection, read_timeout
        self._done = False

    async def __aiter__(self):
        try:
            while True:
                event = await self._connection.next_event(self._timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return
                else:  # a ConnectionClosed before the end
                    raise httpx.RemoteProtocolError("the upstream closed before the end")
        except TimeoutError:
            await self.aclose()
            raise httpx.ReadTimeout("the upstream's answer stalled") from None
        except (OSError, h11.RemoteProtocolError) as error:
            await self.aclose()
            raise httpx.ReadError(f"the upstream's answer broke off: {error}") from None

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            self._connection.end_unread()
            self._origin.release(self._connection)


class PoolTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to any origin, through a bounded keep-alive pool per origin (see the module)."""

    def __init__(self, max_per_origin: int, idle_timeout: float):
        self._max_per_origin, self._idle_timeout = max_per_origin, idle_timeout
        self._origins: dict[tuple[str, str, int], _Origin] = {}

    def open_connections(self) -> int:
        """Connections open to all upstreams, idle or busy."""
        return sum(origin.open for origin in self._origins.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(key, self._max_per_origin, self._idle_timeout)
        timeouts = request.extensions.get("timeout", {})
        replayable = (request.method.encode() in _IDEMPOTENT
                      and isinstance(request.stream, httpx.ByteStream))
        while True:
            connection, reused = await origin.acquire(timeouts.get("pool"))
            try:
                event = await self._exchange(connection, request, timeouts)
            except _ClosedUnanswered:
                origin.release(connection)  # closed, not reusable
                if reused and replayable:
                    continue  # the upstream had closed it while idle: once more, on a new one
                raise httpx.RemoteProtocolError("the upstream closed without answering") from None
            except BaseException:  # broken, timed out or cancelled: never reused
                connection.close()
                origin.release(connection)
                raise
            return httpx.Response(
                event.status_code, headers=event.headers.raw_items(),
                stream=_AnswerBody(origin, connection, timeouts.get("read")),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason})

    async def _exchange(self, connection: _Connection, request: httpx.Request, timeouts
                        ) -> h11.Response:
        """Send ``request`` and read its answer's head (1xx answers skipped)."""
        write_timeout, read_timeout = timeouts.get("write"), timeouts.get("read")
        try:
            try:
                await connection.send(h11.Request(method=request.method,
                                                  target=url_target(request.url),
                                                  headers=request.headers.raw), write_timeout)
                async for piece in request.stream:
                    if piece:
                        await connection.send(h11.Data(data=piece), write_timeout)
                await connection.send(h11.EndOfMessage(), write_timeout)
            except TimeoutError:
                raise httpx.WriteTimeout("the upstream did not read in time") from None
            except OSError:
                pass  # the upstream may have answered early (and closed): read its answer
            while True:
                event = await connection.next_event(read_timeout)
                if isinstance(event, h11.Response):
                    return event
                if isinstance(event, h11.ConnectionClosed):
                    raise _ClosedUnanswered()
                # an InformationalResponse (100 Continue...): the answer follows
        except TimeoutError:
            raise httpx.ReadTimeout("the upstream did not answer in time") from None
        except (OSError, h11.RemoteProtocolError) as error:
            if connection.received == 0:  # closed or reset before a byte of an answer
                raise _ClosedUnanswered() from None
            raise httpx.ReadError(f"the upstream's answer broke off: {error}") from None
        except h11.LocalProtocolError as error:  # a request h11 cannot send (bad framing)
            raise httpx.LocalProtocolError(f"cannot send the request: {error}") from None

    async def aclose(self) -> None:
        for origin in self._origins.values():
            origin.close()


class _ClosedUnanswered(Exception):
    """The connection was closed before any byte of an answer."""


def url_target(url: httpx.URL) -> bytes:
    """The request target of ``url``: its path and query as they are."""
    return url.raw_path
