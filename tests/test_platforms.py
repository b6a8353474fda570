"""Every platform's provider against its fake, over real loopback HTTP (httpx -> Tornado).

WeChat has its own, older file (tests/test_wechat.py); here every platform runs the same checks
(a login, a code used twice or too late, wrong credentials, broken answers, timeouts), then each
platform's own error table, Douyin's anonymous logins, Alipay's signatures, logins through
minisession's ``/login``, and ``minisession fake-platforms`` as a real process.
"""

import logging
import subprocess
import sys
import time

import httpx
import pytest
import tornado.httpserver
import tornado.testing

from server.clock import FakeClock
from server.fakes.alipay import FakeAlipay, generate_key_pair
from server.fakes.baidu import FakeBaidu
from server.fakes.cli import alipay_keys as write_alipay_keys
from server.fakes.douyin import FakeDouyin
from server.fakes.kuaishou import FakeKuaishou
from server.fakes.wechat import FakeQQ, FakeWeChat
from server.platforms import PLATFORMS, AppCredentials, ProviderError, make_provider
from server.platforms.alipay import top_level_members
from tests.conftest import on_both_stores, run_minisession, serve_fakes
from devtools.processes import _Process

APPID = "fake-appid-0123"
SECRET = "platform-secret-0123456789abcdef"
HTTP_PLATFORMS = ["wechat", "qq", "douyin", "baidu", "kuaishou", "alipay"]
WITH_UNIONID = {"wechat", "qq", "douyin"}
FAKES = {"wechat": FakeWeChat, "qq": FakeQQ, "douyin": FakeDouyin, "baidu": FakeBaidu,
         "kuaishou": FakeKuaishou}


@pytest.fixture(scope="module")
def alipay_keys():
    """The app's key pair and the fake Alipay's: (private, public) PEM each."""
    return {"app": generate_key_pair(), "alipay": generate_key_pair()}


@pytest.fixture
def fakes(alipay_keys):
    clock = FakeClock()
    made = {name: cls(appid=APPID, secret=SECRET, clock=clock, unionid=True)
            for name, cls in FAKES.items()}
    made["alipay"] = FakeAlipay(alipay_keys["app"][1], alipay_keys["alipay"][0], appid=APPID,
                                clock=clock)
    return made


@pytest.fixture
def fake_base(io_loop, fakes):
    """Every fake platform served on the test's IOLoop, on one free loopback port."""
    yield from serve_fakes(io_loop, *fakes.values())


def credentials(platform, base, alipay_keys, **overrides) -> AppCredentials:
    values = dict(name="shop", platform=platform, appid=APPID, secret=SECRET,
                  api_base=f"{base}/{platform}", timeout=5.0)
    if platform == "alipay":
        values.update(secret="", private_key_pem=alipay_keys["app"][0],
                      platform_public_key_pem=alipay_keys["alipay"][1])
    values.update(overrides)
    return AppCredentials(**values)


@pytest.fixture
def provider_for(io_loop, fake_base, alipay_keys):
    """Builds providers pointed at the fakes (right credentials unless overridden)."""
    providers = []

    def make(platform, **overrides):
        provider = make_provider(credentials(platform, fake_base, alipay_keys, **overrides))
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        io_loop.run_sync(provider.close, timeout=5)


