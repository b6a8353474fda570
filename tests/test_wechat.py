"""The WeChat login provider against the fake WeChat server, over real loopback sockets."""

import asyncio
import logging
import time

import httpx
import pytest
import tornado.httpserver
import tornado.testing

from server.platforms import AppCredentials, ProviderError
from server.platforms.wechat import WeChatLoginProvider
from tests.conftest import WECHAT_APPID as APPID
from tests.conftest import WECHAT_SECRET as SECRET


@pytest.fixture
def make_provider(io_loop, api_base):
    """Builds providers pointed at the fake (real credentials unless overridden), closed after."""
    providers = []

    def make(appid=APPID, secret=SECRET, timeout=5.0, base=None):
        provider = WeChatLoginProvider(AppCredentials(
            name="shop", platform="wechat", appid=appid, secret=secret, api_base=base or api_base,
            timeout=timeout))
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        io_loop.run_sync(provider.close, timeout=5)


async def exchange_error(provider, code) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.exchange(code)
    return caught.value


@pytest.mark.gen_test(timeout=10)
async def test_minted_code_logs_in_once(fake, make_provider):
    provider = make_provider()
    code = fake.mint_code("alice")
    identity = await provider.exchange(code)
    assert identity.openid == "alice"
    assert identity.session_key

    # A code is single-use: replaying it is the client's cue to call wx.login again.
    err = await exchange_error(provider, code)
    assert err.code == "code_invalid"
    assert "wx.login" in err.message


@pytest.mark.gen_test(timeout=10)
async def test_code_expires_after_five_minutes(fake, make_provider):
    provider = make_provider()
    code = fake.mint_code("alice")
    fake.clock.advance(301)
    err = await exchange_error(provider, code)
    assert err.code == "code_invalid"


@pytest.mark.gen_test(timeout=10)
async def test_each_login_brings_a_fresh_session_key(fake, make_provider):
    provider = make_provider()
    first = await provider.exchange(fake.mint_code("alice"))
    second = await provider.exchange(fake.mint_code("alice"))
    assert first.openid == second.openid == "alice"
    assert first.session_key != second.session_key


@pytest.mark.gen_test(timeout=10)
async def test_magic_user_codes_are_single_use_and_can_run_concurrently(make_provider):
    provider = make_provider()
    one, two = await asyncio.gather(provider.exchange("user:alice:1"),
                                    provider.exchange("user:alice:2"))
    assert one.openid == two.openid == "alice"
    assert one.session_key != two.session_key
    err = await exchange_error(provider, "user:alice:1")
    assert err.code == "code_invalid"


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("unionid", [True, False])
@pytest.mark.parametrize("errcode_zero", [True, False])
async def test_unionid_only_when_wechat_sends_it(fake, make_provider, unionid, errcode_zero):
    fake.unionid = unionid
    fake.errcode_zero = errcode_zero  # some real successes carry "errcode": 0, some do not
    identity = await make_provider().exchange("user:bob")
    assert identity.openid == "bob"
    assert identity.unionid == ("union-bob" if unionid else None)


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("errcode, code, retry_after", [
    (-1, "platform_busy", 1),
    (40029, "code_invalid", None),
    (40163, "code_invalid", None),
    (40226, "user_blocked", None),
    (45011, "platform_rate_limited", 60),
    (40125, "platform_misconfigured", None),
    (40013, "platform_misconfigured", None),
    (40002, "platform_error", None),
    (99999, "platform_error", None),
])
async def test_errcodes_map_to_generic_codes(make_provider, errcode, code, retry_after):
    err = await exchange_error(make_provider(), f"err:{errcode}")
    assert (err.code, err.retry_after, err.app) == (code, retry_after, "shop")
    # The platform's own code stays in the message, for whoever reads it.
    assert err.message.startswith(f"WeChat errcode {errcode}")


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("credentials, errcode", [
    ({"secret": "wrong-secret"}, "40125"),
    ({"appid": "wx-wrong-appid"}, "40013"),
])
async def test_misconfiguration_is_logged_for_the_operator(
        make_provider, caplog, credentials, errcode):
    caplog.set_level(logging.DEBUG)
    err = await exchange_error(make_provider(**credentials), "user:alice")
    assert err.code == "platform_misconfigured"
    errors = [r for r in caplog.records
              if r.name == "minisession.platforms" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and errcode in errors[0].getMessage()


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("code", ["http500", "garbage", "nojson-object"])
async def test_unreadable_answers_are_unavailable(make_provider, code):
    err = await exchange_error(make_provider(), code)
    assert err.code == "platform_unavailable"


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("how", ["slow code", "slow server"])
async def test_timeout_is_quick_and_never_retried(fake, make_provider, how):
    provider = make_provider(timeout=0.3)
    if how == "slow code":
        code = "slow:2:bob"
    else:
        fake.delay = 2
        code = fake.mint_code("bob")
    started = time.monotonic()
    err = await exchange_error(provider, code)
    assert time.monotonic() - started < 1.5
    assert err.code == "platform_timeout"
    # A retry would have spent a second call on an already consumed code.
    assert fake.jscode2session_calls == 1


@pytest.mark.gen_test(timeout=10)
async def test_nothing_listening_is_unavailable(make_provider):
    sock, port = tornado.testing.bind_unused_port()
    sock.close()  # the port is now free and nothing listens on it
    provider = make_provider(base=f"http://127.0.0.1:{port}")
    started = time.monotonic()
    err = await exchange_error(provider, "user:alice")
    assert time.monotonic() - started < 1.5
    assert err.code == "platform_unavailable"


@pytest.mark.gen_test(timeout=10)
async def test_no_secret_code_or_session_key_in_logs_or_errors(fake, make_provider, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx and the fake's access log included
    code = fake.mint_code("alice")
    identity = await make_provider().exchange(code)
    wrong_secret = "wrong-secret-fedcba9876543210"
    err = await exchange_error(make_provider(secret=wrong_secret), "user:carol:42")

    assert caplog.records  # the requests were logged, just not their secrets
    for text in [r.getMessage() for r in caplog.records] + [str(err), err.message]:
        for secret in (SECRET, wrong_secret, code, "user:carol:42", identity.session_key):
            assert secret not in text
    assert identity.session_key not in repr(identity)


@pytest.mark.gen_test(timeout=10)
async def test_fake_login_endpoint_mints_codes_and_stats_count_calls(fake, api_base, make_provider):
    async with httpx.AsyncClient(base_url=api_base, timeout=5) as client:
        minted = await client.post("/fake/login", json={"openid": "dave"})
        assert minted.status_code == 200
        identity = await make_provider().exchange(minted.json()["code"])
        assert identity.openid == "dave"
        assert (await client.post("/fake/login", json={"openid": ""})).status_code == 400
        stats = await client.get("/fake/stats")
    assert stats.json() == {"jscode2session_calls": 1, "calls": {"wechat": 1},
                            "stable_token_calls": {"normal": 0, "force": 0}}
