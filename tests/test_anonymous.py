"""Douyin's anonymous logins through /login/{app} (issue 12), against the fake Douyin.

``tt.login()`` gives a ``code`` (the user is logged in to Douyin) and an ``anonymousCode``
(always). A login with only the anonymous code is an anonymous identity, kept as openid
"anon:<anonymous_openid>"; when the same client later logs in with a real code and sends its
session id, the anonymous session's data carries over and the anonymous session ends.
"""

import pytest

from server.clock import FakeClock
from server.config import parse_config
from server.fakes.douyin import FakeDouyin
from server.platforms import Identity, ProviderError
from server.sessions import identity_key
from tests.conftest import ENCRYPTION_KEY, SECRET, on_both_stores, serve_fakes

APPID = "tt-appid-0123"
DOUYIN_SECRET = "douyin-secret-0123456789abcdef"
API_KEY = "admin-api-key-0123456789abcdefghijklmnop"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def douyin():
    return FakeDouyin(appid=APPID, secret=DOUYIN_SECRET, clock=FakeClock())


@pytest.fixture
def douyin_base(io_loop, douyin):
    for base in serve_fakes(io_loop, douyin):
        yield base + "/douyin"


@pytest.fixture
def data_max_bytes():
    return 16384


@pytest.fixture
def config(backend, douyin_base, data_max_bytes):
    """Two apps: "tt" on (the fake) Douyin, "tt2" another Douyin app, "lab" on dev."""
    douyin_app = {"platform": "douyin", "appid": APPID, "secret": DOUYIN_SECRET,
                  "api_base": douyin_base}
    data = {"session": {"secrets": [SECRET], "data_max_bytes": data_max_bytes},
            "admin": {"enabled": True, "api_keys": [API_KEY]},
            "store": {"backend": backend, "encryption_keys": [ENCRYPTION_KEY]},
            "apps": {"tt": douyin_app, "tt2": dict(douyin_app), "lab": {"platform": "dev"}}}
    if backend == "mongodb":
        data["store"]["mongodb_uri"] = "mongodb://127.0.0.1:1/"  # the test passes its store
    return parse_config(data, environ={}, source="<test>")


def sent(token):
    return {"X-Session": token}


