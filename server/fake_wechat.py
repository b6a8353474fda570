"""A fake WeChat code2Session server, for tests and for development without a WeChat account.

Run it with ``minisession fake-wechat`` (``--host``, ``--port``, ``--appid``, ``--secret``,
``--unionid``) and set ``[wechat] api_base`` to the address it prints. It answers
``GET /sns/jscode2session`` like WeChat: wrong ``grant_type`` -> errcode 40002, wrong appid ->
40013, wrong secret -> 40125, then it looks at ``js_code``.

Codes
-----
Real-looking codes come from ``POST /fake/login`` with ``{"openid": "alice"}`` (the fake's
``wx.login``), which answers ``{"code": "..."}``. Like WeChat's, such a code works once (the
second use gets 40163 "code been used") and for 5 minutes (then 40029 "invalid code").

Magic codes need no minting; each also works only once, like a real code:

``user:<openid>``
    Logs in as ``<openid>`` (1-64 letters, digits, ``_`` or ``-``).
``err:<errcode>``
    Answers that errcode at HTTP 200, as WeChat does: ``err:-1`` (busy), ``err:40029``
    (invalid code), ``err:40163`` (code used), ``err:40226`` (high-risk user, blocked),
    ``err:45011`` (rate limited), or any other number.
``slow:<seconds>:<openid>``
    Waits that many seconds, then logs in as ``<openid>``: try it against your timeout.
``http500``
    Answers HTTP 500 with an HTML page.
``garbage``
    Answers HTTP 200 with a body that is not JSON.
``nojson-object``
    Answers HTTP 200 with ``[1,2]``: JSON, but not an object.

Any magic code may end with ``:<anything>`` to make a fresh, unused one: ``user:alice:1``,
``user:alice:2`` are two logins of alice (e.g. concurrent ones); ``err:-1:b`` is another busy
answer. Any other code gets 40029.

A success is ``{"openid": ..., "session_key": ...}``, with a new random session_key each time,
plus ``"unionid": "union-<openid>"`` when started with ``--unionid``.

``GET /fake/stats`` answers ``{"jscode2session_calls": N}``, the number of code2Session calls.
"""

import argparse
import asyncio
import base64
import hmac
import json
import logging
import re
import secrets

import tornado.httpserver
import tornado.netutil
import tornado.web

from server.clock import SystemClock

log = logging.getLogger("minisession.fake_wechat")

CODE_LIFETIME = 300.0  # seconds a minted code stays valid, as on WeChat

_OPENID = r"[A-Za-z0-9_-]{1,64}"
# Magic codes; the optional ":<anything>" tail only makes a code distinct (each works once).
_TAIL = r"(?::.*)?"
_USER = re.compile(rf"user:({_OPENID}){_TAIL}")
_ERR = re.compile(rf"err:(-?\d{{1,6}}){_TAIL}")
_SLOW = re.compile(rf"slow:(\d{{1,4}}(?:\.\d+)?):({_OPENID}){_TAIL}")
_HTTP500 = re.compile(rf"http500{_TAIL}")
_GARBAGE = re.compile(rf"garbage{_TAIL}")
_NOJSON_OBJECT = re.compile(rf"nojson-object{_TAIL}")

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


class FakeWeChat:
    """The fake's state: credentials, issued and used codes, counters and knobs.

    ``unionid``: answers carry ``unionid = "union-" + openid`` (an app bound to an Open
    Platform account). ``delay``: seconds every code2Session answer waits, on top of
    ``slow:`` codes. ``errcode_zero``: successes carry ``"errcode": 0`` as some real ones do.
    """

    def __init__(self, appid: str = "wx-fake-appid", secret: str = "fake-secret",
                 clock=None, unionid: bool = False):
        self.appid = appid
        self.secret = secret
        self.clock = clock or SystemClock()
        self.unionid = unionid
        self.delay = 0.0
        self.errcode_zero = False
        self.issued: dict[str, tuple[str, float]] = {}  # code -> (openid, issued_at)
        self.used: set[str] = set()
        self.jscode2session_calls = 0
        #: Every session_key handed out, newest last per openid (tests check none leaks).
        self.session_keys: dict[str, list[str]] = {}

    def mint_code(self, openid: str) -> str:
        """A fresh one-time code for ``openid``: what ``wx.login`` gives the mini-program."""
        code = secrets.token_urlsafe(24)  # 32 characters, like WeChat's codes
        self.issued[code] = (openid, self.clock.now())
        return code

    def success(self, openid: str) -> dict:
        """A code2Session success for ``openid``, with a new session_key."""
        answer = {
            "openid": openid,
            "session_key": base64.b64encode(secrets.token_bytes(16)).decode(),
        }
        self.session_keys.setdefault(openid, []).append(answer["session_key"])
        if self.unionid:
            answer["unionid"] = "union-" + openid
        if self.errcode_zero:
            answer["errcode"] = 0
        return answer


