"""What every mini-program platform shares: an app's credentials, the identity a login yields,
the provider interface, the one error a provider raises, and the HTTP call with its failures.

A provider turns the one-time code a mini-program got from its platform (``wx.login()``,
``tt.login()``, ``my.getAuthCode()``...) into an :class:`Identity`, or raises a
:class:`ProviderError` whose generic ``code`` says what happened whatever the platform; the
handler layer maps that code to an HTTP status once. Nothing here knows HTTP servers or Tornado.

A code is never retried: it works once, and after a timeout the platform may already have
consumed it, so a retry could only fail as "code used". The client asks for a fresh code
instead. Request URLs and bodies carry the app secret and the code, answers carry the
session_key: none of them is ever put in a log line or an error message.
"""

import copy
import logging
from dataclasses import dataclass, field

import httpx

from server.errors import DomainError

log = logging.getLogger("minisession.platforms")

# httpx logs every request line, full URL included, at INFO ("HTTP Request: GET ...?secret=...
# &js_code=..."), and httpcore traces connections at DEBUG. Query strings hold the app secret
# and the user's login code, so both loggers only speak up for warnings.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

PLATFORMS = ("wechat", "qq", "douyin", "baidu", "kuaishou", "alipay", "dev")


@dataclass(frozen=True)
class AppCredentials:
    """One app on one platform, as configured: what its provider needs to call the platform.

    ``name`` is the app's key (``[apps.shop]`` -> ``"shop"``). ``api_base`` is the platform's
    production address or a fake (:mod:`server.fakes`); ``timeout`` (seconds) bounds each
    phase of a request. Alipay signs with ``private_key_pem`` (the app's RSA private key) and
    checks answers with ``platform_public_key_pem`` (Alipay's public key).
    """

    name: str
    platform: str
    appid: str = ""
    secret: str = field(default="", repr=False)
    api_base: str = ""
    timeout: float = 5.0
    private_key_pem: str | None = field(default=None, repr=False)
    platform_public_key_pem: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who logged in, as the platform tells it.

    ``session_key`` is the platform's secret for this user (None on Alipay, which has none): it
    stays on the server and is kept out of ``repr`` so that it cannot reach a log line by
    accident. ``unionid`` (WeChat, QQ, Douyin) names the person across the developer's apps.
    A Douyin user who is not logged in to Douyin has only an ``anonymous_openid``.
    """

    openid: str | None
    session_key: str | None = field(default=None, repr=False)
    unionid: str | None = None
    anonymous_openid: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.openid is None


class ProviderError(DomainError):
    """A login the platform did not turn into an identity.

    ``code`` is generic (one of :data:`CODES`), ``message`` is for humans and keeps the
    platform's own code ("WeChat errcode 40029: invalid code"), ``retry_after`` (seconds) is set
    when waiting helps, ``app`` names the app (set by :meth:`LoginProvider.exchange`).
    """

    CODES = frozenset({
        "code_invalid",            # the code is wrong, expired or already used: get a new one
        "user_blocked",            # the platform refuses this user (risk control)
        "platform_rate_limited",   # too many logins; retry_after says how long to wait
        "platform_busy",           # the platform says it is busy: retry shortly
        "platform_unavailable",    # cannot reach it, 5xx, or an answer we cannot read
        "platform_timeout",        # no answer in time
        "platform_misconfigured",  # wrong appid, secret or key: the operator must fix it
        "platform_error",          # anything else the platform refused
    })

    def __init__(self, code: str, message: str, retry_after: int | None = None):
        if code not in self.CODES:
            raise ValueError(f"unknown provider error code {code!r}")
        self.code = code
        super().__init__(message)
        self.retry_after = retry_after
        self.app: str | None = None


@dataclass(frozen=True)
class AccessTokenGrant:
    """An access_token as the platform gave it: valid for ``expires_in`` seconds from now."""

    value: str = field(repr=False)  # a credential
    expires_in: int


@dataclass(frozen=True)
class PhoneNumber:
    """A user's phone number as the platform verified it (WeChat's ``phone_info``)."""

    phone_number: str = field(repr=False)  # with the country code for numbers abroad
    pure_phone_number: str = field(repr=False)
    country_code: str

    def as_json(self) -> dict:
        """WeChat's own field names, as clients and backends know them."""
        return {"phoneNumber": self.phone_number, "purePhoneNumber": self.pure_phone_number,
                "countryCode": self.country_code}


class AccessTokenRejected(Exception):
    """The platform refused the app's access_token that a call carried (WeChat 40001 "not the
    latest", 40014 invalid, 42001 expired). The access-token service then expires that very
    token, if it is still the current one, and runs the call once more with a fresh token.
    The token is kept out of ``str``/``repr``: it is a credential."""

    def __init__(self, token: str, errcode: int):
        super().__init__(f"the platform refused the access_token (errcode {errcode})")
        self.token = token
        self.errcode = errcode


