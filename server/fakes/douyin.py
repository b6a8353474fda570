"""Fake Douyin: ``POST /api/apps/v2/jscode2session``, JSON ``{appid, secret, code,
anonymous_code}`` (at least one code).

Wrong appid -> err_no 40015, wrong secret -> 40017, neither code -> 40014; a bad, used or
expired ``code`` -> 40018, ``anonymous_code`` -> 40019; ``err:<err_no>`` -> that err_no. A
success is ``{"err_no": 0, "err_tips": "success", "data": {session_key, openid,
anonymous_openid, unionid}}``: the anonymous code of ``user:bob`` (or of a code minted for bob)
names ``anon-bob``; with only an anonymous code, ``openid`` is empty.
"""

import hmac
import json
import secrets

from server.fakes.base import FakeHandler, FakePlatform, is_number

_TIPS = {-1: "system error", 40014: "bad params", 40015: "bad appid", 40017: "bad secret",
         40018: "bad code", 40019: "bad anonymous_code"}


def error(err_no: int) -> dict:
    return {"err_no": err_no, "err_tips": _TIPS.get(err_no, "fake error"),
            "log_id": secrets.token_hex(12)}


class FakeDouyin(FakePlatform):
    platform = "douyin"

    def __init__(self, appid: str = "tt-fake-appid", secret: str = "fake-secret", clock=None,
                 unionid: bool = False):
        super().__init__(appid, secret, clock, unionid)

    def routes(self) -> list:
        return [(r"/api/apps/v2/jscode2session", DouyinHandler, {"fake": self})]


class DouyinHandler(FakeHandler):
    async def post(self) -> None:
        await self.begin()
        fake = self.fake
        try:
            body = json.loads(self.request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.write(error(40014))
        if body.get("appid") != fake.appid:
            return self.write(error(40015))
        if not hmac.compare_digest(str(body.get("secret", "")).encode(), fake.secret.encode()):
            return self.write(error(40017))
        code, anonymous_code = body.get("code") or "", body.get("anonymous_code") or ""
        if not code and not anonymous_code:
            return self.write(error(40014))
        openid = anonymous_id = ""
        for value, bad_code in ((code, 40018), (anonymous_code, 40019)):
            if not value:
                continue
            verdict = fake.judge(value)
            if await self.broken_answer(verdict):
                return None
            if verdict.kind == "error" and is_number(verdict.value):
                return self.write(error(int(verdict.value)))
            if verdict.kind != "login":
                return self.write(error(bad_code))
            if value is code:
                openid = verdict.value
            anonymous_id = "anon-" + verdict.value
        data = {"session_key": fake.new_session_key(openid or anonymous_id),
                "openid": openid, "anonymous_openid": anonymous_id,
                "unionid": "union-" + openid if fake.unionid and openid else ""}
        self.write({"err_no": 0, "err_tips": "success", "data": data})
