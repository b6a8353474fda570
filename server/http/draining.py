"""Graceful shutdown: finish the requests already accepted, then close.

A request counts as *accepted* once its headers have been read (on a connection that is still
open), and as *done* when its answer has been handed to the connection (or its connection
closed before it could be answered).
:class:`RequestTracker` sits between Tornado's ``HTTPServer`` and the application and keeps
that count, so that on SIGTERM the server can:

1. stop listening (the caller's ``http.stop()``): new connections are refused, so a load
   balancer moves them to another instance at once;
2. :meth:`RequestTracker.drain`: close the kept-alive connections that wait for a next
   request, answer every accepted request with ``Connection: close``, and wait until none is
   left or the grace period has passed;
3. close the connection pools (the caller's ``Minisession.stop()``).

``HTTPServer.close_all_connections()`` alone would cut accepted requests off mid-answer: it
closes every stream at once.

Sitting there, the tracker also saves bodiless requests (most of them: ``GET /session``) a
detour. For a handler that streams its body, as every minisession handler does, Tornado waits
for ``prepare()`` to finish before it reads the body, so that no body byte reaches a handler
that is not ready. Without a body there is nothing to hold back, and that wait only costs the
request two extra passes of the event loop (about 3 % of its CPU time on the benchmark).
"""

import asyncio
import weakref

from tornado import httputil

from server.http import tornado_compat

_POLL = 0.01  # seconds between checks while draining