async def failure(provider, code, anonymous_code=None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.exchange(code, anonymous_code)
    return caught.value


# -- the same checks on every platform ---------------------------------------------------------

@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
async def test_a_minted_code_logs_in_once(platform, fakes, provider_for):
    fake, provider = fakes[platform], provider_for(platform)
    code = fake.mint_code("alice")
    identity = await provider.exchange(code)
    assert identity.openid == "alice" and not identity.anonymous
    if platform == "alipay":
        assert identity.session_key is None  # Alipay has none
    else:
        # The key the platform issued, kept out of repr (and so out of log lines).
        assert identity.session_key == fake.session_keys["alice"][-1]
        assert identity.session_key not in repr(identity)
    assert identity.unionid == ("union-alice" if platform in WITH_UNIONID else None)

    again = await failure(provider, code)
    assert (again.code, again.app) == ("code_invalid", "shop")
    assert "again for a new code" in again.message


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
async def test_a_code_expires(platform, fakes, provider_for):
    code = fakes[platform].mint_code("alice")
    fakes[platform].clock.advance(301)
    assert (await failure(provider_for(platform), code)).code == "code_invalid"


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", ["wechat", "qq", "douyin"])
async def test_no_unionid_when_the_platform_sends_none(platform, fakes, provider_for):
    fakes[platform].unionid = False
    identity = await provider_for(platform).exchange("user:bob")
    assert (identity.openid, identity.unionid) == ("bob", None)


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
@pytest.mark.parametrize("wrong", ["appid", "secret"])
async def test_wrong_credentials_are_the_operators_to_fix(platform, wrong, provider_for,
                                                          alipay_keys, caplog):
    if wrong == "appid":
        override = {"appid": "another-appid"}
    elif platform == "alipay":  # Alipay's "secret" is the key the request is signed with
        override = {"private_key_pem": generate_key_pair()[0]}
    else:
        override = {"secret": "wrong-secret-fedcba9876543210"}
    error = await failure(provider_for(platform, **override), "user:alice")
    assert (error.code, error.app) == ("platform_misconfigured", "shop")
    assert SECRET not in error.message and "user:alice" not in error.message
    # Logged for the operator, naming the app.
    assert any(r.levelno == logging.ERROR and "app shop" in r.getMessage()
               for r in caplog.records if r.name == "minisession.platforms")


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
@pytest.mark.parametrize("code", ["http500", "garbage", "nojson-object", "empty-object"])
async def test_unreadable_answers_are_unavailable(platform, code, provider_for):
    error = await failure(provider_for(platform), code)
    assert error.code == "platform_unavailable"


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
async def test_a_slow_platform_times_out_once_and_is_never_retried(platform, fakes,
                                                                   provider_for):
    provider = provider_for(platform, timeout=0.3)
    started = time.monotonic()
    error = await failure(provider, "slow:2:bob")
    assert time.monotonic() - started < 1.5
    assert error.code == "platform_timeout"
    assert fakes[platform].calls == 1  # a retry would spend the code a second time


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", HTTP_PLATFORMS)
async def test_nothing_listening_is_unavailable(platform, provider_for):
    sock, port = tornado.testing.bind_unused_port()
    sock.close()  # the port is now free and nothing listens on it
    provider = provider_for(platform, api_base=f"http://127.0.0.1:{port}")
    assert (await failure(provider, "user:alice")).code == "platform_unavailable"


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform", PLATFORMS)
async def test_no_code_is_code_invalid_without_a_call(platform, fakes, provider_for):
    error = await failure(provider_for(platform), None)
    assert error.code == "code_invalid"
    assert all(fake.calls == 0 for fake in fakes.values())


# -- each platform's own error answers -------------------------------------------------------

ERRORS = [
    # platform, magic code, generic code, retry_after, start of the message
    ("qq", "err:-1", "platform_busy", 1, "QQ errcode -1: system error"),
    ("qq", "err:40029", "code_invalid", None, "QQ errcode 40029: invalid code"),
    ("qq", "err:40226", "user_blocked", None, "QQ errcode 40226"),
    ("qq", "err:45011", "platform_rate_limited", 60, "QQ errcode 45011"),
    ("qq", "err:40013", "platform_misconfigured", None, "QQ errcode 40013"),
    ("qq", "err:40002", "platform_error", None, "QQ errcode 40002"),
    ("douyin", "err:-1", "platform_busy", 1, "Douyin err_no -1: system error"),
    ("douyin", "err:40018", "code_invalid", None, "Douyin err_no 40018: bad code"),
    ("douyin", "err:40019", "code_invalid", None, "Douyin err_no 40019"),
    ("douyin", "err:40015", "platform_misconfigured", None, "Douyin err_no 40015: bad appid"),
    ("douyin", "err:40017", "platform_misconfigured", None, "Douyin err_no 40017"),
    ("douyin", "err:40014", "platform_error", None, "Douyin err_no 40014"),
    ("baidu", "err:invalid_grant", "code_invalid", None, "Baidu error invalid_grant: "),
    ("baidu", "err:expired_token", "code_invalid", None, "Baidu error expired_token"),
    ("baidu", "err:invalid_client", "platform_misconfigured", None, "Baidu error invalid_client"),
    ("baidu", "err:slow_down", "platform_rate_limited", 60, "Baidu error slow_down"),
    ("baidu", "err:server_error", "platform_error", None, "Baidu error server_error"),
    ("kuaishou", "err:240001", "code_invalid", None, "Kuaishou result 240001: invalid code"),
    ("kuaishou", "err:240002", "platform_misconfigured", None, "Kuaishou result 240002"),
    ("kuaishou", "err:100", "platform_error", None, "Kuaishou result 100"),
    ("alipay", "err:isv.code-invalid", "code_invalid", None,
     "Alipay code 40002 (isv.code-invalid): Invalid Arguments auth code invalid"),
    ("alipay", "err:isv.invalid-app-id", "platform_misconfigured", None,
     "Alipay code 40002 (isv.invalid-app-id)"),
    ("alipay", "err:isv.app-call-limited", "platform_rate_limited", 60,
     "Alipay code 40004 (isv.app-call-limited)"),
    ("alipay", "err:20000", "platform_busy", 1, "Alipay code 20000: Service Currently"),
    ("alipay", "err:40006", "platform_misconfigured", None, "Alipay code 40006"),
    ("alipay", "err:isv.other-thing", "platform_error", None, "Alipay code 40004 (isv.other"),
]


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("platform, code, generic, retry_after, message", ERRORS,
                         ids=[f"{e[0]}-{e[1]}" for e in ERRORS])
async def test_platform_errors_map_to_generic_codes(platform, code, generic, retry_after,
                                                    message, provider_for):
    error = await failure(provider_for(platform), code)
    assert (error.code, error.retry_after) == (generic, retry_after)
    assert error.message.startswith(message)


# -- Douyin: anonymous logins ----------------------------------------------------------------

@pytest.mark.gen_test(timeout=10)
async def test_douyin_anonymous_code_alone_is_an_anonymous_identity(provider_for):
    identity = await provider_for("douyin").exchange(None, anonymous_code="user:bob")
    assert identity.anonymous
    assert (identity.openid, identity.anonymous_openid, identity.unionid) == (None, "anon-bob",
                                                                              None)
    assert identity.session_key


@pytest.mark.gen_test(timeout=10)
async def test_douyin_code_and_anonymous_code_link_the_two(fakes, provider_for):
    fake = fakes["douyin"]
    identity = await provider_for("douyin").exchange(fake.mint_code("bob"),
                                                     anonymous_code=fake.mint_code("bob"))
    assert (identity.openid, identity.anonymous_openid, identity.unionid) == (
        "bob", "anon-bob", "union-bob")


@pytest.mark.gen_test(timeout=10)
async def test_douyin_bad_anonymous_code_is_code_invalid(provider_for):
    error = await failure(provider_for("douyin"), None, anonymous_code="not-a-code")
    assert error.code == "code_invalid" and "40019" in error.message


# -- Alipay: signatures ----------------------------------------------------------------------

@pytest.mark.gen_test(timeout=10)
async def test_alipay_requests_are_signed_and_answers_verified(fakes, provider_for):
    # The fake checks the request's RSA2 signature with the app's public key: a login proves it.
    identity = await provider_for("alipay").exchange("user:carol")
    assert (identity.openid, identity.session_key, identity.unionid) == ("carol", None, None)
    fakes["alipay"].legacy_user_id = True  # older apps are told user_id, not open_id
    assert (await provider_for("alipay").exchange("user:dan")).openid == "dan"


@pytest.mark.gen_test(timeout=10)
@pytest.mark.parametrize("code", ["badsign:carol", "unsigned:carol"])
async def test_alipay_answers_it_did_not_sign_are_refused(code, provider_for, caplog):
    error = await failure(provider_for("alipay"), code)
    assert error.code == "platform_misconfigured"
    assert "signature" in error.message
    assert any("signature" in r.getMessage() and "app shop" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.gen_test(timeout=10)
async def test_alipay_with_the_wrong_public_key_configured_logs_nobody_in(provider_for):
    provider = provider_for("alipay", platform_public_key_pem=generate_key_pair()[1])
    assert (await failure(provider, "user:carol")).code == "platform_misconfigured"
    # Errors are signed too: a wrong key shows on them as well, not as a wrong code.
    assert (await failure(provider, "err:isv.code-invalid")).code == "platform_misconfigured"


@pytest.mark.gen_test(timeout=10)
async def test_alipay_keys_as_the_console_shows_them(alipay_keys, provider_for):
    """Alipay's key tool and console give bare base64, without PEM lines."""
    def bare(pem):
        return "".join(line for line in pem.splitlines() if not line.startswith("-----"))

    provider = provider_for("alipay", private_key_pem=bare(alipay_keys["app"][0]),
                            platform_public_key_pem=bare(alipay_keys["alipay"][1]))
    assert (await provider.exchange("user:erin")).openid == "erin"


def test_alipay_unusable_keys_fail_at_start(alipay_keys):
    for keys in ({"private_key_pem": "not a key"}, {"platform_public_key_pem": "bm9wZQ=="},
                 {"private_key_pem": None}):
        with pytest.raises(ValueError):
            make_provider(credentials("alipay", "http://127.0.0.1:1", alipay_keys, **keys))


def test_alipay_signed_text_is_the_exact_member_text():
    body = '{ "a_response" : {"x": "1",  "y":[1, {"z":"}"}]} ,"sign":"c2ln" }'
    assert top_level_members(body) == {"a_response": '{"x": "1",  "y":[1, {"z":"}"}]}',
                                       "sign": '"c2ln"'}
    for broken in ('[1]', '{"a":1} x', '{"a" 1}', '{"a":1,}', ''):
        with pytest.raises(ValueError):
            top_level_members(broken)


# -- the switch ------------------------------------------------------------------------------

def test_make_provider_knows_every_platform_and_only_those(alipay_keys):
    for platform in PLATFORMS:
        provider = make_provider(credentials(platform, "http://127.0.0.1:1", alipay_keys))
        assert provider.name == platform
    with pytest.raises(ValueError, match="unknown platform 'line'"):
        make_provider(credentials("line", "http://127.0.0.1:1", alipay_keys))


def test_credentials_and_identities_keep_secrets_out_of_repr(alipay_keys):
    app = credentials("alipay", "http://127.0.0.1:1", alipay_keys, secret=SECRET)
    assert SECRET not in repr(app) and "PRIVATE" not in repr(app)


# -- through minisession's /login ------------------------------------------------------------

@pytest.fixture
def login_platform():
    return "douyin"


@pytest.fixture
def server(config, store, clock, io_loop, login_platform, fake_base, alipay_keys):
    """minisession with one app on ``login_platform`` (served by the fakes), its provider
    configured as app "shop" (the name its warnings give)."""
    provider = make_provider(credentials(login_platform, fake_base, alipay_keys))
    yield from run_minisession(io_loop, config, clock=clock, store=store,
                               providers={"default": provider})


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_douyin_login_through_minisession_keeps_the_session_key_server_side(
        client, server, fakes, store):
    response = await client.login(fakes["douyin"].mint_code("frank"))
    assert response.code == 200 and response.json["openid"] == "frank"
    issued = fakes["douyin"].session_keys["frank"][-1]
    assert issued not in response.body.decode() and issued not in str(response.headers)
    assert await server.service.session_key("default", "frank") == issued


@pytest.mark.parametrize("login_platform", ["qq", "baidu", "kuaishou"])
@pytest.mark.gen_test(timeout=20)
async def test_other_platforms_log_in_through_minisession(client, fakes, login_platform):
    response = await client.login(fakes[login_platform].mint_code("gina"))
    assert (response.code, response.json["openid"]) == (200, "gina")


@pytest.mark.parametrize("code, status, error, retry_after", [
    ("err:40018", 400, "code_invalid", None),
    ("err:-1", 503, "platform_busy", "1"),
    ("err:40014", 502, "platform_error", None),
    ("garbage", 502, "platform_unavailable", None),
])
@pytest.mark.gen_test(timeout=20)
async def test_douyin_failures_through_minisession(client, code, status, error, retry_after):
    response = await client.login(code)
    assert (response.code, response.json["error"], response.headers.get("Retry-After")) == (
        status, error, retry_after)
    assert response.json["message"]
    assert "Set-Cookie" not in response.headers


@pytest.mark.gen_test(timeout=20)
async def test_misconfigured_app_is_502_with_a_warning_naming_it(client, caplog):
    response = await client.login("err:40017")
    assert (response.code, response.json["error"]) == (502, "platform_misconfigured")
    assert response.json["message"].startswith("Douyin err_no 40017")
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "minisession.http" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'shop'" in warnings[0]
    assert SECRET not in warnings[0]


# -- minisession fake-platforms, a real process ----------------------------------------------

class FakePlatformsProcess(_Process):
    def start(self, keys_dir, timeout: float = 20) -> "FakePlatformsProcess":
        self._spawn(["fake-platforms", "--port", "0", "--appid", APPID, "--secret", SECRET,
                     "--alipay-keys", str(keys_dir)], timeout)
        return self

    def secrets(self) -> set[str]:
        return {SECRET}


@pytest.mark.gen_test(timeout=60)
async def test_fake_platforms_command_serves_every_platform(tmp_path):
    keys_dir = tmp_path / "alipay-keys"
    process = FakePlatformsProcess(tmp_path, "fake-platforms").start(keys_dir)
    providers = []
    try:
        keys = {"app": (keys_dir.joinpath("app_private_key.pem").read_text(), None),
                "alipay": (None, keys_dir.joinpath("alipay_public_key.pem").read_text())}
        for platform in HTTP_PLATFORMS:
            async with httpx.AsyncClient(base_url=process.url, timeout=5) as http:
                minted = await http.post("/fake/login",
                                         json={"openid": "hana", "platform": platform})
            provider = make_provider(credentials(platform, process.url, keys))
            providers.append(provider)
            assert (await provider.exchange(minted.json()["code"])).openid == "hana", platform
        async with httpx.AsyncClient(base_url=process.url, timeout=5) as http:
            stats = (await http.get("/fake/stats")).json()
        assert stats["calls"] == {platform: 1 for platform in HTTP_PLATFORMS}
    finally:
        for provider in providers:
            await provider.close()
        process.stop()
    assert "Traceback" not in process.log()


def test_keys_written_by_the_fake_are_private(tmp_path):
    keys = write_alipay_keys(tmp_path / "keys")
    assert sorted(keys) == sorted(p.name for p in (tmp_path / "keys").iterdir())
    assert all((tmp_path / "keys" / name).stat().st_mode & 0o077 == 0 for name in keys)
    assert write_alipay_keys(tmp_path / "keys") == keys  # kept: a second start uses the same pairs


def test_platforms_do_not_import_tornado():
    """The providers are plain Python: the HTTP status is the handlers' business."""
    script = ("import sys, server.platforms as p\n"
              "for name in p.PLATFORMS: __import__('server.platforms.' + name)\n"
              "sys.exit('tornado' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", script], timeout=30).returncode == 0
