"""The gateway's cookie jar (server/gateway/cookie_jar.py) against RFC 6265's rules: what is
kept, what replaces what, what expires, and what goes back upstream in which order."""

import calendar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.config import ConfigError
from server.gateway.cookie_jar import (
    MAX_COOKIE_BYTES,
    CookieJar,
    default_path,
    domain_matches,
    jar_size,
    parse_cookie_date,
    path_matches,
)
from tests.conftest import make_config

NOW = 1_800_000_000.0
UPSTREAM = "http://app.example.com:9000"


def jar(upstream=UPSTREAM, **kwargs) -> CookieJar:
    return CookieJar(upstream, **kwargs)


def receive(cookie_jar, *headers, path="/", now=NOW):
    return cookie_jar.receive(list(headers), path, now)


# -- the algorithms of section 5.1 ------------------------------------------------------------

def test_cookie_dates_in_the_formats_servers_send():
    expected = float(calendar.timegm((1994, 11, 6, 8, 49, 37)))
    for text in ("Sun, 06 Nov 1994 08:49:37 GMT",     # RFC 1123
                 "Sunday, 06-Nov-94 08:49:37 GMT",    # RFC 850, two-digit year
                 "Sun Nov  6 08:49:37 1994",          # asctime
                 "Sun, 06-Nov-1994 08:49:37 GMT"):    # Netscape
        assert parse_cookie_date(text) == expected, text
    assert parse_cookie_date("Wed, 01 Jan 2070 00:00:00 GMT") == calendar.timegm(
        (2070, 1, 1, 0, 0, 0))
    assert parse_cookie_date("01 Jan 69 00:00:00") == calendar.timegm((2069, 1, 1, 0, 0, 0))


def test_invalid_cookie_dates_are_refused():
    for text in ("", "tomorrow", "Sun, 06 Nov 1994 GMT", "30 Feb 2030 10:00:00",
                 "06 Nov 1994 24:00:00", "06 Nov 1500 08:49:37", "32 Jan 2030 00:00:00"):
        assert parse_cookie_date(text) is None, text


def test_domain_matching_never_widens_an_ip_host():
    assert domain_matches("www.example.com", "example.com")
    assert domain_matches("example.com", "example.com")
    assert not domain_matches("badexample.com", "example.com")
    assert not domain_matches("example.com", "www.example.com")
    assert domain_matches("127.0.0.1", "127.0.0.1")
    assert not domain_matches("10.0.0.1", "0.0.1")


def test_default_path_is_the_directory_of_the_request_path():
    assert default_path("/") == "/"
    assert default_path("/login") == "/"
    assert default_path("/shop/cart/add") == "/shop/cart"
    assert default_path("") == "/"
    assert default_path("odd") == "/"


def test_paths_match_on_slash_boundaries():
    assert path_matches("/shop", "/shop")
    assert path_matches("/shop/cart", "/shop")
    assert path_matches("/shop/cart", "/shop/")
    assert not path_matches("/shopping", "/shop")
    assert not path_matches("/", "/shop")


# -- storage model (5.2, 5.3) -------------------------------------------------------------------

def test_a_cookie_without_domain_is_host_only():
    cookies = jar()
    receive(cookies, "PHPSESSID=abc; path=/")
    assert cookies.cookie_header("/", NOW) == "PHPSESSID=abc"
    # A host-only cookie of app.example.com is not one of sub.app.example.com.
    stored = cookies.cookies
    assert CookieJar("http://sub.app.example.com", stored).cookie_header("/", NOW) is None
    assert list(stored.values())[0]["host_only"] is True


def test_a_domain_cookie_reaches_subdomains_and_a_foreign_domain_is_rejected():
    cookies = jar()
    change = receive(cookies, "a=1; Domain=.example.com", "b=2; Domain=other.com",
                     "c=3; Domain=www.app.example.com")
    assert change.refused == 2
    assert cookies.cookie_header("/", NOW) == "a=1"
    assert CookieJar("http://api.example.com", cookies.cookies).cookie_header("/", NOW) == "a=1"


