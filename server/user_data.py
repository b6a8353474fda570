"""The user data a mini-program gets from its platform, opened and checked with the user's
session_key: ``encryptedData`` + ``iv`` decrypted, ``rawData`` signatures verified. No HTTP.

Schemes, by platform:

- WeChat, QQ, Douyin (and ``dev``, which issues WeChat-shaped keys), Kuaishou: AES-128-CBC,
  PKCS#7, key = base64-decode(session_key) (16 bytes); the plaintext is a JSON object. WeChat
  and QQ put ``watermark: {appid, timestamp}`` in it, and the appid must be the app's.
- Baidu: AES-192-CBC with the 24-byte key; the plaintext is 16 random bytes, a 4-byte
  big-endian length, the JSON data, then the app key, which must be the app's.

A plaintext that does not come out right (bad padding, not JSON) almost always means the data
was encrypted under another session_key: the client called ``wx.login`` after it got it.
Nothing here logs, and no message quotes the data or the key.
"""

import base64
import binascii
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from server.errors import InvalidInput, SessionKeyStale, SessionKeyUnavailable

BLOCK = 16
#: Platforms whose plaintext must carry a watermark naming the app.
WATERMARKED = {"wechat", "qq"}
#: Platforms of the AES-128-CBC scheme (Baidu has its own; Alipay has no session_key).
AES_128_PLATFORMS = {"wechat", "qq", "douyin", "kuaishou", "dev"}


def _b64(value, code: str, name: str) -> bytes:
    """Strict base64; spaces read as '+', since a form body sent unencoded turns '+' into ' '."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(code, f"send '{name}' as a base64 string")
    try:
        return base64.b64decode(value.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(code, f"'{name}' is not valid base64") from None


def _key(session_key: str | None, size: int) -> bytes:
    if session_key is None:
        raise SessionKeyUnavailable()
    try:
        key = base64.b64decode(session_key, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != size:
        raise SessionKeyUnavailable("the session_key the platform gave is not usable for "
                                    "this data: log in again")
    return key


def _cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise SessionKeyStale() from None


def _json_object(text: bytes) -> dict:
    try:
        value = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SessionKeyStale() from None
    if not isinstance(value, dict):
        raise SessionKeyStale()
    return value


def _watermark_mismatch() -> InvalidInput:
    return InvalidInput("watermark_mismatch",
                        "the data was encrypted for another app than this one")


def decrypt(platform: str, appid: str, session_key: str | None, encrypted_data,
            iv) -> tuple[dict, dict]:
    """The decrypted user data and its watermark (``{"timestamp": ...}`` or ``{}``).

    Raises InvalidInput (``invalid_encrypted_data``, ``invalid_iv``, ``watermark_mismatch``),
    SessionKeyStale when the data does not open with this key, SessionKeyUnavailable when
    there is no usable key (Alipay, or an unknown user).
    """
    ciphertext = _b64(encrypted_data, "invalid_encrypted_data", "encryptedData")
    if len(ciphertext) % BLOCK:
        raise InvalidInput("invalid_encrypted_data",
                           "'encryptedData' is not whole AES blocks (truncated?)")
    iv_bytes = _b64(iv, "invalid_iv", "iv")
    if len(iv_bytes) != BLOCK:
        raise InvalidInput("invalid_iv", "'iv' must decode to 16 bytes")
    if platform == "baidu":
        return _decrypt_baidu(appid, _key(session_key, 24), iv_bytes, ciphertext)
    if platform not in AES_128_PLATFORMS:
        raise SessionKeyUnavailable()  # Alipay: no session_key, no such data
    data = _json_object(_cbc_decrypt(_key(session_key, 16), iv_bytes, ciphertext))
    watermark = data.pop("watermark", None)
    if platform in WATERMARKED:
        if not isinstance(watermark, dict) or not isinstance(watermark.get("appid"), str) \
                or not hmac.compare_digest(watermark["appid"].encode(), appid.encode()):
            raise _watermark_mismatch()
    timestamp = watermark.get("timestamp") if isinstance(watermark, dict) else None
    return data, ({"timestamp": timestamp} if timestamp is not None else {})


def _decrypt_baidu(appid: str, key: bytes, iv: bytes, ciphertext: bytes) -> tuple[dict, dict]:
    plain = _cbc_decrypt(key, iv, ciphertext)
    if len(plain) < BLOCK + 4:
        raise SessionKeyStale()
    (length,) = struct.unpack(">I", plain[BLOCK:BLOCK + 4])
    body, app_key = plain[BLOCK + 4:BLOCK + 4 + length], plain[BLOCK + 4 + length:]
    if len(body) != length:
        raise SessionKeyStale()
    data = _json_object(body)
    if not hmac.compare_digest(app_key, appid.encode()):
        raise _watermark_mismatch()
    return data, {}


def signature_matches(session_key: str | None, raw_data, signature) -> bool:
    """Whether ``signature`` is ``sha1(rawData + session_key)`` in hex (compared in constant
    time); InvalidInput for values that are not strings."""
    if not isinstance(raw_data, str) or not raw_data:
        raise InvalidInput("invalid_raw_data", "send 'rawData' as the string the platform gave")
    if not isinstance(signature, str) or not signature:
        raise InvalidInput("invalid_signature", "send 'signature' as the platform gave it")
    if session_key is None:
        raise SessionKeyUnavailable()
    expected = hashlib.sha1((raw_data + session_key).encode("utf-8")).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8"))