class RequestTracker(httputil.HTTPServerConnectionDelegate):
    """Wraps an application (any ``HTTPServerConnectionDelegate``) and counts its requests."""

    def __init__(self, application: httputil.HTTPServerConnectionDelegate):
        self.application = application
        self.in_flight = 0
        self.accepted = 0       # requests accepted since start
        self.draining = False
        # Every live connection, by id(): registered at its first request, forgotten when it
        # is gone (a weak reference's callback), so a connection closed by its client costs
        # nothing. Looked up once a request, where a WeakSet would make weak references.
        self._connections: dict[int, _Connection] = {}

    def start_request(self, server_conn, request_conn) -> httputil.HTTPMessageDelegate:
        if self.draining:
            # A kept-alive connection that finished its last answer while we drained.
            _close(server_conn)
        connection = self._connections.get(id(server_conn))
        if connection is None:
            connection = _Connection(server_conn, self._connections)
        connection.idle = True  # waiting for this request's first byte
        request = _TrackedRequest(self, connection, request_conn)
        request.delegate = self.application.start_request(server_conn, request.connection)
        return request

    def close_an_idle_connection(self) -> bool:
        """Close a connection that waits for a request, to make room for a new client (see
        server/http/connection_limits.py); False when every connection has a request in flight.

        The oldest one that has not sent a complete request yet goes first (idle since its
        connect, or trickling its headers: what a flood of connections looks like), then the
        oldest kept-alive one, whose client reconnects as after ``client_timeout``.
        """
        kept_alive = None
        for connection in list(self._connections.values()):  # oldest first
            server_conn = connection.get()
            if server_conn is None or not connection.idle or server_conn.stream.closed():
                continue
            if not connection.served:
                _close(server_conn)
                return True
            kept_alive = kept_alive or server_conn
        if kept_alive is not None:
            _close(kept_alive)
        return kept_alive is not None

    def _live(self) -> list:
        """The connections still open (or closing)."""
        found = (connection.get() for connection in list(self._connections.values()))
        return [server_conn for server_conn in found if server_conn is not None]

    async def drain(self, grace: float, hurry: asyncio.Event | None = None) -> int:
        """Let accepted requests finish, for at most ``grace`` seconds (less if ``hurry`` is set).

        Returns how many requests were still in flight when the time ran out (0 normally).
        """
        self.draining = True
        for connection in list(self._connections.values()):
            server_conn = connection.get()
            if server_conn is not None and connection.idle:
                _close(server_conn)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._busy() and loop.time() < deadline and not (hurry and hurry.is_set()):
            await asyncio.sleep(_POLL)
        return self.in_flight

    async def settle(self, timeout: float) -> int:
        """Wait up to ``timeout`` for requests to end (after their pools were closed under
        them, those cut off end at once, with an error); how many are still running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(_POLL)
        return self.in_flight

    def _busy(self) -> bool:
        # Answers given with Connection: close are flushed before Tornado closes their stream:
        # wait for that too, so that no answer is cut short by the final close.
        return self.in_flight > 0 or any(not c.stream.closed() for c in self._live())


def _close(server_conn) -> None:
    # HTTP1ServerConnection.close() is a coroutine that waits for its serving loop to end;
    # closing the stream is what matters, and the loop then ends by itself.
    server_conn.stream.close()


class _Connection:
    """One client connection, as the tracker knows it: waiting for a request, or not, and
    whether it ever sent one."""

    __slots__ = ("get", "idle", "served")

    def __init__(self, server_conn, registry: dict):
        key = id(server_conn)
        # get() returns the connection, or None once it is gone (then it leaves the registry).
        self.get = weakref.ref(server_conn, lambda _: registry.pop(key, None))
        self.idle = True
        self.served = False  # a request has been accepted on it
        registry[key] = self


class _TrackedRequest(httputil.HTTPMessageDelegate):
    """One request on one connection: the application's message delegate, counted.

    It points to its :class:`_TrackedConnection` and not the other way round: a reference
    cycle between the two would keep each request's whole object graph (handler, headers,
    futures, Tornado's connection) alive until the garbage collector's next pass, and those
    passes, over every object of the process, are what made the tail latency.
    """

    def __init__(self, tracker: RequestTracker, connection: _Connection, request_conn):
        self.tracker = tracker
        self.client = connection
        self.connection = _TrackedConnection(tracker, request_conn)
        self.delegate: httputil.HTTPMessageDelegate | None = None
        self.dropped = False

    def headers_received(self, start_line, headers):
        tracker = self.tracker
        if tracker.draining and self.client.get().stream.closed():
            # Read off the socket an instant before drain() closed the connection as idle:
            # nobody could receive its answer, so it is not accepted, and nothing of it runs.
            # To its client it is a request the server never read, which is safe to retry.
            self.dropped = True
            return None
        self.connection.in_flight = True
        self.client.idle = False
        self.client.served = True
        tracker.in_flight += 1
        tracker.accepted += 1
        prepared = self.delegate.headers_received(start_line, headers)
        # (get_list: a missing header costs no KeyError, unlike `in` or get())
        if not headers.get_list("Content-Length") and not headers.get_list("Transfer-Encoding"):
            # No body follows (RFC 9112, 6.3): Tornado need not wait for prepare() before it
            # ends the request's reading; prepare() and the method still run in order.
            return None
        return prepared

    def data_received(self, chunk):
        if not self.dropped:
            return self.delegate.data_received(chunk)
        return None

    def finish(self) -> None:
        # The request has been read; the answer comes later, through connection.finish().
        if not self.dropped:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.dropped:
            return
        try:
            self.delegate.on_connection_close()
        finally:
            self.connection.done()


class _TrackedConnection:
    """The request's ``HTTPConnection`` as the application sees it: marks the answer's end.

    While draining, answers say ``Connection: close`` and Tornado closes the connection once
    the answer is written, so that kept-alive clients reconnect to another instance.
    """

    def __init__(self, tracker: RequestTracker, connection):
        self._tracker = tracker
        self._connection = connection
        self.in_flight = False  # accepted and not yet answered (or cut off)
        # What Tornado uses of every request's connection, bound once instead of found
        # through __getattr__ on each use.
        self.context = connection.context
        self.set_close_callback = connection.set_close_callback
        self.write = connection.write

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def write_headers(self, start_line, headers, chunk=None):
        if self._tracker.draining:
            tornado_compat.close_after_answer(self._connection)
        return self._connection.write_headers(start_line, headers, chunk)

    def finish(self) -> None:
        try:
            self._connection.finish()
        finally:
            self.done()

    def done(self) -> None:
        if self.in_flight:
            self.in_flight = False
            self._tracker.in_flight -= 1