def test_localhost_and_ip_upstreams_keep_their_cookies():
    # Where http.cookiejar fails: host-only cookies of localhost and of a bare IP address.
    for upstream in ("http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080"):
        cookies = jar(upstream)
        receive(cookies, "sid=s1; Path=/; HttpOnly", "d=2; Domain=127.0.0.1")
        expected = "sid=s1; d=2" if upstream.startswith("http://127") else "sid=s1"
        assert cookies.cookie_header("/", NOW) == expected, upstream


def test_the_default_path_scopes_a_cookie_to_its_directory():
    cookies = jar()
    receive(cookies, "cart=7", path="/shop/cart/add")
    assert cookies.cookie_header("/shop/cart/view", NOW) == "cart=7"
    assert cookies.cookie_header("/shop/cart", NOW) == "cart=7"
    assert cookies.cookie_header("/shop/cartoon", NOW) is None
    assert cookies.cookie_header("/", NOW) is None


def test_a_path_attribute_not_starting_with_a_slash_is_the_default_path():
    cookies = jar()
    receive(cookies, "a=1; Path=relative", path="/x/y")
    assert cookies.cookie_header("/x/z", NOW) == "a=1"
    assert cookies.cookie_header("/", NOW) is None


def test_same_name_domain_and_path_replaces_keeping_the_creation_time():
    cookies = jar()
    receive(cookies, "a=1; Path=/", now=NOW)
    receive(cookies, "b=2; Path=/", now=NOW + 1)
    receive(cookies, "a=3; Path=/", now=NOW + 2)
    # a is still the older cookie, so it still comes first.
    assert cookies.cookie_header("/", NOW + 3) == "a=3; b=2"
    assert len(cookies.cookies) == 2
    # Same name, another path: a second cookie, not a replacement.
    receive(cookies, "a=4; Path=/x", now=NOW + 4)
    assert cookies.cookie_header("/x", NOW + 5) == "a=4; a=3; b=2"


def test_cookie_header_lists_longer_paths_first_then_older_first():
    cookies = jar()
    receive(cookies, "root=1; Path=/", now=NOW)
    receive(cookies, "deep=2; Path=/a/b", now=NOW + 1)
    receive(cookies, "mid=3; Path=/a", now=NOW + 2)
    receive(cookies, "mid2=4; Path=/a", now=NOW + 3)
    assert cookies.cookie_header("/a/b/c", NOW + 4) == "deep=2; mid=3; mid2=4; root=1"


def test_max_age_wins_over_expires_whichever_comes_first():
    cookies = jar()
    receive(cookies, "a=1; Max-Age=60; Expires=Wed, 01 Jan 2020 00:00:00 GMT",
            "b=2; Expires=Wed, 01 Jan 2020 00:00:00 GMT; Max-Age=60")
    assert cookies.cookie_header("/", NOW + 59) == "a=1; b=2"
    assert cookies.cookie_header("/", NOW + 60) is None


def test_expires_in_the_future_keeps_and_then_expires():
    cookies = jar()
    receive(cookies, "a=1; Expires=Sat, 16 Jan 2027 08:00:00 GMT")  # NOW + 1 day
    deadline = calendar.timegm((2027, 1, 16, 8, 0, 0))
    assert cookies.cookie_header("/", deadline - 1) == "a=1"
    assert cookies.cookie_header("/", deadline) is None


def test_max_age_zero_negative_or_past_expires_delete():
    for deleting in ("a=; Max-Age=0", "a=x; Max-Age=-5",
                     "a=deleted; expires=Thu, 01-Jan-1970 00:00:01 GMT"):
        cookies = jar()
        receive(cookies, "a=1", "b=2")
        change = receive(cookies, deleting + "; Path=/", now=NOW + 1)
        assert cookies.cookie_header("/", NOW + 1) == "b=2", deleting
        assert len(change.unset) == 1 and not change.set
        # Deleting what is not there changes nothing.
        assert not receive(cookies, deleting + "; Path=/", now=NOW + 2)


