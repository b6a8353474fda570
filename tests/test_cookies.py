"""Reading the session id from what mini-program clients really send, and the Set-Cookie we send.

See /work/shared/context/clients.md: clients build the Cookie header by hand, echo the whole
stored Set-Cookie string back, join several Set-Cookie strings with commas, use their own cookie
names, or pull the id out of our Set-Cookie with the regexp ``(^| )NAME=([^;]*)(;|$)``.
"""

import re
from urllib.parse import unquote

import pytest

from server.cookies import (
    MAX_VALUE_LENGTH,
    cookie_values,
    header_values,
    session_cookie,
)
from server.ids import SessionIdSigner

NAME = "sessionid"
SECRET = "test-signing-secret-0123456789abcdef-not-for-production"


@pytest.fixture
def signer():
    return SessionIdSigner([SECRET])


def client_regexp(header: str, name: str) -> str | None:
    """What copied client code does: ``(^| )NAME=([^;]*)(;|$)`` then ``unescape()``."""
    match = re.search(r"(^| )" + re.escape(name) + r"=([^;]*)(;|$)", header)
    return unquote(match.group(2)) if match else None


# --- cookie_values ------------------------------------------------------------------------


@pytest.mark.parametrize("lines, expected", [
    (["sessionid=abc"], ["abc"]),
    (["a=1; sessionid=abc; b=2"], ["abc"]),
    (["a=1;sessionid=abc"], ["abc"]),
    (["a=1;sessionid=abc;b=2"], ["abc"]),
    (["  sessionid = abc  ;"], ["abc"]),
    (["a=1 ;   sessionid=abc   ; b=2"], ["abc"]),
    (['sessionid="abc"'], ["abc"]),
    (["sessionid=ab%2Ecd"], ["ab.cd"]),
    (["sessionid=ab%2ecd"], ["ab.cd"]),
    (['sessionid="ab%2Ecd"'], ["ab.cd"]),
    (["sessionid=abc; Path=/; HttpOnly; Max-Age=7200; SameSite=Lax"], ["abc"]),
    (["other=1; Path=/, sessionid=abc; Path=/; HttpOnly"], ["abc"]),
    (["sessionid=abc; Path=/; HttpOnly, other=1; Path=/"], ["abc"]),
    (["x=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; sessionid=abc"], ["abc"]),
    (["sessionid=abc; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/"], ["abc"]),
    (["a=1", "sessionid=abc"], ["abc"]),
    (["a=1; b=2", "c=3; sessionid=abc", "d=4"], ["abc"]),
    (["sessionid=old; sessionid=new"], ["old", "new"]),
    (["sessionid=first", "sessionid=second"], ["first", "second"]),
    (["other=1; Path=/, sessionid=one; Path=/", "sessionid=two"], ["one", "two"]),
], ids=[
    "plain", "several", "no-spaces", "no-spaces-3", "extra-spaces", "spaces-around-separators",
    "quoted", "url-encoded", "url-encoded-lower", "quoted-url-encoded", "whole-set-cookie",
    "comma-joined-set-cookies", "comma-joined-ours-first", "expires-with-comma",
    "own-expires-with-comma", "two-header-lines", "three-header-lines", "twice-in-one-line",
    "twice-in-two-lines", "comma-joined-and-second-line",
])
def test_cookie_values_reads_what_clients_send(lines, expected):
    assert cookie_values(lines, NAME) == expected


@pytest.mark.parametrize("line", [
    "xsessionid=1",
    "sessionid2=1",
    "my_sessionid=1; sessionid_old=2",
    "SESSIONID=1",
    "Sessionid=1",
    "a=sessionid=1",
    "sessionid",
    "sessionid;",
    "Path=/sessionid",
], ids=["prefixed", "suffixed", "both", "upper", "capitalised", "in-a-value", "bare-name",
        "bare-name-semicolon", "in-an-attribute"])
def test_other_cookies_are_not_mistaken_for_the_session(line):
    assert cookie_values([line], NAME) == []


