"""Several apps in one server (issue 12): an identity is (app, openid).

Two apps on two platforms share one process: "shop" logs in through (the fake) WeChat, "lab"
through the dev provider, and both know a user "alice". "mall" is a second WeChat-protocol app
(QQ) of the same company, whose users share unionids with "shop".
"""

import pytest

from server.config import parse_config
from tests.conftest import ENCRYPTION_KEY, SECRET, WECHAT_APPID, WECHAT_SECRET, on_both_stores

API_KEY = "admin-api-key-0123456789abcdefghijklmnop"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}


def apps_config(api_base, backend="memory", **login):
    data = {
        "session": {"secrets": [SECRET]},
        "admin": {"enabled": True, "api_keys": [API_KEY]},
        "store": {"backend": backend, "encryption_keys": [ENCRYPTION_KEY]},
        "apps": {
            "shop": {"platform": "wechat", "appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                     "api_base": api_base},
            "mall": {"platform": "qq", "appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                     "api_base": api_base},
            "lab": {"platform": "dev"},
        },
    }
    if login:
        data["login"] = login
    if backend == "mongodb":
        data["store"]["mongodb_uri"] = "mongodb://127.0.0.1:1/"  # the test passes its store
    return parse_config(data, environ={}, source="<test>")


@pytest.fixture
def config(request, api_base, fake):
    """Three apps, no default app (``indirect`` param "default_app": lab is the default)."""
    fake.unionid = True  # WeChat answers carry "union-<openid>"
    if getattr(request, "param", None) == "default_app":
        return apps_config(api_base, default_app="lab")
    return apps_config(api_base)


async def login(client, path, code):
    response = await client.request("POST", path, json_body={"code": code})
    assert response.code == 200, response.body
    return response.json


async def admin(client, method, path, body=None):
    return await client.request(method, path, headers=ADMIN, json_body=body)


async def session_of(client, token):
    return await client.request("GET", "/session", headers={"X-Session": token})


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_colliding_openids_of_two_apps_stay_apart(client, server, fake):
    shop = await login(client, "/login/shop", "user:alice")
    lab = await login(client, "/login/lab", "dev:alice")
    assert (shop["app"], shop["openid"], lab["app"], lab["openid"]) == (
        "shop", "alice", "lab", "alice")
    # Not one user: lab's login did not reuse shop's session (inside the reuse window).
    assert lab["reused"] is False and lab["session_id"] != shop["session_id"]

    # A binding belongs to one identity.
    bound = await admin(client, "PUT", "/admin/apps/shop/bindings/alice", {"user_id": "u-1"})
    assert bound.json == {"app": "shop", "openid": "alice", "bound": True, "user_id": "u-1",
                          "bound_at": bound.json["bound_at"]}
    assert (await session_of(client, shop["session_id"])).json["user_id"] == "u-1"
    assert (await session_of(client, lab["session_id"])).json["user_id"] is None
    unbound = (await admin(client, "GET", "/admin/apps/lab/bindings/alice")).json
    assert (unbound["app"], unbound["bound"]) == ("lab", False)

    # So do its sessions, listed and revoked.
    listed = (await admin(client, "GET", "/admin/apps/lab/sessions?openid=alice")).json
    assert [(s["app"], s["openid"]) for s in listed["sessions"]] == [("lab", "alice")]
    same = (await admin(client, "GET", "/admin/sessions?app=lab&openid=alice")).json
    assert same == listed
    revoked = await admin(client, "DELETE", "/admin/apps/shop/sessions?openid=alice")
    assert revoked.json == {"revoked": 1}
    assert (await session_of(client, shop["session_id"])).code == 401
    assert (await session_of(client, lab["session_id"])).json["app"] == "lab"

    # And its platform's session_key.
    assert await server.service.session_key("shop", "alice") == fake.session_keys["alice"][-1]
    lab_key = await server.service.session_key("lab", "alice")
    assert lab_key is not None and lab_key != fake.session_keys["alice"][-1]


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_sealed_session_key_moved_to_the_same_openid_of_another_app_does_not_open(
        client, server, store, backend):
    await login(client, "/login/shop", "user:bob")
    await login(client, "/login/lab", "dev:bob")
    # Someone with write access to the database copies shop's sealed key to lab's bob.
    if backend == "memory":
        store._users["lab:bob"].session_key = store._users["shop:bob"].session_key
    else:
        sealed = (await store._users.find_one({"_id": "shop:bob"}))["session_key"]
        await store._users.update_one({"_id": "lab:bob"}, {"$set": {"session_key": sealed}})
    assert await server.service.session_key("lab", "bob") is None
    assert await server.service.session_key("shop", "bob") is not None


@pytest.mark.gen_test(timeout=30)
async def test_login_picks_the_app_from_the_path(client):
    assert (await login(client, "/login/lab", "dev:carl"))["app"] == "lab"
    got = await client.request("GET", "/login/shop?code=user:carl")
    assert (got.code, got.json["app"]) == (200, "shop")
    for path in ("/login/nope", "/login/shop%3Ax", "/login/" + "x" * 200):
        response = await client.request("POST", path, json_body={"code": "dev:carl"})
        assert (response.code, response.json["error"]) == (404, "unknown_app"), path
    # Three apps and no default_app: /login alone cannot tell which.
    response = await client.request("POST", "/login", json_body={"code": "dev:carl"})
    assert (response.code, response.json["error"]) == (404, "app_required")
    assert "/login/<app>" in response.json["message"]
    response = await admin(client, "GET", "/admin/apps/nope/bindings/carl")
    assert (response.code, response.json["error"]) == (404, "unknown_app")
    response = await admin(client, "GET", "/admin/apps/nope/sessions?openid=carl")
    assert (response.code, response.json["error"]) == (404, "unknown_app")


@pytest.mark.parametrize("config", ["default_app"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_login_without_an_app_uses_the_default_app(client):
    assert (await login(client, "/login", "dev:dora"))["app"] == "lab"
    # An openid without an app in admin paths means the default app, too.
    assert (await admin(client, "GET", "/admin/bindings/dora")).json["app"] == "lab"


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_unionid_binds_one_person_across_the_companys_apps(client):
    shop = await login(client, "/login/shop", "user:erin:1")
    mall = await login(client, "/login/mall", "user:erin:2")
    other = await login(client, "/login/shop", "user:finn")
    assert shop["unionid"] == mall["unionid"] == "union-erin"

    response = await admin(client, "PUT", "/admin/unionids/union-erin/binding", {"user_id": 7})
    assert response.code == 200
    assert response.json["user_id"] == "7"
    assert sorted((i["app"], i["openid"]) for i in response.json["identities"]) == [
        ("mall", "erin"), ("shop", "erin")]
    for session in (shop, mall):
        assert (await session_of(client, session["session_id"])).json["user_id"] == "7"
    assert (await session_of(client, other["session_id"])).json["user_id"] is None

    listed = (await admin(client, "GET", "/admin/sessions?unionid=union-erin")).json["sessions"]
    assert sorted(s["app"] for s in listed) == ["mall", "shop"]
    assert {s["unionid"] for s in listed} == {"union-erin"}
    assert (await admin(client, "DELETE", "/admin/sessions?unionid=union-erin")).json == {
        "revoked": 2}
    for session, status in ((shop, 401), (mall, 401), (other, 200)):
        assert (await session_of(client, session["session_id"])).code == status


@pytest.mark.gen_test(timeout=30)
async def test_introspection_says_which_app(client):
    token = (await login(client, "/login/lab", "dev:gail"))["session_id"]
    response = await client.request("POST", "/introspect", headers=ADMIN,
                                    json_body={"token": token})
    assert (response.json["active"], response.json["app"], response.json["openid"]) == (
        True, "lab", "gail")


@pytest.mark.gen_test(timeout=30)
async def test_the_access_log_names_the_app_never_the_openid(client, caplog):
    caplog.set_level("INFO", logger="minisession.access")
    token = (await login(client, "/login/lab", "dev:hugo-the-user"))["session_id"]
    await session_of(client, token)
    await client.request("POST", "/login/no-such-app", json_body={"code": "dev:hugo"})
    access = [r.getMessage() for r in caplog.records if r.name == "minisession.access"]
    assert access[0].startswith("200 POST /login/{} ") and access[0].endswith(" app=lab")
    assert access[1].startswith("200 GET /session ") and access[1].endswith(" app=lab")
    # A name the client typed is not logged: no app served goes by it.
    assert access[2].startswith("404 POST /login/{} ") and "app=" not in access[2]
    assert not any("hugo" in line or "no-such-app" in line for line in access)


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_unionid_binding_reaches_identities_that_log_in_later_and_can_be_undone(client):
    shop = await login(client, "/login/shop", "user:ivan:1")
    shown = await admin(client, "GET", "/admin/unionids/union-ivan/binding")
    assert shown.json == {"unionid": "union-ivan", "bound": False, "user_id": None}
    bound = await admin(client, "PUT", "/admin/unionids/union-ivan/binding", {"user_id": "p-1"})
    assert bound.json["identities"] == [{"app": "shop", "openid": "ivan"}]

    # The person's first login to another app of the company: already bound.
    mall = await login(client, "/login/mall", "user:ivan:2")
    assert (mall["app"], mall["user_id"], mall["bound"]) == ("mall", "p-1", True)
    identity = (await admin(client, "GET", "/admin/apps/mall/bindings/ivan")).json
    assert (identity["bound"], identity["user_id"]) == (True, "p-1")
    shown = (await admin(client, "GET", "/admin/unionids/union-ivan/binding")).json
    assert (shown["bound"], shown["user_id"]) == (True, "p-1")
    # An identity without that unionid is not touched.
    assert (await login(client, "/login/lab", "dev:ivan"))["user_id"] is None

    response = await admin(client, "DELETE", "/admin/unionids/union-ivan/binding")
    assert response.code == 204
    for session in (shop, mall):
        assert (await session_of(client, session["session_id"])).json["user_id"] is None
    later = await login(client, "/login/mall", "user:ivan:3")
    assert later["user_id"] is None
    response = await admin(client, "PUT", "/admin/unionids/%00/binding", {"user_id": "p"})
    assert (response.code, response.json["error"]) == (400, "invalid_unionid")
