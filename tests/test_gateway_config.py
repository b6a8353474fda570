"""``[[gateway.routes]]`` (issue 14, part 2): validated at start, each problem naming its key."""

import re

import pytest

from server.app import ROUTES
from server.config import OWN_PATHS, ConfigError, GatewayRouteConfig
from tests.conftest import make_config

UPSTREAM = "http://127.0.0.1:9000"


def gateway(*routes):
    return make_config(gateway={"routes": list(routes)})


def refused(*routes) -> str:
    with pytest.raises(ConfigError) as info:
        gateway(*routes)
    return str(info.value)


def test_a_route_with_defaults():
    config = make_config(server={"max_body_size": 1234},
                         gateway={"routes": [{"prefix": "/api/", "upstream": UPSTREAM}]})
    assert config.gateway.routes == (GatewayRouteConfig(
        prefix="/api/", upstream=UPSTREAM, auth="required", cookie_jar=True, timeout=30.0,
        max_body=1234, app=None),)
    assert make_config().gateway.routes == ()


def test_every_key():
    route = gateway({"prefix": "/", "upstream": "https://backend.internal:8443/v1/",
                     "auth": "optional", "cookie_jar": False, "timeout": 2.5,
                     "max_body": 10, "app": "default"}).gateway.routes[0]
    assert (route.prefix, route.upstream, route.auth, route.cookie_jar, route.timeout,
            route.max_body, route.app) == ("/", "https://backend.internal:8443/v1/",
                                           "optional", False, 2.5, 10, "default")


@pytest.mark.parametrize("prefix", ["api/", "/api", "", "//", "/a//b/", "/../", "/a/./",
                                    "/a b/", "/%2e/", "/api?x/", 5])
def test_a_malformed_prefix_is_refused(prefix):
    message = refused({"prefix": prefix, "upstream": UPSTREAM})
    assert "gateway.routes[1].prefix" in message


@pytest.mark.parametrize("prefix", ["/login/", "/session/", "/admin/", "/auth/", "/healthz/",
                                    "/platform/x/", "/openapi.json/", "/metrics/",
                                    "/introspect/", "/readyz/"])
def test_a_prefix_under_our_own_paths_is_refused(prefix):
    message = refused({"prefix": "/ok/", "upstream": UPSTREAM},
                      {"prefix": prefix, "upstream": UPSTREAM})
    assert "gateway.routes[2].prefix" in message and "own" in message


def test_our_own_paths_list_covers_every_route():
    firsts = {re.sub(r"\\(.)", r"\1", pattern).split("/")[1] for pattern, *_ in ROUTES}
    assert firsts <= set(OWN_PATHS)


def test_prefixes_that_nest_are_fine_a_repeated_one_is_not():
    config = gateway({"prefix": "/api/", "upstream": UPSTREAM},
                     {"prefix": "/api/v2/", "upstream": UPSTREAM},
                     {"prefix": "/authors/", "upstream": UPSTREAM})  # not /auth
    assert len(config.gateway.routes) == 3
    message = refused({"prefix": "/api/", "upstream": UPSTREAM},
                      {"prefix": "/api/", "upstream": "http://127.0.0.1:9001"})
    assert "gateway.routes[2].prefix" in message and "earlier route" in message


@pytest.mark.parametrize("upstream", ["127.0.0.1:9000", "ftp://host", "http://", "http:///x",
                                      "http://user:pw@host", "http://host/?q=1",
                                      "http://host/#f", "http://host:99999", 9000])
def test_a_bad_upstream_is_refused(upstream):
    message = refused({"prefix": "/api/", "upstream": upstream})
    assert "gateway.routes[1].upstream" in message
    assert "pw" not in message  # a password in a URL is never repeated


@pytest.mark.parametrize("key, value, named", [
    ("auth", "maybe", "gateway.routes[1].auth"),
    ("cookie_jar", "yes", "gateway.routes[1].cookie_jar"),
    ("timeout", 0, "gateway.routes[1].timeout"),
    ("timeout", float("inf"), "gateway.routes[1].timeout"),
    ("max_body", 0, "gateway.routes[1].max_body"),
    ("app", "nope", "gateway.routes[1].app"),
    ("upstrem", UPSTREAM, "gateway.routes[1].upstrem"),
])
def test_bad_values_name_their_key(key, value, named):
    message = refused({"prefix": "/api/", "upstream": UPSTREAM, key: value})
    assert named in message


def test_missing_keys_and_bad_shapes():
    assert "gateway.routes[1].upstream" in refused({"prefix": "/api/"})
    assert "gateway.routes[1].prefix" in refused({"upstream": UPSTREAM})
    with pytest.raises(ConfigError, match=r"gateway\.routes"):
        make_config(gateway={"routes": {"prefix": "/api/"}})
    with pytest.raises(ConfigError, match=r"gateway\.route\b"):
        make_config(gateway={"route": []})


def test_a_route_without_auth_passes_cookies_through_and_refuses_a_jar():
    """auth = "none" looks up no session, so a jar could keep nothing: the backend's cookies
    pass through instead of being dropped both ways, and asking for a jar is refused."""
    route = {"prefix": "/pub/", "upstream": "http://127.0.0.1:9000", "auth": "none"}
    (configured,) = make_config(gateway={"routes": [route]}).gateway.routes
    assert configured.cookie_jar is False
    with pytest.raises(ConfigError) as info:
        make_config(gateway={"routes": [{**route, "cookie_jar": True}]})
    assert "gateway.routes[1].cookie_jar" in str(info.value)
    assert 'auth = "none"' in str(info.value)
    optional = make_config(gateway={"routes": [{**route, "auth": "optional"}]})
    assert optional.gateway.routes[0].cookie_jar is True
