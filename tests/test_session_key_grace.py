"""The previous session_key's grace period (issue 13): data the client got under the key of
one login still opens after a later login replaced that key, for ``session.session_key_grace``
seconds, then answers 409 session_key_stale. Over HTTP, on both stores, with the keys handed
out by the fake WeChat to real logins and the server's clock moved by the test."""

import base64
import hashlib
import json
import secrets

import pytest

from server.clock import FakeClock
from server.config import ConfigError, parse_config
from server.fakes.wechat import FakeWeChat
from tests.conftest import ENCRYPTION_KEY, SECRET, WECHAT_SECRET, make_config, on_both_stores
from tests.test_platform_data import VECTOR_APPID, assert_error, decrypt, encrypt, login

GRACE = 300


@pytest.fixture
def fake():
    return FakeWeChat(appid=VECTOR_APPID, secret=WECHAT_SECRET, clock=FakeClock())


@pytest.fixture
def grace():
    return GRACE


@pytest.fixture
def config(api_base, backend, grace):
    store = {"backend": backend, "encryption_keys": [ENCRYPTION_KEY]}
    if backend == "mongodb":
        store["mongodb_uri"] = "mongodb://127.0.0.1:1/"  # the test passes its store
    return parse_config({
        "session": {"secrets": [SECRET], "session_key_grace": grace},
        "store": store,
        "apps": {"shop": {"platform": "wechat", "appid": VECTOR_APPID,
                          "secret": WECHAT_SECRET, "api_base": api_base}},
    }, environ={}, source="<test>")


def user_data(key: str, payload: dict) -> tuple[str, str]:
    """What the platform gives the client: ``payload`` watermarked for our app, encrypted
    under ``key``; (encryptedData, iv)."""
    iv = base64.b64encode(secrets.token_bytes(16)).decode()
    body = {**payload, "watermark": {"appid": VECTOR_APPID, "timestamp": 1700000000}}
    return encrypt(key, iv, json.dumps(body).encode()), iv


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


async def verify(client, session, raw_data, key):
    signature = hashlib.sha1((raw_data + key).encode()).hexdigest()
    return await client.request("POST", "/platform/verify", headers=session,
                                json_body={"rawData": raw_data, "signature": signature})


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_data_of_the_replaced_key_opens_within_the_grace_period_only(client, fake, clock):
    first_key, second_key = new_key(), new_key()
    session = await login(client, fake, "alice", first_key)
    old_data, old_iv = user_data(first_key, {"nickName": "before"})
    # The client calls wx.login again before sending the data: the platform issues a new key.
    session = await login(client, fake, "alice", second_key)
    assert fake.session_keys["alice"] == [first_key, second_key]

    clock.advance(GRACE - 1)
    answer = await decrypt(client, session, old_data, old_iv)
    assert (answer.code, answer.json["data"]) == (200, {"nickName": "before"}), answer.body
    assert (await verify(client, session, '{"a":1}', first_key)).json == {"valid": True}
    # The newest key opens its own data, as always.
    new_data, new_iv = user_data(second_key, {"nickName": "after"})
    assert (await decrypt(client, session, new_data, new_iv)).json["data"] == {
        "nickName": "after"}

    clock.advance(1)  # the grace period is over
    assert_error(await decrypt(client, session, old_data, old_iv), 409, "session_key_stale")
    assert_error(await verify(client, session, '{"a":1}', first_key), 400, "signature_mismatch")
    assert (await decrypt(client, session, new_data, new_iv)).code == 200
    assert (await verify(client, session, '{"a":1}', second_key)).code == 200


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_only_the_one_previous_key_is_kept(client, fake):
    keys = [new_key(), new_key(), new_key()]
    session = None
    for key in keys:
        session = await login(client, fake, "bob", key)
    oldest = user_data(keys[0], {"n": 0})
    previous = user_data(keys[1], {"n": 1})
    assert (await decrypt(client, session, *previous)).json["data"] == {"n": 1}
    assert_error(await decrypt(client, session, *oldest), 409, "session_key_stale")


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_login_that_gets_the_same_key_again_keeps_the_real_previous_one(client, fake):
    """WeChat often hands out the key still valid: that is no change of key."""
    first_key, second_key = new_key(), new_key()
    await login(client, fake, "dora", first_key)
    old = user_data(first_key, {"n": 1})
    await login(client, fake, "dora", second_key)
    session = await login(client, fake, "dora", second_key)
    answer = await decrypt(client, session, *old)
    assert (answer.code, answer.json.get("data")) == (200, {"n": 1}), answer.body


@pytest.mark.parametrize("grace", [0])
@pytest.mark.gen_test(timeout=30)
async def test_a_grace_of_zero_tries_the_newest_key_only(client, fake):
    first_key = new_key()
    await login(client, fake, "carol", first_key)
    old = user_data(first_key, {"n": 0})
    session = await login(client, fake, "carol")
    assert_error(await decrypt(client, session, *old), 409, "session_key_stale")


@pytest.mark.parametrize("value", [-1, 3601, "300", 1.5, True])
def test_a_bad_grace_is_refused_at_start(value):
    with pytest.raises(ConfigError, match="session.session_key_grace"):
        make_config(session={"session_key_grace": value})
    assert make_config(session={"session_key_grace": 3600}).session.session_key_grace == 3600
    assert make_config().session.session_key_grace == GRACE
