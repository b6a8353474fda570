"""Configurations that look fine but are not (issue 11, items 13 and 14): a shared store on
per-process random secrets, plain-http WeChat calls, a proxy list that trusts everyone, secrets
that are not secret. The unsafe is refused with the key named; the merely unwise is a notice."""

import base64

import pytest

from server.config import parse_config
from tests.test_config import (
    ADMIN_KEY,
    ENCRYPTION_KEY,
    LOOPBACK_HOSTS,
    MONGODB_URI,
    PUBLIC_HOSTS,
    STRONG,
    error,
    local,
    production,
)

# ---------------------------------------------------- a shared store needs explicit secrets


def shared_local(**sections) -> dict:
    """A loopback server on MongoDB (instances behind a local nginx), secrets given."""
    data = local(store={"backend": "mongodb", "mongodb_uri": MONGODB_URI,
                        "encryption_keys": [ENCRYPTION_KEY]},
                 session={"secrets": [STRONG]})
    for name, table in sections.items():
        data.setdefault(name, {}).update(table)
    return data


@pytest.mark.parametrize("host", LOOPBACK_HOSTS + PUBLIC_HOSTS)
def test_a_shared_store_without_a_signing_secret_is_refused_whatever_the_host(host):
    data = shared_local(server={"host": host}, login={"provider": "wechat"},
                        wechat={"appid": "wx0123456789abcdef", "secret": "s" * 8 + STRONG})
    del data["session"]["secrets"]
    message = error(data)
    assert "session.secrets: required" in message
    assert "minisession keygen" in message and "MINISESSION_SESSION_SECRETS" in message


@pytest.mark.parametrize("host", LOOPBACK_HOSTS + PUBLIC_HOSTS)
def test_a_shared_store_without_encryption_keys_is_refused_whatever_the_host(host):
    data = shared_local(server={"host": host}, login={"provider": "wechat"},
                        wechat={"appid": "wx0123456789abcdef", "secret": "s" * 8 + STRONG})
    del data["store"]["encryption_keys"]
    message = error(data)
    assert "store.encryption_keys: required" in message
    assert "minisession keygen" in message and "MINISESSION_STORE_ENCRYPTION_KEYS" in message


def test_a_shared_store_takes_its_secrets_from_the_environment():
    data = shared_local()
    del data["session"]["secrets"], data["store"]["encryption_keys"]
    config = parse_config(data, {"MINISESSION_SESSION_SECRETS": STRONG,
                                 "MINISESSION_STORE_ENCRYPTION_KEYS": ENCRYPTION_KEY})
    assert (config.session.secrets, config.store.encryption_keys) == ((STRONG,),
                                                                      (ENCRYPTION_KEY,))


def test_the_memory_store_on_loopback_still_runs_without_secrets():
    config = parse_config(local(), {})  # what config/dev.toml is
    assert len(config.session.secrets[0]) >= 32 and len(config.store.encryption_keys) == 1


# ------------------------------------------------------------ wechat.api_base over plain http

@pytest.mark.parametrize("host", PUBLIC_HOSTS + LOOPBACK_HOSTS)
@pytest.mark.parametrize("api_base", ["http://api.weixin.qq.com", "http://10.0.0.5:8080",
                                      "http://wechat-proxy.internal/"])
def test_plain_http_to_another_machine_is_refused(host, api_base):
    data = production(server={"host": host}, wechat={"api_base": api_base})
    message = error(data)
    assert "wechat.api_base" in message and "https://" in message
    assert "AppSecret" in message


def test_an_unused_api_base_is_not_judged():
    # With the dev provider nothing is sent to wechat.api_base.
    config = parse_config(local(wechat={"api_base": "http://api.weixin.qq.com"}), {})
    assert config.login.provider == "dev"


@pytest.mark.parametrize("api_base", ["http://127.0.0.1:9000", "http://localhost:9000",
                                      "http://[::1]:9000"])
def test_plain_http_to_this_machine_is_allowed_for_the_fake(api_base):
    assert parse_config(local(wechat={"api_base": api_base}), {}).wechat.api_base == api_base
    # On a public host it is allowed too (a local egress proxy), but noted: it may be the fake.
    config = parse_config(production(wechat={"api_base": api_base}), {})
    assert any(n.startswith("wechat.api_base") for n in config.notices)


# ------------------------------------------------------------------ a proxy list with a /0

