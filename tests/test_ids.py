"""Signed session ids (server/ids.py): unguessable, cookie-safe, rotatable, unforgeable."""

import base64
import hashlib
import hmac
import re
import secrets

import pytest

from server.ids import SessionIdSigner, storage_key

SECRET = "test-signing-secret-0123456789abcdef-not-for-production"
OLD = "old-secret-that-leaked-0123456789abcdef"
NEW = "new-secret-after-rotation-0123456789abcdef"
OTHER = "someone-elses-secret-0123456789abcdef"

COOKIE_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def random_b64url(length: int) -> str:
    return "".join(secrets.choice(B64URL) for _ in range(length))


@pytest.fixture
def signer():
    return SessionIdSigner([SECRET])


@pytest.fixture
def token(signer):
    return signer.new_token()[1]


# --- compatibility -------------------------------------------------------------------------


# Secrets shorter than SHA-256's 64-byte block, exactly one block, longer (HMAC hashes those
# first), and non-ASCII (hashed as UTF-8).
@pytest.mark.parametrize("secret", [SECRET, "k" * 64, "k" * 65, "clé secrète ünïcode " * 5])
def test_ids_are_hmac_sha256_and_stored_under_sha256(secret):
    """The standard constructions, computed here by the standard library: ids handed out and
    sessions stored by any earlier release stay valid whatever the implementation."""
    signer = SessionIdSigner([secret])
    raw, token = signer.new_token()
    mac = hmac.new(secret.encode("utf-8"), raw.encode("ascii"), hashlib.sha256).digest()[:16]
    assert token == f"{raw}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert signer.verify(token) == raw
    expected_key = hashlib.sha256(raw.encode("ascii")).digest()
    assert b64url_decode(storage_key(raw)) == expected_key


# --- new tokens ---------------------------------------------------------------------------


def test_new_token_verifies_and_round_trips_to_its_raw_id(signer):
    raw, token = signer.new_token()
    assert signer.verify(token) == raw
    assert token.startswith(raw + ".")
    assert signer.sign(raw) == token


def test_new_token_verifies_with_a_fresh_signer_using_the_same_secret(signer):
    # A restarted server (same configured secret) still accepts the tokens it issued.
    raw, token = signer.new_token()
    assert SessionIdSigner([SECRET]).verify(token) == raw


def test_a_thousand_new_tokens_are_all_distinct(signer):
    pairs = [signer.new_token() for _ in range(1000)]
    assert len({raw for raw, _ in pairs}) == 1000
    assert len({token for _, token in pairs}) == 1000


def test_raw_id_carries_at_least_128_random_bits(signer):
    raws = [signer.new_token()[0] for _ in range(1000)]
    for raw in raws:
        assert len(raw) == 32
        assert len(b64url_decode(raw)) == 24  # 192 bits
    # Every one of the 192 bits varies across ids (a constant or counter-like part would not).
    values = [int.from_bytes(b64url_decode(raw), "big") for raw in raws]
    always_set = ~0
    ever_set = 0
    for value in values:
        always_set &= value
        ever_set |= value
    assert ever_set == (1 << 192) - 1
    assert always_set & ((1 << 192) - 1) == 0


def test_tokens_use_only_cookie_safe_characters(signer):
    for _ in range(200):
        _, token = signer.new_token()
        assert COOKIE_SAFE.fullmatch(token), token
        assert len(token) == 55
        assert token.count(".") == 1


def test_a_signer_needs_at_least_one_secret():
    with pytest.raises(ValueError):
        SessionIdSigner([])


# --- secret rotation ----------------------------------------------------------------------


def test_rotation_keeps_tokens_signed_with_the_old_secret_valid():
    raw, old_token = SessionIdSigner([OLD]).new_token()
    assert SessionIdSigner([NEW, OLD]).verify(old_token) == raw


def test_rotation_signs_with_the_new_secret():
    rotating = SessionIdSigner([NEW, OLD])
    raw, token = rotating.new_token()
    assert token == SessionIdSigner([NEW]).sign(raw)
    assert token != SessionIdSigner([OLD]).sign(raw)
    assert SessionIdSigner([NEW]).verify(token) == raw
    # The old secret alone does not accept tokens signed after rotation.
    assert SessionIdSigner([OLD]).verify(token) is None


def test_retiring_a_leaked_secret_rejects_its_tokens():
    _, old_token = SessionIdSigner([OLD]).new_token()
    assert SessionIdSigner([NEW]).verify(old_token) is None


# --- rejection ----------------------------------------------------------------------------


def test_forged_tokens_are_rejected(signer):
    for _ in range(200):
        forged = f"{random_b64url(32)}.{random_b64url(22)}"
        assert signer.verify(forged) is None


def test_a_token_signed_with_another_secret_is_rejected(signer):
    _, foreign = SessionIdSigner([OTHER]).new_token()
    assert signer.verify(foreign) is None


