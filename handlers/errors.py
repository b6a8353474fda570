"""Domain errors as clients see them: the one place that gives each an HTTP status.

Everything below ``handlers/`` raises :mod:`server.errors` exceptions, which know nothing of
HTTP; :func:`api_error` turns any of them into an :class:`ApiError` (status, code, message,
headers), which ``handlers.base.ApiHandler`` renders as ``{"error": code, "message": text}``.
"""

from server.errors import (
    AccessTokenUnsupported,
    AppNotAllowed,
    AppRequired,
    DataTooLarge,
    DomainError,
    InvalidInput,
    NotAuthenticated,
    RateLimited,
    SessionKeyProblem,
    StoreUnavailable,
    UnknownApp,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from server.platforms import ProviderError

__all__ = ["ApiError", "api_error"]


class ApiError(DomainError):
    """An error already in the client's terms: status, code, message, headers.

    For the handlers' own HTTP checks (framing, API keys, unknown paths), and what
    :func:`api_error` makes of every domain error.
    """

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        self.status = status
        self.code = code
        self.headers = headers or {}
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


#: Status of each kind of domain error (the first class in the exception's MRO found here).
_STATUS: dict[type, int] = {
    NotAuthenticated: 401,
    InvalidInput: 400,
    DataTooLarge: 413,
    UnknownApp: 404,
    AppRequired: 404,
    RateLimited: 429,
    SessionKeyProblem: 409,
    AccessTokenUnsupported: 409,
    StoreUnavailable: 503,
    UpstreamUnavailable: 502,
    UpstreamTimeout: 504,
    AppNotAllowed: 403,
}
#: What a client sees when its platform did not log it in: ProviderError.code -> (status, the
#: Retry-After to send when the platform named no wait).
_PROVIDER_STATUS = {
    "code_invalid": (400, None),
    "user_blocked": (403, None),
    "platform_rate_limited": (429, 60),
    "platform_busy": (503, 1),
    "platform_unavailable": (502, None),
    "platform_timeout": (504, None),
    "platform_misconfigured": (502, None),
    "platform_error": (502, None),
}
#: Seconds a client should wait before retrying after a store outage.
STORE_RETRY_AFTER = 2


def api_error(exc: DomainError) -> ApiError:
    """``exc`` in the client's terms."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ProviderError):
        status, default_wait = _PROVIDER_STATUS[exc.code]
        wait = exc.retry_after or default_wait
        return ApiError(status, exc.code, exc.message, {"Retry-After": str(wait)} if wait else None)
    status = next((_STATUS[cls] for cls in type(exc).__mro__ if cls in _STATUS), 500)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, StoreUnavailable):
        headers["Retry-After"] = str(STORE_RETRY_AFTER)
    return ApiError(status, exc.code, exc.message, headers)
