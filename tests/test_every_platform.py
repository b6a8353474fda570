"""Every platform through one minisession (issue 12): one process serves an app on each of
wechat, qq, douyin, baidu, kuaishou, alipay and dev, the fakes on loopback.

The same openid string logs in on each app and stays seven identities: own sessions, own data,
own revocation. Each platform's errors reach the client as the generic codes. Then the same as
real processes: ``minisession serve`` with two apps on two platforms, against ``minisession
fake-platforms``, its config written by devtools' ``to_toml``.
"""

import tomllib

import httpx
import pytest

from devtools.processes import (
    WECHAT_APPID,
    WECHAT_SECRET,
    FakePlatformsProcess,
    ServerProcess,
    server_config,
    to_toml,
)
from server.clock import FakeClock
from server.config import parse_config
from server.fakes.alipay import FakeAlipay, generate_key_pair
from server.fakes.baidu import FakeBaidu
from server.fakes.douyin import FakeDouyin
from server.fakes.kuaishou import FakeKuaishou
from server.fakes.wechat import FakeQQ, FakeWeChat
from server.platforms import PLATFORMS
from tests.conftest import ENCRYPTION_KEY, SECRET, on_both_stores
from tests.test_platforms import fake_base  # noqa: F401 (a fixture: every fake on one port)

APPID = "every-platform-appid"
PLATFORM_SECRET = "every-platform-secret-0123456789"
API_KEY = "admin-api-key-0123456789abcdefghijklmnop"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}
HTTP_FAKES = {"wechat": FakeWeChat, "qq": FakeQQ, "douyin": FakeDouyin, "baidu": FakeBaidu,
              "kuaishou": FakeKuaishou}
#: The app on each platform, named after it, and the code that logs "alice" in there.
ALICE = {platform: "dev:alice" if platform == "dev" else "user:alice" for platform in PLATFORMS}


@pytest.fixture(scope="module")
def alipay_keys():
    return {"app": generate_key_pair(), "alipay": generate_key_pair()}


@pytest.fixture
def fakes(alipay_keys):
    clock = FakeClock()
    made = {name: cls(appid=APPID, secret=PLATFORM_SECRET, clock=clock)
            for name, cls in HTTP_FAKES.items()}
    made["alipay"] = FakeAlipay(alipay_keys["app"][1], alipay_keys["alipay"][0], appid=APPID,
                                clock=clock)
    return made


def every_app(base: str, alipay_keys) -> dict:
    """``[apps.*]``: one app per platform, named after it, on the fakes at ``base``."""
    apps = {}
    for platform in PLATFORMS:
        if platform == "dev":
            apps[platform] = {"platform": "dev"}
            continue
        app = {"platform": platform, "appid": APPID, "api_base": f"{base}/{platform}"}
        if platform == "alipay":
            app.update(private_key=alipay_keys["app"][0],
                       alipay_public_key=alipay_keys["alipay"][1])
        else:
            app["secret"] = PLATFORM_SECRET
        apps[platform] = app
    return apps


@pytest.fixture
def config(backend, fake_base, alipay_keys):
    data = {"session": {"secrets": [SECRET]},
            "admin": {"enabled": True, "api_keys": [API_KEY]},
            "store": {"backend": backend, "encryption_keys": [ENCRYPTION_KEY]},
            "apps": every_app(fake_base, alipay_keys)}
    if backend == "mongodb":
        data["store"]["mongodb_uri"] = "mongodb://127.0.0.1:1/"  # the test passes its store
    return parse_config(data, environ={}, source="<test>")


def sent(token):
    return {"X-Session": token}


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_one_openid_on_every_platform_is_one_identity_per_app(client, server):
    assert sorted(server.service.providers) == sorted(PLATFORMS)
    tokens = {}
    for app, code in ALICE.items():
        response = await client.request("POST", f"/login/{app}", json_body={"code": code})
        assert response.code == 200, (app, response.body)
        answer = response.json
        assert (answer["app"], answer["openid"], answer["reused"]) == (app, "alice", False)
        tokens[app] = answer["session_id"]
        written = await client.request("PUT", "/session/data", headers=sent(tokens[app]),
                                       json_body={"written_in": app})
        assert written.code == 200
    assert len(set(tokens.values())) == len(PLATFORMS)

    # Each app's session sees its own data only.
    for app, token in tokens.items():
        session = await client.request("GET", "/session", headers=sent(token))
        assert (session.json["app"], session.json["openid"]) == (app, "alice")
        data = await client.request("GET", "/session/data", headers=sent(token))
        assert data.json == {"written_in": app}

    # Revoking alice in one app leaves her six other identities logged in.
    revoked = await client.request("DELETE", "/admin/apps/kuaishou/sessions?openid=alice",
                                   headers=ADMIN)
    assert revoked.json == {"revoked": 1}
    for app, token in tokens.items():
        status = (await client.request("GET", "/session", headers=sent(token))).code
        assert status == (401 if app == "kuaishou" else 200), app
    listed = await client.request("GET", "/admin/sessions?openid=alice&app=alipay",
                                  headers=ADMIN)
    assert [s["app"] for s in listed.json["sessions"]] == ["alipay"]


