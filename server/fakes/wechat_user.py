"""Fake WeChat server-side calls about one user, each carrying the app's access_token:

``GET /wxa/checksession?access_token=&openid=&signature=&sig_method=hmac_sha256``
    errcode 0 when ``signature`` is the hex HMAC-SHA256 of an empty message keyed with the
    user's current session_key (its base64 *text*, as UTF-8 bytes), else 87009.
``GET /wxa/resetusersessionkey?access_token=&openid=&signature=&sig_method=hmac_sha256``
    (signed alike with the current key) issues the user a new session_key, the old one no
    longer valid: ``{errcode: 0, errmsg, openid, session_key}``.
``POST /wxa/business/getuserphonenumber?access_token=`` JSON ``{code, openid?}``
    a phone code (minted with :meth:`FakePhoneCodes.mint`, or ``POST /fake/phone`` in
    :mod:`server.fakes`) works once, for 5 minutes, and only for its user when ``openid`` is
    given; 40029 otherwise. Success: ``phone_info {phoneNumber, purePhoneNumber, countryCode,
    watermark {timestamp, appid}}``.

The user's session_keys are those code2Session handed out (``fake.session_keys``, newest
last). The access_token is checked by ``fake.access_token_errcode(token)`` first (0: valid,
else that errcode: 40001, 42001...). Every call is counted in ``fake.user_calls`` by API and
waits ``fake.delay`` seconds first, as code2Session does (a slow platform).
"""

import asyncio
import hashlib
import hmac
import json
import secrets

from server.fakes.base import CODE_LIFETIME, FakeHandler

_ERRMSG = {40001: "invalid credential, access_token is invalid or not latest",
           40003: "invalid openid", 40014: "invalid access_token", 40029: "invalid code",
           41001: "access_token missing", 42001: "access_token expired",
           47001: "data format error", 87008: "invalid sig_method", 87009: "invalid signature"}


def error(errcode: int) -> dict:
    return {"errcode": errcode,
            "errmsg": f"{_ERRMSG.get(errcode, 'fake error')} rid: {secrets.token_hex(12)}"}


def signature(session_key: str, message: bytes = b"") -> str:
    """What WeChat expects: hex HMAC-SHA256 of the message (empty for these GETs), keyed with
    the session_key's base64 text as UTF-8 bytes (not the decoded key)."""
    return hmac.new(session_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def default_phone(openid: str) -> str:
    """A mainland mobile number of 11 digits, the same for an openid every time."""
    digits = int(hashlib.sha256(openid.encode()).hexdigest(), 16) % 10**8
    return f"139{digits:08d}"


class FakePhoneCodes:
    """``getPhoneNumber`` codes: one-time, 5 minutes, each for one user's number."""

    def __init__(self, clock):
        self.clock = clock
        self.issued: dict[str, tuple[str, str, str, float]] = {}  # code -> openid, number...
        self.used: set[str] = set()

    def mint(self, openid: str, phone: str | None = None, country_code: str = "86") -> str:
        """A fresh code, as the client's ``getPhoneNumber`` button gives it."""
        code = secrets.token_hex(32)
        self.issued[code] = (openid, phone or default_phone(openid), country_code,
                             self.clock.now())
        return code

    def spend(self, code: str, openid: str | None) -> tuple[str, str] | None:
        """(number, country code) for a valid code, spending it; None otherwise."""
        if code in self.used:
            return None
        minted = self.issued.pop(code, None)
        if minted is None:
            return None
        self.used.add(code)
        owner, number, country_code, issued_at = minted
        if self.clock.now() - issued_at > CODE_LIFETIME or openid not in (None, owner):
            return None
        return number, country_code


class _UserCall(FakeHandler):
    api = "abstract"

    async def token_refused(self) -> bool:
        """Count the call and wait the fake's delay; answer the access_token's errcode and
        True if it is refused."""
        self.fake.user_calls[self.api] += 1
        if self.fake.delay:
            await asyncio.sleep(self.fake.delay)
        token = self.get_query_argument("access_token", "")
        errcode = self.fake.access_token_errcode(token) if token else 41001
        if errcode:
            self.write(error(errcode))
            return True
        return False

    def signed_user(self) -> str | None:
        """The openid, when the request is signed with its current session_key; else the
        error is written and None returned."""
        if self.get_query_argument("sig_method", "") != "hmac_sha256":
            self.write(error(87008))
            return None
        openid = self.get_query_argument("openid", "")
        keys = self.fake.session_keys.get(openid)
        if not keys:
            self.write(error(40003))
            return None
        sent = self.get_query_argument("signature", "").encode()
        if not hmac.compare_digest(sent, signature(keys[-1]).encode()):
            self.write(error(87009))
            return None
        return openid


class CheckSessionHandler(_UserCall):
    api = "checksession"

    async def get(self) -> None:
        if await self.token_refused() or self.signed_user() is None:
            return
        self.write({"errcode": 0, "errmsg": "ok"})


class ResetUserSessionKeyHandler(_UserCall):
    api = "resetusersessionkey"

    async def get(self) -> None:
        if await self.token_refused() or (openid := self.signed_user()) is None:
            return
        self.write({"errcode": 0, "errmsg": "ok", "openid": openid,
                    "session_key": self.fake.reset_session_key(openid)})


class GetUserPhoneNumberHandler(_UserCall):
    api = "getuserphonenumber"

    async def post(self) -> None:
        if await self.token_refused():
            return
        try:
            body = json.loads(self.request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("code"), str):
            return self.write(error(47001))
        openid = body.get("openid") if isinstance(body.get("openid"), str) else None
        phone = self.fake.phone_codes.spend(body["code"], openid)
        if phone is None:
            return self.write(error(40029))
        number, country_code = phone
        self.write({"errcode": 0, "errmsg": "ok", "phone_info": {
            "phoneNumber": number if country_code == "86" else f"+{country_code} {number}",
            "purePhoneNumber": number, "countryCode": country_code,
            "watermark": {"timestamp": int(self.fake.clock.now()), "appid": self.fake.appid}}})


def routes(fake) -> list:
    return [(r"/wxa/checksession", CheckSessionHandler, {"fake": fake}),
            (r"/wxa/resetusersessionkey", ResetUserSessionKeyHandler, {"fake": fake}),
            (r"/wxa/business/getuserphonenumber", GetUserPhoneNumberHandler, {"fake": fake})]
