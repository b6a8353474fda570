"""WeChat: code2Session (``GET /sns/jscode2session``); QQ speaks the same protocol (:mod:`.qq`).
With the app's access_token: stable_token, checkSessionKey, resetUserSessionKey and the phone
number of a ``getPhoneNumber`` code.

The mini-program calls ``wx.login()`` and sends us the one-time code (5 minutes, once); we
exchange it, with the appid and secret, for the user's ``openid``, ``session_key`` and, for apps
bound to an Open Platform account, ``unionid``. Errors come as ``{errcode, errmsg}`` at HTTP 200.
"""

import hashlib
import hmac

from server.errors import SessionKeyStale
from server.platforms.base import (
    AccessTokenGrant,
    AccessTokenRejected,
    HttpLoginProvider,
    Identity,
    PhoneNumber,
    ProviderError,
    require_code,
)

# errcode -> (generic code, seconds to wait or None). Others are ``platform_error``.
_ERRORS = {
    -1: ("platform_busy", 1),
    40029: ("code_invalid", None),     # invalid code (also: expired)
    40163: ("code_invalid", None),     # code been used
    40226: ("user_blocked", None),     # high-risk user
    45011: ("platform_rate_limited", 60),  # about 100 logins a minute per user
    40013: ("platform_misconfigured", None),  # invalid appid
    40125: ("platform_misconfigured", None),  # invalid appsecret
    41002: ("platform_misconfigured", None),  # appid missing
    41004: ("platform_misconfigured", None),  # appsecret missing
}

# stable_token errcodes -> (generic code, seconds to wait or None). Others are platform_error.
_TOKEN_ERRORS = {
    -1: ("platform_busy", 1),
    40001: ("platform_misconfigured", None),  # invalid credential: wrong secret
    40013: ("platform_misconfigured", None),  # invalid appid
    40125: ("platform_misconfigured", None),  # invalid appsecret
    40164: ("platform_misconfigured", None),  # this server's IP is not on the app's whitelist
    45009: ("platform_rate_limited", 3600),   # daily quota reached
    45011: ("platform_rate_limited", 60),
}