class LoginProvider:
    """Exchanges a login code for an :class:`Identity`; one instance per app.

    Subclasses implement ``_exchange``; ``exchange`` stamps errors with the app's name.
    """

    name = "abstract"
    #: Whether the platform also gives an anonymous login code (Douyin's ``anonymousCode``).
    takes_anonymous_code = False
    #: Whether the provider has ``fetch_access_token(force)`` (see server/access_tokens.py).
    supports_access_token = False

    def __init__(self, credentials: AppCredentials):
        self.credentials = credentials

    async def exchange(self, code: str | None, anonymous_code: str | None = None) -> Identity:
        try:
            return await self._exchange(code, anonymous_code)
        except ProviderError as error:
            error.app = self.credentials.name
            raise

    async def _exchange(self, code: str | None, anonymous_code: str | None) -> Identity:
        raise NotImplementedError

    async def close(self) -> None:
        """Release pooled connections; called once at shutdown."""


class HttpLoginProvider(LoginProvider):
    """A provider that calls its platform over HTTPS through one pooled client.

    ``label`` names the platform in messages and logs ("WeChat"), ``endpoint`` names the API,
    ``get_anew`` what the client must get again before it retries a call that timed out or
    could not be sent (a one-time code: the platform may have consumed it); empty: nothing.
    """

    label = "the platform"
    endpoint = "login API"
    get_anew = "get a new login code"
    code_name = "error"  # what the platform calls its error codes ("errcode", "err_no"...)

    def __init__(self, credentials: AppCredentials):
        super().__init__(credentials)
        # One pooled client per app: logins reuse kept-alive TLS connections.
        self._client = httpx.AsyncClient(
            base_url=credentials.api_base,
            timeout=httpx.Timeout(credentials.timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def close(self) -> None:
        await self._client.aclose()

    def calling(self, endpoint: str, get_anew: str = "") -> "HttpLoginProvider":
        """This provider for another of the platform's APIs (WeChat's stable_token...): its
        messages and log lines name that API and its own advice. Shares the connection pool."""
        view = copy.copy(self)
        view.endpoint, view.get_anew = endpoint, get_anew
        return view

    @property
    def where(self) -> str:
        """The API and the app, for log lines: "WeChat code2Session (app shop)"."""
        return f"{self.label} {self.endpoint} (app {self.credentials.name})"

    async def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        """The platform's 2xx answer, or the ProviderError a client should see instead."""
        try:
            response = await self._client.request(method, path, **kwargs)
        # ``from None`` everywhere below: httpx exceptions hold the request, whose URL or body
        # carries the secret and the code, and a chained traceback would print them.
        except httpx.TimeoutException:
            log.warning("%s did not answer in time", self.where)
            raise ProviderError(
                "platform_timeout", f"{self.label} did not answer in time; {self._retry()}",
            ) from None
        except httpx.TransportError as exc:
            log.warning("cannot reach %s: %s", self.where, type(exc).__name__)
            raise ProviderError(
                "platform_unavailable",
                f"{self.label} could not be reached; {self._retry('shortly')}",
            ) from None
        except httpx.HTTPError as exc:
            # Anything else httpx raises (e.g. an undecodable Content-Encoding) is a broken answer.
            raise self.unreadable(f"an answer httpx cannot read ({type(exc).__name__})") from None
        if not response.is_success:
            raise self.unreadable(f"HTTP {response.status_code}")
        return response

    def _retry(self, when: str = "") -> str:
        retry = f"retry {when}".strip()
        return f"{self.get_anew} and {retry}" if self.get_anew else retry

    async def _send_json(self, method: str, path: str, **kwargs) -> dict:
        """The platform's answer as a JSON object, or a ProviderError."""
        response = await self._send(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:  # not JSON, or not UTF-8
            data = None
        if not isinstance(data, dict):
            raise self.unreadable("something that is not a JSON object")
        return data

    def unreadable(self, what: str) -> ProviderError:
        """The error for an answer this server cannot use; ``what`` it was goes to the log."""
        log.warning("%s answered %s", self.where, what)
        return ProviderError("platform_unavailable",
                             f"{self.label} gave an answer this server cannot read")

    def refused(self, code: str, platform_code, text, hint: str = "",
                retry_after: int | None = None) -> ProviderError:
        """An error answer, with the platform's own code and words kept in the message.

        The operator's faults (``platform_misconfigured``, ``platform_error``) are logged here:
        only they can fix them. Platforms' error texts never echo the secret; they are
        shortened all the same.
        """
        words = str(text or "").strip()[:200]
        message = f"{self.label} {self.code_name} {platform_code}"
        message += f": {words}" if words else ""
        if hint:
            message += f"; {hint}"
        if code in ("platform_misconfigured", "platform_error"):
            log.error("%s refused the call: %s %r %r", self.where, self.code_name,
                      platform_code, words)
        return ProviderError(code, message, retry_after)

    def required_text(self, value) -> str:
        """A non-empty string from a success answer, or the unreadable-answer error."""
        if isinstance(value, str) and value:
            return value
        raise self.unreadable("a success with a missing or unusable field")

    def optional_text(self, value) -> str | None:
        """An optional string (unionid...): empty means absent; another type is unreadable."""
        if value is None or value == "":
            return None
        return self.required_text(value)


def require_code(label: str, code: str | None) -> str:
    """The code, or ``code_invalid`` when there is none (a provider needs one)."""
    if not code:
        raise ProviderError("code_invalid", f"no login code was sent; get one from {label}")
    return code
