"""Properties of the session id intake, checked on generated inputs (hypothesis).

- The ``Cookie`` / ``X-Session`` parser never raises, whatever it is given, and returns only
  short non-empty candidates it really found in the input.
- ``SessionIdSigner.verify`` never raises, never accepts a token it did not sign (random
  strings, every single-character change of a real token, truncations, extensions, tokens
  of other secrets) and accepts every token it issued, also across a rotation of secrets.
- A token put in any realistic Cookie or X-Session form a client sends is found again.

Runs are reproducible (``derandomize``) and leave no example database behind.
"""

import base64
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from server.cookies import (
    MAX_VALUE_LENGTH,
    cookie_values,
    header_values,
    session_cookie,
)
from server.ids import SessionIdSigner

PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=100)
FEW = settings(PROPERTY, max_examples=15)  # for properties that check thousands of tokens each

SECRET = "test-signing-secret-0123456789abcdef-not-for-production"
NAME = "sessionid"
B64URL = string.ascii_letters + string.digits + "-_"
# What an id may be made of, and a few characters it may not contain.
TOKEN_CHARS = B64URL + "."
MUTATIONS = TOKEN_CHARS + " =;,\"%+/\x00é"

signer = SessionIdSigner([SECRET])

# Any text at all: control characters, lone surrogates, private use, astral planes.
any_text = st.text(st.characters(codec=None, categories=None), max_size=200)
# A few very long strings, built cheaply.
huge_text = st.builds(lambda piece, times: piece * times, any_text, st.integers(0, 20_000))
header_lines = st.lists(st.one_of(any_text, huge_text, st.sampled_from([
    "sessionid=", "sessionid", "=;,", '"', "%", "%ZZ", "sessionid=%", "sessionid=\"\"",
])), max_size=8)
raw_ids = st.binary(min_size=24, max_size=24).map(
    lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode())
tokens = raw_ids.map(signer.sign)
# Secrets as configured; from the environment, undecodable bytes arrive as lone surrogates.
secrets = st.text(st.characters(codec=None, categories=None), min_size=1, max_size=80)


# ------------------------------------------------------------------------- cookie parser

def _well_formed(values: list[str]) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, str) and 0 < len(v) <= MAX_VALUE_LENGTH for v in values)


@PROPERTY
@given(header_lines, st.sampled_from([NAME, "sid", "PHPSESSID", "a"]))
def test_cookie_values_never_raises_and_returns_short_non_empty_strings(lines, name):
    values = cookie_values(lines, name)
    assert _well_formed(values)
    joined = "".join(lines)
    if f"{name}" not in joined:
        assert values == []  # nothing is made up
    if "%" not in joined:
        # Without percent-encoding, a value is a trimmed piece between separators.
        assert all(v == v.strip() and ";" not in v and "," not in v for v in values)
        assert all(v in joined for v in values)


@PROPERTY
@given(header_lines)
def test_header_values_never_raises_and_returns_short_non_empty_strings(lines):
    values = header_values(lines, NAME)
    assert _well_formed(values)
    if "%" not in "".join(lines):
        assert all(v == v.strip() and v in "".join(lines) for v in values)


@PROPERTY
@given(header_lines)
def test_nothing_the_parser_finds_in_garbage_verifies(lines):
    for value in cookie_values(lines, NAME) + header_values(lines, NAME):
        assert signer.verify(value) is None


# ------------------------------------------------------------------------- id verification

@PROPERTY
@given(st.one_of(any_text, huge_text, st.binary(max_size=100), st.integers(), st.floats(),
                 st.none(), st.booleans(), st.lists(any_text, max_size=3),
                 st.dictionaries(any_text, any_text, max_size=3)))
def test_verify_never_raises_and_accepts_nothing_random(value):
    assert signer.verify(value) is None


@PROPERTY
@given(st.text(TOKEN_CHARS, min_size=55, max_size=55),
       st.text(B64URL, min_size=32, max_size=32), st.text(B64URL, min_size=22, max_size=22))
def test_well_shaped_random_tokens_are_refused(anything, raw, mac):
    assert signer.verify(anything) is None
    assert signer.verify(f"{raw}.{mac}") is None


@PROPERTY
@given(raw_ids)
def test_every_issued_token_verifies_to_its_raw_id(raw):
    token = signer.sign(raw)
    assert len(token) == 55 and set(token) <= set(TOKEN_CHARS)
    assert signer.verify(token) == raw


@FEW
@given(tokens)
def test_every_single_character_change_is_refused(token):
    # Also the changes that decode to the same MAC bytes (the last character's unused bits).
    for index, original in enumerate(token):
        for replacement in MUTATIONS:
            if replacement != original:
                mutated = token[:index] + replacement + token[index + 1:]
                assert signer.verify(mutated) is None, (index, replacement)


@PROPERTY
@given(tokens, st.text(max_size=10), st.text(min_size=1, max_size=10))
def test_truncations_and_extensions_are_refused(token, prefix, suffix):
    for length in range(len(token)):
        assert signer.verify(token[:length]) is None
    assert signer.verify(token + suffix) is None
    assert signer.verify(prefix + token + suffix) is None
    assert signer.verify(suffix + token) is None
    assert signer.verify(token.encode()) is None  # bytes are not a token