class WeChatLoginProvider(HttpLoginProvider):
    """Exchanges ``wx.login()`` codes (production ``api_base``: https://api.weixin.qq.com)."""

    name = "wechat"
    label = "WeChat"
    endpoint = "code2Session"
    code_name = "errcode"
    login_call = "wx.login()"
    supports_access_token = True
    #: The APIs called with (or for) the app's access_token, by method: what log lines,
    #: messages and metrics call them.
    access_token_calls = {"fetch_access_token": "stable_token",
                          "check_session_key": "checksession",
                          "reset_session_key": "resetusersessionkey",
                          "phone_number": "getuserphonenumber"}

    async def _exchange(self, code, anonymous_code=None) -> Identity:
        code = require_code(self.login_call, code)
        data = await self._send_json("GET", "/sns/jscode2session", params={
            "appid": self.credentials.appid,
            "secret": self.credentials.secret,
            "js_code": code,
            "grant_type": "authorization_code",
        })
        errcode = data.get("errcode", 0)
        if errcode == 0:
            return Identity(openid=self.required_text(data.get("openid")),
                            session_key=self.required_text(data.get("session_key")),
                            unionid=self.optional_text(data.get("unionid")))
        generic, retry_after = _ERRORS.get(errcode, ("platform_error", None))
        hint = f"call {self.login_call} again for a new code" if generic == "code_invalid" else ""
        raise self.refused(generic, errcode, data.get("errmsg"), hint, retry_after)

    async def fetch_access_token(self, force: bool = False) -> AccessTokenGrant:
        """The app's access_token from ``POST /cgi-bin/stable_token``: in normal mode the
        current one (the same while valid, renewed 5 minutes before expiry); with ``force``, a
        new one that invalidates the old (WeChat allows 20 a day, 30 s apart)."""
        api = self._calling("fetch_access_token")
        try:
            data = await api._send_json("POST", "/cgi-bin/stable_token", json={
                "grant_type": "client_credential",
                "appid": self.credentials.appid,
                "secret": self.credentials.secret,
                "force_refresh": force,
            })
        except ProviderError as error:
            error.app = self.credentials.name
            raise
        errcode = data.get("errcode", 0)
        if errcode == 0:
            expires_in = data.get("expires_in")
            if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in < 1:
                raise api.unreadable("an access_token without a usable expires_in")
            return AccessTokenGrant(api.required_text(data.get("access_token")), expires_in)
        generic, retry_after = _TOKEN_ERRORS.get(errcode, ("platform_error", None))
        error = api.refused(generic, errcode, data.get("errmsg"), retry_after=retry_after)
        error.app = self.credentials.name
        raise error

    # -- calls about one user, with the app's access_token ------------------------------------

    async def check_session_key(self, access_token: str, openid: str, session_key: str) -> bool:
        """``GET /wxa/checksession``: whether WeChat still holds ``session_key`` as the user's."""
        api = self._calling("check_session_key")
        data = await api._user_call("GET", "/wxa/checksession", access_token,
                                    params=_signed(openid, session_key))
        errcode = data.get("errcode", 0)
        if errcode in (0, _INVALID_SIGNATURE):
            return errcode == 0
        raise api._user_call_refused(data)

    async def reset_session_key(self, access_token: str, openid: str, session_key: str) -> str:
        """``GET /wxa/resetusersessionkey``: the user's new session_key (the old one, signed
        with here, stops working)."""
        api = self._calling("reset_session_key")
        data = await api._user_call("GET", "/wxa/resetusersessionkey", access_token,
                                    params=_signed(openid, session_key))
        errcode = data.get("errcode", 0)
        if errcode == 0:
            return api.required_text(data.get("session_key"))
        if errcode == _INVALID_SIGNATURE:
            raise SessionKeyStale("WeChat no longer holds this user's stored session_key (the "
                                  "user logged in elsewhere since?): it resets only the current "
                                  "one; the user must log in again")
        raise api._user_call_refused(data)

    async def phone_number(self, access_token: str, code: str, openid: str) -> PhoneNumber:
        """``POST /wxa/business/getuserphonenumber``: the number behind a ``getPhoneNumber``
        code, which WeChat checks was given to ``openid``."""
        api = self._calling("phone_number", _NEW_PHONE_CODE)
        data = await api._user_call("POST", "/wxa/business/getuserphonenumber", access_token,
                                    json={"code": code, "openid": openid})
        errcode = data.get("errcode", 0)
        if errcode == 0:
            info = data.get("phone_info")
            if not isinstance(info, dict):
                raise api.unreadable("a phone number answer without phone_info")
            return PhoneNumber(api.required_text(info.get("phoneNumber")),
                               api.required_text(info.get("purePhoneNumber")),
                               api.required_text(info.get("countryCode")))
        if errcode == _INVALID_CODE:
            raise api.refused("code_invalid", errcode, data.get("errmsg"),
                               f"{_NEW_PHONE_CODE} (a code works once, for 5 minutes)")
        raise api._user_call_refused(data)

    def _calling(self, method: str, get_anew: str = "") -> "WeChatLoginProvider":
        return self.calling(self.access_token_calls[method], get_anew)

    async def _user_call(self, method: str, path: str, access_token: str, params=None,
                         **kwargs) -> dict:
        """The answer of a call carrying the access_token (kept out of every log line and
        error); AccessTokenRejected when WeChat refuses that token."""
        data = await self._send_json(method, path, params={**(params or {}),
                                                           "access_token": access_token},
                                     **kwargs)
        errcode = data.get("errcode", 0)
        if errcode in _TOKEN_REJECTED:
            raise AccessTokenRejected(access_token, errcode)
        return data

    def _user_call_refused(self, data: dict) -> ProviderError:
        errcode = data.get("errcode")
        generic, retry_after = _USER_CALL_ERRORS.get(errcode, ("platform_error", None))
        error = self.refused(generic, errcode, data.get("errmsg"), retry_after=retry_after)
        error.app = self.credentials.name
        return error


#: errcodes meaning "this access_token is not (or no longer) valid".
_TOKEN_REJECTED = (40001, 40014, 42001)
_INVALID_SIGNATURE = 87009
_INVALID_CODE = 40029
#: A getPhoneNumber code works once: after a timeout WeChat may have spent it.
_NEW_PHONE_CODE = "get a new code from the getPhoneNumber button"
_USER_CALL_ERRORS = {
    -1: ("platform_busy", 1),
    45011: ("platform_rate_limited", 60),  # resetusersessionkey: too frequent
}


def _signed(openid: str, session_key: str) -> dict:
    """The query of checksession and resetusersessionkey: the user, and the HMAC-SHA256 of
    the empty body keyed with the session_key's base64 text (WeChat's published scheme)."""
    signature = hmac.new(session_key.encode("utf-8"), b"", hashlib.sha256).hexdigest()
    return {"openid": openid, "signature": signature, "sig_method": "hmac_sha256"}