@pytest.mark.parametrize("position", range(55))
def test_every_single_character_tampered_is_rejected(signer, token, position):
    original = token[position]
    # Replace with another cookie-safe character, and with a few that are not.
    for replacement in {B64URL[(B64URL.find(original) + 1) % 64], "A", "z", "0", "-", "_", ".",
                        "=", "+", "/", " ", "%"} - {original}:
        tampered = token[:position] + replacement + token[position + 1:]
        assert signer.verify(tampered) is None, (position, replacement)


@pytest.mark.parametrize("length", range(55))
def test_truncated_tokens_are_rejected(signer, token, length):
    assert signer.verify(token[:length]) is None  # end cut off
    assert signer.verify(token[55 - length:]) is None  # start cut off


@pytest.mark.parametrize("extend", [
    lambda t: t + "A",
    lambda t: t + ".",
    lambda t: t + "=",
    lambda t: t + "==",
    lambda t: "A" + t,
    lambda t: t + t,
    lambda t: t + "." + t.split(".")[1],
    lambda t: t + ";",
    lambda t: t + "\x00",
], ids=["suffix", "dot", "pad1", "pad2", "prefix", "doubled", "second-mac", "semicolon", "nul"])
def test_extended_tokens_are_rejected(signer, token, extend):
    assert signer.verify(extend(token)) is None


@pytest.mark.parametrize("value", [
    "", None, b"", 0, 12345, 1.5, [], {}, object(),
], ids=["empty", "None", "bytes-empty", "zero", "int", "float", "list", "dict", "object"])
def test_non_tokens_are_rejected_without_raising(signer, value):
    assert signer.verify(value) is None


def test_the_token_as_bytes_is_rejected(signer, token):
    assert signer.verify(token.encode("ascii")) is None
    assert signer.verify(bytearray(token.encode("ascii"))) is None


@pytest.mark.parametrize("separator", ["-", "_", ":", ",", ";", "~", "|", " ", "", ".."])
def test_wrong_separator_is_rejected(signer, token, separator):
    raw, mac = token.split(".")
    assert signer.verify(raw + separator + mac) is None


@pytest.mark.parametrize("wrap", [
    lambda t: " " + t,
    lambda t: t + " ",
    lambda t: "\t" + t,
    lambda t: t + "\n",
    lambda t: "\r\n" + t,
    lambda t: " " + t + " ",
    lambda t: "\u00a0" + t,
    lambda t: t + "\u200b",
], ids=["lead-space", "trail-space", "lead-tab", "trail-newline", "lead-crlf", "both", "nbsp",
        "zero-width"])
def test_whitespace_around_the_token_is_rejected(signer, token, wrap):
    assert signer.verify(wrap(token)) is None


FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in B64URL + "."}  # NFKC folds these back to ASCII
CYRILLIC = dict(zip("AaBEeKMHOoPpCcTyXx", "АаВЕеКМНОоРрСсТуХх"))


@pytest.mark.parametrize("position", range(55))
def test_unicode_lookalikes_are_rejected(signer, token, position):
    original = token[position]
    lookalikes = [FULLWIDTH[original]]
    if original in CYRILLIC:
        lookalikes.append(CYRILLIC[original])
    if original == ".":
        lookalikes += ["。", "\u2024", "\u00b7"]
    for lookalike in lookalikes:
        assert signer.verify(token[:position] + lookalike + token[position + 1:]) is None


def test_a_fully_fullwidth_token_is_rejected(signer, token):
    assert signer.verify("".join(FULLWIDTH[c] for c in token)) is None


def test_verify_never_raises_on_odd_strings(signer):
    odd = ["\udcff" * 55, "\x00" * 55, "é" * 55, "=" * 55, "." * 55, "%" * 55,
           "A" * 32 + "." + "\udcff" * 22, "\U0001f600" * 55, "A" * 10_000]
    for value in odd:
        assert signer.verify(value) is None


# --- fixation -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "A" * 32,
    "attacker-chosen-session-id-00000",
    "0123456789abcdefghijklmnopqrstuv",
], ids=["all-A", "readable", "sequence"])
def test_a_client_cannot_choose_its_own_id_without_the_secret(signer, raw):
    assert len(raw) == 32
    genuine_mac = signer.sign(raw).split(".")[1]
    wrong_macs = {
        "A" * 22,
        random_b64url(22),
        genuine_mac[:-1] + ("A" if genuine_mac[-1] != "A" else "B"),
        SessionIdSigner([OTHER]).sign(raw).split(".")[1],
        SessionIdSigner(["secret"]).sign(raw).split(".")[1],
        SessionIdSigner([""]).sign(raw).split(".")[1],
    } - {genuine_mac}
    for mac in wrong_macs:
        assert signer.verify(f"{raw}.{mac}") is None, mac
    # Only the server's own signature makes that id acceptable.
    assert signer.verify(signer.sign(raw)) == raw