def test_an_invalid_max_age_is_ignored_not_the_cookie():
    cookies = jar()
    receive(cookies, "a=1; Max-Age=soon", "b=2; Max-Age=+5")
    assert cookies.cookie_header("/", NOW + 10**6) == "a=1; b=2"  # session cookies


def test_secure_cookies_go_only_to_https_or_loopback_upstreams():
    plain = jar("http://10.0.0.5:9000")
    assert receive(plain, "s=1; Secure", "p=2").refused == 1
    assert plain.cookie_header("/", NOW) == "p=2"
    tls = jar("https://10.0.0.5:9443")
    receive(tls, "s=1; Secure", "p=2")
    assert tls.cookie_header("/", NOW) == "s=1; p=2"
    # The same stored cookies, asked for by a plain-http origin: the Secure one stays back.
    assert CookieJar("http://10.0.0.5:9443", tls.cookies).cookie_header("/", NOW) == "p=2"
    # Loopback is trustworthy, as for browsers: a local backend that sets Secure because the
    # client came over https (X-Forwarded-Proto) keeps its session.
    for upstream in ("http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost:9000"):
        local = jar(upstream)
        receive(local, "s=1; Secure; HttpOnly", "__Host-h=2; Secure; Path=/")
        assert local.cookie_header("/", NOW) == "s=1; __Host-h=2", upstream


def test_httponly_cookies_are_replayed():
    cookies = jar()
    receive(cookies, "connect.sid=s%3Aabc.sig; Path=/; HttpOnly; SameSite=Strict")
    assert cookies.cookie_header("/", NOW) == "connect.sid=s%3Aabc.sig"


def test_cookie_prefixes_are_enforced():
    tls = jar("https://app.example.com")
    change = receive(tls, "__Secure-a=1", "__Secure-b=2; Secure",
                     "__Host-c=3; Secure; Path=/", "__Host-d=4; Secure; Path=/x",
                     "__Host-e=5; Secure; Path=/; Domain=app.example.com")
    assert change.refused == 3
    assert tls.cookie_header("/", NOW) == "__Secure-b=2; __Host-c=3"


def test_malformed_set_cookie_headers_are_ignored():
    cookies = jar()
    change = receive(cookies, "", "no-equals-sign", "=value-without-name", "a\x01b=1",
                     "c=line\nbreak", "  spaced  =  value  ; Path=/")
    assert change.refused == 5
    assert cookies.cookie_header("/", NOW) == "spaced=value"


def test_an_expires_date_with_a_comma_is_one_cookie():
    # The reason Set-Cookie headers are read as a list: the comma of Expires is no separator.
    cookies = jar()
    receive(cookies, "a=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT; Path=/")
    assert cookies.cookie_header("/", NOW) == "a=1"


# -- limits -------------------------------------------------------------------------------------

def test_a_cookie_over_4096_bytes_is_ignored():
    cookies = jar(max_bytes=10**6)
    fits = "a=" + "x" * (MAX_COOKIE_BYTES - 1)
    too_big = "b=" + "x" * MAX_COOKIE_BYTES
    assert receive(cookies, fits, too_big).refused == 1
    assert [c["name"] for c in cookies.cookies.values()] == ["a"]


def test_a_full_jar_refuses_new_cookies_but_keeps_and_replaces_its_own():
    cookies = jar(max_cookies=50)
    receive(cookies, "PHPSESSID=first")
    flood = [f"junk{i}=v" for i in range(100)]
    change = receive(cookies, *flood, now=NOW + 1)
    assert change.refused == 51 and len(cookies.cookies) == 50
    assert cookies.cookie_header("/", NOW + 2).startswith("PHPSESSID=first")
    receive(cookies, "PHPSESSID=second", now=NOW + 3)  # a replacement still applies
    assert cookies.cookie_header("/", NOW + 4).startswith("PHPSESSID=second")


