"""The fake WeChat's calls about one user (issue 13): checksession, resetusersessionkey and
getuserphonenumber, over HTTP, each counted and checking the access_token."""

import json
import secrets
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient

from server.clock import FakeClock
from server.fakes.wechat import FakeWeChat
from server.fakes.wechat_user import signature
from tests.conftest import WECHAT_APPID, WECHAT_SECRET, serve_fakes

KEY = "o0q0otL8aEzpcZL/FT9WsQ=="


@pytest.fixture
def fake():
    return FakeWeChat(appid=WECHAT_APPID, secret=WECHAT_SECRET, clock=FakeClock())


@pytest.fixture
def token(fake):
    """A valid access_token, as stable_token hands it out."""
    return fake.access_tokens.issue(force=False)[0]


@pytest.fixture
def base(io_loop, fake):
    yield from serve_fakes(io_loop, fake)


async def call(base, path, method="GET", body=None, **params):
    response = await AsyncHTTPClient().fetch(
        f"{base}{path}?{urlencode(params)}", method=method, raise_error=False,
        body=None if body is None else json.dumps(body))
    assert response.code == 200
    return json.loads(response.body)


def test_the_signature_reproduces_the_published_example():
    assert signature(KEY, b'{"foo":"bar"}') == (
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b")


@pytest.mark.gen_test(timeout=20)
async def test_checksession_and_reset(base, fake, token):
    fake.upcoming_session_keys["alice"] = [KEY]
    fake.new_session_key("alice")  # as code2Session hands it out

    async def check(key, **extra):
        params = {"access_token": token, "openid": "alice", "signature": signature(key),
                  "sig_method": "hmac_sha256"} | extra
        return await call(base, "/wxa/checksession", **params)

    assert (await check(KEY))["errcode"] == 0
    assert (await check("another-key"))["errcode"] == 87009
    assert (await check(KEY, sig_method="md5"))["errcode"] == 87008
    assert (await check(KEY, openid="nobody"))["errcode"] == 40003
    assert (await check(KEY, access_token="never-issued"))["errcode"] == 40001
    assert (await check(KEY, access_token=""))["errcode"] == 41001

    reset = await call(base, "/wxa/resetusersessionkey", access_token=token, openid="alice",
                       signature=signature(KEY), sig_method="hmac_sha256")
    assert reset["errcode"] == 0 and reset["openid"] == "alice"
    assert reset["session_key"] != KEY
    assert fake.session_keys["alice"][-1] == reset["session_key"]
    assert (await check(KEY))["errcode"] == 87009  # the old key is no longer valid
    assert (await check(reset["session_key"]))["errcode"] == 0
    assert fake.user_calls == {"checksession": 8, "resetusersessionkey": 1}
    assert fake.calls == 0  # login calls are counted apart
    fake.access_tokens.invalidate_all()  # another server forced a new token
    assert (await check(reset["session_key"]))["errcode"] == 40001
    fake.clock.advance(7200)
    assert (await check(reset["session_key"], access_token=fake.access_tokens.issue(False)[0],
                        ))["errcode"] == 0


@pytest.mark.gen_test(timeout=20)
async def test_phone_codes_work_once_for_five_minutes_for_their_user(base, fake, token):
    async def phone(code, **extra):
        return await call(base, "/wxa/business/getuserphonenumber", method="POST",
                          body={"code": code, **extra}, access_token=token)

    code = fake.phone_codes.mint("alice", "13800138000")
    answer = await phone(code, openid="alice")
    assert answer["errcode"] == 0
    assert answer["phone_info"] == {
        "phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86",
        "watermark": {"timestamp": int(fake.clock.now()), "appid": WECHAT_APPID}}
    assert (await phone(code))["errcode"] == 40029  # used
    assert (await phone(secrets.token_hex(32)))["errcode"] == 40029  # never issued
    assert (await phone(fake.phone_codes.mint("bob"), openid="alice"))["errcode"] == 40029
    late = fake.phone_codes.mint("alice")
    fake.clock.advance(301)
    assert (await phone(late))["errcode"] == 40029  # expired
    abroad = fake.phone_codes.mint("carol", "2025550123", "1")
    assert (await phone(abroad))["phone_info"]["phoneNumber"] == "+1 2025550123"
    assert fake.user_calls["getuserphonenumber"] == 6

    # Minted over HTTP, as a client or another process does.
    response = await AsyncHTTPClient().fetch(f"{base}/fake/phone", method="POST",
                                             body=json.dumps({"openid": "dan"}))
    minted = json.loads(response.body)["code"]
    assert (await phone(minted, openid="dan"))["phone_info"]["purePhoneNumber"].isdigit()
    bad = await AsyncHTTPClient().fetch(f"{base}/fake/phone", method="POST",
                                        body=json.dumps({"openid": "x y"}), raise_error=False)
    assert bad.code == 400
    stats = json.loads((await AsyncHTTPClient().fetch(f"{base}/fake/stats")).body)
    assert stats["user_calls"] == {"getuserphonenumber": 7}
