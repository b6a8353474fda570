"""The configuration file, as an administrator meets it: what loads, what is refused, and what
the messages say."""

import re
from dataclasses import fields
from pathlib import Path

import pytest

from server.config import (
    NOTICE_EPHEMERAL_SECRET,
    NOTICE_MEMORY_STORE,
    ConfigError,
    LogConfig,
    LoginConfig,
    ServerConfig,
    SessionConfig,
    StoreConfig,
    WeChatConfig,
    load_config,
    parse_config,
)

SECTIONS = {"server": ServerConfig, "session": SessionConfig, "store": StoreConfig,
            "login": LoginConfig, "wechat": WeChatConfig, "log": LogConfig}
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

STRONG = "k7Hq2vXw9Lr4Tz8Bn3Md6Fs1Gp5Jc0Ya"  # 33 characters, no placeholder
STRONG_2 = "Zq8Wn3Rt6Yv1Ux4Bs7Ce0Dg2Fh5Jk9Lm"
WECHAT_SECRET = "wechat-app-secret-0123456789abcdef"
MONGODB_URI = "mongodb://admin:hunter2-db-password@db.example.com:27017/"
ENCRYPTION_KEY = "q4Ll2lDCe2nR1kpdsQ0S7h6C0m3nCQmQkeFOV3hF7yY="  # 32 bytes in base64
ENCRYPTION_KEY_2 = "2b7YQb8f3Hk0vJm+Pz5Wq1Lr9Tn6Xc4Ds0Ge8Fa2Ih4="

PRODUCTION_ENV = {
    "MINISESSION_SESSION_SECRETS": f"{STRONG},{STRONG_2}",
    "MINISESSION_WECHAT_SECRET": WECHAT_SECRET,
    "MINISESSION_STORE_MONGODB_URI": MONGODB_URI,
    "MINISESSION_STORE_ENCRYPTION_KEYS": f"{ENCRYPTION_KEY_2},{ENCRYPTION_KEY}",
}


def local(**sections) -> dict:
    """A valid loopback development config, with sections (or keys) replaced."""
    data = {"server": {"host": "127.0.0.1"}, "login": {"provider": "dev"}}
    for name, table in sections.items():
        data.setdefault(name, {}).update(table)
    return data


def production(**sections) -> dict:
    """A valid public-facing config (secrets given in the file), with sections replaced."""
    data = {
        "server": {"host": "0.0.0.0"},
        # cookie_secure: a public host without it is noted (served over HTTPS, as it should be).
        "session": {"secrets": [STRONG], "cookie_secure": True},
        "store": {"backend": "mongodb", "mongodb_uri": MONGODB_URI,
                  "encryption_keys": [ENCRYPTION_KEY]},
        "login": {"provider": "wechat"},
        "wechat": {"appid": "wx0123456789abcdef", "secret": WECHAT_SECRET},
    }
    for name, table in sections.items():
        data.setdefault(name, {}).update(table)
    return data


