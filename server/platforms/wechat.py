"""WeChat: code2Session (``GET /sns/jscode2session``); QQ speaks the same protocol (:mod:`.qq`).

The mini-program calls ``wx.login()`` and sends us the one-time code (5 minutes, once); we
exchange it, with the appid and secret, for the user's ``openid``, ``session_key`` and, for apps
bound to an Open Platform account, ``unionid``. Errors come as ``{errcode, errmsg}`` at HTTP 200.
"""

from server.platforms.base import HttpLoginProvider, Identity, require_code

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


class WeChatLoginProvider(HttpLoginProvider):
    """Exchanges ``wx.login()`` codes (production ``api_base``: https://api.weixin.qq.com)."""

    name = "wechat"
    label = "WeChat"
    endpoint = "code2Session"
    code_name = "errcode"
    login_call = "wx.login()"

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
