"""Session ids: 192 random bits, signed with HMAC-SHA256.

A token looks like ``<raw>.<mac>``: ``raw`` is 24 random bytes and ``mac`` the first 16 bytes of
HMAC-SHA256(secret, raw), both base64url without padding (32 + 1 + 22 = 55 cookie-safe
characters). The signature lets us reject forged, truncated or tampered tokens before any store
lookup. Several secrets allow rotation: the first signs, every one verifies.

The store never sees a token nor ``raw``: sessions are kept under :func:`storage_key`, a
SHA-256 of ``raw``. Read from a database dump, a storage key leads to no usable id, even for
someone who also holds the signing secrets (``raw`` has 192 random bits: there is nothing to
guess). A plain hash suffices for this reason; a key would add nothing.
"""

import base64
import hashlib
import hmac
import importlib
import re
import secrets as _secrets

RAW_BYTES = 24
MAC_BYTES = 16
_BLOCK = 64  # SHA-256's block size, HMAC's key length
_TOKEN = re.compile(r"([A-Za-z0-9_-]{32})\.([A-Za-z0-9_-]{22})")


def _own_sha256():
    """CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before), else hashlib's.

    The same digests as hashlib's OpenSSL one, without OpenSSL's set-up of a digest context for
    each object, which costs more than hashing a session id: 0.8 % fewer instructions per
    GET /session for the MAC and the storage key (bench: instructions).
    """
    for name in ("_sha2", "_sha256"):
        try:
            return importlib.import_module(name).sha256
        except ImportError:
            pass
    return hashlib.sha256


_sha256 = _own_sha256()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def storage_key(raw: str) -> str:
    """The key a session is stored under: base64url(SHA-256(raw)), 43 characters."""
    return _b64(_sha256(raw.encode("ascii")).digest())


def _keyed_hmac(key: bytes) -> tuple:
    """HMAC-SHA256's inner and outer hash states for ``key``, made once: a copy per token skips
    the key's two SHA-256 blocks (of the four of a MAC of an id)."""
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return (_sha256(bytes(b ^ 0x36 for b in key)), _sha256(bytes(b ^ 0x5C for b in key)))


class SessionIdSigner:
    """Issues new signed session tokens and verifies tokens sent back by clients."""

    def __init__(self, secrets: tuple[str, ...] | list[str]):
        if isinstance(secrets, (str, bytes)):
            # A bare string would silently make every character a secret of its own.
            raise TypeError("secrets must be a list of strings, not a single string")
        if not secrets:
            raise ValueError("at least one signing secret is required")
        # surrogatepass: a secret read from the environment keeps undecodable bytes as lone
        # surrogates, which plain UTF-8 refuses to encode (the server would crash at start).
        keys = [s.encode("utf-8", "surrogatepass") for s in secrets]
        self._keyed = [_keyed_hmac(key) for key in keys]

    @staticmethod
    def _mac(keyed, raw: str) -> str:
        # HMAC (RFC 2104) from the key's two hash states: what hmac.HMAC does without OpenSSL.
        inner, outer = keyed[0].copy(), keyed[1].copy()
        inner.update(raw.encode("ascii"))
        outer.update(inner.digest())
        return _b64(outer.digest()[:MAC_BYTES])

    def sign(self, raw: str) -> str:
        """The token for ``raw``, signed with the current (first) secret."""
        return f"{raw}.{self._mac(self._keyed[0], raw)}"

    def new_token(self) -> tuple[str, str]:
        """A fresh ``(raw_id, token)`` pair. Only the server ever chooses ids."""
        raw = _b64(_secrets.token_bytes(RAW_BYTES))
        return raw, self.sign(raw)

    def verify(self, token: str) -> str | None:
        """The raw id inside ``token`` when some configured secret signed it, else ``None``.

        Never raises, whatever the input; compares MACs in constant time.
        """
        if not isinstance(token, str) or len(token) != 55:
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        raw, mac = match.groups()
        valid = False
        for keyed in self._keyed:
            # No early exit: the time taken does not depend on which secret matched.
            valid |= hmac.compare_digest(self._mac(keyed, raw), mac)
        return raw if valid else None