@PROPERTY
@given(secrets.filter(lambda s: s != SECRET), raw_ids)
def test_tokens_of_another_secret_are_refused(other, raw):
    stranger = SessionIdSigner([other])
    assert signer.verify(stranger.sign(raw)) is None
    assert stranger.verify(signer.sign(raw)) is None
    assert signer.verify(stranger.new_token()[1]) is None


@PROPERTY
@given(st.lists(secrets, min_size=1, max_size=4, unique=True))
def test_any_secrets_list_issues_tokens_that_verify(keys):
    issuer = SessionIdSigner(keys)
    raw, token = issuer.new_token()
    assert issuer.verify(token) == raw
    assert SessionIdSigner(list(reversed(keys))).verify(token) == raw


@PROPERTY
@given(st.lists(secrets, min_size=3, max_size=3, unique=True), raw_ids)
def test_rotation_keeps_listed_secrets_and_drops_removed_ones(keys, raw):
    old, new, leaked = keys
    before = SessionIdSigner([old, leaked])
    old_token, leaked_token = before.sign(raw), SessionIdSigner([leaked]).sign(raw)
    # Step 1 and 2: the new secret is added, then put first; old tokens still verify.
    for listed in ([old, leaked, new], [new, old, leaked]):
        rotated = SessionIdSigner(listed)
        assert rotated.verify(old_token) == raw
        assert rotated.verify(leaked_token) == raw
    after = SessionIdSigner([new, old])  # the leaked secret is removed
    assert after.verify(old_token) == raw
    assert after.verify(leaked_token) is None
    assert after.verify(after.sign(raw)) == raw
    assert after.sign(raw) != old_token  # the first secret signs
    # Step 3: the old secret is removed too.
    assert SessionIdSigner([new]).verify(old_token) is None


# ------------------------------------------------------------------------ cookie round trip

cookie_names = st.text(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1,
                       max_size=20).filter(lambda n: n != NAME)
# RFC 6265 cookie-octet: no whitespace, DQUOTE, comma, semicolon or backslash.
cookie_octets = st.text(st.sampled_from(
    [chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\']), max_size=30)
other_cookies = st.lists(st.builds(lambda n, v: f"{n}={v}", cookie_names, cookie_octets),
                         max_size=5)
other_set_cookies = st.builds(
    lambda n, v: f"{n}={v}; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly",
    cookie_names, cookie_octets)


@st.composite
def our_cookie(draw, token: str) -> str:
    """Our cookie as some client writes it back."""
    form = draw(st.sampled_from(["plain", "spaces", "quoted", "percent", "set-cookie"]))
    if form == "spaces":
        return f"{' ' * draw(st.integers(0, 3))}{NAME} = {token}{' ' * draw(st.integers(0, 3))}"
    if form == "quoted":
        return f'{NAME}="{token}"'
    if form == "percent":
        # Some characters percent-encoded, with upper or lower case hex, as hand-made
        # encoders do.
        flags = draw(st.lists(st.booleans(), min_size=len(token), max_size=len(token)))
        pattern = draw(st.sampled_from(["%{:02X}", "%{:02x}"]))
        encoded = "".join(pattern.format(ord(c)) if flag else c
                          for c, flag in zip(token, flags, strict=True))
        return f"{NAME}={encoded}"
    if form == "set-cookie":
        return session_cookie(NAME, token, draw(st.integers(0, 10**6)),
                              secure=draw(st.booleans()),
                              samesite=draw(st.sampled_from(["Lax", "Strict", "None"])))
    return f"{NAME}={token}"


@st.composite
def cookie_headers(draw, token: str) -> list[str]:
    """Cookie header lines holding the token among other cookies, joined as clients do."""
    parts = draw(other_cookies)
    parts.insert(draw(st.integers(0, len(parts))), draw(our_cookie(token)))
    if draw(st.booleans()):
        # Several stored Set-Cookie strings joined with commas, Expires dates and all.
        parts.insert(draw(st.integers(0, len(parts))), draw(other_set_cookies))
        return [", ".join(parts)]
    separator = draw(st.sampled_from(["; ", ";", " ; ", ";  "]))
    cut = draw(st.integers(0, len(parts)))
    # Possibly split over two Cookie header lines.
    return [line for line in (separator.join(parts[:cut]), separator.join(parts[cut:])) if line]


@PROPERTY
@given(st.data(), tokens)
def test_a_token_in_any_realistic_cookie_header_is_found(data, token):
    lines = data.draw(cookie_headers(token))
    found = cookie_values(lines, NAME)
    assert token in found, lines
    # ...and it is the only candidate that verifies.
    assert [v for v in found if signer.verify(v)] == [token]


@PROPERTY
@given(st.data(), tokens)
def test_a_token_in_any_realistic_x_session_header_is_found(data, token):
    form = data.draw(st.sampled_from(["bare", "spaced", "quoted", "cookie-style"]))
    line = {"bare": token, "spaced": f"  {token} ", "quoted": f'"{token}"',
            "cookie-style": data.draw(our_cookie(token))}[form]
    assert token in header_values([line], NAME), line