def error(errcode: int) -> dict:
    """A code2Session failure as WeChat words it, request id included."""
    errmsg = _ERRMSG.get(errcode, "fake error")
    return {"errcode": errcode, "errmsg": f"{errmsg}, rid: {secrets.token_hex(12)}"}


class _FakeHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeWeChat) -> None:
        self.fake = fake


class Jscode2SessionHandler(_FakeHandler):
    """``GET /sns/jscode2session``: the code2Session API."""

    async def get(self) -> None:
        fake = self.fake
        fake.jscode2session_calls += 1
        if fake.delay:
            await asyncio.sleep(fake.delay)
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
        await self._answer(code)

    async def _answer(self, code: str) -> None:
        fake = self.fake
        # A code is spent as soon as WeChat sees it, even if the answer never arrives.
        if code in fake.used:
            return self.write(error(40163))
        minted = fake.issued.pop(code, None)
        if minted is not None:
            fake.used.add(code)
            openid, issued_at = minted
            if fake.clock.now() - issued_at > CODE_LIFETIME:
                return self.write(error(40029))
            return self.write(fake.success(openid))

        if match := _USER.fullmatch(code):
            fake.used.add(code)
            return self.write(fake.success(match.group(1)))
        if match := _ERR.fullmatch(code):
            fake.used.add(code)
            return self.write(error(int(match.group(1))))
        if match := _SLOW.fullmatch(code):
            fake.used.add(code)
            await asyncio.sleep(float(match.group(1)))
            return self.write(fake.success(match.group(2)))
        if _HTTP500.fullmatch(code):
            fake.used.add(code)
            self.set_status(500)
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            return self.write("<html><body><h1>500 Internal Server Error</h1></body></html>")
        if _GARBAGE.fullmatch(code):
            fake.used.add(code)
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            return self.write("this is not JSON")
        if _NOJSON_OBJECT.fullmatch(code):
            fake.used.add(code)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            return self.write("[1,2]")
        return self.write(error(40029))


class LoginHandler(_FakeHandler):
    """``POST /fake/login`` ``{"openid": ...}`` -> ``{"code": ...}``: the fake's wx.login."""

    def post(self) -> None:
        try:
            openid = json.loads(self.request.body).get("openid")
        except (ValueError, AttributeError):
            openid = None
        if not isinstance(openid, str) or not re.fullmatch(_OPENID, openid):
            self.set_status(400)
            return self.write({"error": 'send {"openid": "..."} with 1-64 letters, digits, _ or -'})
        self.write({"code": self.fake.mint_code(openid)})


class StatsHandler(_FakeHandler):
    """``GET /fake/stats``: what the fake has been asked so far."""

    def get(self) -> None:
        self.write({"jscode2session_calls": self.fake.jscode2session_calls})


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Path only: the query string holds the secret and the login code, which no log should show.
    request = handler.request
    log.info("%d %s %s %.1fms", handler.get_status(), request.method, request.path,
             1000 * request.request_time())


def make_app(fake: FakeWeChat) -> tornado.web.Application:
    """The fake WeChat API as a Tornado application serving ``fake``'s state."""
    args = {"fake": fake}
    return tornado.web.Application(
        [
            (r"/sns/jscode2session", Jscode2SessionHandler, args),
            (r"/fake/login", LoginHandler, args),
            (r"/fake/stats", StatsHandler, args),
        ],
        log_function=_log_request,
    )


def main(argv: list[str] | None = None) -> int:
    """``minisession fake-wechat``: serve a fake WeChat API until interrupted."""
    parser = argparse.ArgumentParser(
        prog="minisession fake-wechat",
        description="Serve a fake WeChat code2Session API for tests and development.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9999, help="port to listen on (0: any free)")
    parser.add_argument("--appid", default="wx-fake-appid", help="the appid to accept")
    parser.add_argument("--secret", default="fake-secret", help="the app secret to accept")
    parser.add_argument("--unionid", action="store_true",
                        help='answer with unionid "union-<openid>" too')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeWeChat(appid=args.appid, secret=args.secret, unionid=args.unionid)
    sockets = tornado.netutil.bind_sockets(args.port, args.host)
    server = tornado.httpserver.HTTPServer(make_app(fake))
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]  # the real one when --port 0
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"fake WeChat listening on http://{host}:{port} (appid {args.appid}); point minisession "
          f'at it with [wechat] api_base = "http://{host}:{port}" and the same appid and secret',
          flush=True)
    await asyncio.Event().wait()  # serve until interrupted
