"""How many connections a process holds, and what it does when it cannot take one more.

Tornado's accept loop (``tornado.netutil.add_accept_handler``, 6.5) has no cap, and when
``accept()`` fails for want of a file descriptor (EMFILE) it lets the error escape: the
listening socket stays readable, so the event loop calls it again at once, for ever, logging a
traceback each time (measured: 200 idle connections against RLIMIT_NOFILE = 128 burned 2.7 to
3.7 CPU seconds and wrote 8 to 12 MB of log in 5 s). :class:`CappedHTTPServer` replaces that loop:

- at ``server.max_connections`` open connections it stops accepting. New connections wait in
  the kernel's backlog rather than being accepted and closed: a client that waits is served as
  soon as there is room, and with pre-forked workers (which share the listening socket) another
  worker may take it meanwhile. To make room, it closes the oldest connection that waits for a
  request, preferring one that has sent no complete request yet (a flood) to an idle
  keep-alive one; a connection with a request in flight is never closed. So a health check
  gets through even when idle connections fill the cap; when every connection is busy, it
  waits for one to finish.
- when ``accept()`` fails with EMFILE/ENFILE (descriptors taken by something else: the
  store's pool, a low limit), it makes room the same way and stops reading the listening socket
  for :data:`BACKOFF` seconds (or until a connection closes), instead of spinning.
- either event is logged once per :data:`LOG_INTERVAL`, with how many times it happened since.

At start (:func:`raise_fd_limit`) the soft RLIMIT_NOFILE is raised to the hard one, and
:func:`connection_cap` keeps the cap below it, leaving descriptors for everything else.
"""

import errno
import logging
import resource
import socket
import time
from collections.abc import Callable

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from server.http import tornado_compat

log = logging.getLogger("minisession")

#: accept() errors that mean "no descriptor or buffer for a new socket now".
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Seconds without accepting after running out of descriptors, or at the cap with no idle
#: connection to close (then it looks again).
BACKOFF = 0.5
#: At most one warning of each kind per this many seconds.
LOG_INTERVAL = 60.0
#: File descriptors kept for what is not a client connection: the listening socket, the
#: store's connection pool, WeChat calls, log files.
FD_HEADROOM = 64
#: Connections accepted in one go before other events get a turn (Tornado's own figure).
ACCEPT_BATCH = 128
#: Where the soft limit goes when the hard one is unlimited (Linux's default fs.nr_open).
UNLIMITED_TARGET = 1 << 20


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one (as far as allowed); the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass  # not allowed higher: keep what we have
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else soft


def connection_cap(max_connections: int, fd_limit: int) -> int:
    """``server.max_connections``, lowered (with a warning) to leave :data:`FD_HEADROOM`
    descriptors of ``fd_limit`` for the rest (half of them, for a very low limit)."""
    room = max(fd_limit - FD_HEADROOM, fd_limit // 2, 1)
    if max_connections <= room:
        return max_connections
    log.warning("server.max_connections = %d, but this process may open only %d file "
                "descriptors (RLIMIT_NOFILE; raise it with ulimit -n or LimitNOFILE): "
                "holding at most %d connections", max_connections, fd_limit, room)
    return room


class _Throttled:
    """A warning logged at most once per :data:`LOG_INTERVAL`, counting the ones held back."""

    def __init__(self, message: str):
        self.message = message
        self.next_at = 0.0
        self.held_back = 0

    def warn(self, *args) -> None:
        now = time.monotonic()
        if now < self.next_at:
            self.held_back += 1
            return
        suffix = f" ({self.held_back} more times since the last warning)" if self.held_back else ""
        log.warning(self.message + suffix, *args)
        self.next_at, self.held_back = now + LOG_INTERVAL, 0


class CappedHTTPServer(HTTPServer):
    """Tornado's ``HTTPServer`` with the accept loop described above.

    ``make_room()`` closes one connection that waits for a request and says whether it found
    one (``RequestTracker.close_an_idle_connection``).
    """

    def initialize(self, *args, max_connections: int,
                   make_room: Callable[[], bool] = lambda: False, **kwargs) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self.open_connections = 0
        self.make_room = make_room
        self._acceptors: list[_Acceptor] = []
        self.at_cap = _Throttled(
            "connection limit reached (server.max_connections = %d): closing connections "
            "that wait for a request to make room, or waiting for one to finish")
        self.out_of_fds = _Throttled(
            "out of file descriptors (%s) with %d connections open: not accepting "
            "connections for %.1f s")

    def add_sockets(self, sockets) -> None:
        for sock in sockets:
            acceptor = _Acceptor(self, sock)
            self._acceptors.append(acceptor)
            tornado_compat.register_listening_socket(self, sock, acceptor.remove)

    def handle_stream(self, stream, address) -> None:
        self.open_connections += 1
        tornado_compat.keep_nodelay(stream)
        super().handle_stream(stream, address)

    def on_close(self, server_conn) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)
        for acceptor in self._acceptors:
            acceptor.resume()  # a descriptor and a place are free: try again now


class _Acceptor:
    """Accepts connections from one listening socket for a :class:`CappedHTTPServer`."""

    def __init__(self, server: CappedHTTPServer, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.loop = IOLoop.current()
        self.reading = False
        self.removed = False
        self.timer = None
        self._read()

    def _read(self) -> None:
        self.loop.add_handler(self.sock, self._accept, IOLoop.READ)
        self.reading = True

    def _pause(self) -> None:
        """Stop reading the listening socket for BACKOFF seconds (or until resume())."""
        if self.reading:
            self.loop.remove_handler(self.sock)
            self.reading = False
        if self.timer is None:
            self.timer = self.loop.call_later(BACKOFF, self.resume)

    def resume(self) -> None:
        if self.removed or self.reading:
            return
        if self.timer is not None:
            self.loop.remove_timeout(self.timer)
            self.timer = None
        self._read()

    def remove(self) -> None:
        self.removed = True
        if self.reading:
            self.loop.remove_handler(self.sock)
            self.reading = False
        if self.timer is not None:
            self.loop.remove_timeout(self.timer)
            self.timer = None

    def _accept(self, fd, events) -> None:
        server = self.server
        for _ in range(ACCEPT_BATCH):
            if self.removed:
                return  # stopped by a connection's callback
            if server.open_connections >= server.max_connections:
                server.at_cap.warn(server.max_connections)
                self._make_room()
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return  # no one is waiting
            except ConnectionAbortedError:
                continue  # gone while in the backlog
            except OSError as err:
                if err.errno not in OUT_OF_DESCRIPTORS:
                    raise
                server.out_of_fds.warn(errno.errorcode[err.errno], server.open_connections,
                                       BACKOFF)
                self._make_room()
                return
            tornado_compat.serve_connection(server, connection, address)

    def _make_room(self) -> None:
        """Stop accepting; resume when a connection closes, or after BACKOFF."""
        self._pause()
        # On the next pass of the loop: the connections just accepted start serving (and so
        # become known as idle) on that pass, before this runs. Chosen now, the room would be
        # made by closing an older connection instead of one of them.
        self.loop.add_callback(self.server.make_room)