def test_similar_names_next_to_the_real_one_are_skipped():
    assert cookie_values(["xsessionid=1; sessionid=abc; sessionid2=2"], NAME) == ["abc"]


@pytest.mark.parametrize("name", ["PHPSESSID", "cookie-key", "JSESSIONID", "sid"])
def test_cookie_name_is_configurable(name):
    line = f"a=1; {name}=abc; {NAME}=not-this-one"
    assert cookie_values([line], name) == ["abc"]
    assert cookie_values([f"{name}=abc; Path=/; HttpOnly; Max-Age=7200"], name) == ["abc"]
    assert cookie_values([f"x{name}=1; {name}2=2"], name) == []


@pytest.mark.parametrize("line", [
    "sessionid=",
    "sessionid=   ",
    'sessionid=""',
    'sessionid=" "',
    "sessionid=; Path=/; HttpOnly; Max-Age=0; SameSite=Lax",
], ids=["empty", "spaces", "empty-quotes", "quoted-space", "cleared-cookie-echoed"])
def test_empty_values_are_ignored(line):
    assert cookie_values([line], NAME) == []


def test_an_empty_value_does_not_hide_a_real_one():
    assert cookie_values(["sessionid=; sessionid=abc"], NAME) == ["abc"]


def test_overlong_values_are_ignored():
    assert cookie_values([f"sessionid={'a' * (MAX_VALUE_LENGTH + 1)}"], NAME) == []
    assert cookie_values([f"sessionid={'a' * 5000}; sessionid=abc"], NAME) == ["abc"]
    assert MAX_VALUE_LENGTH >= 55  # our own tokens always fit
    assert cookie_values([f"sessionid={'a' * MAX_VALUE_LENGTH}"], NAME) == ["a" * MAX_VALUE_LENGTH]


GARBAGE = [
    "", " ", "\x00\x01\x02", "\r\n", "\t", "\x7f", "é=ü", "日本=語", "=", "==", "= ; = ,", ";;;",
    ",,,", "; , ;", '"', '""', "'", '"sessionid', "sessionid\"", "\udcff", "\U0001f600=\U0001f600",
    "%", "%ZZ=%", "a=%ff%fe", "a=\x00; b=\x1b[31m",
]


@pytest.mark.parametrize("line", GARBAGE)
def test_garbage_never_raises_and_yields_nothing(line):
    assert cookie_values([line], NAME) == []


@pytest.mark.parametrize("value", [
    "\x00", "a\x00b", "\x1b[31m", "é", "日本語", "\udcff", '"', '"abc', "abc\"", "=", "=abc", "%",
    "%ZZ", "%00", "%ff%fe", "%3B", "%2C", "\U0001f600",
])
def test_garbage_session_values_never_raise_nor_authenticate(signer, value):
    _, token = signer.new_token()
    for line in [f"sessionid={value}", f"sessionid={value}; sessionid={token}",
                 f"sessionid={value}, sessionid={token}; Path=/"]:
        found = cookie_values([line], NAME)
        assert all(isinstance(v, str) and v for v in found)
        # Whatever is returned is only a candidate: garbage never passes verification...
        assert [v for v in found if signer.verify(v) is not None] == (
            [token] if token in line else [])
        # ...and never hides the real session sent next to it.
        if token in line:
            assert token in found


def test_a_real_token_is_read_and_verifies(signer):
    raw, token = signer.new_token()
    lines = [f"a=1; sessionid={token}; b=2"]
    assert [signer.verify(v) for v in cookie_values(lines, NAME)] == [raw]


# --- header_values ------------------------------------------------------------------------