async def login(client, path, headers=None, **fields):
    response = await client.request("POST", path, json_body=fields, headers=headers)
    assert response.code == 200, response.body
    return response.json


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_anonymous_code_alone_logs_in_an_anonymous_identity(client, douyin):
    answer = await login(client, "/login/tt", anonymous_code=douyin.mint_code("bob"))
    assert (answer["app"], answer["openid"], answer["anonymous"]) == ("tt", "anon:anon-bob", True)
    assert "unionid" not in answer

    session = await client.request("GET", "/session", headers=sent(answer["session_id"]))
    assert (session.code, session.json["anonymous"], session.json["openid"]) == (
        200, True, "anon:anon-bob")
    introspected = await client.request("POST", "/introspect", headers=ADMIN,
                                        json_body={"token": answer["session_id"]})
    assert (introspected.json["active"], introspected.json["anonymous"]) == (True, True)

    # Form bodies and query strings carry it too, as they carry code.
    form = await client.request(
        "POST", "/login/tt", body=f"anonymous_code={douyin.mint_code('cy')}",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (form.code, form.json["openid"]) == (200, "anon:anon-cy")
    query = await client.request("GET", f"/login/tt?anonymous_code={douyin.mint_code('di')}")
    assert (query.code, query.json["openid"]) == (200, "anon:anon-di")

    # A real code is a logged-in identity, even with the anonymous code beside it.
    real = await login(client, "/login/tt", code=douyin.mint_code("bob"),
                       anonymous_code=douyin.mint_code("bob"))
    assert (real["openid"], real["anonymous"]) == ("bob", False)


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_logging_in_carries_the_anonymous_sessions_data_over(client, douyin):
    anonymous = await login(client, "/login/tt", anonymous_code=douyin.mint_code("bob"))
    token = anonymous["session_id"]
    stored = await client.request("PUT", "/session/data", headers=sent(token),
                                  json_body={"cart": ["sku-1"], "theme": "dark"})
    assert stored.code == 200

    real = await login(client, "/login/tt", headers=sent(token), code=douyin.mint_code("bob"))
    assert (real["openid"], real["anonymous"], real["reused"]) == ("bob", False, False)
    data = await client.request("GET", "/session/data", headers=sent(real["session_id"]))
    assert data.json == {"cart": ["sku-1"], "theme": "dark"}
    # The anonymous session is over: its id no longer works.
    assert (await client.request("GET", "/session", headers=sent(token))).code == 401


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_the_logged_in_sessions_own_data_wins(client, douyin):
    # bob is logged in (on another device, say) and has a cart already.
    first = await login(client, "/login/tt", code=douyin.mint_code("bob"))
    await client.request("PUT", "/session/data", headers=sent(first["session_id"]),
                         json_body={"cart": ["kept"]})
    anonymous = await login(client, "/login/tt", anonymous_code=douyin.mint_code("bob"))
    await client.request("PUT", "/session/data", headers=sent(anonymous["session_id"]),
                         json_body={"cart": ["anonymous"], "theme": "dark"})

    # Within the reuse window, this login is bob's first session again.
    real = await login(client, "/login/tt", headers=sent(anonymous["session_id"]),
                       code=douyin.mint_code("bob"))
    assert real["reused"] is True and real["session_id"] == first["session_id"]
    data = await client.request("GET", "/session/data", headers=sent(real["session_id"]))
    assert data.json == {"cart": ["kept"], "theme": "dark"}


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_only_an_anonymous_session_of_the_same_app_carries_over(client, douyin):
    other_app = await login(client, "/login/tt2", anonymous_code=douyin.mint_code("bob"))
    await client.request("PUT", "/session/data", headers=sent(other_app["session_id"]),
                         json_body={"from": "tt2"})
    logged_in = await login(client, "/login/tt", code=douyin.mint_code("eve"))
    await client.request("PUT", "/session/data", headers=sent(logged_in["session_id"]),
                         json_body={"from": "eve"})

    for token in (other_app["session_id"], logged_in["session_id"]):
        real = await login(client, "/login/tt", headers=sent(token),
                           code=douyin.mint_code("bob"))
        data = await client.request("GET", "/session/data", headers=sent(real["session_id"]))
        assert data.json == {}
        assert (await client.request("GET", "/session/data", headers=sent(token))).code == 200


@pytest.mark.parametrize("data_max_bytes", [64])
@pytest.mark.gen_test(timeout=30)
async def test_data_that_would_not_fit_stays_in_the_anonymous_session(client, douyin):
    first = await login(client, "/login/tt", code=douyin.mint_code("bob"))
    await client.request("PUT", "/session/data", headers=sent(first["session_id"]),
                         json_body={"a": "x" * 30})
    anonymous = await login(client, "/login/tt", anonymous_code=douyin.mint_code("bob"))
    await client.request("PUT", "/session/data", headers=sent(anonymous["session_id"]),
                         json_body={"b": "y" * 30})

    real = await login(client, "/login/tt", headers=sent(anonymous["session_id"]),
                       code=douyin.mint_code("bob"))
    assert (await client.request("GET", "/session/data", headers=sent(real["session_id"]))
            ).json == {"a": "x" * 30}
    kept = await client.request("GET", "/session/data", headers=sent(anonymous["session_id"]))
    assert (kept.code, kept.json) == (200, {"b": "y" * 30})


@pytest.mark.gen_test(timeout=30)
async def test_codes_are_checked_per_platform(client, douyin):
    missing = await client.request("POST", "/login/tt", json_body={})
    assert (missing.code, missing.json["error"]) == (400, "missing_code")
    assert "anonymous_code" in missing.json["message"]
    bad = await client.request("POST", "/login/tt", json_body={"anonymous_code": "x" * 300})
    assert (bad.code, bad.json["error"]) == (400, "code_invalid")
    refused = await client.request("POST", "/login/tt", json_body={"anonymous_code": "nope"})
    assert (refused.code, refused.json["error"]) == (400, "code_invalid")
    assert "40019" in refused.json["message"]
    # Other platforms ignore it: a dev login still needs its code.
    dev = await client.request("POST", "/login/lab", json_body={"anonymous_code": "dev:x"})
    assert (dev.code, dev.json["error"]) == (400, "missing_code")
    dev = await login(client, "/login/lab", code="dev:x", anonymous_code="ignored")
    assert (dev["openid"], dev["anonymous"]) == ("x", False)


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_an_anonymous_identity_is_an_identity_of_its_own(client, douyin):
    """Bindings, listing and revocation address it by its key; the real openid is apart."""
    anonymous = await login(client, "/login/tt", anonymous_code=douyin.mint_code("bob"))
    real = await login(client, "/login/tt", code=douyin.mint_code("bob"))
    bound = await client.request("PUT", "/admin/apps/tt/bindings/anon:anon-bob", headers=ADMIN,
                                 json_body={"user_id": "u-7"})
    assert bound.code == 200
    assert (await client.request("GET", "/session", headers=sent(anonymous["session_id"]))
            ).json["user_id"] == "u-7"
    assert (await client.request("GET", "/session", headers=sent(real["session_id"]))
            ).json["user_id"] is None
    listed = await client.request("GET", "/admin/apps/tt/sessions?user_id=u-7", headers=ADMIN)
    assert [(s["openid"], s["anonymous"]) for s in listed.json["sessions"]] == [
        ("anon:anon-bob", True)]
    revoked = await client.request("DELETE", "/admin/apps/tt/sessions?openid=anon:anon-bob",
                                   headers=ADMIN)
    assert revoked.json == {"revoked": 1}
    assert (await client.request("GET", "/session", headers=sent(real["session_id"]))).code == 200


def test_a_platform_openid_that_looks_anonymous_is_refused():
    assert identity_key(Identity(openid=None, anonymous_openid="a1")) == "anon:a1"
    assert identity_key(Identity(openid="o1", anonymous_openid="a1")) == "o1"
    with pytest.raises(ProviderError) as caught:
        identity_key(Identity(openid="anon:a1"))
    assert caught.value.code == "platform_unavailable"
