"""AES-GCM sealing of secrets at rest: round trips, binding to context, key rotation."""

import base64

import pytest

from server.sealing import Sealer, decode_key, new_key

K1, K2 = new_key(), new_key()


def test_sealed_values_open_only_with_their_context():
    sealer = Sealer([K1])
    sealed = sealer.seal("tiihtNczf5v6AKRyjwEUhQ==", "session_key\x00alice")
    assert sealed.startswith("v1.") and "tiihtNczf5v6AKRyjwEUhQ" not in sealed
    assert sealer.open(sealed, "session_key\x00alice") == "tiihtNczf5v6AKRyjwEUhQ=="
    # Moved to another user or another field, it no longer opens.
    assert sealer.open(sealed, "session_key\x00mallory") is None
    assert sealer.open(sealed, "session_id\x00alice") is None


def test_every_seal_is_different():
    sealer = Sealer([K1])
    values = {sealer.seal("same", "ctx") for _ in range(50)}
    assert len(values) == 50  # fresh nonce each time: equal secrets are not recognisable


def test_rotation_new_key_seals_old_keys_still_open_removed_keys_do_not():
    old = Sealer([K1]).seal("secret", "ctx")
    rotating = Sealer([K2, K1])
    assert rotating.open(old, "ctx") == "secret"
    new = rotating.seal("secret", "ctx")
    assert new.split(".")[1] != old.split(".")[1]  # names the new key
    assert Sealer([K2]).open(new, "ctx") == "secret"
    assert Sealer([K2]).open(old, "ctx") is None


@pytest.mark.parametrize("tamper", [
    lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),   # last byte of the tag
    lambda v: v.replace("v1.", "v2.", 1),
    lambda v: v[:20] + v[21:],                           # a character dropped
    lambda v: v + "AAAA",
    lambda v: v.split(".")[0] + "." + v.split(".")[1],
    lambda v: "",
    lambda v: "v1..",
    lambda v: "v1.abcdef.%%%",
    lambda v: "v1." + v.split(".")[1] + ".AA",           # shorter than a nonce
])
def test_tampered_or_foreign_values_never_open_and_never_raise(tamper):
    sealer = Sealer([K1])
    assert sealer.open(tamper(sealer.seal("secret", "ctx")), "ctx") is None


@pytest.mark.parametrize("junk", [None, 42, b"v1.x.y", ["v1"], "plain-session-key=="])
def test_values_that_are_not_sealed_open_as_none(junk):
    # e.g. a session_key written in clear by a version before encryption at rest.
    assert Sealer([K1]).open(junk, "ctx") is None


def test_keys_must_be_32_bytes_of_base64():
    assert decode_key(K1) == base64.b64decode(K1)
    assert len(decode_key(K1.replace("+", "-").replace("/", "_").rstrip("="))) == 32
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key(base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="base64"):
        decode_key("not base64!")
    with pytest.raises(TypeError):
        Sealer(K1)
    with pytest.raises(ValueError):
        Sealer([])