def error(data: dict, environ: dict | None = None) -> str:
    """The message an administrator would read for this configuration."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ or {})
    return str(info.value)


# ------------------------------------------------------------------------ shipped files

def test_example_loads_with_secrets_from_the_environment():
    config = load_config(CONFIG_DIR / "example.toml", environ=PRODUCTION_ENV)

    assert config.server.host == "0.0.0.0"
    assert config.store.backend == "mongodb"
    assert config.store.mongodb_uri == MONGODB_URI
    assert config.login.provider == "wechat"
    assert config.wechat.secret == WECHAT_SECRET
    assert config.session.secrets == (STRONG, STRONG_2)
    assert config.notices == ()  # a production setup has nothing to warn about


def test_example_without_the_environment_is_refused_on_a_public_host():
    message = str(pytest.raises(ConfigError, load_config, CONFIG_DIR / "example.toml",
                                environ={}).value)
    assert "example.toml" in message
    assert "MINISESSION_" in message  # tells the administrator where the secret goes


def test_example_documents_every_key():
    text = (CONFIG_DIR / "example.toml").read_text()
    for section, cls in SECTIONS.items():
        assert f"\n[{section}]\n" in text
        for key in (f.name for f in fields(cls)):
            # Each key appears, set or commented out, under comment lines giving its default.
            match = re.search(rf"^((?:#.*\n)+)#? ?{key} = ", text, re.MULTILINE)
            assert match, f"{section}.{key} is not documented in example.toml"
            assert "efault" in match.group(1), f"{section}.{key}: no default documented"


def test_example_names_the_environment_variables():
    text = (CONFIG_DIR / "example.toml").read_text()
    for variable in PRODUCTION_ENV:
        assert variable in text


def test_dev_config_runs_on_a_fresh_clone_with_an_ephemeral_secret():
    config = load_config(CONFIG_DIR / "dev.toml", environ={})

    assert (config.server.host, config.server.port) == ("127.0.0.1", 8888)
    assert config.store.backend == "memory"
    assert config.login.provider == "dev"
    assert len(config.session.secrets) == 1 and len(config.session.secrets[0]) >= 32
    assert NOTICE_EPHEMERAL_SECRET in config.notices
    assert NOTICE_MEMORY_STORE in config.notices
    # A new secret each run: nothing signed by a previous run is accepted.
    again = load_config(CONFIG_DIR / "dev.toml", environ={})
    assert again.session.secrets != config.session.secrets


def test_defaults_apply_to_keys_left_out():
    config = parse_config(local(), {})
    assert config.session.cookie_name == "sessionid"
    assert config.session.idle_timeout == 7200
    assert config.store.timeout == 2.0
    assert config.log.level == "info"


# ------------------------------------------------------------------ file-level problems

def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.toml"
    message = str(pytest.raises(ConfigError, load_config, path, environ={}).value)
    assert str(path) in message and "not found" in message


def test_invalid_toml_names_the_path_and_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nhost = "127.0.0.1"\nport = = 8888\n')
    message = str(pytest.raises(ConfigError, load_config, path, environ={}).value)
    assert str(path) in message
    assert "invalid TOML" in message and "line 3" in message


def test_a_directory_is_not_a_config_file(tmp_path):
    message = str(pytest.raises(ConfigError, load_config, tmp_path, environ={}).value)
    assert str(tmp_path) in message and "cannot read" in message


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[session]\nidle_timeout = "2h"\n')
    message = str(pytest.raises(ConfigError, load_config, path, environ={}).value)
    assert message == (f"{path}: session.idle_timeout: expected a whole number of seconds, "
                       f"got string '2h'")


# ------------------------------------------------------------------ unknown names, types

def test_unknown_key_suggests_the_right_one():
    message = error(local(session={"cookie_nam": "sid"}))
    assert "session.cookie_nam: unknown key; did you mean cookie_name?" in message


def test_unknown_key_without_close_match_lists_the_known_ones():
    message = error(local(log={"colour": True}))
    assert "log.colour: unknown key" in message and "level" in message


def test_key_in_the_wrong_section_says_where_it_belongs():
    assert "server.idle_timeout: unknown key; idle_timeout belongs in [session]" in error(
        local(server={"idle_timeout": 60}))


def test_unknown_section_suggests_the_right_one():
    assert "sesion: unknown section; did you mean session?" in error(
        {**local(), "sesion": {}})


def test_top_level_key_points_to_its_section():
    assert "did you mean server.port?" in error({**local(), "port": 8080})


def test_section_must_be_a_table():
    assert "log: expected a table" in error({**local(), "log": "debug"})


def test_wrong_type_names_key_expected_and_given_type():
    message = error(local(session={"idle_timeout": "2h"}))
    assert message.endswith(
        "session.idle_timeout: expected a whole number of seconds, got string '2h'")


@pytest.mark.parametrize("section, key", [
    ("server", "port"), ("server", "max_body_size"), ("session", "idle_timeout"),
    ("session", "touch_after"), ("session", "data_max_bytes"), ("store", "purge_interval"),
    ("server", "max_header_size"), ("server", "client_timeout"),
])
def test_booleans_are_not_numbers(section, key):
    assert f"{section}.{key}: expected" in error(local(**{section: {key: True}}))
    assert "got boolean true" in error(local(**{section: {key: True}}))


def test_durations_are_whole_seconds():
    assert "got float 7200.5" in error(local(session={"idle_timeout": 7200.5}))


@pytest.mark.parametrize("section, key", [
    ("store", "timeout"), ("wechat", "timeout"), ("server", "shutdown_grace"),
    ("server", "client_timeout"),
])
def test_timeouts_take_int_or_float_greater_than_zero(section, key):
    assert getattr(getattr(parse_config(local(**{section: {key: 3}}), {}), section), key) == 3.0
    assert getattr(getattr(parse_config(local(**{section: {key: 0.5}}), {}), section), key) == 0.5
    for bad in (0, -1.0, float("inf"), float("nan")):
        assert f"{section}.{key}: must be a finite number" in error(
            local(**{section: {key: bad}}))
    assert f"{section}.{key}: expected a number of seconds, got string" in error(
        local(**{section: {key: "5s"}}))


def test_port_range():
    assert parse_config(local(server={"port": 0}), {}).server.port == 0
    assert "server.port: must be between 0 and 65535" in error(local(server={"port": 65536}))
    assert "server.port: must be between 0 and 65535" in error(local(server={"port": -1}))


@pytest.mark.parametrize("section, key", [("server", "max_body_size"),
                                          ("server", "max_header_size"),
                                          ("session", "data_max_bytes")])
def test_sizes_are_positive(section, key):
    assert f"{section}.{key}: must be greater than 0" in error(local(**{section: {key: 0}}))


def test_request_limits_and_client_timeout_have_defaults_and_can_be_set():
    server = parse_config(local(), {}).server
    assert (server.max_body_size, server.max_header_size, server.client_timeout) == (
        65536, 16384, 20.0)
    server = parse_config(local(server={"max_header_size": 8192, "client_timeout": 2}), {}).server
    assert (server.max_header_size, server.client_timeout) == (8192, 2.0)
    assert "server.max_header_size: expected a whole number, got string '16k'" in error(
        local(server={"max_header_size": "16k"}))


# ---------------------------------------------------------------------------- enumerations

@pytest.mark.parametrize("section, key, bad", [
    ("store", "backend", "redis"),
    ("login", "provider", "qq"),
    ("log", "level", "verbose"),
    ("session", "cookie_samesite", "sometimes"),
])
def test_enumerations_list_the_choices(section, key, bad):
    message = error(local(**{section: {key: bad}}))
    assert f"{section}.{key}: expected one of" in message and repr(bad) in message


@pytest.mark.parametrize("given, stored", [("lax", "Lax"), ("STRICT", "Strict"),
                                           ("Lax", "Lax")])
def test_samesite_is_case_insensitive_and_normalised(given, stored):
    config = parse_config(local(session={"cookie_samesite": given}), {})
    assert config.session.cookie_samesite == stored


def test_samesite_none_requires_a_secure_cookie():
    message = error(local(session={"cookie_samesite": "none"}))
    assert "session.cookie_samesite" in message and "session.cookie_secure" in message
    config = parse_config(local(session={"cookie_samesite": "none", "cookie_secure": True}), {})
    assert config.session.cookie_samesite == "None"


# ----------------------------------------------------------------------- names on the wire

@pytest.mark.parametrize("name", ["sessionid", "PHPSESSID", "JSESSIONID", "cookie-key",
                                  "a!#$%&'*+-.^_`|~z", "x" * 64])
def test_cookie_names_that_clients_use_are_accepted(name):
    assert parse_config(local(session={"cookie_name": name}), {}).session.cookie_name == name


@pytest.mark.parametrize("name", ["", "session id", "sid;", "sid=", "s\u00e9ance", "x" * 65,
                                  "sid\n"])
def test_cookie_name_must_be_a_token(name):
    assert "session.cookie_name: must be 1-64 characters" in error(
        local(session={"cookie_name": name}))


@pytest.mark.parametrize("name", ["Cookie", "set-cookie", "HOST", "Content-Length",
                                  "content-type", "Authorization"])
def test_header_name_cannot_be_a_standard_header(name):
    assert "session.header_name:" in error(local(session={"header_name": name}))


@pytest.mark.parametrize("name", ["", "X Session", "X-Session:", "X-Sessi\u00f6n"])
def test_header_name_must_be_a_token(name):
    assert "session.header_name: must be an HTTP header name" in error(
        local(session={"header_name": name}))


# ------------------------------------------------------------------------------- relations

def test_touch_after_is_shorter_than_idle_timeout():
    message = error(local(session={"idle_timeout": 60, "touch_after": 60}))
    assert "session.touch_after" in message and "session.idle_timeout" in message


def test_login_reuse_window_is_shorter_than_idle_timeout():
    message = error(local(session={"idle_timeout": 120, "login_reuse_window": 120}))
    assert "session.login_reuse_window" in message and "session.idle_timeout" in message


def test_idle_timeout_does_not_exceed_max_lifetime():
    message = error(local(session={"idle_timeout": 7200, "max_lifetime": 3600}))
    assert "session.idle_timeout" in message and "session.max_lifetime" in message
    config = parse_config(local(session={"idle_timeout": 3600, "max_lifetime": 3600}), {})
    assert config.session.max_lifetime == 3600


@pytest.mark.parametrize("key", ["touch_after", "login_reuse_window"])
def test_zero_disables_touch_delay_and_login_reuse(key):
    assert getattr(parse_config(local(session={key: 0}), {}).session, key) == 0
    assert f"session.{key}: must be at least 0" in error(local(session={key: -1}))


# ------------------------------------------------------------------------ required values

def test_mongodb_backend_requires_a_uri():
    message = error(local(store={"backend": "mongodb"}))
    assert "store.mongodb_uri: required when store.backend = 'mongodb'" in message
    assert "MINISESSION_STORE_MONGODB_URI" in message


@pytest.mark.parametrize("key", ["appid", "secret"])
def test_wechat_provider_requires_appid_and_secret(key):
    data = local(login={"provider": "wechat"},
                 wechat={"appid": "wx0123456789abcdef", "secret": WECHAT_SECRET})
    del data["wechat"][key]
    assert f"wechat.{key}: required when login.provider = 'wechat'" in error(data)
    data["wechat"][key] = ""  # an empty value is as good as none
    assert f"wechat.{key}: required" in error(data)


def test_wechat_is_the_default_provider():
    assert "wechat.appid: required" in error({})


def test_api_base_must_be_http():
    assert "wechat.api_base: must start with http:// or https://" in error(
        local(wechat={"api_base": "api.weixin.qq.com"}))
    config = parse_config(local(wechat={"api_base": "http://127.0.0.1:9000/"}), {})
    assert config.wechat.api_base == "http://127.0.0.1:9000"


def test_secrets_must_be_a_list_of_strings():
    assert "session.secrets: expected a list of strings, got string" in error(
        local(session={"secrets": STRONG}))
    assert "session.secrets: secret #2: expected a string, got integer" in error(
        local(session={"secrets": [STRONG, 5]}))


# ------------------------------------------------------------------- environment overrides

def test_environment_wins_over_the_file():
    config = parse_config(
        production(session={"secrets": ["file-secret-file-secret-file-secret"]},
                   wechat={"secret": "file-wechat-secret"},
                   store={"mongodb_uri": "mongodb://file-host/"}),
        PRODUCTION_ENV)
    assert config.session.secrets == (STRONG, STRONG_2)
    assert config.wechat.secret == WECHAT_SECRET
    assert config.store.mongodb_uri == MONGODB_URI
    assert config.store.encryption_keys == (ENCRYPTION_KEY_2, ENCRYPTION_KEY)


def test_secrets_variable_strips_spaces_and_ignores_empty_items():
    config = parse_config(local(), {"MINISESSION_SESSION_SECRETS": f" {STRONG} ,, {STRONG_2},"})
    assert config.session.secrets == (STRONG, STRONG_2)


def test_empty_variables_leave_the_file_values():
    environ = {name: "" for name in PRODUCTION_ENV} | {"MINISESSION_SESSION_SECRETS": " , "}
    config = parse_config(production(), environ)
    assert config.session.secrets == (STRONG,)
    assert config.store.mongodb_uri == MONGODB_URI


def test_environment_supplies_values_missing_from_the_file():
    data = production()
    del data["session"]["secrets"], data["wechat"]["secret"], data["store"]["mongodb_uri"]
    config = parse_config(data, PRODUCTION_ENV)
    assert config.session.secrets[0] == STRONG and config.wechat.secret == WECHAT_SECRET


# ---------------------------------------------------------------------------------- safety

PUBLIC_HOSTS = ["0.0.0.0", "::", "", "192.168.1.10", "example.com", "minisession.internal"]
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.2", "::1", "localhost"]


def test_production_config_is_accepted():
    config = parse_config(production(), {})
    assert config.notices == ()


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_dev_provider_is_refused_on_a_public_host(host):
    message = error(production(server={"host": host}, login={"provider": "dev"}))
    assert "login.provider" in message and "server.host" in message
    assert "anyone" in message


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
@pytest.mark.parametrize("secrets", [None, []])
def test_missing_secret_is_refused_on_a_public_host(host, secrets):
    data = production(server={"host": host})
    if secrets is None:
        del data["session"]["secrets"]
    else:
        data["session"]["secrets"] = secrets
    message = error(data)
    assert "session.secrets: required" in message and "MINISESSION_SESSION_SECRETS" in message


@pytest.mark.parametrize("weak, reason", [
    ("short-secret", "shorter than 32 characters"),
    ("please-Change-Me-please-change-me-now", "placeholder"),
    ("CHANGEME" + STRONG, "placeholder"),
])
def test_weak_secret_is_refused_on_a_public_host(weak, reason):
    message = error(production(session={"secrets": [STRONG, weak]}))
    assert "session.secrets: secret #2 is weak" in message and reason in message
    # The same secret from the environment: the message says where it came from.
    message = error(production(), {"MINISESSION_SESSION_SECRETS": weak})
    assert "secret #1 in MINISESSION_SESSION_SECRETS is weak" in message


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_hosts_allow_dev_and_an_ephemeral_secret(host):
    config = parse_config(local(server={"host": host}), {})
    assert config.login.provider == "dev"
    assert len(config.session.secrets[0]) >= 32
    assert NOTICE_EPHEMERAL_SECRET in config.notices


def test_weak_secret_on_loopback_is_a_notice():
    config = parse_config(local(session={"secrets": ["changeme"]}), {})
    assert config.session.secrets == ("changeme",)
    assert any(n.startswith("session.secrets: secret #1 is weak") for n in config.notices)
    assert not any("changeme" in n.split("(")[0] for n in config.notices)


def test_memory_store_is_a_notice():
    assert NOTICE_MEMORY_STORE in parse_config(local(), {}).notices
    assert NOTICE_MEMORY_STORE not in parse_config(production(), {}).notices


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_memory_store_is_refused_on_a_public_host(host):
    # Issue 11: one process's sessions, lost on restart, are no service to expose.
    data = production(server={"host": host}, store={"backend": "memory"})
    message = error(data)
    assert "store.backend: 'memory'" in message and "server.host" in message
    del data["store"]  # the default backend is memory too
    assert "store.backend: 'memory'" in error(data)


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_memory_store_on_loopback_is_bounded_by_max_sessions(host):
    config = parse_config(local(server={"host": host}), {})
    assert (config.store.backend, config.store.max_sessions) == ("memory", 10000)
    config = parse_config(local(server={"host": host}, store={"max_sessions": 50}), {})
    assert config.store.max_sessions == 50
    assert "store.max_sessions: must be greater than 0" in error(local(store={"max_sessions": 0}))
    assert "session.data_max_values: must be greater than 0" in error(
        local(session={"data_max_values": 0}))


# --------------------------------------------------------------------- secrets stay secret

def test_no_error_message_contains_a_secret_value():
    weak = "weak-but-secret-value"
    cases = [
        (production(session={"secrets": [weak]}), {}),
        (production(), {"MINISESSION_SESSION_SECRETS": weak}),
        (production(session={"secrets": weak}), {}),
        (production(session={"secrets": [STRONG, 12345]}), {}),
        (production(wechat={"secret": ["list", WECHAT_SECRET]}), {}),
        (production(store={"mongodb_uri": {"uri": MONGODB_URI}}), {}),
        (production(session={"cookie_nam": "x"}), PRODUCTION_ENV),
        (production(login={"provider": "dev"}), PRODUCTION_ENV),
        (production(session={"idle_timeout": 10, "touch_after": 10}), PRODUCTION_ENV),
        (production(wechat={"appid": ""}), PRODUCTION_ENV),
    ]
    for data, environ in cases:
        message = error(data, environ)
        for value in (weak, STRONG, STRONG_2, WECHAT_SECRET, MONGODB_URI, "hunter2", "12345"):
            assert value not in message, f"{value!r} leaked into: {message}"


def test_repr_of_the_config_hides_secrets():
    text = repr(parse_config(production(), PRODUCTION_ENV))
    for value in (STRONG, STRONG_2, WECHAT_SECRET, MONGODB_URI, "hunter2", ENCRYPTION_KEY,
                  ENCRYPTION_KEY_2):
        assert value not in text


# ----------------------------------------------------------------- encryption keys at rest

def test_a_public_mongodb_server_without_encryption_keys_is_refused():
    data = production()
    del data["store"]["encryption_keys"]
    message = error(data)
    assert "store.encryption_keys: required because server.host = '0.0.0.0'" in message
    assert "MINISESSION_STORE_ENCRYPTION_KEYS" in message and "openssl rand -base64 32" in message


def test_without_encryption_keys_a_local_memory_server_uses_a_throwaway_key():
    # A local server on MongoDB is refused (issue 11 item 13: instances sharing the store must
    # share the key; see tests/test_config_risks.py). The in-process store dies with the
    # process anyway: a throwaway key, and no notice for it.
    memory = parse_config(local(), {})
    assert len(memory.store.encryption_keys) == 1
    assert not any("encryption_keys" in n for n in memory.notices)
    assert parse_config(local(), {}).store.encryption_keys != memory.store.encryption_keys


@pytest.mark.parametrize("bad, problem", [
    ("not base64 at all!", "key #1 is not a 32-byte key in base64 (not valid base64)"),
    ("c2hvcnQ=", "key #1 is not a 32-byte key in base64 (must decode to 32 bytes, not 5)"),
    ("", "secret #1 is empty"),
])
def test_a_bad_encryption_key_is_named_by_number_and_never_shown(bad, problem):
    message = error(production(store={"encryption_keys": [bad]}))
    assert f"store.encryption_keys: {problem}" in message
    if bad:
        assert bad not in message
    message = error(production(store={"encryption_keys": [ENCRYPTION_KEY, bad or "x"]}))
    assert "key #2" in message and ENCRYPTION_KEY not in message
    message = error(production(), {"MINISESSION_STORE_ENCRYPTION_KEYS": "c2hvcnQ="})
    assert "MINISESSION_STORE_ENCRYPTION_KEYS: key #1" in message


def test_url_safe_base64_keys_are_accepted():
    url_safe = ENCRYPTION_KEY_2.replace("+", "-").rstrip("=")
    config = parse_config(production(store={"encryption_keys": [url_safe]}), {})
    assert config.store.encryption_keys == (url_safe,)


# ------------------------------------------------------------ login rate limits and proxies

def test_rate_limits_default_and_accept_zero_as_no_limit():
    config = parse_config(local(), {})
    assert (config.login.rate_per_address, config.login.rate_overall) == (30, 3000)
    config = parse_config(local(login={"rate_per_address": 0, "rate_overall": 0}), {})
    assert (config.login.rate_per_address, config.login.rate_overall) == (0, 0)


@pytest.mark.parametrize("key, value, problem", [
    ("rate_per_address", -1, "must be 0 (no limit) or more, got -1"),
    ("rate_overall", "100/min", "expected a whole number, got string '100/min'"),
    ("rate_overall", 1.5, "expected a whole number, got float 1.5"),
])
def test_bad_rate_limits_are_named(key, value, problem):
    assert f"login.{key}: {problem}" in error(local(login={key: value}))


def test_trusted_proxies_take_addresses_and_networks():
    config = parse_config(local(server={"trusted_proxies": ["10.0.0.0/8", "::1",
                                                            "192.168.1.7"]}), {})
    assert config.server.trusted_proxies == ("10.0.0.0/8", "::1", "192.168.1.7")
    assert "server.trusted_proxies: not an IP address or network (such as '10.0.0.0/8'): " \
           "got string 'proxy.local'" in error(local(server={"trusted_proxies": ["proxy.local"]}))
    assert "server.trusted_proxies: expected a list" in error(
        local(server={"trusted_proxies": "10.0.0.1"}))


# ------------------------------------------------------------------------------ admin API

ADMIN_KEY = "admin-key-k7Hq2vXw9Lr4Tz8Bn3Md6Fs1Gp5Jc0Ya"


def test_admin_api_is_off_by_default_and_needs_a_key_when_on():
    assert parse_config(local(), {}).admin.enabled is False
    message = error(local(admin={"enabled": True}))
    assert "admin.api_keys: required when admin.enabled = true" in message
    assert "MINISESSION_ADMIN_API_KEYS" in message
    config = parse_config(local(admin={"enabled": True}),
                          {"MINISESSION_ADMIN_API_KEYS": f"{ADMIN_KEY}, second-{ADMIN_KEY}"})
    assert config.admin.api_keys == (ADMIN_KEY, f"second-{ADMIN_KEY}")


def test_weak_admin_keys_are_refused_on_a_public_host_and_noted_locally():
    message = error(production(admin={"enabled": True, "api_keys": ["short-key"]}))
    assert "admin.api_keys: key #1 is weak (shorter than 32 characters)" in message
    assert "short-key" not in message
    config = parse_config(local(admin={"enabled": True, "api_keys": ["short-key"]}), {})
    assert any(n.startswith("admin.api_keys: key #1 is weak") for n in config.notices)
    assert ADMIN_KEY not in repr(parse_config(
        production(admin={"enabled": True, "api_keys": [ADMIN_KEY]}), {}))


def test_workers_default_to_one_and_need_a_shared_store():
    assert parse_config(local(), {}).server.workers == 1
    config = parse_config(production(server={"workers": 4}), PRODUCTION_ENV)
    assert config.server.workers == 4
    message = error(local(server={"workers": 2}))
    assert "server.workers: more than one worker needs store.backend = 'mongodb'" in message
    assert "server.workers: must be greater than 0, got 0" in error(local(server={"workers": 0}))
