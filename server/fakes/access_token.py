"""Fake WeChat access_tokens: ``POST /cgi-bin/stable_token`` and one API that checks them.

``stable_token`` (JSON ``{grant_type: "client_credential", appid, secret, force_refresh}``):

- normal mode answers the current token while it is valid, with the seconds it has left; in
  its last 5 minutes it issues a new one (2 hours), the old one staying valid until it
  expires (the 5-minute overlap);
- ``force_refresh: true`` issues a new one and invalidates every earlier one at once.

Wrong ``grant_type`` -> 40002, wrong appid -> 40013, wrong secret -> 40001 (stable_token's
"invalid credential"). ``GET /cgi-bin/getcallbackip?access_token=`` is a real WeChat API that
does nothing but check the token: ``{"ip_list": [...]}``, or 40001 for a token never issued
or invalidated, 42001 for an expired one. Calls that use a token elsewhere check it with
:meth:`FakeAccessTokens.errcode` (the fake's ``token_valid(token)`` for tests).

Tests drive it through ``/fake/access_token/...`` (see :mod:`server.fakes`): check a token,
invalidate every token (so the next call gets 40001), delay ``stable_token`` answers.
"""

import asyncio
import hmac
import json
import secrets

from server.fakes.base import FakeHandler

TOKEN_LIFETIME = 7200
#: stable_token renews a token this long before it expires; old and new overlap that long.
RENEWAL_WINDOW = 300
_ERRMSG = {40001: "invalid credential, access_token is invalid or not latest",
           40002: "invalid grant_type", 40013: "invalid appid",
           42001: "access_token expired"}


def token_error(errcode: int) -> dict:
    return {"errcode": errcode,
            "errmsg": f"{_ERRMSG.get(errcode, 'fake error')}, rid: {secrets.token_hex(12)}"}


class FakeAccessTokens:
    """One app's access_tokens as WeChat hands them out, by the fake's clock."""

    def __init__(self, clock):
        self.clock = clock
        self.expiry: dict[str, float] = {}  # every token still valid (until expiry) -> expiry
        self.current: str | None = None
        #: stable_token calls answered or being answered, by mode.
        self.calls = {"normal": 0, "force": 0}
        #: Seconds every stable_token answer waits (a slow or stuck platform).
        self.delay = 0.0

    def issue(self, force: bool) -> tuple[str, int]:
        """A token and its expires_in, as stable_token gives them."""
        now = self.clock.now()
        current_expiry = self.expiry.get(self.current) if self.current else None
        if force:
            self.expiry.clear()  # every earlier token stops working at once
        elif current_expiry is not None and current_expiry - now > RENEWAL_WINDOW:
            return self.current, int(current_expiry - now)
        # None yet, expired, or in its last 5 minutes (it stays valid: the overlap).
        self.current = secrets.token_urlsafe(96)[:128]  # as long as WeChat's
        self.expiry[self.current] = now + TOKEN_LIFETIME
        return self.current, TOKEN_LIFETIME

    def errcode(self, token: str) -> int:
        """0 for a token a call may use; 40001 never issued or invalidated; 42001 expired."""
        expiry = self.expiry.get(token)
        if expiry is None:
            return 40001
        return 0 if expiry > self.clock.now() else 42001

    def invalidate_all(self) -> int:
        """Make every token invalid (as if another server forced a refresh); how many."""
        count = len(self.expiry)
        self.expiry.clear()
        return count


class StableTokenHandler(FakeHandler):
    """``POST /cgi-bin/stable_token``."""

    async def post(self) -> None:
        tokens: FakeAccessTokens = self.fake.access_tokens
        try:
            body = json.loads(self.request.body)
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        force = body.get("force_refresh") is True
        tokens.calls["force" if force else "normal"] += 1
        if tokens.delay:
            await asyncio.sleep(tokens.delay)
        if body.get("grant_type") != "client_credential":
            return self.write(token_error(40002))
        if body.get("appid") != self.fake.appid:
            return self.write(token_error(40013))
        if not hmac.compare_digest(str(body.get("secret", "")).encode(),
                                   self.fake.secret.encode()):
            return self.write(token_error(40001))
        token, expires_in = tokens.issue(force)
        self.write({"access_token": token, "expires_in": expires_in})


class GetCallbackIpHandler(FakeHandler):
    """``GET /cgi-bin/getcallbackip?access_token=``: a call that only needs a valid token."""

    def get(self) -> None:
        errcode = self.fake.access_tokens.errcode(self.get_query_argument("access_token", ""))
        if errcode:
            return self.write(token_error(errcode))
        self.write({"ip_list": ["101.226.103.0/25", "101.226.233.128/25"]})


def routes(fake) -> list:
    return [(r"/cgi-bin/stable_token", StableTokenHandler, {"fake": fake}),
            (r"/cgi-bin/getcallbackip", GetCallbackIpHandler, {"fake": fake})]
