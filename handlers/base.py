"""The base of every minisession handler: JSON errors, lenient body parsing, session intake."""

import json
import logging
from urllib.parse import parse_qs

import tornado.web

from server.cookies import cookie_values, header_values, session_cookie
from server.errors import ApiError

log = logging.getLogger("minisession.http")

# Standard Tornado errors (raised before our code runs) keep a stable machine code.
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class ApiHandler(tornado.web.RequestHandler):
    """JSON in, JSON out; every error is ``{"error": code, "message": text}``.

    The shared state (config, session service, store) is in ``self.application.ctx``.
    """

    @property
    def ctx(self):
        return self.application.ctx

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        # Answers carry session ids and user data: no cache may keep them.
        self.set_header("Cache-Control", "no-store")

    def compute_etag(self) -> None:
        # No ETag, so no 304: session answers are never served from a validator.
        return None

    def write_json(self, payload: dict, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
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
                    "message": self._reason}
        else:
            body = {"error": "internal_error", "message": "internal server error"}
        # Errors must not leave a half-made session cookie behind.
        self.clear_header("Set-Cookie")
        self.finish(json.dumps(body, ensure_ascii=False, separators=(",", ":")))

    def _allowed_methods(self) -> list[str]:
        return [m for m in self.SUPPORTED_METHODS
                if getattr(type(self), m.lower()) is not getattr(tornado.web.RequestHandler,
                                                                 m.lower())]

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, ApiError):
            # Client errors are answers, not incidents; 5xx ones are logged (no traceback).
            if value.status >= 500:
                log.warning("%s %s -> %d %s", self.request.method, self.request.path,
                            value.status, value.code)
            return
        super().log_exception(typ, value, tb)

    # -- input -----------------------------------------------------------------------------

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
        session = self.ctx.config.session
        headers = self.request.headers
        return (header_values(headers.get_list(session.header_name), session.cookie_name)
                + cookie_values(headers.get_list("Cookie"), session.cookie_name))

    async def current_session(self):
        """The live session of this request, or a 401 ApiError."""
        return await self.ctx.service.authenticate(self.session_candidates())

    # -- output ----------------------------------------------------------------------------

    def send_session_id(self, token: str, max_age: int) -> None:
        """Hand the id back both ways clients read it: one Set-Cookie and X-Session."""
        session = self.ctx.config.session
        self.set_header("Set-Cookie", session_cookie(
            session.cookie_name, token, max_age,
            secure=session.cookie_secure, samesite=session.cookie_samesite))
        self.set_header(session.header_name, token)

    def clear_session_cookie(self) -> None:
        session = self.ctx.config.session
        self.set_header("Set-Cookie", session_cookie(
            session.cookie_name, "", 0,
            secure=session.cookie_secure, samesite=session.cookie_samesite))


class NotFoundHandler(ApiHandler):
    """Any path we do not serve."""

    def prepare(self) -> None:
        raise ApiError(404, "not_found", f"nothing here: {self.request.path[:100]}")