#: (app_name, code, status, error, Retry-After): each platform's own error answers, generic codes.
PLATFORM_ERRORS = [
    ("wechat", "err:40029", 400, "code_invalid", None),
    ("wechat", "err:40226", 403, "user_blocked", None),
    ("wechat", "err:45011", 429, "platform_rate_limited", "60"),
    ("qq", "err:-1", 503, "platform_busy", "1"),
    ("qq", "err:40163", 400, "code_invalid", None),
    ("douyin", "err:40018", 400, "code_invalid", None),
    ("douyin", "err:40017", 502, "platform_misconfigured", None),
    ("baidu", "err:invalid_grant", 400, "code_invalid", None),
    ("baidu", "err:slow_down", 429, "platform_rate_limited", "60"),
    ("kuaishou", "err:240001", 400, "code_invalid", None),
    ("kuaishou", "err:240002", 502, "platform_misconfigured", None),
    ("alipay", "err:isv.code-invalid", 400, "code_invalid", None),
    ("alipay", "err:20000", 503, "platform_busy", "1"),
    ("alipay", "err:isv.app-call-limited", 429, "platform_rate_limited", "60"),
    ("dev", "nope", 400, "code_invalid", None),
    *[(platform, "garbage", 502, "platform_unavailable", None) for platform in HTTP_FAKES],
    ("alipay", "garbage", 502, "platform_unavailable", None),
    *[(platform, "never-issued", 400, "code_invalid", None) for platform in PLATFORMS],
]


@pytest.mark.parametrize("app_name, code, status, error, retry_after", PLATFORM_ERRORS)
@pytest.mark.gen_test(timeout=30)
async def test_platform_errors_reach_the_client_as_generic_codes(
        client, app_name, code, status, error, retry_after):
    response = await client.request("POST", f"/login/{app_name}", json_body={"code": code})
    assert (response.code, response.json["error"], response.headers.get("Retry-After")) == (
        status, error, retry_after)
    assert response.json["message"] and "Set-Cookie" not in response.headers
    if code.startswith("err:"):  # the platform's own code is kept in the message
        assert code.removeprefix("err:") in response.json["message"]


# -- devtools' to_toml, and real processes -----------------------------------------------------

def test_to_toml_writes_nested_app_tables_a_parser_reads_back():
    pem = "-----BEGIN PUBLIC KEY-----\nMIIB\"x\\y\n-----END PUBLIC KEY-----\n"
    config = {"session": {"secrets": ["s"], "idle_timeout": 60},
              "apps": {"shop": {"platform": "wechat", "appid": "wx1", "timeout": 2.5},
                       "shop-tt": {"platform": "douyin", "appid": "tt1"},
                       "pay": {"platform": "alipay", "alipay_public_key": pem}},
              "log": {"json": True}}
    text = to_toml(config)
    assert "[apps.shop]" in text and "[apps.shop-tt]" in text
    assert tomllib.loads(text) == config


def test_a_served_process_logs_in_on_two_apps_on_two_platforms(tmp_path):
    with FakePlatformsProcess(tmp_path, "fakes").start() as fakes:
        apps = {"shop": {"platform": "wechat", "appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                         "api_base": f"{fakes.url}/wechat"},
                "video": {"platform": "douyin", "appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                          "api_base": f"{fakes.url}/douyin"}}
        with ServerProcess(server_config(apps=apps), tmp_path).start().wait_ready() as server:
            answers = {}
            for app, platform in (("shop", "wechat"), ("video", "douyin")):
                code = httpx.post(f"{fakes.url}/fake/login", timeout=5,
                                  json={"openid": "ivy", "platform": platform}).json()["code"]
                response = httpx.post(f"{server.url}/login/{app}", json={"code": code},
                                      timeout=10)
                assert response.status_code == 200, response.text
                answers[app] = response.json()
            assert {(a["app"], a["openid"]) for a in answers.values()} == {
                ("shop", "ivy"), ("video", "ivy")}
            assert answers["shop"]["session_id"] != answers["video"]["session_id"]
            unknown = httpx.post(f"{server.url}/login/nope", json={"code": "x"}, timeout=10)
            assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_app")
        assert "Traceback" not in server.log()
