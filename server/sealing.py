"""Encryption at rest (AES-256-GCM) for the secrets minisession has to keep in the store.

What is sealed: each user's WeChat ``session_key``, and the raw id of the session a user was
issued most recently (kept only so that concurrent logins can be handed the same id). A
database dump alone therefore yields neither.

A sealed value is the text ``v1.<key id>.<base64url(nonce | ciphertext | tag)>``:

- the key id is the first 6 characters of base64url(SHA-256(key)), so a value names the key that
  sealed it and several keys can be configured at once (rotation: the first key seals, every
  key opens; remove an old key once nothing sealed with it is still needed);
- the nonce is 96 random bits, fresh for every value (AES-GCM's limit of 2^32 values per key
  under random nonces is far beyond what one key seals between rotations);
- the associated data binds a value to its purpose and owner (say ``session_key`` and the
  openid), so someone who can write to the database cannot move a sealed value to another user
  or field: it would no longer open.
"""

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_key(text: str) -> bytes:
    """A configured key (standard or URL-safe base64 of 32 bytes) as bytes; ValueError if not."""
    try:
        key = base64.b64decode(text.strip().replace("-", "+").replace("_", "/")
                               + "=" * (-len(text.strip()) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key() -> str:
    """A fresh key in the configuration's format (what ``openssl rand -base64 32`` prints)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class Sealer:
    """Seals with the first of its keys, opens with any of them."""

    def __init__(self, keys: list[str] | tuple[str, ...]):
        if isinstance(keys, (str, bytes)):
            raise TypeError("keys must be a list of strings, not a single string")
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._ciphers = {}
        for text in keys:
            raw = decode_key(text)
            self._ciphers.setdefault(_b64(hashlib.sha256(raw).digest())[:6], AESGCM(raw))
        self._current = next(iter(self._ciphers))

    def seal(self, plaintext: str, context: str) -> str:
        """``plaintext`` encrypted and authenticated; ``context`` must be given again to open."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{_VERSION}.{self._current}.{_b64(nonce + sealed)}"

    def open(self, value: object, context: str) -> str | None:
        """The plaintext, or None when the value is not ours, was tampered with, was sealed for
        another context, or its key is no longer configured. Never raises."""
        if not isinstance(value, str):
            return None
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != _VERSION or parts[1] not in self._ciphers:
            return None
        try:
            blob = _unb64(parts[2])
            if _b64(blob) != parts[2]:
                return None  # base64 with stray bits: not what seal() wrote
            plaintext = self._ciphers[parts[1]].decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode("utf-8"))
            return plaintext.decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error):
            return None
