"""Baidu: ``POST /oauth/jscode2sessionkey`` with a form ``code, client_id, sk``.

``swan.getLoginCode()`` gives the code (10 minutes). ``client_id`` is the app's App Key (our
``appid``), ``sk`` its App Secret. Success is ``{openid, session_key}``; an error is Baidu's
OAuth style ``{error, error_description}``. Production ``api_base``: https://spapi.baidu.com.
"""

from server.platforms.base import HttpLoginProvider, Identity, require_code

# OAuth error -> (generic code, seconds to wait or None). Others are ``platform_error``.
_ERRORS = {
    "invalid_grant": ("code_invalid", None),   # the code is wrong, used or expired
    "expired_token": ("code_invalid", None),
    "invalid_client": ("platform_misconfigured", None),  # unknown App Key or wrong secret
    "unauthorized_client": ("platform_misconfigured", None),
    "slow_down": ("platform_rate_limited", 60),
}


class BaiduLoginProvider(HttpLoginProvider):
    name = "baidu"
    label = "Baidu"
    endpoint = "jscode2sessionkey"

    async def _exchange(self, code, anonymous_code=None) -> Identity:
        code = require_code("swan.getLoginCode()", code)
        data = await self._send_json("POST", "/oauth/jscode2sessionkey", data={
            "code": code, "client_id": self.credentials.appid, "sk": self.credentials.secret,
        })
        error = data.get("error")
        if error:
            generic, retry_after = _ERRORS.get(error, ("platform_error", None))
            hint = ("call swan.getLoginCode() again for a new code"
                    if generic == "code_invalid" else "")
            raise self.refused(generic, error, data.get("error_description"), hint, retry_after)
        return Identity(openid=self.required_text(data.get("openid")),
                        session_key=self.required_text(data.get("session_key")))
