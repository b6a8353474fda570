"""User data the client got from its platform, opened with the stored session_key (issue 13):
``POST /platform/decrypt`` and ``POST /platform/verify``, over HTTP, on both stores.

The session_keys come the real way: the fake WeChat (or Baidu) hands a key the test chose to a
real login, and minisession stores it sealed like any other.
"""

import base64
import json
import logging
import secrets
import struct
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from server.clock import FakeClock
from server.config import parse_config
from server.fakes.alipay import FakeAlipay, generate_key_pair
from server.fakes.baidu import FakeBaidu
from server.fakes.wechat import FakeWeChat
from tests.conftest import ENCRYPTION_KEY, SECRET, WECHAT_SECRET, on_both_stores, serve_fakes

# The official WeChat demo's vector (also in wechatpy's and WxJava's tests).
VECTOR_APPID = "wx4f4bc4dec97d474b"
VECTOR_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
VECTOR_IV = "r7BXXKkLb8qrSNn05n0qiA=="
VECTOR_DATA = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC"
    "+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poO"
    "FtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8"
    "xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB"
    "6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJd"
    "NiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOy"
    "uxINew==")
VECTOR_PLAINTEXT = {
    "openId": "oGZUI0egBJY1zhBYw2KhdUfwVJJE", "nickName": "Band", "gender": 1,
    "language": "zh_CN", "city": "Guangzhou", "province": "Guangdong", "country": "CN",
    "avatarUrl": "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4Wg"
                 "MEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0",
    "unionId": "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
}
VECTOR_TIMESTAMP = 1477314187

# The official rawData signature example.
SIGN_KEY = "HyVFkGl5F5OQWJZZaNzBBg=="
RAW_DATA = ('{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou",'
            '"province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/'
            'vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYs'
            'rztuuICqIM5ibXQ/0"}')
SIGNATURE = "75e81ceda165f4ffa64f4068af58c64b8f54b88c"

BAIDU_APPKEY = "baidu-app-key-0123"
#: session.session_key_grace's default: how long a replaced session_key still opens data.
GRACE = 300
ALIPAY_APPID = "2021000000000001"


@pytest.fixture
def fake():
    """The fake WeChat of the vector's app."""
    return FakeWeChat(appid=VECTOR_APPID, secret=WECHAT_SECRET, clock=FakeClock())


@pytest.fixture
def baidu():
    return FakeBaidu(appid=BAIDU_APPKEY, secret=WECHAT_SECRET, clock=FakeClock())


@pytest.fixture(scope="module")
def alipay_keys():
    return {"app": generate_key_pair(), "alipay": generate_key_pair()}


@pytest.fixture
def alipay(alipay_keys):
    return FakeAlipay(alipay_keys["app"][1], alipay_keys["alipay"][0], appid=ALIPAY_APPID,
                      clock=FakeClock())


@pytest.fixture
def api_base(io_loop, fake, baidu, alipay):
    yield from serve_fakes(io_loop, fake, baidu, alipay)


@pytest.fixture
def config(api_base, backend, alipay_keys):
    store = {"backend": backend, "encryption_keys": [ENCRYPTION_KEY]}
    if backend == "mongodb":
        store["mongodb_uri"] = "mongodb://127.0.0.1:1/"  # the test passes its store
    return parse_config({
        "session": {"secrets": [SECRET]},
        "store": store,
        "apps": {
            "shop": {"platform": "wechat", "appid": VECTOR_APPID, "secret": WECHAT_SECRET,
                     "api_base": api_base},
            "temple": {"platform": "baidu", "appid": BAIDU_APPKEY, "secret": WECHAT_SECRET,
                       "api_base": f"{api_base}/baidu"},
            "wallet": {"platform": "alipay", "appid": ALIPAY_APPID,
                       "api_base": f"{api_base}/alipay", "private_key": alipay_keys["app"][0],
                       "alipay_public_key": alipay_keys["alipay"][1]},
        },
        "login": {"default_app": "shop"},
    }, environ={}, source="<test>")


async def login(client, platform_fake, openid, session_key=None, app="shop"):
    """A real login of ``openid``, the platform handing out ``session_key`` when given."""
    if session_key is not None:
        platform_fake.upcoming_session_keys.setdefault(openid, []).append(session_key)
    answer = await client.request("POST", f"/login/{app}",
                                  json_body={"code": f"user:{openid}:{secrets.token_hex(4)}"})
    assert answer.code == 200, answer.body
    return {"X-Session": answer.json["session_id"]}


