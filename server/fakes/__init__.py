"""Fake mini-program platforms, for tests and for development without any platform account.

``minisession fake-platforms`` serves every platform from one process, each under its own
prefix and on its real paths, so that an app's ``api_base`` is ``http://HOST:PORT/<platform>``:

=========  ==============================================  ==================================
platform   endpoint (after ``/<platform>``)                module
=========  ==============================================  ==================================
wechat     ``GET /sns/jscode2session``                     :mod:`server.fakes.wechat`
qq         ``GET /sns/jscode2session``                     :mod:`server.fakes.wechat`
douyin     ``POST /api/apps/v2/jscode2session`` (JSON)     :mod:`server.fakes.douyin`
baidu      ``POST /oauth/jscode2sessionkey`` (form)        :mod:`server.fakes.baidu`
kuaishou   ``POST /oauth2/mp/code2session`` (form)         :mod:`server.fakes.kuaishou`
alipay     ``POST /gateway.do`` (RSA2-signed form)         :mod:`server.fakes.alipay`
=========  ==============================================  ==================================

WeChat is also served at the root (``api_base = http://HOST:PORT``), as ``minisession
fake-wechat`` always did. Codes (minted, or magic like ``user:alice`` and ``err:40029``) are
described in :mod:`server.fakes.base`. ``POST /fake/login`` ``{"openid": ..., "platform": ...}``
mints a code; ``GET /fake/stats`` counts the calls each platform answered (and WeChat's
``stable_token`` calls by mode). WeChat's access_tokens (:mod:`server.fakes.access_token`):
``POST /fake/access_token/check`` ``{"access_token": ...}`` -> ``{"valid": bool}``;
``POST /fake/access_token/invalidate`` makes every token invalid (the next call with one gets
40001); ``POST /fake/access_token/delay`` ``{"seconds": 10}`` delays each stable_token answer.

WeChat's calls about one user (``/wxa/checksession``, ``/wxa/resetusersessionkey``,
``/wxa/business/getuserphonenumber``: :mod:`server.fakes.wechat_user`) are counted in
``/fake/stats`` as ``user_calls``. ``POST /fake/phone`` ``{"openid": ..., "phoneNumber":
"13800138000", "countryCode": "86"}`` (number and country optional) mints a
``getPhoneNumber`` code for that user, as the client's button would get it.
"""

import json
import logging
import re

import tornado.web

from server.fakes.base import OPENID, FakePlatform

log = logging.getLogger("minisession.fakes")


class _FakesHandler(tornado.web.RequestHandler):
    def initialize(self, fakes: dict[str, FakePlatform]) -> None:
        self.fakes = fakes

    def json_body(self) -> dict:
        """The request's JSON object, or {} for anything else (the caller names what is
        missing)."""
        try:
            body = json.loads(self.request.body)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}


class LoginHandler(_FakesHandler):
    """``POST /fake/login`` ``{"openid": ..., "platform": ...}`` -> ``{"code": ...}``."""

    def post(self) -> None:
        body = self.json_body()
        openid = body.get("openid")
        fake = self.fakes.get(body.get("platform") or next(iter(self.fakes)))
        if fake is None or not isinstance(openid, str) or not re.fullmatch(OPENID, openid):
            self.set_status(400)
            return self.write({"error": 'send {"openid": "...", "platform": "..."}: 1-64 '
                                        f"letters, digits, _ or -; platforms: {list(self.fakes)}"})
        self.write({"code": fake.mint_code(openid)})


class StatsHandler(_FakesHandler):
    """``GET /fake/stats``: how many login calls each platform has been asked."""

    def get(self) -> None:
        stats = {"calls": {name: fake.calls for name, fake in self.fakes.items()}}
        if "wechat" in self.fakes:  # the name minisession fake-wechat always used
            stats["jscode2session_calls"] = self.fakes["wechat"].calls
            stats["user_calls"] = dict(self.fakes["wechat"].user_calls)
            stats["stable_token_calls"] = self.fakes["wechat"].access_tokens.calls
        self.write(stats)


class AccessTokenHandler(_FakesHandler):
    """``POST /fake/access_token/(check|invalidate|delay)``: WeChat's tokens, for tests."""

    def post(self, action: str) -> None:
        body = self.json_body()
        fake = self.fakes.get("wechat")
        if fake is None:
            self.set_status(404)
            return self.write({"error": "no fake WeChat here"})
        tokens = fake.access_tokens
        if action == "check" and isinstance(body.get("access_token"), str):
            return self.write({"valid": fake.token_valid(body["access_token"])})
        if action == "invalidate":
            return self.write({"invalidated": tokens.invalidate_all()})
        seconds = body.get("seconds")
        if action == "delay" and isinstance(seconds, int | float) and 0 <= seconds <= 600:
            tokens.delay = float(seconds)
            return self.write({"delay": tokens.delay})
        self.set_status(400)
        self.write({"error": 'check {"access_token": ...}, invalidate {}, or delay '
                             '{"seconds": 0-600}'})


class PhoneCodeHandler(_FakesHandler):
    """``POST /fake/phone`` ``{"openid", "phoneNumber"?, "countryCode"?}`` -> ``{"code"}``:
    what WeChat's getPhoneNumber button gives the client."""

    def post(self) -> None:
        body = self.json_body()
        openid, number = body.get("openid"), body.get("phoneNumber")
        country = body.get("countryCode", "86")
        fake = self.fakes.get("wechat")
        if fake is None or not isinstance(openid, str) or not re.fullmatch(OPENID, openid) \
                or not (number is None or isinstance(number, str) and number.isdigit()) \
                or not (isinstance(country, str) and country.isdigit()):
            self.set_status(400)
            return self.write({"error": 'send {"openid": "...", "phoneNumber": "<digits>", '
                                        '"countryCode": "<digits>"} (number, country optional)'})
        self.write({"code": fake.phone_codes.mint(openid, number, country)})


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Path only: query strings and bodies hold secrets and login codes, which no log shows.
    request = handler.request
    log.info("%d %s %s %.1fms", handler.get_status(), request.method, request.path,
             1000 * request.request_time())


def make_app(*fakes: FakePlatform) -> tornado.web.Application:
    """The fake platforms' APIs as one Tornado application, each under ``/<platform>``."""
    by_name = {fake.platform: fake for fake in fakes}
    routes = []
    for fake in fakes:
        prefix = "/" + re.escape(fake.platform)
        routes += [(prefix + pattern, handler, args) for pattern, handler, args in fake.routes()]
    if "wechat" in by_name:
        routes += by_name["wechat"].routes()
    routes += [(r"/fake/login", LoginHandler, {"fakes": by_name}),
               (r"/fake/stats", StatsHandler, {"fakes": by_name}),
               (r"/fake/access_token/(check|invalidate|delay)", AccessTokenHandler,
                {"fakes": by_name}),
               (r"/fake/phone", PhoneCodeHandler, {"fakes": by_name})]
    return tornado.web.Application(routes, log_function=_log_request)
