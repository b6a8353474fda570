"""Tornado's ``HTTPServer`` as ``minisession serve`` runs it, for ``serve`` and the tests alike.

The configured limits (``server.max_body_size``, ``server.max_header_size``) are enforced by
``handlers.base.ApiHandler``, which sees the request line and headers before any body byte and
can answer ``413``/``431`` with a JSON error. Tornado's own limits sit above them as a hard
backstop: past those, Tornado drops the connection (headers) or answers a bare ``400`` before
our code runs, so they only matter if something slipped past the handler.

``server.client_timeout`` bounds slow clients (slowloris): a client gets that long to send its
request line and headers (which is also how long an idle keep-alive connection stays open),
and that long again for its body. Then the connection is closed without an answer.

``server.max_connections`` caps the connections one process holds; see
``server.http.connection_limits`` for what happens at the cap and when file descriptors run out.
"""

from server.config import Config
from server.http.connection_limits import CappedHTTPServer
from server.http.draining import RequestTracker

#: How far above the configured body limit Tornado itself stops reading. Chunked bodies are
#: counted by the handler chunk by chunk, so a chunk that declares more than this margin gets
#: Tornado's bare 400 instead of our 413.
BODY_BACKSTOP_MARGIN = 1 << 20
#: Tornado drops a connection whose header block exceeds this many times the configured limit;
#: in between, the handler answers 431.
HEADER_BACKSTOP_FACTOR = 2
#: Tornado reads a body in pieces of this size (its default), so at most one piece is ever
#: held beyond the configured limit.
CHUNK_SIZE = 64 * 1024


def hard_body_limit(config: Config) -> int:
    # A gateway route may accept larger bodies than minisession's own endpoints.
    largest = max([config.server.max_body_size,
                   *(route.max_body for route in config.gateway.routes)])
    return largest + BODY_BACKSTOP_MARGIN


def hard_header_limit(config: Config) -> int:
    return config.server.max_header_size * HEADER_BACKSTOP_FACTOR


def http_server_options(config: Config) -> dict:
    """Keyword arguments for ``tornado.httpserver.HTTPServer(app, **options)``."""
    timeout = config.server.client_timeout
    return {
        "max_body_size": hard_body_limit(config),
        "max_header_size": hard_header_limit(config),
        # One request's headers plus a few body pieces: far below Tornado's 100 MB default.
        "max_buffer_size": hard_header_limit(config) + 4 * CHUNK_SIZE,
        "chunk_size": CHUNK_SIZE,
        "idle_connection_timeout": timeout,
        "body_timeout": timeout,
        # X-Forwarded-For/X-Real-Ip are client-controlled unless a proxy we trust set them;
        # the request's address is the socket peer's.
        "xheaders": False,
        # Bodies are read as sent: a gzip body could expand far past max_body_size.
        "decompress_request": False,
    }


def make_http_server(application, config: Config, max_connections: int | None = None,
                     ) -> tuple[CappedHTTPServer, RequestTracker]:
    """The application behind a :class:`RequestTracker` (graceful shutdown), with the options
    above, holding at most ``max_connections`` (default ``server.max_connections``) connections
    (server/http/connection_limits.py): the server ``minisession serve`` runs, and the one every
    test server should be."""
    tracker = RequestTracker(application)
    server = CappedHTTPServer(
        tracker, max_connections=max_connections or config.server.max_connections,
        make_room=tracker.close_an_idle_connection, **http_server_options(config))
    return server, tracker
