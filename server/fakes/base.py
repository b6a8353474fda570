"""What every fake platform shares: one-time codes, magic codes, counters, the handler base.

Codes
-----
Real-looking codes come from ``POST /fake/login`` with ``{"openid": "alice", "platform":
"douyin"}`` (the fake's ``wx.login()``, ``tt.login()``...; platform defaults to wechat), which
answers ``{"code": "..."}``. Like a real one, such a code works once (the second use is the
platform's "code used" or "invalid code" answer) and for a limited time (5 minutes).

Magic codes need no minting; each also works only once, like a real code:

``user:<openid>``
    Logs in as ``<openid>`` (1-64 letters, digits, ``_`` or ``-``).
``err:<platform code>``
    Answers that error the way the platform does: ``err:40029`` (WeChat, QQ errcode),
    ``err:40018`` (Douyin err_no), ``err:invalid_grant`` (Baidu error), ``err:240001``
    (Kuaishou result), ``err:isv.code-invalid`` or ``err:20000`` (Alipay sub_code or code).
``slow:<seconds>:<openid>``
    Waits that many seconds, then logs in as ``<openid>``: try it against your timeout.
``http500``
    Answers HTTP 500 with an HTML page.
``garbage``
    Answers HTTP 200 with a body that is not JSON.
``nojson-object``
    Answers HTTP 200 with ``[1,2]``: JSON, but not an object.
``empty-object``
    Answers HTTP 200 with ``{}``: an object, but without anything the platform always sends.

Any magic code may end with ``:<anything>`` to make a fresh, unused one: ``user:alice:1``,
``user:alice:2`` are two logins of alice; ``err:-1:b`` is another busy answer. Any other code
gets the platform's "invalid code" answer.
"""

import asyncio
import base64
import re
import secrets
from dataclasses import dataclass

import tornado.web

from server.clock import SystemClock

CODE_LIFETIME = 300.0  # seconds a minted code stays valid, as on WeChat

OPENID = r"[A-Za-z0-9_-]{1,64}"
# Magic codes; the optional ":<anything>" tail only makes a code distinct (each works once).
_TAIL = r"(?::.*)?"
_USER = re.compile(rf"user:({OPENID}){_TAIL}")
_ERR = re.compile(rf"err:([^:]{{1,64}}){_TAIL}")
_SLOW = re.compile(rf"slow:(\d{{1,4}}(?:\.\d+)?):({OPENID}){_TAIL}")
_HTTP500 = re.compile(rf"http500{_TAIL}")
_GARBAGE = re.compile(rf"garbage{_TAIL}")
_NOJSON_OBJECT = re.compile(rf"nojson-object{_TAIL}")
_EMPTY_OBJECT = re.compile(rf"empty-object{_TAIL}")


def is_number(text: str) -> bool:
    """Whether an ``err:`` value is a numeric platform code ("-1", "40029")."""
    return text.removeprefix("-").isdecimal()


@dataclass(frozen=True)
class Verdict:
    """What a code means: ``kind`` is login, error, used, expired, unknown or a broken answer
    (http500, garbage, nojson-object, empty-object); ``value`` the openid or the platform's
    error code."""

    kind: str
    value: str = ""
    delay: float = 0.0


class FakePlatform:
    """One platform's fake state: credentials, issued and used codes, counters and knobs.

    ``unionid``: answers carry ``unionid = "union-" + openid`` where the platform has one.
    ``delay``: seconds every answer waits, on top of ``slow:`` codes.
    """

    platform = "abstract"

    def __init__(self, appid: str = "fake-appid", secret: str = "fake-secret", clock=None,
                 unionid: bool = False):
        self.appid = appid
        self.secret = secret
        self.clock = clock or SystemClock()
        self.unionid = unionid
        self.delay = 0.0
        self.issued: dict[str, tuple[str, float]] = {}  # code -> (openid, issued_at)
        self.used: set[str] = set()
        self.calls = 0
        #: Every session_key handed out, newest last per openid (tests check none leaks).
        self.session_keys: dict[str, list[str]] = {}
        #: session_keys the next logins of an openid get, in order (tests with known vectors).
        self.upcoming_session_keys: dict[str, list[str]] = {}

    def mint_code(self, openid: str) -> str:
        """A fresh one-time code for ``openid``: what the client's login call gives."""
        code = secrets.token_urlsafe(24)  # 32 characters, like WeChat's codes
        self.issued[code] = (openid, self.clock.now())
        return code

    def new_session_key(self, openid: str, size: int = 16) -> str:
        upcoming = self.upcoming_session_keys.get(openid)
        key = upcoming.pop(0) if upcoming else base64.b64encode(secrets.token_bytes(size)).decode()
        self.session_keys.setdefault(openid, []).append(key)
        return key

    def judge(self, code: str) -> Verdict:
        """What ``code`` means, spending it: a code is used up as soon as the platform sees it,
        even if the answer never arrives."""
        if code in self.used:
            return Verdict("used")
        minted = self.issued.pop(code, None)
        if minted is not None:
            self.used.add(code)
            openid, issued_at = minted
            if self.clock.now() - issued_at > CODE_LIFETIME:
                return Verdict("expired")
            return Verdict("login", openid)
        for pattern, kind in ((_USER, "login"), (_ERR, "error")):
            if match := pattern.fullmatch(code):
                self.used.add(code)
                return Verdict(kind, match.group(1))
        if match := _SLOW.fullmatch(code):
            self.used.add(code)
            return Verdict("login", match.group(2), float(match.group(1)))
        for pattern, kind in ((_HTTP500, "http500"), (_GARBAGE, "garbage"),
                              (_NOJSON_OBJECT, "nojson-object"), (_EMPTY_OBJECT, "empty-object")):
            if pattern.fullmatch(code):
                self.used.add(code)
                return Verdict(kind)
        return Verdict("unknown")


class FakeHandler(tornado.web.RequestHandler):
    """A fake platform API endpoint; ``fake`` is its platform's state."""

    def initialize(self, fake: FakePlatform) -> None:
        self.fake = fake

    async def begin(self) -> None:
        """Count the call and wait the configured delay."""
        self.fake.calls += 1
        if self.fake.delay:
            await asyncio.sleep(self.fake.delay)

    async def broken_answer(self, verdict: Verdict) -> bool:
        """Answer the magic codes every platform answers alike; False for the others."""
        if verdict.delay:
            await asyncio.sleep(verdict.delay)
        if verdict.kind == "http500":
            self.set_status(500)
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.write("<html><body><h1>500 Internal Server Error</h1></body></html>")
        elif verdict.kind == "garbage":
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.write("this is not JSON")
        elif verdict.kind in ("nojson-object", "empty-object"):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.write("[1,2]" if verdict.kind == "nojson-object" else "{}")
        else:
            return False
        return True

    def body_argument(self, name: str) -> str:
        """A form field (Tornado parses form bodies), empty when absent."""
        return self.get_body_argument(name, "")
