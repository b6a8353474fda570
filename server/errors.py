"""The one error type that reaches clients.

Every failure a client can see is an :class:`ApiError`; the base handler renders it as
``{"error": code, "message": text}`` with its status. Anything else is a bug and becomes a
500 ``internal_error`` without a stack trace. ``ApiError`` is a Tornado ``HTTPError`` so that
Tornado's handler life cycle answers with its status.
"""

from tornado.web import HTTPError


class ApiError(HTTPError):
    """A client-visible error: HTTP status, machine-readable code, human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(status)
        self.code = code
        self.message = message
        self.headers = headers or {}

    @property
    def status(self) -> int:
        """The HTTP status (Tornado's ``status_code``, under the name this project uses)."""
        return self.status_code

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class StoreUnavailable(ApiError):
    """The session store cannot be reached (or did not answer in time)."""

    def __init__(self, message: str = "the session store is unreachable, try again shortly"):
        super().__init__(503, "store_unavailable", message, {"Retry-After": "2"})