@pytest.mark.parametrize("host", PUBLIC_HOSTS + LOOPBACK_HOSTS)
@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0", "10.1.2.3/0"])
def test_trusting_every_address_as_a_proxy_is_refused_anywhere(host, network):
    message = error(production(server={"host": host,
                                       "trusted_proxies": ["10.0.0.0/8", network]}))
    assert "server.trusted_proxies" in message and "/0" in message
    assert "X-Forwarded-For" in message


# -------------------------------------------------------------- secrets that are not secret

REPEATED = "a" * 40
FEW = "abcabcabcabcabcabcabcabcabcabcabcabc"  # 36 characters, 3 different ones
ZERO_KEY = base64.b64encode(bytes(32)).decode()
PATTERN_KEY = base64.b64encode(b"0123456789" * 3 + b"01").decode()


@pytest.mark.parametrize("weak", [REPEATED, FEW])
def test_a_low_entropy_signing_secret_is_refused_on_a_public_host(weak):
    message = error(production(session={"secrets": [STRONG, weak]}))
    assert "session.secrets: secret #2 is weak" in message and "different characters" in message
    assert weak not in message


@pytest.mark.parametrize("weak", [REPEATED, FEW])
def test_a_low_entropy_secret_is_refused_with_a_shared_store_on_loopback_too(weak):
    message = error(shared_local(session={"secrets": [weak]}))
    assert "session.secrets: secret #1 is weak" in message
    message = error(shared_local(admin={"enabled": True, "api_keys": [weak]}))
    assert "admin.api_keys: key #1 is weak" in message
    # On loopback with the in-process store (development) it is only a notice.
    config = parse_config(local(session={"secrets": [weak]}), {})
    assert any(n.startswith("session.secrets: secret #1 is weak") for n in config.notices)


@pytest.mark.parametrize("weak", [ZERO_KEY, PATTERN_KEY])
def test_a_low_entropy_encryption_key_is_refused(weak):
    message = error(production(store={"encryption_keys": [ENCRYPTION_KEY, weak]}))
    assert "store.encryption_keys: key #2 is weak" in message and weak not in message
    assert "store.encryption_keys: key #1 is weak" in error(
        shared_local(store={"encryption_keys": [weak]}))


def test_a_low_entropy_admin_key_is_refused_on_a_public_host():
    message = error(production(admin={"enabled": True, "api_keys": [ADMIN_KEY, REPEATED]}))
    assert "admin.api_keys: key #2 is weak" in message and REPEATED not in message


def test_random_secrets_are_not_taken_for_low_entropy():
    # The formats people generate: token_urlsafe, hex, base64 keys; none is refused.
    config = parse_config(production(
        session={"secrets": [STRONG, "3f9a0c6e1b7d2845" * 2]},
        admin={"enabled": True, "api_keys": [ADMIN_KEY, "12345678901234567890123456789012"]}),
        {})
    assert config.notices == ()


@pytest.mark.parametrize("host", LOOPBACK_HOSTS[:1] + PUBLIC_HOSTS[:1])
@pytest.mark.parametrize("other", ["session", "store"])
def test_an_admin_key_equal_to_a_signing_secret_or_encryption_key_is_refused(host, other):
    reused = STRONG if other == "session" else ENCRYPTION_KEY
    data = production(server={"host": host}, admin={"enabled": True,
                                                   "api_keys": [ADMIN_KEY, reused]})
    message = error(data)
    assert "admin.api_keys: key #2 is also" in message and reused not in message
    assert ("session.secrets" if other == "session" else "store.encryption_keys") in message


def test_a_signing_secret_equal_to_an_encryption_key_is_refused():
    message = error(production(session={"secrets": [STRONG, ENCRYPTION_KEY]}))
    assert "store.encryption_keys: key #1 is also session.secrets #2" in message


# ---------------------------------------------------------- unwise, not unsafe: a notice

@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_cookie_without_secure_on_a_public_host_is_a_notice(host):
    config = parse_config(production(server={"host": host},
                                     session={"cookie_secure": False}), {})
    notices = [n for n in config.notices if n.startswith("session.cookie_secure")]
    assert len(notices) == 1 and "HTTPS" in notices[0]
    assert not any(n.startswith("session.cookie_secure") for n in parse_config(
        production(server={"host": host}, session={"cookie_secure": True}), {}).notices)
    assert not any(n.startswith("session.cookie_secure")
                   for n in parse_config(local(), {}).notices)
