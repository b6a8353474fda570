"""Fake WeChat and QQ code2Session: ``GET /sns/jscode2session`` (the two share the protocol).

Wrong ``grant_type`` -> errcode 40002, wrong appid -> 40013, wrong secret -> 40125, no code ->
41008; then the code (see :mod:`server.fakes.base`): a used code -> 40163, an expired or unknown
one -> 40029, ``err:<errcode>`` -> that errcode at HTTP 200 (-1 busy, 40226 high-risk user,
45011 rate limited...). A success is ``{"openid", "session_key"}``, with a new random
session_key each time, plus ``"unionid": "union-<openid>"`` when started with ``--unionid``.
"""

import hmac
import secrets
from collections import Counter

from server.fakes import access_token, wechat_user
from server.fakes.base import FakeHandler, FakePlatform, is_number

# WeChat's wording for the errcodes it commonly returns.
_ERRMSG = {
    -1: "system error",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "high risk user",
    41008: "missing code",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
}


def error(errcode: int) -> dict:
    """A code2Session failure as WeChat words it, request id included."""
    errmsg = _ERRMSG.get(errcode, "fake error")
    return {"errcode": errcode, "errmsg": f"{errmsg}, rid: {secrets.token_hex(12)}"}


class FakeWeChat(FakePlatform):
    """``errcode_zero``: successes carry ``"errcode": 0`` as some real ones do."""

    platform = "wechat"

    def __init__(self, appid: str = "wx-fake-appid", secret: str = "fake-secret", clock=None,
                 unionid: bool = False):
        super().__init__(appid, secret, clock, unionid)
        self.errcode_zero = False
        #: The app's access_tokens (stable_token): see :mod:`server.fakes.access_token`.
        self.access_tokens = access_token.FakeAccessTokens(self.clock)
        #: getPhoneNumber codes (:mod:`server.fakes.wechat_user`).
        self.phone_codes = wechat_user.FakePhoneCodes(self.clock)
        #: Calls of checksession, resetusersessionkey, getuserphonenumber, by API.
        self.user_calls: Counter = Counter()

    def access_token_errcode(self, token: str) -> int:
        """0 when a call may use this access_token, else WeChat's errcode for it (40001
        never issued or invalidated, 42001 expired)."""
        return self.access_tokens.errcode(token)

    def reset_session_key(self, openid: str) -> str:
        """resetUserSessionKey: a new session_key for ``openid``, the old one invalid."""
        return self.new_session_key(openid)

    @property
    def jscode2session_calls(self) -> int:
        return self.calls

    def success(self, openid: str) -> dict:
        """A code2Session success for ``openid``, with a new session_key."""
        answer = {"openid": openid, "session_key": self.new_session_key(openid)}
        if self.unionid:
            answer["unionid"] = "union-" + openid
        if self.errcode_zero:
            answer["errcode"] = 0
        return answer

    def token_valid(self, token: str) -> bool:
        """Whether a call carrying this access_token would be accepted now."""
        return self.access_tokens.errcode(token) == 0

    def routes(self) -> list:
        return [(r"/sns/jscode2session", Jscode2SessionHandler, {"fake": self}),
                *access_token.routes(self), *wechat_user.routes(self)]


class FakeQQ(FakeWeChat):
    platform = "qq"

    def __init__(self, appid: str = "qq-fake-appid", secret: str = "fake-secret", clock=None,
                 unionid: bool = False):
        super().__init__(appid, secret, clock, unionid)

    def routes(self) -> list:
        # QQ's access_token is another API (GET /api/getToken), not faked here.
        return [(r"/sns/jscode2session", Jscode2SessionHandler, {"fake": self})]


class Jscode2SessionHandler(FakeHandler):
    """``GET /sns/jscode2session``: the code2Session API."""

    async def get(self) -> None:
        await self.begin()
        fake = self.fake
        if self.get_query_argument("grant_type", "") != "authorization_code":
            return self.write(error(40002))
        if self.get_query_argument("appid", "") != fake.appid:
            return self.write(error(40013))
        # Constant time, as a real server must compare secrets (bytes: non-ASCII is allowed).
        if not hmac.compare_digest(self.get_query_argument("secret", "").encode(),
                                   fake.secret.encode()):
            return self.write(error(40125))
        code = self.get_query_argument("js_code", "")
        if not code:
            return self.write(error(41008))
        verdict = fake.judge(code)
        if await self.broken_answer(verdict):
            return None
        if verdict.kind == "login":
            return self.write(fake.success(verdict.value))
        if verdict.kind == "error" and is_number(verdict.value):
            return self.write(error(int(verdict.value)))
        return self.write(error(40163 if verdict.kind == "used" else 40029))
