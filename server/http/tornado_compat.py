"""The only module that touches Tornado's private members, and the check that makes that safe.

minisession relies on a few things Tornado does not publish (a streaming handler's body future,
whether an answer is finished, a connection's close-after-answer flag, the accept loop's
registries...). Each one is used here only, behind a small named function, and only with a
Tornado version they were tested with (:data:`TESTED_VERSIONS`, the pin in setup.cfg): at start,
:func:`require_tested_tornado` refuses any other, naming both, rather than let a changed
internal break requests in ways no error message would explain.

An operator who must run another Tornado before minisession is released for it (a security
fix of Tornado, say) sets ``MINISESSION_ALLOW_UNTESTED_TORNADO`` to that exact version, after
running the test suite against it; the server then starts with a warning. The value names one
version, so that the next upgrade is checked again.
"""

import logging
import os
from collections.abc import Callable, Mapping

import tornado
from tornado import httputil

log = logging.getLogger("minisession")

#: The Tornado versions the uses below were tested with (the test suite checks the pin).
TESTED_VERSIONS = ("6.5.2",)
#: Lets one untested version start, with a warning: its value must be that exact version.
ALLOW_ENV = "MINISESSION_ALLOW_UNTESTED_TORNADO"


class UntestedTornado(RuntimeError):
    """The installed Tornado is not one minisession was tested with."""


def tornado_notice(installed: str | None = None,
                   environ: Mapping[str, str] | None = None) -> str | None:
    """None for a tested Tornado (the installed one by default); the warning to give when an
    untested one is allowed by :data:`ALLOW_ENV`; else :class:`UntestedTornado`."""
    installed = tornado.version if installed is None else installed
    environ = os.environ if environ is None else environ
    if installed in TESTED_VERSIONS:
        return None
    tested = ", ".join(TESTED_VERSIONS)
    if environ.get(ALLOW_ENV, "").strip() == installed:
        return (f"Tornado {installed} is installed, which minisession was not tested with "
                f"(tested: {tested}); starting anyway, as {ALLOW_ENV} allows")
    raise UntestedTornado(
        f"Tornado {installed} is installed, but minisession was tested with Tornado {tested} "
        f"only: it relies on Tornado internals (server/http/tornado_compat.py) that other "
        f"versions may change. Install tornado=={TESTED_VERSIONS[-1]}, or, once the test suite "
        f"passes with {installed}, set {ALLOW_ENV}={installed} to start anyway")


_warned = False


def require_tested_tornado() -> None:
    """At start: refuse an untested Tornado (:class:`UntestedTornado`), or warn once per
    process when :data:`ALLOW_ENV` allows it."""
    global _warned
    notice = tornado_notice()
    if notice and not _warned:
        _warned = True
        log.warning("%s", notice)


# -- RequestHandler and its request ----------------------------------------------------------


def body_future(request):
    """The future a streaming handler's request resolves once its whole body has been read,
    just before the HTTP method runs (done at once when there is no body)."""
    return request._body_future


def reset_answer(handler, headers: dict[str, str]) -> None:
    """What ``RequestHandler.clear()`` does, with ``headers`` (names in Tornado's canonical
    form, values known to be valid) as the answer's headers, before ``set_default_headers()``."""
    answer = httputil.HTTPHeaders.__new__(httputil.HTTPHeaders)  # its __init__ fills nothing
    answer._dict = dict(headers)
    answer._as_list = {name: [value] for name, value in headers.items()}
    answer._last_key = None
    handler._headers = answer
    handler._write_buffer = []
    handler._status_code = 200
    handler._reason = "OK"


def answer_finished(handler) -> bool:
    """Whether ``finish()`` has been called on the handler's answer."""
    return handler._finished


def headers_written(handler) -> bool:
    """Whether the answer's status line and headers have been sent (by a ``flush()``)."""
    return handler._headers_written


def reason_phrase(handler) -> str:
    """The reason phrase of the answer's status (an HTTPError's ``reason``, or the standard
    one), as ``set_status`` recorded it."""
    return handler._reason


def summarize_requests_with(method: str) -> Callable[[type], type]:
    """A class decorator: Tornado's own log lines about a request (warnings of ``send_error``,
    ``log_exception``) describe it with the handler's ``method()`` instead of its default,
    which quotes the URI with its query string."""

    def decorate(handler_class: type) -> type:
        handler_class._request_summary = lambda handler: getattr(handler, method)()
        return handler_class

    return decorate


# -- connections and the server ---------------------------------------------------------------


def keep_nodelay(stream) -> None:
    """Turn Nagle's algorithm off for the whole life of a server connection's ``IOStream``.

    ``HTTP1Connection`` switches ``TCP_NODELAY`` on for the last write of each answer and off
    again after it: two system calls per request. nginx (``tcp_nodelay on``) and Node.js's
    HTTP server (``noDelay``) keep it on for the connection instead; so does minisession, and
    the stream ignores the switching.
    """
    stream.set_nodelay(True)
    stream.set_nodelay = _ignore_nodelay


def _ignore_nodelay(value: bool) -> None:
    pass


def close_after_answer(connection) -> None:
    """Make an ``HTTP1Connection`` close once the answer being written is done; Tornado then
    adds ``Connection: close`` to an HTTP/1.1 answer itself."""
    connection._disconnect_on_finish = True


def register_listening_socket(server, sock, remove: Callable[[], None]) -> None:
    """Make ``server`` (a ``TCPServer`` that accepts on ``sock`` itself) own the socket:
    ``stop()`` then calls ``remove()`` and closes it."""
    server._sockets[sock.fileno()] = sock
    server._handlers[sock.fileno()] = remove


def serve_connection(server, connection, address) -> None:
    """Hand an accepted socket to ``server`` (a ``TCPServer``), as its own accept loop does."""
    server._handle_connection(connection, address)
