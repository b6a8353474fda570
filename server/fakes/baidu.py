"""Fake Baidu: ``POST /oauth/jscode2sessionkey``, form ``code, client_id, sk``.

Wrong client_id or sk -> ``{"error": "invalid_client"}``, no code -> ``invalid_request``, a bad,
used or expired code -> ``invalid_grant``, ``err:<error>`` -> that error (``slow_down``...). A
success is ``{"openid", "session_key"}`` (24 bytes, base64: Baidu decrypts with AES-192).
"""

import hmac

from server.fakes.base import FakeHandler, FakePlatform

_DESCRIPTIONS = {
    "invalid_client": "unknown client id or wrong sk",
    "invalid_grant": "invalid authorization code",
    "invalid_request": "missing parameter",
}


def error(name: str) -> dict:
    return {"errno": 1, "error": name, "error_description": _DESCRIPTIONS.get(name, "fake error")}


class FakeBaidu(FakePlatform):
    platform = "baidu"

    def __init__(self, appid: str = "baidu-fake-appkey", secret: str = "fake-secret", clock=None,
                 unionid: bool = False):
        super().__init__(appid, secret, clock, unionid)

    def routes(self) -> list:
        return [(r"/oauth/jscode2sessionkey", BaiduHandler, {"fake": self})]


class BaiduHandler(FakeHandler):
    async def post(self) -> None:
        await self.begin()
        fake = self.fake
        if self.body_argument("client_id") != fake.appid or not hmac.compare_digest(
                self.body_argument("sk").encode(), fake.secret.encode()):
            return self.write(error("invalid_client"))
        code = self.body_argument("code")
        if not code:
            return self.write(error("invalid_request"))
        verdict = fake.judge(code)
        if await self.broken_answer(verdict):
            return None
        if verdict.kind == "error":
            return self.write(error(verdict.value))
        if verdict.kind != "login":
            return self.write(error("invalid_grant"))
        openid = verdict.value
        self.write({"openid": openid, "session_key": fake.new_session_key(openid, size=24)})
