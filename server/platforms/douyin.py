"""Douyin (ByteDance): ``POST /api/apps/v2/jscode2session`` with a JSON body.

``tt.login()`` gives a ``code`` (the user is logged in to Douyin) and an ``anonymousCode``
(always). We send whichever we have; with only the anonymous code the answer names the user by
``anonymous_openid`` alone, an identity that can later be linked to an openid. Answers are
``{"err_no": 0, "err_tips": "success", "data": {session_key, openid, anonymous_openid,
unionid}}``; ``err_no`` != 0 is an error. Production ``api_base``:
https://developer.toutiao.com.
"""

from server.platforms.base import HttpLoginProvider, Identity, ProviderError

# err_no -> (generic code, seconds to wait or None). Others are ``platform_error``.
_ERRORS = {
    -1: ("platform_busy", 1),
    40015: ("platform_misconfigured", None),  # bad appid
    40017: ("platform_misconfigured", None),  # bad secret
    40018: ("code_invalid", None),            # bad code
    40019: ("code_invalid", None),            # bad anonymous_code
}


class DouyinLoginProvider(HttpLoginProvider):
    name = "douyin"
    label = "Douyin"
    endpoint = "jscode2session"
    code_name = "err_no"
    takes_anonymous_code = True

    async def _exchange(self, code, anonymous_code=None) -> Identity:
        if not code and not anonymous_code:
            raise ProviderError("code_invalid",
                                "no login code was sent; send tt.login()'s code or anonymousCode")
        body = {"appid": self.credentials.appid, "secret": self.credentials.secret}
        if code:
            body["code"] = code
        if anonymous_code:
            body["anonymous_code"] = anonymous_code
        answer = await self._send_json("POST", "/api/apps/v2/jscode2session", json=body)
        err_no = answer.get("err_no")
        if err_no is None:
            raise self.unreadable("an object without err_no")
        if err_no != 0:
            generic, retry_after = _ERRORS.get(err_no, ("platform_error", None))
            hint = "call tt.login() again for a new code" if generic == "code_invalid" else ""
            raise self.refused(generic, err_no, answer.get("err_tips"), hint, retry_after)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise self.unreadable("a success without a data object")
        if code:
            openid = self.required_text(data.get("openid"))
            anonymous_openid = self.optional_text(data.get("anonymous_openid"))
        else:  # anonymous: Douyin names the user by anonymous_openid alone
            openid, anonymous_openid = None, self.required_text(data.get("anonymous_openid"))
        return Identity(openid=openid,
                        session_key=self.required_text(data.get("session_key")),
                        unionid=self.optional_text(data.get("unionid")),
                        anonymous_openid=anonymous_openid)