def test_the_jar_stays_within_its_byte_limit():
    cookies = jar(max_bytes=2000)
    receive(cookies, *[f"c{i}={'v' * 300}" for i in range(20)])
    assert 0 < jar_size(cookies.cookies) <= 2000
    assert len(cookies.cookies) < 20


def test_expired_cookies_are_dropped_from_the_store_at_the_next_response():
    cookies = jar()
    receive(cookies, "short=1; Max-Age=10", "long=2")
    change = receive(cookies, "other=3", now=NOW + 11)
    assert len(change.unset) == 1 and len(change.set) == 1
    assert sorted(c["name"] for c in cookies.cookies.values()) == ["long", "other"]


def test_the_route_jar_limit_is_a_validated_config_key():
    route = {"prefix": "/api/", "upstream": "http://127.0.0.1:9000"}
    assert make_config(gateway={"routes": [route]}).gateway.routes[0].cookie_jar_max_bytes \
        == 16384
    config = make_config(gateway={"routes": [{**route, "cookie_jar_max_bytes": 4096}]})
    assert config.gateway.routes[0].cookie_jar_max_bytes == 4096
    for bad in (1023, 1048577, "16k", 4096.5, True):
        with pytest.raises(ConfigError, match=r"gateway\.routes\[1\]\.cookie_jar_max_bytes"):
            make_config(gateway={"routes": [{**route, "cookie_jar_max_bytes": bad}]})


def test_a_cookie_set_again_after_expiring_is_a_new_cookie():
    cookies = jar()
    receive(cookies, "a=1; Max-Age=5", now=NOW)
    receive(cookies, "b=2", now=NOW + 1)
    receive(cookies, "a=3", now=NOW + 10)  # a expired at NOW + 5: not a replacement
    assert cookies.cookie_header("/", NOW + 11) == "b=2; a=3"


# -- properties ---------------------------------------------------------------------------------

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-_", min_size=1, max_size=8)
_path = st.lists(st.sampled_from(["a", "b", "ab"]), max_size=3).map(lambda p: "/" + "/".join(p))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_token, _token, st.one_of(st.none(), _path),
                          st.sampled_from([None, -1, 0, 5, 1000])), max_size=30),
       _path)
def test_the_header_is_the_last_live_value_of_each_cookie_and_in_rfc_order(sets, request_path):
    cookies = jar(max_bytes=10**7, max_cookies=10**4)
    expected = {}  # (name, path) -> (value, created, expires)
    for step, (name, value, path, max_age) in enumerate(sets):
        header = f"{name}={value}" + (f"; Path={path}" if path else "") + (
            f"; Max-Age={max_age}" if max_age is not None else "")
        now = NOW + step
        receive(cookies, header, path="/a/b", now=now)
        expected = {k: v for k, v in expected.items() if v[2] is None or v[2] > now}
        key = (name, path or "/a")
        if max_age is not None and max_age <= 0:
            expected.pop(key, None)
        else:
            created = expected[key][1] if key in expected else now
            expected[key] = (value, created, None if max_age is None else now + max_age)
    now = NOW + len(sets)
    live = [(path, created, f"{name}={value}") for (name, path), (value, created, expires)
            in expected.items() if (expires is None or expires > now)
            and path_matches(request_path, path)]
    live.sort(key=lambda item: (-len(item[0]), item[1]))
    assert cookies.cookie_header(request_path, now) == ("; ".join(item[2] for item in live)
                                                        or None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=20), st.integers(300, 3000))
def test_any_set_cookie_text_leaves_a_jar_within_its_limit(headers, max_bytes):
    cookies = jar(max_bytes=max_bytes, max_cookies=10)
    change = cookies.receive(headers, "/x/y", NOW)
    assert jar_size(cookies.cookies) <= max_bytes and len(cookies.cookies) <= 10
    assert set(change.set) <= set(cookies.cookies)
    header = cookies.cookie_header("/x/y", NOW)
    assert header is None or ("\n" not in header and "\r" not in header)
