"""Kuaishou: ``POST /oauth2/mp/code2session`` with a form ``app_id, app_secret, js_code``.

``ks.login()`` gives the code. Success is ``{"result": 1, "session_key", "open_id"}``; any other
``result`` is an error, with ``error_msg``. There is no official page for this API: the shape
comes from SDK code, and the result codes below from Kuaishou's mini-game code2session page
(100 incomplete parameters, 240001 bad code, 240002 bad app_secret). Production ``api_base``:
https://open.kuaishou.com.
"""

from server.platforms.base import HttpLoginProvider, Identity, require_code

# result -> (generic code, seconds to wait or None). Others are ``platform_error``.
_ERRORS = {
    240001: ("code_invalid", None),
    240002: ("platform_misconfigured", None),
}


class KuaishouLoginProvider(HttpLoginProvider):
    name = "kuaishou"
    label = "Kuaishou"
    endpoint = "code2session"
    code_name = "result"

    async def _exchange(self, code, anonymous_code=None) -> Identity:
        code = require_code("ks.login()", code)
        data = await self._send_json("POST", "/oauth2/mp/code2session", data={
            "app_id": self.credentials.appid, "app_secret": self.credentials.secret,
            "js_code": code,
        })
        result = data.get("result")
        if result is None:
            raise self.unreadable("an object without result")
        if result != 1:
            generic, retry_after = _ERRORS.get(result, ("platform_error", None))
            hint = "call ks.login() again for a new code" if generic == "code_invalid" else ""
            raise self.refused(generic, result, data.get("error_msg"), hint, retry_after)
        return Identity(openid=self.required_text(data.get("open_id")),
                        session_key=self.required_text(data.get("session_key")))