async def decrypt(client, session, encrypted_data=VECTOR_DATA, iv=VECTOR_IV, **kwargs):
    return await client.request("POST", "/platform/decrypt", headers=session,
                                json_body={"encryptedData": encrypted_data, "iv": iv}, **kwargs)


def encrypt(key_b64: str, iv_b64: str, plaintext: bytes) -> str:
    """What a platform does: AES-CBC with PKCS#7 (the key's size picks AES-128 or -192)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(key_b64)),
                       modes.CBC(base64.b64decode(iv_b64))).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def assert_error(answer, status, code):
    assert (answer.code, answer.json["error"]) == (status, code), answer.body
    assert answer.json["message"]


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_official_vector_decrypts_to_the_published_plaintext(client, fake, caplog):
    caplog.set_level(logging.DEBUG)
    session = await login(client, fake, "vector-user", VECTOR_KEY)
    answer = await decrypt(client, session)
    assert answer.code == 200, answer.body
    assert answer.json == {"data": VECTOR_PLAINTEXT,
                           "watermark": {"timestamp": VECTOR_TIMESTAMP}}

    # A form body, as many mini-program helpers send: encoded, and with '+' left unencoded
    # (which arrives as ' ').
    form = urlencode({"encryptedData": VECTOR_DATA, "iv": VECTOR_IV})
    raw = f"encryptedData={VECTOR_DATA}&iv={VECTOR_IV}"
    for body in (form, raw):
        answer = await client.request(
            "POST", "/platform/decrypt", body=body,
            headers={**session, "Content-Type": "application/x-www-form-urlencoded"})
        assert answer.code == 200, answer.body
        assert answer.json["data"] == VECTOR_PLAINTEXT

    # Nothing of the user's data reached a log line.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in (VECTOR_PLAINTEXT["openId"], VECTOR_PLAINTEXT["unionId"], VECTOR_DATA[:40]):
        assert value not in logged


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_data_of_an_earlier_session_key_is_stale(client, fake, clock):
    """The client logged in again after getting the data: the newest key cannot open it."""
    session = await login(client, fake, "alice", VECTOR_KEY)
    await login(client, fake, "alice")  # a new random session_key replaces the vector's
    clock.advance(GRACE)  # the replaced key's grace period is over (test_session_key_grace)
    answer = await decrypt(client, session)
    assert_error(answer, 409, "session_key_stale")
    assert "log in again" in answer.json["message"]
    assert "fetch the data again" in answer.json["message"]

    # Another user's session (another key) cannot open it either.
    bob = await login(client, fake, "bob")
    assert_error(await decrypt(client, bob), 409, "session_key_stale")


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_malformed_input_is_a_400_and_bad_plaintext_a_409(client, fake):
    session = await login(client, fake, "carol", VECTOR_KEY)
    other_iv = base64.b64encode(bytes(16)).decode()
    short_iv = base64.b64encode(bytes(12)).decode()
    ciphertext = bytearray(base64.b64decode(VECTOR_DATA))
    ciphertext[-17] ^= 0x5A  # changes the last plaintext byte: the PKCS#7 padding breaks
    bad_padding = base64.b64encode(bytes(ciphertext)).decode()
    truncated = base64.b64encode(base64.b64decode(VECTOR_DATA)[:-5]).decode()
    cases = [
        ({"encryptedData": VECTOR_DATA[:-8], "iv": VECTOR_IV}, 400, "invalid_encrypted_data"),
        ({"encryptedData": truncated, "iv": VECTOR_IV}, 400, "invalid_encrypted_data"),
        ({"encryptedData": "not*base64!", "iv": VECTOR_IV}, 400, "invalid_encrypted_data"),
        ({"encryptedData": 12345, "iv": VECTOR_IV}, 400, "invalid_encrypted_data"),
        ({"iv": VECTOR_IV}, 400, "invalid_encrypted_data"),
        ({"encryptedData": VECTOR_DATA, "iv": short_iv}, 400, "invalid_iv"),
        ({"encryptedData": VECTOR_DATA, "iv": "%%%"}, 400, "invalid_iv"),
        ({"encryptedData": VECTOR_DATA}, 400, "invalid_iv"),
        # Well-formed but not what the platform encrypted: nothing tells it from another key.
        ({"encryptedData": VECTOR_DATA, "iv": other_iv}, 409, "session_key_stale"),
        ({"encryptedData": bad_padding, "iv": VECTOR_IV}, 409, "session_key_stale"),
    ]
    for body, status, code in cases:
        answer = await client.request("POST", "/platform/decrypt", headers=session,
                                      json_body=body)
        assert_error(answer, status, code)
    answer = await client.request("POST", "/platform/decrypt", headers=session, body="[1]")
    assert_error(answer, 400, "invalid_json")
    # Still works: nothing was lost.
    assert (await decrypt(client, session)).code == 200


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_data_watermarked_for_another_app_is_refused(client, fake):
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    iv = base64.b64encode(secrets.token_bytes(16)).decode()
    session = await login(client, fake, "dave", key)
    for watermark in ({"appid": "wx-another-app", "timestamp": 1}, None):
        payload = {"openId": "dave", **({"watermark": watermark} if watermark else {})}
        sealed = encrypt(key, iv, json.dumps(payload).encode())
        assert_error(await decrypt(client, session, sealed, iv), 400, "watermark_mismatch")
    mine = encrypt(key, iv, json.dumps(
        {"openId": "dave", "watermark": {"appid": VECTOR_APPID, "timestamp": 7}}).encode())
    answer = await decrypt(client, session, mine, iv)
    assert answer.json == {"data": {"openId": "dave"}, "watermark": {"timestamp": 7}}


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_baidu_data_opens_with_its_own_cipher_and_layout(client, baidu, clock):
    key = base64.b64encode(secrets.token_bytes(24)).decode()
    iv = base64.b64encode(secrets.token_bytes(16)).decode()
    session = await login(client, baidu, "erin", key, app="temple")
    data = json.dumps({"openid": "erin", "nickname": "E"}).encode()

    def sealed(app_key: str) -> str:
        layout = secrets.token_bytes(16) + struct.pack(">I", len(data)) + data + app_key.encode()
        return encrypt(key, iv, layout)

    answer = await decrypt(client, session, sealed(BAIDU_APPKEY), iv)
    assert answer.code == 200, answer.body
    assert answer.json == {"data": {"openid": "erin", "nickname": "E"}, "watermark": {}}
    assert_error(await decrypt(client, session, sealed("another-app-key"), iv), 400,
                 "watermark_mismatch")
    await login(client, baidu, "erin", app="temple")  # a new key
    clock.advance(GRACE)  # the replaced key's grace period is over
    assert_error(await decrypt(client, session, sealed(BAIDU_APPKEY), iv), 409,
                 "session_key_stale")


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_raw_data_signature_is_checked_with_the_stored_session_key(client, fake,
                                                                           clock):
    session = await login(client, fake, "frank", SIGN_KEY)

    async def verify(raw_data, signature, form=False):
        fields = {"rawData": raw_data, "signature": signature}
        if form:
            return await client.request(
                "POST", "/platform/verify", body=urlencode(fields),
                headers={**session, "Content-Type": "application/x-www-form-urlencoded"})
        return await client.request("POST", "/platform/verify", headers=session,
                                    json_body=fields)

    for form in (False, True):
        answer = await verify(RAW_DATA, SIGNATURE, form)
        assert (answer.code, answer.json) == (200, {"valid": True})
    assert_error(await verify(RAW_DATA.replace("Band", "Bond"), SIGNATURE), 400,
                 "signature_mismatch")
    assert_error(await verify(RAW_DATA, "0" * 40), 400, "signature_mismatch")
    assert_error(await verify(RAW_DATA, None), 400, "invalid_signature")
    assert_error(await verify(None, SIGNATURE), 400, "invalid_raw_data")
    # Signed with a key the user no longer has (past its grace period): refused.
    await login(client, fake, "frank")
    clock.advance(GRACE)
    assert_error(await verify(RAW_DATA, SIGNATURE), 400, "signature_mismatch")


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_both_endpoints_need_a_session(client):
    for path, body in (("/platform/decrypt", {"encryptedData": VECTOR_DATA, "iv": VECTOR_IV}),
                       ("/platform/verify", {"rawData": RAW_DATA, "signature": SIGNATURE})):
        assert_error(await client.request("POST", path, json_body=body), 401, "no_session")
        assert_error(await client.request("POST", path, json_body=body,
                                          headers={"X-Session": "forged.token"}),
                     401, "invalid_session")


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_platform_without_session_key_answers_409_unavailable(client, alipay):
    """Alipay gives no session_key: nothing to decrypt or verify with."""
    session = await login(client, alipay, "gina", app="wallet")
    assert_error(await decrypt(client, session), 409, "session_key_unavailable")
    answer = await client.request("POST", "/platform/verify", headers=session,
                                  json_body={"rawData": RAW_DATA, "signature": SIGNATURE})
    assert_error(answer, 409, "session_key_unavailable")
