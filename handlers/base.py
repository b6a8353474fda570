"""The base of every minisession handler: JSON errors, lenient body parsing, session intake.

Request size limits are enforced here, where a JSON answer is still possible: the handler
streams its body (``stream_request_body``), so it sees the request line and headers before any
body byte. Too large a request is answered at once (``413``/``414``/``431``, or ``400`` for
ambiguous framing), before its body is read, and Tornado then closes the connection rather than
reading the rest. A chunked body is counted as it arrives and never held beyond the limit.
Tornado's own, higher limits (``server.http.httpserver``) remain as a backstop.
"""

import json
import logging
import re
import time
from urllib.parse import parse_qs

import orjson
import tornado.web
from tornado import httputil

from server.cookies import cookie_values, header_values, session_cookie
from handlers.errors import ApiError, api_error
from server.errors import DomainError
from server.http import tornado_compat
from server.platforms import ProviderError

log = logging.getLogger("minisession.http")

# Standard Tornado errors (raised before our code runs) keep a stable machine code.
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
# Tornado's own rule: a Content-Length is digits only; identical repeats ("5, 5") are tolerated.
_CONTENT_LENGTH = re.compile(r"[0-9]+(?:,\s*[0-9]+)*")


# For what orjson refuses: json.dumps() with options builds a new encoder on each call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_body(payload: dict) -> bytes | str:
    """An answer's body: compact JSON, UTF-8, non-ASCII characters as they are.

    Written by orjson, whose compiled encoder does the json module's work in a fraction of its
    instructions (2.3 % of those of a GET /session; bench: instructions). Both write the same
    text, but for the spelling of some floats (``1e-8`` where json writes ``1e-08``: the same
    number). What orjson refuses (integers beyond 64 bits, lone surrogates: never in what the
    server stores) is written by the json module.
    """
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError
        return _JSON.encode(payload)


_date: list = [None, ""]  # [second, its Date header value]


