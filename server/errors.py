"""What can go wrong, in the domain's words: no HTTP, no Tornado.

The service, the stores and the login providers raise these; the handler layer alone turns them
into a status and ``{"error": code, "message": text}`` (:mod:`handlers.errors`). ``code`` is the
machine code clients see; ``message`` is for people and never holds an id, code, key or user
data.
"""


class DomainError(Exception):
    """A failure a client can be told about: a machine ``code`` and a human ``message``."""

    code = "error"
    default_message = "the request failed"

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# -- sessions -------------------------------------------------------------------------------

class NotAuthenticated(DomainError):
    """The request proves no live session (the three kinds below)."""


class NoSession(NotAuthenticated):
    code = "no_session"
    default_message = "no session id was sent: log in first"


class SessionInvalid(NotAuthenticated):
    code = "invalid_session"
    default_message = "the session id is not valid: log in again"


class SessionExpired(NotAuthenticated):
    code = "session_expired"
    default_message = "the session has expired: log in again"


# -- input ----------------------------------------------------------------------------------

class InvalidInput(DomainError):
    """A value the client sent cannot be used (``invalid_data``, ``missing_code``...)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class DataTooLarge(DomainError):
    """Session data would exceed its limit; ``size`` (bytes) when it is the byte limit."""

    code = "data_too_large"

    def __init__(self, size: int | None = None, message: str | None = None):
        self.size = size
        super().__init__(message or f"session data would be {size} bytes")


# -- apps and logins ------------------------------------------------------------------------

class UnknownApp(DomainError):
    code = "unknown_app"
    default_message = "no app of that name is served here"


class AppRequired(DomainError):
    code = "app_required"
    default_message = ("this server serves several apps and none is the default: name the app "
                       "(log in at /login/<app>; admin paths /admin/apps/<app>/...)")


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)


# -- the store ------------------------------------------------------------------------------

class StoreUnavailable(DomainError):
    """The session store cannot be reached (or did not answer in time)."""

    code = "store_unavailable"
    default_message = "the session store is unreachable, try again shortly"


# -- the platform's session_key ------------------------------------------------------------

class SessionKeyProblem(DomainError):
    """The session's platform session_key cannot serve this request (the kinds below)."""


class SessionKeyStale(SessionKeyProblem):
    code = "session_key_stale"
    default_message = ("the data does not open with the newest session_key of this user (the "
                       "client logged in again after getting it): log in again, then fetch the "
                       "data again and resend it")


class SessionKeyUnavailable(SessionKeyProblem):
    code = "session_key_unavailable"
    default_message = ("no platform session_key is held for this session (the platform has "
                       "none, or it was sealed with a key no longer configured)")


# -- the app's access_token -----------------------------------------------------------------

class AccessTokenUnsupported(DomainError):
    """The app's platform has no access_token this server can hold for it."""

    code = "not_supported"

    def __init__(self, app: str, platform: str):
        super().__init__(f"app {app} is on {platform}, whose access_token minisession does not "
                         f"hold (WeChat apps only)")
# -- the gateway's upstreams ---------------------------------------------------------------

class GatewayError(DomainError):
    """A gateway route's upstream did not answer (the kinds below)."""


class UpstreamUnavailable(GatewayError):
    code = "upstream_unavailable"
    default_message = "the backend behind this path cannot be reached"


class UpstreamTimeout(GatewayError):
    code = "upstream_timeout"
    default_message = "the backend behind this path did not answer in time"


class AppNotAllowed(DomainError):
    code = "app_not_allowed"
    default_message = "this path serves another app: a session of this app cannot use it"
