"""The platform's calls about the session's user, with the app's access_token (issue 13):
``POST /platform/phone``, ``GET /platform/check`` and the admin API's session_key reset and
user view. Over HTTP, against the fake WeChat (its stable_token, checksession,
resetusersessionkey and getuserphonenumber), on both stores."""

import base64
import json
import logging
import secrets
from urllib.parse import urlencode

import pymongo
import pytest

from server.config import parse_config
from server.fakes.wechat import FakeWeChat
from tests.conftest import ENCRYPTION_KEY, SECRET, WECHAT_APPID, WECHAT_SECRET, on_both_stores
from tests.test_platform_data import assert_error, decrypt, encrypt, login

API_KEY = "admin-api-key-0123456789abcdefghijklmnop"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}
NUMBER = "13912345678"


@pytest.fixture
def fake(clock):
    """The fake WeChat on the server's clock: codes and tokens age with the server's time."""
    return FakeWeChat(appid=WECHAT_APPID, secret=WECHAT_SECRET, clock=clock)


@pytest.fixture
def config(api_base, backend):
    """shop on WeChat; lab on the dev platform, which has none of these calls."""
    store = {"backend": backend, "encryption_keys": [ENCRYPTION_KEY]}
    if backend == "mongodb":
        store["mongodb_uri"] = "mongodb://127.0.0.1:1/"  # the test passes its store
    return parse_config({
        "session": {"secrets": [SECRET]},
        "store": store,
        "admin": {"enabled": True, "api_keys": [API_KEY]},
        "apps": {"shop": {"platform": "wechat", "appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                          "api_base": api_base},
                 "lab": {"platform": "dev"}},
        "login": {"default_app": "shop"},
    }, environ={}, source="<test>")


async def phone(client, session, code, form=False):
    if form:
        return await client.request(
            "POST", "/platform/phone", body=urlencode({"code": code}),
            headers={**session, "Content-Type": "application/x-www-form-urlencoded"})
    return await client.request("POST", "/platform/phone", headers=session,
                                json_body={"code": code})


async def check(client, session):
    return await client.request("GET", "/platform/check", headers=session)


async def admin_user(client, openid, app="shop"):
    answer = await client.request("GET", f"/admin/apps/{app}/users/{openid}", headers=ADMIN)
    assert answer.code == 200, answer.body
    return answer.json


async def introspect(client, session):
    answer = await client.request("POST", "/introspect", headers=ADMIN,
                                  json_body={"token": session["X-Session"]})
    assert answer.code == 200, answer.body
    return answer.json


async def reset(client, openid, app="shop"):
    return await client.request("POST", f"/admin/apps/{app}/users/{openid}/session_key/reset",
                                headers=ADMIN)


def raw_user_documents(store, backend, mongodb_uri) -> str:
    """Everything the store keeps about users, as text."""
    if backend == "memory":
        return repr({key: {name: getattr(user, name) for name in type(user).__slots__}
                     for key, user in store._users.items()})
    with pymongo.MongoClient(mongodb_uri) as mongo:
        return repr(list(mongo[store._database_name]["users"].find()))


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_phone_number_verified_recorded_sealed_and_shown_to_the_backend(
        client, fake, clock, store, backend, request, caplog):
    caplog.set_level(logging.DEBUG)
    session = await login(client, fake, "alice")
    code = fake.phone_codes.mint("alice", NUMBER)
    answer = await phone(client, session, code)
    assert (answer.code, answer.json) == (200, {
        "phoneNumber": NUMBER, "purePhoneNumber": NUMBER, "countryCode": "86"}), answer.body
    assert fake.user_calls["getuserphonenumber"] == 1
    assert fake.access_tokens.calls == {"normal": 1, "force": 0}

    # Used code: the platform's 40029, a client error; the recorded number stays.
    assert_error(await phone(client, session, code), 400, "code_invalid")
    # Expired: 5 minutes.
    late = fake.phone_codes.mint("alice", "13800000000")
    clock.advance(301)
    assert_error(await phone(client, session, late), 400, "code_invalid")
    # Another user's code: WeChat checks the openid.
    assert_error(await phone(client, session, fake.phone_codes.mint("bob")), 400,
                 "code_invalid")
    assert_error(await phone(client, session, None), 400, "missing_code")
    assert_error(await phone(client, session, ["x"]), 400, "code_invalid")

    expected = {"phoneNumber": NUMBER, "purePhoneNumber": NUMBER, "countryCode": "86",
                "verified_at": "2027-01-15T08:00:00Z"}
    assert (await introspect(client, session))["phone"] == expected
    view = await admin_user(client, "alice")
    assert view["phone"] == expected
    assert (view["holds_session_key"], view["live_sessions"]) == (True, 1)
    assert (await admin_user(client, "nobody"))["phone"] is None

    # At rest the number is sealed: not readable in the store's raw documents.
    raw = raw_user_documents(store, backend,
                             request.getfixturevalue("mongodb_uri") if backend == "mongodb"
                             else None)
    assert "alice" in raw and NUMBER not in raw and NUMBER[3:] not in raw

    # A form body works too, and a newer number replaces the recorded one.
    answer = await phone(client, session, fake.phone_codes.mint("alice", "13700001111"),
                         form=True)
    assert answer.json["purePhoneNumber"] == "13700001111"
    assert (await admin_user(client, "alice"))["phone"]["purePhoneNumber"] == "13700001111"

    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (NUMBER, "13700001111", code, late):
        assert secret not in logged


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_refused_token_during_phone_is_refreshed_once_and_the_call_succeeds(
        client, fake):
    session = await login(client, fake, "alice")
    assert (await phone(client, session, fake.phone_codes.mint("alice"))).code == 200
    fake.access_tokens.invalidate_all()  # another holder forced a new token: 40001
    answer = await phone(client, session, fake.phone_codes.mint("alice", NUMBER))
    assert (answer.code, answer.json["purePhoneNumber"]) == (200, NUMBER), answer.body
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}
    # One refused call, one retried: the phone code was spent once, by the retry.
    assert fake.user_calls["getuserphonenumber"] == 3


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_check_is_valid_until_the_key_is_reset_behind_our_back(client, fake):
    session = await login(client, fake, "carol")
    answer = await check(client, session)
    assert (answer.code, answer.json) == (200, {"valid": True}), answer.body
    fake.reset_session_key("carol")  # someone else reset it at WeChat
    assert (await check(client, session)).json == {"valid": False}
    await login(client, fake, "carol")  # a new login stores the platform's current key
    assert (await check(client, session)).json == {"valid": True}
    assert fake.user_calls["checksession"] == 3


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_reset_stores_the_new_key_and_keeps_the_old_one_for_the_grace(client, fake, clock):
    session = await login(client, fake, "dave")
    old_key = fake.session_keys["dave"][-1]
    iv = base64.b64encode(secrets.token_bytes(16)).decode()

    def sealed(key, name):
        body = {"nickName": name, "watermark": {"appid": WECHAT_APPID, "timestamp": 1}}
        return encrypt(key, iv, json.dumps(body).encode())

    old_data = sealed(old_key, "old")
    answer = await reset(client, "dave")
    assert (answer.code, answer.json) == (200, {"reset": True}), answer.body
    new_key = fake.session_keys["dave"][-1]
    assert new_key != old_key and fake.user_calls["resetusersessionkey"] == 1
    assert (await check(client, session)).json == {"valid": True}  # we hold the new key
    fresh = await decrypt(client, session, sealed(new_key, "new"), iv)
    assert (fresh.code, fresh.json["data"]) == (200, {"nickName": "new"}), fresh.body
    assert (await decrypt(client, session, old_data, iv)).json["data"] == {"nickName": "old"}
    clock.advance(300)
    assert_error(await decrypt(client, session, old_data, iv), 409, "session_key_stale")

    # A key WeChat no longer holds cannot be reset: the user must log in again.
    fake.reset_session_key("dave")
    assert_error(await reset(client, "dave"), 409, "session_key_stale")
    # An identity without a key.
    assert_error(await reset(client, "nobody"), 409, "session_key_unavailable")


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_apps_without_these_calls_and_requests_without_a_session(client, fake):
    dev = await client.request("POST", "/login/lab", json_body={"code": "dev:erin"})
    session = {"X-Session": dev.json["session_id"]}
    assert_error(await phone(client, session, "some-code"), 409, "not_supported")
    assert_error(await check(client, session), 409, "not_supported")
    assert_error(await reset(client, "erin", app="lab"), 409, "not_supported")
    assert_error(await phone(client, {}, "some-code"), 401, "no_session")
    assert_error(await check(client, {}), 401, "no_session")
    answer = await client.request("POST", "/admin/apps/shop/users/dave/session_key/reset")
    assert_error(answer, 401, "missing_api_key")
    assert_error(await reset(client, "dave", app="nope"), 404, "unknown_app")
    assert fake.user_calls == {}