def http_date() -> str:
    """The Date header's value now (Tornado's format), made once a second."""
    now = int(time.time())
    if now != _date[0]:
        _date[:] = [now, httputil.format_timestamp(now)]
    return _date[1]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _bad_framing(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


@tornado_compat.summarize_requests_with("request_summary")
@tornado.web.stream_request_body
class ApiHandler(tornado.web.RequestHandler):
    """JSON in, JSON out; every error is ``{"error": code, "message": text}``.

    The shared state (config, session service, store) is in ``self.application.ctx``.
    ``self.request.body`` is complete when the HTTP method runs, as with a non-streaming
    handler. A subclass that overrides ``prepare()`` must call ``super().prepare()``.
    """

    # Set when the whole body has been read; until then an answer ends the connection.
    _body_read = False
    #: The app this request turned out to be for, logged with it (never the openid).
    log_app: str | None = None

    @property
    def ctx(self):
        return self.application.ctx

    def clear(self) -> None:
        # Tornado's clear() (it starts every answer, errors included), with this server's
        # headers set at once: Tornado's formats the Date anew for each answer, and adds a
        # Server header only for us to remove it (about 4 % of the instructions of a
        # GET /session; bench: instructions).
        tornado_compat.reset_answer(self, {
            "Content-Type": "application/json; charset=UTF-8",
            "Date": http_date(),
            # Answers carry session ids and user data: no cache may keep them.
            "Cache-Control": "no-store",
            # A browser or web-view must not read an answer as anything but the JSON it is.
            # And no "Server: TornadoServer/6.5.2": no software name and version for scanners.
            "X-Content-Type-Options": "nosniff",
        })
        self.set_default_headers()

    def compute_etag(self) -> None:
        # No ETag, so no 304: session answers are never served from a validator.
        return None

    def write_json(self, payload: dict, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json_body(payload))

    # -- request size limits -----------------------------------------------------------------

    def prepare(self) -> None:
        self._body_parts: list[bytes] = []
        self._body_size = 0
        self._check_head()
        self._check_framing()
        # Without a body (most requests) the body is read already: done at once then, rather
        # than in a callback of the next loop pass.
        body = tornado_compat.body_future(self.request)
        if body.done():
            self._body_complete(body)
        else:
            body.add_done_callback(self._body_complete)

    def _check_head(self) -> None:
        request, limit = self.request, self.ctx.config.server.max_header_size
        request_line = len(request.method) + len(request.uri) + len(request.version) + 4
        if request_line > limit:
            raise ApiError(414, "uri_too_long", f"the request line is longer than {limit} bytes")
        # The header block as sent, give or take optional whitespace.
        size = request_line + 2 + sum(len(name) + len(value) + 4
                                      for name, value in request.headers.get_all())
        if size > limit:
            raise ApiError(431, "headers_too_large",
                           f"the request line and headers are larger than {limit} bytes")

    def _check_framing(self) -> None:
        """Refuse bodies whose length is ambiguous (request smuggling) or over the limit.

        Tornado would refuse the ambiguous ones too, but only with a bare 400 and after our
        answer could be given.
        """
        headers = self.request.headers
        # What get() returns (repeats joined), without the KeyError get() raises inside when a
        # header is missing (most requests carry neither).
        lengths, encodings = headers.get_list("Content-Length"), headers.get_list("Transfer-Encoding")
        length = ",".join(lengths) if lengths else None
        encoding = ",".join(encodings) if encodings else None
        if encoding is not None:
            if self.request.version == "HTTP/1.0":
                # RFC 9112, 6.1: the framing of such a message is faulty: refuse it and close,
                # so that nothing sent after it on the connection is read as a request. Its
                # keep-alive wish is void: without this, Tornado would answer "Keep-Alive".
                headers["Connection"] = "close"
                raise _bad_framing("Transfer-Encoding is not allowed in an HTTP/1.0 request")
            if length is not None:
                raise _bad_framing("Transfer-Encoding and Content-Length must not be combined")
            if encoding.strip().lower() != "chunked":
                raise _bad_framing("the only Transfer-Encoding accepted is chunked")
        if length is None:
            return
        values = set(re.split(r",\s*", length))
        if not _CONTENT_LENGTH.fullmatch(length) or len(values) != 1:
            raise _bad_framing("Content-Length must be a single whole number")
        if int(values.pop()) > self.body_limit():
            raise self._too_large()

    def body_limit(self) -> int:
        """The largest request body accepted (bytes)."""
        return self.ctx.config.server.max_body_size

    def _too_large(self) -> ApiError:
        limit = self.body_limit()
        return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")

    def data_received(self, chunk: bytes) -> None:
        if tornado_compat.answer_finished(self):
            return  # already answered (body too large); Tornado discards the rest
        self._body_size += len(chunk)
        if self._body_size > self.body_limit():
            self._body_parts.clear()
            error = self._too_large()
            # Not raised: Tornado would drop the connection without an answer.
            self.send_error(error.status, exc_info=(type(error), error, None))
            return
        self._body_parts.append(chunk)

    def _body_complete(self, future) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # the client went away mid-body
        self._body_read = True
        self.request.body = b"".join(self._body_parts)
        self._body_parts.clear()

    # -- output of errors ------------------------------------------------------------------

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        # Tornado answers 500 to any exception but its own HTTPError: a domain error gets the
        # status handlers/errors.py gives it.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DomainError):
            error = api_error(exc)
            kwargs["exc_info"] = (type(error), error, None)
            status_code = error.status
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if not self._body_read:
            # Answered before the body was read: Tornado closes the connection after this.
            self.set_header("Connection", "close")
        if isinstance(exc, ApiError):
            for name, value in exc.headers.items():
                self.set_header(name, value)
            body = {"error": exc.code, "message": exc.message}
        elif status_code == 405:
            self.set_header("Allow", ", ".join(self._allowed_methods()))
            body = {"error": "method_not_allowed",
                    "message": f"{self.request.method} is not allowed on {self.request.path}"}
        elif status_code < 500:
            body = {"error": _HTTP_CODES.get(status_code, "bad_request"),
                    "message": tornado_compat.reason_phrase(self)}
        else:
            body = {"error": "internal_error", "message": "internal server error"}
        # Errors must not leave a half-made session cookie behind.
        self.clear_header("Set-Cookie")
        self.finish(json_body(body))

    def _allowed_methods(self) -> list[str]:
        return [m for m in self.SUPPORTED_METHODS
                if getattr(type(self), m.lower()) is not getattr(tornado.web.RequestHandler,
                                                                 m.lower())]

    def request_summary(self) -> str:
        # Tornado puts this in its warnings ("400 GET /login?code=%ff ..."); like the access
        # log, the route only: no query string (a login code), no path argument (an openid).
        return f"{self.request.method} {loggable_route(self)} ({self.request.remote_ip})"

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, ProviderError) and value.code == "platform_misconfigured":
            # Only the operator can fix this: name the app (never its credentials).
            log.warning("%s %s: the platform refused app %r's credentials; check its "
                        "appid, secret and keys", self.request.method, loggable_route(self),
                        value.app)
            return
        if isinstance(value, DomainError):
            # Client errors are answers, not incidents; 5xx ones are logged (no traceback).
            value = api_error(value)
            if value.status >= 500:
                log.warning("%s %s -> %d %s", self.request.method, loggable_route(self),
                            value.status, value.code)
            return
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)  # with request_summary(): no query string
            return
        # Not Tornado's "Uncaught exception" line, which also prints the request's URI with its
        # query string, where a login code may be.
        log.error("uncaught exception in %s", self.request_summary(), exc_info=(typ, value, tb))

    # -- input -----------------------------------------------------------------------------

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            # Not Tornado's HTTPError, whose message (logged) quotes the value: maybe a code.
            raise ApiError(400, "bad_request",
                           f"{name or 'the path'} is not valid UTF-8") from None

    def json_object(self) -> dict:
        """The body as a JSON object, whatever Content-Type the client claimed.

        Many mini-program helpers send ``application/x-www-form-urlencoded`` on JSON APIs.
        """
        try:
            value = json.loads(self.request.body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ApiError(400, "invalid_json", "the body must be a JSON object") from None
        if not isinstance(value, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        return value

    def body_field(self, name: str):
        """A field from a JSON object body or a form body, whichever the body is."""
        body = self.request.body
        if not body.strip():
            return None
        if body.lstrip()[:1] in (b"{", b"["):
            return self.json_object().get(name)
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "invalid_body",
                           "the body must be JSON or application/x-www-form-urlencoded") from None
        values = form.get(name)
        return values[0] if values else None

    def session_candidates(self) -> list[str]:
        """Session tokens this request carries: the session header first, then cookies."""
        return session_candidates(self.request.headers, self.ctx.config.session)

    async def current_session(self, refresh_cookie: bool = True):
        """The live session of this request; raises NotAuthenticated (401) if none.

        When this request slid the session's expiry, the answer carries the cookie again with
        the new lifetime: clients with a cookie jar (browsers, weapp-cookie) drop a cookie when
        its Max-Age runs out, and must keep it exactly as long as the session lives. An error
        answer drops it again (``write_error``). ``refresh_cookie=False``: never a cookie
        (``/auth``, whose answer a proxy reads, not the client).
        """
        session = await self.ctx.service.authenticate(self.session_candidates())
        self.log_app = session.app  # for the access log (server/app.py)
        if session.slid and refresh_cookie:
            self.set_session_cookie(session.token, self.seconds_left(session))
        return session

    def seconds_left(self, session) -> int:
        """The session's remaining lifetime, as the cookie's Max-Age."""
        return round(session.record.expires_at - self.ctx.service.clock.now())

    # -- output ----------------------------------------------------------------------------

    def send_session_id(self, token: str, max_age: int) -> None:
        """Hand the id back both ways clients read it: one Set-Cookie and X-Session."""
        self.set_session_cookie(token, max_age)
        self.set_header(self.ctx.config.session.header_name, token)

    def set_session_cookie(self, token: str, max_age: int) -> None:
        """The one Set-Cookie of the answer (set_header: a later call replaces it)."""
        session = self.ctx.config.session
        self.set_header("Set-Cookie", session_cookie(
            session.cookie_name, token, max_age,
            secure=session.cookie_secure, samesite=session.cookie_samesite))

    def clear_session_cookie(self) -> None:
        self.set_session_cookie("", 0)


def session_candidates(headers, session_config) -> list[str]:
    """Session tokens in these request headers: the session header first, then cookies."""
    return (header_values(headers.get_list(session_config.header_name),
                          session_config.cookie_name)
            + cookie_values(headers.get_list("Cookie"), session_config.cookie_name))


def loggable_route(handler: tornado.web.RequestHandler) -> str:
    """The route a request took, as log lines name it: never what the client put in the URL.

    An unknown path is ``(no route)`` (a client may have pasted its id in it); a route's
    arguments are ``{}`` (``/admin/apps/{}/bindings/{}``: an app and an openid); no query string.
    """
    if isinstance(handler, NotFoundHandler):
        return "(no route)"
    # None until Tornado has matched the route (an error while reading the body comes first).
    arguments = len(handler.path_args or ()) + len(handler.path_kwargs or {})
    if not arguments:
        return handler.request.path
    templates = handler.settings.get("route_templates", {})
    return templates.get((type(handler), arguments), f"({type(handler).__name__})")


class NotFoundHandler(ApiHandler):
    """Any path we do not serve."""

    def prepare(self) -> None:
        super().prepare()
        raise ApiError(404, "not_found", f"nothing here: {self.request.path[:100]}")