@pytest.mark.parametrize("lines, expected", [
    (["abc"], ["abc"]),
    (["  abc  "], ["abc"]),
    (['"abc"'], ["abc"]),
    (['  "abc"  '], ["abc"]),
    (["sessionid=abc"], ["abc"]),
    (["sessionid=abc; Path=/; HttpOnly; Max-Age=7200; SameSite=Lax"], ["abc"]),
    (["other=1; Path=/, sessionid=abc; Path=/; HttpOnly"], ["abc"]),
    ([""], []),
    (["   "], []),
    (['""'], []),
    ([], []),
    (["abc", "def"], ["abc", "def"]),
], ids=["bare", "spaces", "quoted", "spaces-and-quotes", "name-value", "whole-set-cookie",
        "comma-joined-set-cookies", "empty", "blank", "empty-quotes", "no-header", "two-lines"])
def test_header_values_reads_the_custom_header(lines, expected):
    assert header_values(lines, NAME) == expected


def test_header_values_uses_the_configured_name():
    assert header_values(["PHPSESSID=abc; Path=/"], "PHPSESSID") == ["abc"]
    assert header_values(["xPHPSESSID=abc"], "PHPSESSID") == []


def test_header_values_ignores_overlong_bare_values():
    assert header_values(["a" * (MAX_VALUE_LENGTH + 1)], NAME) == []


def test_a_real_token_in_the_header_verifies(signer):
    raw, token = signer.new_token()
    for line in [token, f" {token} ", f'"{token}"', f"sessionid={token}",
                 session_cookie(NAME, token, 7200, secure=True, samesite="Lax")]:
        assert [signer.verify(v) for v in header_values([line], NAME)] == [raw], line


@pytest.mark.parametrize("line", GARBAGE + ["sessionid=\x00", 'sessionid="'])
def test_header_values_never_raises_on_garbage(signer, line):
    found = header_values([line], NAME)
    assert all(isinstance(v, str) and v for v in found)
    assert all(signer.verify(v) is None for v in found)


# --- session_cookie -----------------------------------------------------------------------


def test_session_cookie_exact_form():
    assert (session_cookie(NAME, "tok", 7200, secure=False, samesite="Lax")
            == "sessionid=tok; Path=/; HttpOnly; Max-Age=7200; SameSite=Lax")


def test_session_cookie_secure_when_asked():
    cookie = session_cookie(NAME, "tok", 7200, secure=True, samesite="Lax")
    assert cookie == "sessionid=tok; Path=/; HttpOnly; Max-Age=7200; Secure; SameSite=Lax"
    assert "Secure" not in session_cookie(NAME, "tok", 7200, secure=False, samesite="Lax")


def test_session_cookie_for_clearing():
    assert (session_cookie(NAME, "", 0, secure=False, samesite="Lax")
            == "sessionid=; Path=/; HttpOnly; Max-Age=0; SameSite=Lax")
    # A negative lifetime never produces an invalid Max-Age.
    assert "Max-Age=0;" in session_cookie(NAME, "", -5, secure=False, samesite="Lax")


@pytest.mark.parametrize("name", [NAME, "PHPSESSID", "cookie-key", "JSESSIONID"])
@pytest.mark.parametrize("secure", [False, True])
def test_client_regexp_extracts_the_token_from_our_set_cookie(signer, name, secure):
    raw, token = signer.new_token()
    header = session_cookie(name, token, 7200, secure=secure, samesite="Lax")
    assert header.startswith(f"{name}={token};")  # the cookie name comes first
    assert client_regexp(header, name) == token
    # Still works when the client's platform joins a later Set-Cookie after ours.
    assert client_regexp(header + ", other=1; Path=/", name) == token
    assert signer.verify(client_regexp(header, name)) == raw


@pytest.mark.parametrize("name", [NAME, "PHPSESSID", "cookie-key", "JSESSIONID"])
def test_stored_set_cookie_echoed_back_as_cookie_authenticates(signer, name):
    raw, token = signer.new_token()
    stored = session_cookie(name, token, 7200, secure=True, samesite="Lax")
    assert [signer.verify(v) for v in cookie_values([stored], name)] == [raw]
    # The cleared cookie echoed back carries no session at all.
    assert cookie_values([session_cookie(name, "", 0, secure=True, samesite="Lax")], name) == []
