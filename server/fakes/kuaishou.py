"""Fake Kuaishou: ``POST /oauth2/mp/code2session``, form ``app_id, app_secret, js_code``.

Wrong app_id or app_secret -> ``result`` 240002, no code -> 100, a bad, used or expired code ->
240001, ``err:<result>`` -> that result; each with ``error_msg``. A success is
``{"result": 1, "session_key", "open_id"}``.
"""

import hmac

from server.fakes.base import FakeHandler, FakePlatform, is_number

_MESSAGES = {100: "params incomplete", 240001: "invalid code", 240002: "invalid app_secret"}


def error(result: int) -> dict:
    return {"result": result, "error_msg": _MESSAGES.get(result, "fake error")}


class FakeKuaishou(FakePlatform):
    platform = "kuaishou"

    def __init__(self, appid: str = "ks-fake-appid", secret: str = "fake-secret", clock=None,
                 unionid: bool = False):
        super().__init__(appid, secret, clock, unionid)

    def routes(self) -> list:
        return [(r"/oauth2/mp/code2session", KuaishouHandler, {"fake": self})]


class KuaishouHandler(FakeHandler):
    async def post(self) -> None:
        await self.begin()
        fake = self.fake
        if self.body_argument("app_id") != fake.appid or not hmac.compare_digest(
                self.body_argument("app_secret").encode(), fake.secret.encode()):
            return self.write(error(240002))
        code = self.body_argument("js_code")
        if not code:
            return self.write(error(100))
        verdict = fake.judge(code)
        if await self.broken_answer(verdict):
            return None
        if verdict.kind == "error" and is_number(verdict.value):
            return self.write(error(int(verdict.value)))
        if verdict.kind != "login":
            return self.write(error(240001))
        openid = verdict.value
        self.write({"result": 1, "session_key": fake.new_session_key(openid), "open_id": openid})
