"""The ``wechat`` provider: WeChat's code2Session (``GET /sns/jscode2session``).

The client calls ``wx.login()``, sends us the one-time code, and we exchange it, with our appid
and secret, for the user's ``openid`` and ``session_key``. Every WeChat answer becomes either an
:class:`Identity` or an :class:`ApiError` whose status and code tell the client what to do next.

The request is never retried: a code is usable once, and after a timeout WeChat may already have
consumed it, so a retry could only fail with 40163 ("code been used"). The client gets a 504 and
asks ``wx.login()`` for a fresh code instead.

The request URL carries the secret and the code, and the answer carries the session_key; none of
them is ever put in a log line or an error message.
"""

import logging

import httpx

from server.errors import ApiError
from server.login.base import Identity, LoginProvider

log = logging.getLogger("minisession.wechat")

# httpx logs every request line, full URL included, at INFO ("HTTP Request: GET ...?secret=...
# &js_code=..."), and httpcore traces connections at DEBUG. Our query string holds the appid
# secret and the user's login code, so both loggers only speak up for warnings.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

_INVALID_CODE_MESSAGE = (
    "the login code is invalid, expired or already used; call wx.login again for a new code"
)


class WeChatLoginProvider(LoginProvider):
    """Exchanges ``wx.login`` codes through WeChat's code2Session API.

    ``api_base`` is ``https://api.weixin.qq.com`` in production, or a fake server
    (:mod:`server.fake_wechat`) in tests and development. ``timeout`` (seconds) bounds each
    phase of the request: connecting, sending, waiting for the answer.
    """

    name = "wechat"

    def __init__(self, appid: str, secret: str, api_base: str, timeout: float):
        self._appid = appid
        self._secret = secret
        # One pooled client for the whole process: logins reuse kept-alive TLS connections.
        self._client = httpx.AsyncClient(
            base_url=api_base,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def exchange(self, code: str) -> Identity:
        try:
            response = await self._client.get(
                "/sns/jscode2session",
                params={
                    "appid": self._appid,
                    "secret": self._secret,
                    "js_code": code,
                    "grant_type": "authorization_code",
                },
            )
        # ``from None`` everywhere below: httpx exceptions hold the request, whose URL carries the
        # secret and the code, and a chained traceback would print them.
        except httpx.TimeoutException:
            log.warning("WeChat code2Session did not answer in time")
            raise ApiError(
                504, "wechat_timeout",
                "WeChat did not answer in time; call wx.login again for a new code and retry",
            ) from None
        except httpx.TransportError as exc:
            log.warning("cannot reach WeChat code2Session: %s", type(exc).__name__)
            raise ApiError(
                504, "wechat_unreachable",
                "WeChat could not be reached; call wx.login again for a new code and retry shortly",
            ) from None
        except httpx.HTTPError as exc:
            # Anything else httpx raises (e.g. an undecodable Content-Encoding) is a broken answer.
            log.warning("unreadable answer from WeChat code2Session: %s", type(exc).__name__)
            raise _bad_response() from None

        if not response.is_success:
            log.warning("WeChat code2Session answered HTTP %d", response.status_code)
            raise _bad_response()
        try:
            data = response.json()
        except ValueError:  # not JSON, or not UTF-8
            log.warning("WeChat code2Session answered a body that is not JSON")
            raise _bad_response() from None
        if not isinstance(data, dict):
            log.warning("WeChat code2Session answered JSON that is not an object")
            raise _bad_response()
        return _identity_or_error(data)


def _identity_or_error(data: dict) -> Identity:
    """Turn a code2Session JSON object into an Identity, or raise the matching ApiError."""
    errcode = data.get("errcode", 0)
    if errcode == 0:
        openid, session_key = data.get("openid"), data.get("session_key")
        unionid = data.get("unionid") or None  # only sent for apps bound to an Open Platform
        if not (_is_text(openid) and _is_text(session_key)
                and (unionid is None or isinstance(unionid, str))):
            log.warning("WeChat code2Session success lacks a usable openid or session_key")
            raise _bad_response()
        return Identity(openid=openid, session_key=session_key, unionid=unionid)
    if errcode == -1:
        raise ApiError(503, "wechat_busy", "WeChat is busy; try again in a moment",
                       headers={"Retry-After": "1"})
    if errcode in (40029, 40163):  # 40163: the code was already used
        raise ApiError(400, "invalid_code", _INVALID_CODE_MESSAGE)
    if errcode == 40226:
        raise ApiError(403, "user_blocked",
                       "WeChat blocked this login because it considers the account high-risk")
    if errcode == 45011:
        raise ApiError(429, "wechat_rate_limited",
                       "too many logins for this user; WeChat asks to wait a minute",
                       headers={"Retry-After": "60"})
    # 40013 (invalid appid), 40125 (invalid secret)...: usually our own misconfiguration, which
    # only the operator can fix, so it goes to the error log. errmsg never echoes the secret.
    log.error("WeChat code2Session refused the call: errcode=%r errmsg=%r",
              errcode, str(data.get("errmsg", ""))[:200])
    raise ApiError(502, "wechat_error",
                   "WeChat refused the login request; the server's WeChat settings may be wrong")


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _bad_response() -> ApiError:
    return ApiError(502, "wechat_bad_response", "WeChat gave an answer this server cannot read")
