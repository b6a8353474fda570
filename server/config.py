"""The one configuration file: load it, validate it, and refuse to start on anything unsafe.

The file is TOML with the sections ``[server]``, ``[session]``, ``[store]``, ``[login]``,
``[apps.<name>]`` (one per mini-program), ``[log]``, ``[admin]`` and ``[gateway]`` (with its
``[[gateway.routes]]``); ``config/example.toml``
documents every key. ``[login] provider`` + ``[wechat]`` without any ``[apps.*]`` is the
one-app shorthand of earlier versions: it configures one app named ``default``. Every problem is a
:class:`ConfigError` whose message names the offending key, so an administrator can fix the
file without reading this code.

Secrets may also come from the environment, which wins over the file:

- ``MINISESSION_SESSION_SECRETS``: comma-separated signing secrets (first one signs, all verify);
- ``MINISESSION_WECHAT_SECRET``: the mini-program's AppSecret (one-app shorthand);
- ``MINISESSION_APPS_<NAME>_SECRET``, ``..._PRIVATE_KEY``, ``..._ALIPAY_PUBLIC_KEY``: an app's
  secret and (Alipay) PEM keys; ``<NAME>`` is the app's name in upper case, ``-`` as ``_``;
- ``MINISESSION_STORE_MONGODB_URI``: the MongoDB connection string (it may hold a password);
- ``MINISESSION_STORE_ENCRYPTION_KEYS``: comma-separated AES-256 keys (base64) for secrets at
  rest (first one encrypts, all decrypt);
- ``MINISESSION_ADMIN_API_KEYS``: comma-separated API keys of the admin API.

A variable that is unset or empty (for ``MINISESSION_SESSION_SECRETS``: with no non-empty item)
leaves the file's value in place.

Secret values never appear in an error message, a notice or a ``repr``.
"""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import math
import os
import re
import secrets as _secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from server.sealing import decode_key, new_key

ENV_SESSION_SECRETS = "MINISESSION_SESSION_SECRETS"
ENV_WECHAT_SECRET = "MINISESSION_WECHAT_SECRET"
ENV_STORE_MONGODB_URI = "MINISESSION_STORE_MONGODB_URI"
ENV_STORE_ENCRYPTION_KEYS = "MINISESSION_STORE_ENCRYPTION_KEYS"
ENV_ADMIN_API_KEYS = "MINISESSION_ADMIN_API_KEYS"

MIN_SECRET_LENGTH = 32
#: Fewer different characters than this make a secret a pattern ("aaaa...", "abcabc..."):
#: 32 random hex digits, the narrowest usual format, practically never have fewer than 9.
MIN_DISTINCT_CHARACTERS = 6
#: The same for the bytes of an encryption key: 32 random bytes practically never repeat so
#: much that fewer than 20 differ.
MIN_DISTINCT_KEY_BYTES = 16
KEYGEN_HINT = "make them with: minisession keygen"

NOTICE_EPHEMERAL_SECRET = (
    "session.secrets is not set: using a random secret for this run; "
    "sessions will not survive a restart"
)
NOTICE_MEMORY_STORE = "in-process store: sessions live in this process only; not for production"
NOTICE_DEV_PROVIDER = (
    "login.provider = 'dev': anyone can log in as any openid; for development only"
)


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why.

    ``key`` is the dotted key at fault (``None`` for problems with the file itself) and
    ``source`` the file (or label) the configuration came from.
    """

    def __init__(self, key: str | None, problem: str, source: str | None = None):
        self.key = key
        self.problem = problem
        self.source = source
        parts = [part for part in (source, key, problem) if part]
        super().__init__(": ".join(parts))

    def with_source(self, source: str) -> ConfigError:
        return ConfigError(self.key, self.problem, source)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8888
    max_body_size: int = 65536
    max_header_size: int = 16384
    client_timeout: float = 20.0
    #: Connections one process holds at most (see server/http/connection_limits.py).
    max_connections: int = 1000
    shutdown_grace: float = 10.0
    #: Pre-forked processes sharing the listening socket (see server/workers.py).
    workers: int = 1
    #: Addresses (IPs or CIDR networks) of reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: tuple[str, ...] = ()
    #: "auto" (uvloop when it is installed, as it is by default on Linux and macOS, else
    #: asyncio), "uvloop", or "asyncio" (the standard library's loop).
    event_loop: str = "auto"


@dataclass(frozen=True)
class SessionConfig:
    # Kept out of repr so that logging the configuration cannot leak them.
    secrets: tuple[str, ...] = field(repr=False)
    cookie_name: str = "sessionid"
    header_name: str = "X-Session"
    idle_timeout: int = 7200
    max_lifetime: int = 604800
    touch_after: int = 60
    login_reuse_window: int = 30
    cookie_secure: bool = False
    cookie_samesite: str = "Lax"
    data_max_bytes: int = 16384
    #: Most JSON values (objects, arrays, strings, numbers...) session data may hold.
    data_max_values: int = 1000
    #: Seconds a user's replaced platform session_key still opens data (0: not at all).
    session_key_grace: int = 300


@dataclass(frozen=True)
class StoreConfig:
    backend: str = "memory"
    mongodb_uri: str | None = field(default=None, repr=False)  # may embed a password
    database: str = "minisession"
    timeout: float = 2.0
    purge_interval: int = 60
    #: Refuse to start when the store does not answer at start-up (instead of starting unready).
    require_at_start: bool = False
    #: "auto": session reads made at the same moment go to MongoDB as one query, except on
    #: FerretDB 1.x, where such a query scans the whole collection; "on" or "off" forces it.
    read_batching: str = "auto"
    #: backend = "mongodb" only: "motor" (AsyncIOMotorClient) or "pymongo" (AsyncMongoClient).
    driver: str = "motor"
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)
    #: backend = "memory" only: most sessions held; past it, logins evict the closest to expiry.
    max_sessions: int = 10000


#: Every platform an app may be on, and the API base URL it uses unless ``api_base`` is set.
PLATFORM_API_BASES = {
    "wechat": "https://api.weixin.qq.com",
    "qq": "https://api.q.qq.com",
    "douyin": "https://developer.toutiao.com",
    "baidu": "https://spapi.baidu.com",
    "kuaishou": "https://open.kuaishou.com",
    "alipay": "https://openapi.alipay.com",
    "dev": None,
}
#: The name of the one app that the shorthand (``[login] provider`` + ``[wechat]``) configures;
#: also the app of records written before apps existed (``minisession migrate``).
SHORTHAND_APP = "default"
#: App names appear in URLs, record keys ("<app>:<openid>") and environment variable names.
APP_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class AppConfig:
    """One mini-program: ``[apps.<name>]``. The fields are those of the platform providers'
    ``AppCredentials`` (server/platforms/base.py)."""

    name: str
    platform: str
    appid: str | None = None
    secret: str | None = field(default=None, repr=False)
    api_base: str | None = None
    timeout: float = 5.0
    #: Alipay: the app's RSA private key and Alipay's public key, PEM text.
    private_key_pem: str | None = field(default=None, repr=False)
    platform_public_key_pem: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LoginConfig:
    provider: str = "wechat"
    #: The app that ``POST /login`` (no app in the path) logs in to when there are several.
    default_app: str | None = None
    #: Logins per minute allowed from one client address, and in all (per process); 0 = no limit.
    rate_per_address: int = 30
    rate_overall: int = 3000
    #: Prefix lengths of the network counted as one client address by rate_per_address.
    rate_ipv4_prefix: int = 32
    rate_ipv6_prefix: int = 64


@dataclass(frozen=True)
class WeChatConfig:
    appid: str | None = None
    secret: str | None = field(default=None, repr=False)
    api_base: str = "https://api.weixin.qq.com"
    timeout: float = 5.0


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    #: "text": readable lines; "json": one JSON object per line (server/log_format.py).
    format: str = "text"


@dataclass(frozen=True)
class AdminConfig:
    #: Serve /introspect and /admin/* (for the app's backend); off by default.
    enabled: bool = False
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    #: Where Prometheus scrapes /metrics ("host:port"), never the public port; "" disables.
    metrics_listen: str = "127.0.0.1:9464"


#: The first path segments of minisession's own routes (server/app.py ROUTES, and /metrics of
#: the metrics listener): a gateway prefix may not start with one of them.
OWN_PATHS = ("login", "session", "platform", "auth", "introspect", "admin", "healthz",
             "readyz", "openapi.json", "metrics")
#: A gateway prefix: "/", or path segments of URL-safe characters, each followed by "/".
_GATEWAY_PREFIX = re.compile(r"/(?:[A-Za-z0-9._~-]+/)*")


@dataclass(frozen=True)
class GatewayRouteConfig:
    """One ``[[gateway.routes]]``: requests under ``prefix`` are proxied to ``upstream``."""

    prefix: str
    #: The upstream's origin ("http://127.0.0.1:9000"), and optionally a base path that then
    #: replaces the prefix ("http://127.0.0.1:9000/v1/": /api/x -> /v1/x), as nginx does.
    upstream: str
    #: "required" (no live session: 401), "optional" (identity headers when there is one),
    #: "none" (never identity headers).
    auth: str = "required"
    cookie_jar: bool = True
    #: The most bytes a session's jar for this route may hold (its cookies as stored, compact
    #: JSON): new cookies that would not fit are not kept.
    cookie_jar_max_bytes: int = 16384
    timeout: float = 30.0
    #: Largest request body (bytes); server.max_body_size unless given.
    max_body: int = 65536
    #: Only sessions of this app pass (others: 403); None: any app.
    app: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    routes: tuple[GatewayRouteConfig, ...] = ()
    #: Connections open to one upstream origin at most; more requests wait for one.
    max_upstream_connections: int = 100
    #: Seconds an idle upstream connection is kept for the next request: below the 5 s of
    #: Node's and Apache's keep-alive, so that the upstream rarely closes one first.
    upstream_idle_timeout: float = 4.0


@dataclass(frozen=True)
class AccessTokenConfig:
    """Each app's one access_token (server/access_tokens.py)."""

    #: Seconds a refresh may hold the app's lease; a holder that dies frees it after this.
    lease_time: float = 15.0
    #: Seconds before its expiry a token is renewed (stable_token renews 5 minutes before).
    refresh_margin: int = 120


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    session: SessionConfig
    store: StoreConfig
    login: LoginConfig
    wechat: WeChatConfig
    log: LogConfig
    admin: AdminConfig = AdminConfig()
    access_token: AccessTokenConfig = AccessTokenConfig()
    notices: tuple[str, ...] = ()  # non-fatal warnings to log at start-up
    #: The mini-programs served, by name (at least one).
    apps: Mapping[str, AppConfig] = field(default_factory=dict)
    gateway: GatewayConfig = GatewayConfig()


# --------------------------------------------------------------------------- value checkers
# A checker takes (dotted key, raw value) and returns the normalised value or raises.

Checker = Callable[[str, object], object]

# RFC 7230 tchar, which is also RFC 6265's cookie-name token. ASCII only, spelt out on purpose.
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_RESERVED_HEADERS = {"cookie", "set-cookie", "host", "content-length", "content-type",
                     "authorization"}


def _toml_type(value: object) -> str:
    """The TOML name of a parsed value's type, as the administrator wrote it."""
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__  # datetime, date, time


def _got(value: object, secret: bool = False) -> str:
    """'got <type> <value>' for messages; secret values are described by type only."""
    kind = _toml_type(value)
    if secret or kind in ("array", "table"):
        return f"got {kind}"
    if isinstance(value, bool):
        shown = "true" if value else "false"
    else:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
    return f"got {kind} {shown}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(*, secret: bool = False, optional: bool = False) -> Checker:
    def check(key: str, value: object) -> object:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, {_got(value, secret)}")
        # An empty optional string means "not set", like leaving the key out.
        return (value or None) if optional else value
    return check


def _boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, {_got(value)}")
    return value


def _whole_seconds(minimum: int) -> Checker:
    def check(key: str, value: object) -> int:
        if not _is_int(value):
            raise ConfigError(key, f"expected a whole number of seconds, {_got(value)}")
        if value < minimum:
            raise ConfigError(key, f"must be at least {minimum} second(s), got {value}")
        return value
    return check


#: The longest session_key grace: a replaced key is dead at the platform, and data the client
#: got under it is minutes old at most when it arrives.
MAX_SESSION_KEY_GRACE = 3600


def _session_key_grace(key: str, value: object) -> int:
    seconds = _whole_seconds(0)(key, value)
    if seconds > MAX_SESSION_KEY_GRACE:
        raise ConfigError(key, f"must be at most {MAX_SESSION_KEY_GRACE} seconds (a replaced "
                               f"session_key is dead at the platform), got {seconds}")
    return seconds


def _timeout(key: str, value: object) -> float:
    if not (_is_int(value) or isinstance(value, float)):
        raise ConfigError(key, f"expected a number of seconds, {_got(value)}")
    # TOML allows inf and nan; neither is a usable timeout.
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(key, f"must be a finite number of seconds greater than 0, got {value}")
    return float(value)


def _positive_int(key: str, value: object) -> int:
    if not _is_int(value):
        raise ConfigError(key, f"expected a whole number, {_got(value)}")
    if value <= 0:
        raise ConfigError(key, f"must be greater than 0, got {value}")
    return value


def _bytes_between(minimum: int, maximum: int) -> Checker:
    def check(key: str, value: object) -> int:
        if not _is_int(value):
            raise ConfigError(key, f"expected a number of bytes, {_got(value)}")
        if not minimum <= value <= maximum:
            raise ConfigError(key, f"must be between {minimum} and {maximum} bytes, got {value}")
        return value
    return check


def _port(key: str, value: object) -> int:
    if not _is_int(value):
        raise ConfigError(key, f"expected a port number, {_got(value)}")
    if not 0 <= value <= 65535:
        raise ConfigError(key, f"must be between 0 and 65535 (0 = any free port), got {value}")
    return value


def _choice(*choices: str, ignore_case: bool = False) -> Checker:
    listed = ", ".join(repr(c) for c in choices)

    def check(key: str, value: object) -> str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected one of {listed}, {_got(value)}")
        for choice in choices:
            if value == choice or (ignore_case and value.lower() == choice.lower()):
                return choice  # the canonical spelling
        raise ConfigError(key, f"expected one of {listed}, {_got(value)}")
    return check


def _event_loop(key: str, value: object) -> str:
    loop = _choice("auto", "asyncio", "uvloop")(key, value)
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError(key, "uvloop is not installed: pip install uvloop "
                               "(or set it to \"auto\" or \"asyncio\")")
    return loop


def _cookie_name(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, {_got(value)}")
    if not (1 <= len(value) <= 64 and _TOKEN.fullmatch(value)):
        raise ConfigError(
            key, f"must be 1-64 characters from letters, digits and !#$%&'*+-.^_`|~ "
                 f"(an RFC 6265 cookie name), {_got(value)}")
    return value


def _header_name(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, {_got(value)}")
    if not _TOKEN.fullmatch(value):
        raise ConfigError(
            key, f"must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), "
                 f"{_got(value)}")
    if value.lower() in _RESERVED_HEADERS:
        raise ConfigError(key, f"{value!r} is a standard HTTP header and cannot carry the "
                               f"session id; use a header of your own such as 'X-Session'")
    return value


def _api_base(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, {_got(value)}")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(key, f"must start with http:// or https://, {_got(value)}")
    return value.rstrip("/")  # so that clients can append "/sns/..." without doubling it


def _non_negative_int(key: str, value: object) -> int:
    if not _is_int(value):
        raise ConfigError(key, f"expected a whole number, {_got(value)}")
    if value < 0:
        raise ConfigError(key, f"must be 0 (no limit) or more, got {value}")
    return value


def _prefix_length(bits: int) -> Checker:
    def check(key: str, value: object) -> int:
        if not _is_int(value):
            raise ConfigError(key, f"expected a prefix length (a whole number), {_got(value)}")
        if not 0 <= value <= bits:
            raise ConfigError(key, f"must be between 0 and {bits}, got {value}")
        return value
    return check


def _networks(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a list of IP addresses or networks, {_got(value)}")
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except (TypeError, ValueError):
            raise ConfigError(key, f"not an IP address or network (such as '10.0.0.0/8'): "
                                   f"{_got(item)}") from None
    return tuple(value)


def _encryption_keys(key: str, value: object) -> tuple[str, ...]:
    keys = _secret_list(key, value)
    for number, item in enumerate(keys, 1):
        try:
            decode_key(item)
        except ValueError as err:
            raise ConfigError(key, f"key #{number} is not a 32-byte key in base64 ({err}); "
                                   f"make one with: openssl rand -base64 32") from None
    return keys


def _secret_list(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a list of strings, {_got(value, secret=True)}")
    for number, item in enumerate(value, 1):
        if not isinstance(item, str):
            raise ConfigError(key, f"secret #{number}: expected a string, "
                                   f"{_got(item, secret=True)}")
        if not item:
            raise ConfigError(key, f"secret #{number} is empty")
    return tuple(value)


# ---------------------------------------------------------------------------------- schema

def _listen_address(key: str, raw: object) -> str:
    """"host:port" ("[::1]:9464" for IPv6; port 0: any free one), or "" (off)."""
    if not isinstance(raw, str):
        raise ConfigError(key, f"expected a string \"host:port\", {_got(raw)}")
    if raw == "":
        return raw
    try:
        split_listen_address(raw)
    except ValueError as exc:
        raise ConfigError(key, f"{exc}; expected \"host:port\", e.g. \"127.0.0.1:9464\", "
                               f"or \"\" to turn it off") from None
    return raw


def split_listen_address(address: str) -> tuple[str, int]:
    """("127.0.0.1", 9464) from "127.0.0.1:9464", ("::1", 9464) from "[::1]:9464"."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not host:port")
    return host, int(port)


_SCHEMA: dict[str, tuple[type, dict[str, Checker]]] = {
    "server": (ServerConfig, {
        "host": _string(),
        "port": _port,
        "max_body_size": _positive_int,
        "max_header_size": _positive_int,
        "client_timeout": _timeout,
        "max_connections": _positive_int,
        "shutdown_grace": _timeout,
        "workers": _positive_int,
        "trusted_proxies": _networks,
        "event_loop": _event_loop,
    }),
    "session": (SessionConfig, {
        "secrets": _secret_list,
        "cookie_name": _cookie_name,
        "header_name": _header_name,
        "idle_timeout": _whole_seconds(1),
        "max_lifetime": _whole_seconds(1),
        "touch_after": _whole_seconds(0),
        "login_reuse_window": _whole_seconds(0),
        "cookie_secure": _boolean,
        "cookie_samesite": _choice("Lax", "Strict", "None", ignore_case=True),
        "data_max_bytes": _positive_int,
        "data_max_values": _positive_int,
        "session_key_grace": _session_key_grace,
    }),
    "store": (StoreConfig, {
        "backend": _choice("memory", "mongodb"),
        "mongodb_uri": _string(secret=True, optional=True),
        "database": _string(),
        "timeout": _timeout,
        "purge_interval": _whole_seconds(1),
        "require_at_start": _boolean,
        "read_batching": _choice("auto", "on", "off"),
        "driver": _choice("motor", "pymongo"),
        "encryption_keys": _encryption_keys,
        "max_sessions": _positive_int,
    }),
    "login": (LoginConfig, {
        "provider": _choice("wechat", "dev"),
        "default_app": _string(optional=True),
        "rate_per_address": _non_negative_int,
        "rate_overall": _non_negative_int,
        "rate_ipv4_prefix": _prefix_length(32),
        "rate_ipv6_prefix": _prefix_length(128),
    }),
    "wechat": (WeChatConfig, {
        "appid": _string(optional=True),
        "secret": _string(secret=True, optional=True),
        "api_base": _api_base,
        "timeout": _timeout,
    }),
    "log": (LogConfig, {
        "level": _choice("debug", "info", "warning", "error"),
        "format": _choice("text", "json"),
    }),
    "admin": (AdminConfig, {
        "enabled": _boolean,
        "api_keys": _secret_list,
        "metrics_listen": _listen_address,
    }),
    "access_token": (AccessTokenConfig, {
        "lease_time": _timeout,
        "refresh_margin": _whole_seconds(1),
    }),
}


def _suggest(name: str, known: list[str]) -> str:
    match = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {match[0]}?" if match else "known: " + ", ".join(known)


def _home_of(key: str) -> str | None:
    """The section a key belongs to, for keys written in the wrong place."""
    for section, (_, checkers) in _SCHEMA.items():
        if key in checkers:
            return section
    return None


def _read_section(name: str, table: object) -> dict[str, object]:
    """Check one section's keys and values; returns only the keys that were given."""
    if not isinstance(table, dict):
        raise ConfigError(name, f"expected a table ([{name}]), {_got(table)}")
    checkers = _SCHEMA[name][1]
    values = {}
    for key, raw in table.items():
        dotted = f"{name}.{key}"
        if key not in checkers:
            home = _home_of(key)
            hint = (f"{key} belongs in [{home}]" if home and home != name
                    else _suggest(key, list(checkers)))
            raise ConfigError(dotted, f"unknown key; {hint}")
        values[key] = checkers[key](dotted, raw)
    return values


def _default(section: str, key: str) -> object:
    cls = _SCHEMA[section][0]
    return next(f.default for f in fields(cls) if f.name == key)


# --------------------------------------------------------------------------------- helpers

def _is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback IP addresses; every other host is reachable."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname (or ''): assume it reaches beyond this machine


def _weakness(secret: str) -> str | None:
    """Why a signing secret is weak, or None; never mentions the secret itself."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    lowered = secret.lower()
    if "change-me" in lowered or "changeme" in lowered:
        return "it contains a 'change-me' placeholder"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        return f"fewer than {MIN_DISTINCT_CHARACTERS} different characters"
    return None


def _key_weakness(key: str) -> str | None:
    """Why an encryption key (valid base64 of 32 bytes) is weak, or None."""
    if len(set(decode_key(key))) < MIN_DISTINCT_KEY_BYTES:
        return f"fewer than {MIN_DISTINCT_KEY_BYTES} different bytes: not random"
    return None


def _check_risky_settings(value: Callable[[str, str], object], deployed: bool, where: str,
                          notices: list[str]) -> None:
    """Refuse what is unsafe wherever it runs; note what is merely unwise on a public host.

    ``deployed``: the host is public or the store is shared, so weak keys are refused (not
    noted) and ``where`` says why.
    """
    host_is_public = not _is_loopback(value("server", "host"))

    # A /0 "proxy" makes every client a trusted proxy: anyone names their own address in
    # X-Forwarded-For and escapes the per-address login limit.
    for entry in value("server", "trusted_proxies"):
        if ipaddress.ip_network(entry, strict=False).prefixlen == 0:
            raise ConfigError("server.trusted_proxies",
                              f"{entry!r} is a /0: it trusts every address's X-Forwarded-For, "
                              f"so any client could claim any address; list only your "
                              f"proxies' addresses")

    for number, key in enumerate(value("store", "encryption_keys"), 1):
        if (reason := _key_weakness(key)) is None:
            continue
        problem = f"key #{number} is weak ({reason}); {KEYGEN_HINT}"
        if deployed:
            raise ConfigError("store.encryption_keys", f"{problem}; refused because {where}")
        notices.append(f"store.encryption_keys: {problem}")

    # One value in two roles: whoever holds the admin key could sign session ids (or open
    # sealed session_keys), and one leak would give away both.
    roles = [("session.secrets", "secret", value("session", "secrets")),
             ("store.encryption_keys", "key", value("store", "encryption_keys")),
             ("admin.api_keys", "key",
              value("admin", "api_keys") if value("admin", "enabled") else ())]
    seen: dict[str, str] = {}
    for key, noun, items in roles:
        for number, item in enumerate(items, 1):
            if item in seen and not seen[item].startswith(key):
                raise ConfigError(key, f"{noun} #{number} is also {seen[item]}; every role "
                                       f"needs a value of its own ({KEYGEN_HINT})")
            seen.setdefault(item, f"{key} #{number}")

    # Unwise only: TLS is usually terminated by a proxy in front, which this server cannot
    # see, and mini-programs send the id in a header, where Secure does not apply.
    if host_is_public and not value("session", "cookie_secure"):
        notices.append("session.cookie_secure = false on a public host: browsers and cookie "
                       "jars will send the session cookie over plain HTTP too; set it to true "
                       "when clients reach you over HTTPS")


def _check_api_base(app: AppConfig, key: str, host_is_public: bool, notices: list[str]) -> None:
    """Refuse an app's plain-http API base on another machine."""
    # The AppSecret and every login code go in the query string of code2Session: over plain
    # http they cross the network in clear, wherever this server listens. Only a fake platform
    # (or an egress proxy) on this machine may be spoken to without TLS.
    api_base = app.api_base
    if app.platform == "dev" or not api_base.startswith("http://"):
        return
    if not _is_loopback(urlsplit(api_base).hostname or ""):
        raise ConfigError(key, "plain http:// to another machine would send the AppSecret and "
                               "login codes in clear; use https:// (http:// is accepted only "
                               "for a fake platform on this machine)")
    if host_is_public:
        notices.append(f"{key}: plain http:// to this machine while server.host is public; "
                       f"fine for a local egress proxy, but the fake platform server "
                       f"(minisession fake-platforms) lets anyone log in as anyone")


def _env_list(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = environ.get(name, "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())


# ------------------------------------------------------------------------------------ apps

_APP_KEYS: dict[str, Checker] = {
    "platform": _choice(*PLATFORM_API_BASES),
    "appid": _string(optional=True),
    "secret": _string(secret=True, optional=True),
    "api_base": _api_base,
    "timeout": _timeout,
    "private_key": _string(secret=True, optional=True),
    "private_key_file": _string(optional=True),
    "alipay_public_key": _string(secret=True, optional=True),
    "alipay_public_key_file": _string(optional=True),
}


def app_env_name(app: str, what: str) -> str:
    """The environment variable of one of an app's secrets: MINISESSION_APPS_SHOP_SECRET."""
    return f"MINISESSION_APPS_{app.upper().replace('-', '_')}_{what}"


def _pem(app: str, values: dict, key: str, environ: Mapping[str, str], private: bool) -> str:
    """An app's PEM key from the environment, the file or the config, checked as PEM.

    Messages name the key and where it came from, never its content."""
    # Imported here: only Alipay apps need it (cryptography is a dependency anyway: sealing).
    from cryptography.hazmat.primitives import serialization

    dotted, env = f"apps.{app}.{key}", app_env_name(app, key.upper())
    if text := environ.get(env, ""):
        origin = env
    elif path := values.get(f"{key}_file"):
        origin = f"{dotted}_file"
        try:
            with open(path, encoding="utf-8") as fp:
                text = fp.read()
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or type(err).__name__
            raise ConfigError(origin, f"cannot read {path!r}: {reason}") from None
    elif text := values.get(key):
        origin = dotted
    else:
        raise ConfigError(dotted, f"required for platform 'alipay'; set {key}_file, {key} "
                                  f"(PEM text) or {env}")
    try:
        if private:
            serialization.load_pem_private_key(text.encode("utf-8"), password=None)
        else:
            serialization.load_pem_public_key(text.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError):
        kind = "an unencrypted PEM private key" if private else "a PEM public key"
        raise ConfigError(origin, f"is not {kind} (-----BEGIN ...-----)") from None
    return text


def _read_app(name: str, table: object, environ: Mapping[str, str]) -> AppConfig:
    if not APP_NAME.fullmatch(name):
        raise ConfigError(f"apps.{name}"[:80], "an app name is 1-32 letters, digits, '-' or "
                                               "'_' (it appears in URLs and stored records)")
    if not isinstance(table, dict):
        raise ConfigError(f"apps.{name}", f"expected a table ([apps.{name}]), {_got(table)}")
    values = {}
    for key, raw in table.items():
        if key not in _APP_KEYS:
            raise ConfigError(f"apps.{name}.{key}",
                              f"unknown key; {_suggest(key, list(_APP_KEYS))}")
        values[key] = _APP_KEYS[key](f"apps.{name}.{key}", raw)
    if "platform" not in values:
        raise ConfigError(f"apps.{name}.platform",
                          "required: one of " + ", ".join(repr(p) for p in PLATFORM_API_BASES))
    platform = values["platform"]
    if env := environ.get(app_env_name(name, "SECRET"), ""):
        values["secret"] = env
    app = {"name": name, "platform": platform, "appid": values.get("appid"),
           "secret": values.get("secret"),
           "api_base": values.get("api_base", PLATFORM_API_BASES[platform]),
           "timeout": values.get("timeout", 5.0)}
    if platform == "dev":
        return AppConfig(**app)
    if not app["appid"]:
        raise ConfigError(f"apps.{name}.appid", f"required for platform {platform!r}")
    if platform == "alipay":
        # Alipay signs with keys, not a shared secret.
        app["private_key_pem"] = _pem(name, values, "private_key", environ, private=True)
        app["platform_public_key_pem"] = _pem(name, values, "alipay_public_key", environ,
                                              private=False)
    elif not app["secret"]:
        raise ConfigError(f"apps.{name}.secret",
                          f"required for platform {platform!r}; set it in the file or in "
                          f"{app_env_name(name, 'SECRET')}")
    return AppConfig(**app)


def _read_apps(data: dict, environ: Mapping[str, str]) -> dict[str, AppConfig] | None:
    """The ``[apps.*]`` sections, or None when there are none (the one-app shorthand)."""
    table = data.get("apps")
    if table is None:
        return None
    if not isinstance(table, dict) or not table:
        raise ConfigError("apps", "expected one [apps.<name>] table per app")
    login = data.get("login")
    for key, given in (("wechat", "wechat" in data),
                       ("login.provider", isinstance(login, dict) and "provider" in login)):
        if given:
            raise ConfigError(key, "is the one-app shorthand and cannot be combined with "
                                   "[apps.*]; move it into an [apps.<name>] section")
    apps = {name: _read_app(name, value, environ) for name, value in table.items()}
    # "shop-qq" and "Shop_QQ" would read the same MINISESSION_APPS_SHOP_QQ_* variables.
    seen: dict[str, str] = {}
    for name in apps:
        other = seen.setdefault(app_env_name(name, ""), name)
        if other != name:
            raise ConfigError(f"apps.{name}", f"its environment variables would be those of "
                                              f"apps.{other} ({app_env_name(name, 'SECRET')}); "
                                              f"rename one of them")
    return apps


def _shorthand_app(value: Callable[[str, str], object]) -> AppConfig:
    """The one app that ``[login] provider`` + ``[wechat]`` describe."""
    if value("login", "provider") == "dev":
        return AppConfig(name=SHORTHAND_APP, platform="dev")
    return AppConfig(name=SHORTHAND_APP, platform="wechat", appid=value("wechat", "appid"),
                     secret=value("wechat", "secret"), api_base=value("wechat", "api_base"),
                     timeout=value("wechat", "timeout"))


def _app_key(apps_given: bool, app: AppConfig, key: str) -> str:
    """The dotted key to blame for an app's setting: the shorthand's or the app's own."""
    if apps_given:
        return f"apps.{app.name}.{key}"
    return {"platform": "login.provider"}.get(key, f"wechat.{key}")


# ------------------------------------------------------------------------------- gateway

def _gateway_prefix(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a path such as \"/api/\", {_got(value)}")
    if not _GATEWAY_PREFIX.fullmatch(value) or any(
            segment in (".", "..") for segment in value.split("/")):
        raise ConfigError(key, f"must start and end with \"/\" and hold path segments of "
                               f"letters, digits and ._~- (e.g. \"/api/\"), {_got(value)}")
    first = value.split("/")[1]
    if first in OWN_PATHS:
        raise ConfigError(key, f"{value!r} is under minisession's own /{first}; choose another "
                               f"prefix (own paths: {', '.join('/' + p for p in OWN_PATHS)})")
    return value


def _upstream(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a URL such as \"http://127.0.0.1:9000\", {_got(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ConfigError(key, f"is not a URL, {_got(value)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"must be an http:// or https:// URL with a host, {_got(value)}")
    if parts.username is not None or parts.query or parts.fragment or "?" in value:
        # Credentials in the URL would end up in logs and error messages.
        raise ConfigError(key, "must be an origin with an optional path: no user:password@, "
                               "no ?query, no #fragment")
    return value


_GATEWAY_ROUTE_KEYS: dict[str, Checker] = {
    "prefix": _gateway_prefix,
    "upstream": _upstream,
    "auth": _choice("required", "optional", "none"),
    "cookie_jar": _boolean,
    "cookie_jar_max_bytes": _bytes_between(1024, 1048576),
    "timeout": _timeout,
    "max_body": _positive_int,
    "app": _string(),
}


#: [gateway]'s keys for its pool of upstream connections.
_GATEWAY_POOL_KEYS: dict[str, Checker] = {
    "max_upstream_connections": _positive_int,
    "upstream_idle_timeout": _timeout,
}


def _read_gateway(table: object, max_body_size: int, apps: Mapping[str, AppConfig]
                  ) -> GatewayConfig:
    """``[gateway]`` with its ``[[gateway.routes]]``."""
    if not isinstance(table, dict):
        raise ConfigError("gateway", f"expected a table ([gateway]), {_got(table)}")
    pool = {}
    for key in table:
        if key not in _GATEWAY_POOL_KEYS and key != "routes":
            raise ConfigError(f"gateway.{key}", f"unknown key; known: routes, "
                                                f"{', '.join(_GATEWAY_POOL_KEYS)}")
        if key in _GATEWAY_POOL_KEYS:
            pool[key] = _GATEWAY_POOL_KEYS[key](f"gateway.{key}", table[key])
    entries = table.get("routes", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("gateway.routes", "expected [[gateway.routes]] tables")
    routes, seen = [], set()
    for number, entry in enumerate(entries, 1):
        where = f"gateway.routes[{number}]"
        values = {}
        for key, raw in entry.items():
            if key not in _GATEWAY_ROUTE_KEYS:
                raise ConfigError(f"{where}.{key}",
                                  f"unknown key; {_suggest(key, list(_GATEWAY_ROUTE_KEYS))}")
            values[key] = _GATEWAY_ROUTE_KEYS[key](f"{where}.{key}", raw)
        for key in ("prefix", "upstream"):
            if key not in values:
                raise ConfigError(f"{where}.{key}", "required")
        if values["prefix"] in seen:
            # Two routes for one prefix: which one serves it would be a guess.
            raise ConfigError(f"{where}.prefix",
                              f"{values['prefix']!r} is the prefix of an earlier route too")
        seen.add(values["prefix"])
        if "app" in values and values["app"] not in apps:
            raise ConfigError(f"{where}.app", f"names no app; apps: {', '.join(apps)}")
        if values.get("auth") == "none":
            # No session is looked up, so there is no jar to keep cookies in: they pass
            # through (cookie_jar = false) rather than being silently dropped both ways.
            if values.get("cookie_jar") is True:
                raise ConfigError(f"{where}.cookie_jar",
                                  'keeps the backend\'s cookies in the user\'s session, and '
                                  'auth = "none" looks up no session: leave it out (cookies '
                                  'then pass through) or set auth = "optional"')
            values["cookie_jar"] = False
        values.setdefault("max_body", max_body_size)
        routes.append(GatewayRouteConfig(**values))
    return GatewayConfig(routes=tuple(routes), **pool)


# ------------------------------------------------------------------------------ public API

def load_config(path: str | os.PathLike, environ: Mapping[str, str] = os.environ) -> Config:
    """Read, parse and validate the TOML file at ``path``; see :func:`parse_config`."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fp:
            data = tomllib.load(fp)
    except FileNotFoundError:
        raise ConfigError(None, "config file not found", source) from None
    except OSError as err:
        raise ConfigError(None, f"cannot read config file: {err.strerror or err}", source) \
            from None
    except UnicodeDecodeError as err:
        raise ConfigError(None, f"not valid UTF-8 (byte {err.start})", source) from None
    except tomllib.TOMLDecodeError as err:
        # tomllib's message carries "(at line N, column M)" and never the file's content.
        raise ConfigError(None, f"invalid TOML: {err}", source) from None
    return parse_config(data, environ, source)


def parse_config(data: dict, environ: Mapping[str, str] = os.environ,
                 source: str = "<config>") -> Config:
    """Validate an already-parsed configuration and apply environment overrides.

    Raises :class:`ConfigError` (prefixed with ``source``) on the first problem found.
    """
    try:
        return _build(data, environ)
    except ConfigError as err:
        raise err.with_source(source) from None


def _build(data: dict, environ: Mapping[str, str]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(None, f"expected a table of sections, {_got(data)}")
    apps = _read_apps(data, environ)
    for name in data:
        if name not in _SCHEMA and name not in ("apps", "gateway"):
            home = _home_of(name)
            hint = (f"did you mean {home}.{name}? (keys go under a [{home}] header)" if home
                    else _suggest(name, list(_SCHEMA)))
            raise ConfigError(name, f"unknown section; {hint}")
    given = {name: _read_section(name, data.get(name, {})) for name in _SCHEMA}

    def value(section: str, key: str) -> object:
        return given[section].get(key, _default(section, key))

    notices: list[str] = []

    # Environment overrides: secrets are better kept out of files.
    secrets_origin = ""  # where the signing secrets came from, for messages
    if env := _env_list(environ, ENV_SESSION_SECRETS):
        given["session"]["secrets"] = env
        secrets_origin = f" in {ENV_SESSION_SECRETS}"
    if env := environ.get(ENV_WECHAT_SECRET, ""):
        given["wechat"]["secret"] = env
    if env := environ.get(ENV_STORE_MONGODB_URI, ""):
        given["store"]["mongodb_uri"] = env
    if env := _env_list(environ, ENV_ADMIN_API_KEYS):
        given["admin"]["api_keys"] = env
    if env := _env_list(environ, ENV_STORE_ENCRYPTION_KEYS):
        given["store"]["encryption_keys"] = _encryption_keys(ENV_STORE_ENCRYPTION_KEYS, list(env))

    # Relations between session durations.
    idle, lifetime = value("session", "idle_timeout"), value("session", "max_lifetime")
    for key in ("touch_after", "login_reuse_window"):
        if value("session", key) >= idle:
            raise ConfigError(
                f"session.{key}",
                f"must be less than session.idle_timeout ({value('session', key)} >= {idle})")
    if idle > lifetime:
        raise ConfigError(
            "session.idle_timeout",
            f"must not exceed session.max_lifetime ({idle} > {lifetime})")
    if value("session", "cookie_samesite") == "None" and not value("session", "cookie_secure"):
        raise ConfigError("session.cookie_samesite",
                          "'None' requires session.cookie_secure = true (browsers reject it "
                          "otherwise)")

    # Values required by the chosen backend and provider.
    if value("store", "backend") == "mongodb" and not value("store", "mongodb_uri"):
        raise ConfigError("store.mongodb_uri",
                          f"required when store.backend = 'mongodb'; set it in the file "
                          f"or in {ENV_STORE_MONGODB_URI}")
    if apps is None and value("login", "provider") == "wechat":
        if not value("wechat", "appid"):
            raise ConfigError("wechat.appid", "required when login.provider = 'wechat'")
        if not value("wechat", "secret"):
            raise ConfigError("wechat.secret",
                              f"required when login.provider = 'wechat'; set it in the file "
                              f"or in {ENV_WECHAT_SECRET}")
    apps_given = apps is not None
    if apps is None:
        apps = {SHORTHAND_APP: _shorthand_app(value)}
    default_app = value("login", "default_app")
    if default_app is not None and default_app not in apps:
        raise ConfigError("login.default_app", f"names no app; apps: {', '.join(apps)}")

    # Safety: refuse what would be insecure once reachable from other machines.
    host = value("server", "host")
    exposed = not _is_loopback(host)
    where = f"server.host = {host!r} is not a loopback address"
    # A shared store outlives this process and is shared with other instances: what they sign
    # and seal must be the same everywhere and across restarts, whatever the host.
    shared = value("store", "backend") == "mongodb"
    if not exposed and shared:
        where = ("store.backend = 'mongodb' is shared by every instance and outlives each "
                 "process (a random value per process would not be)")
    for app in apps.values():
        if app.platform != "dev":
            continue
        if exposed:
            raise ConfigError(_app_key(apps_given, app, "platform"),
                              f"'dev' lets anyone log in as anyone and is refused because "
                              f"{where}; use 'wechat' or bind to 127.0.0.1")
        notices.append(NOTICE_DEV_PROVIDER if not apps_given else
                       f"apps.{app.name}.platform = 'dev': anyone can log in to this app as "
                       f"any openid; for development only")
    if value("store", "backend") == "memory" and exposed:
        raise ConfigError("store.backend",
                          f"'memory' keeps sessions in this one process, lost on restart, and is "
                          f"refused because {where}; use 'mongodb' or bind to 127.0.0.1")
    signing = value("session", "secrets") if "secrets" in given["session"] else ()
    if not signing:
        if exposed or shared:
            raise ConfigError("session.secrets",
                              f"required because {where}; set it in the file or in "
                              f"{ENV_SESSION_SECRETS} ({KEYGEN_HINT})")
        signing = (_secrets.token_urlsafe(32),)
        notices.append(NOTICE_EPHEMERAL_SECRET)
    for number, secret in enumerate(signing, 1):
        if (reason := _weakness(secret)) is None:
            continue
        problem = (f"secret #{number}{secrets_origin} is weak ({reason}); use at least {MIN_SECRET_LENGTH} "
                   f"random characters, e.g. from "
                   f"python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        if exposed or shared:
            raise ConfigError("session.secrets", f"{problem}; refused because {where}")
        notices.append(f"session.secrets: {problem}")
    given["session"]["secrets"] = signing

    if not value("store", "encryption_keys"):
        # Only a database outlives the process: an in-memory store can use a throwaway key.
        if shared:
            raise ConfigError("store.encryption_keys",
                              f"required because {where}: session_keys are kept encrypted "
                              f"in MongoDB; set it in the file or in "
                              f"{ENV_STORE_ENCRYPTION_KEYS} ({KEYGEN_HINT}, or "
                              f"openssl rand -base64 32)")
        given["store"]["encryption_keys"] = (new_key(),)

    _check_risky_settings(value, exposed or shared, where, notices)
    for app in apps.values():
        _check_api_base(app, _app_key(apps_given, app, "api_base"), exposed, notices)

    if value("admin", "enabled"):
        api_keys = value("admin", "api_keys")
        if not api_keys:
            raise ConfigError("admin.api_keys",
                              f"required when admin.enabled = true (the admin API is never "
                              f"open); set it in the file or in {ENV_ADMIN_API_KEYS}")
        for number, key in enumerate(api_keys, 1):
            if (reason := _weakness(key)) is None:
                continue
            problem = (f"key #{number} is weak ({reason}); use at least {MIN_SECRET_LENGTH} "
                       f"random characters")
            if exposed or shared:
                raise ConfigError("admin.api_keys", f"{problem}; refused because {where}")
            notices.append(f"admin.api_keys: {problem}")

    metrics_listen = value("admin", "metrics_listen")
    if metrics_listen and not _is_loopback(split_listen_address(metrics_listen)[0]):
        # Allowed: a Prometheus on another host needs it, and the figures hold no ids or user
        # data; they do show traffic and error rates, so only the scraper should reach them.
        notices.append(f"admin.metrics_listen = {metrics_listen!r} is not a loopback address: "
                       f"/metrics (traffic and error rates, no user data) is reachable from the "
                       f"network; let only your Prometheus reach that port (firewall)")

    # stable_token renews a token 5 minutes before it expires and answers expires_in >= 300:
    # a margin that long would fetch the same token again on every need.
    if (margin := value("access_token", "refresh_margin")) >= 300:
        raise ConfigError("access_token.refresh_margin",
                          f"must be less than 300 seconds (WeChat renews the token only 5 "
                          f"minutes before it expires), got {margin}")
    # The holder fetches under its lease: a lease shorter than a platform call could run out
    # during the call and let a second refresh start.
    slowest = max(app.timeout for app in apps.values())
    if "lease_time" not in given["access_token"]:
        given["access_token"]["lease_time"] = max(AccessTokenConfig.lease_time, 3 * slowest)
    elif value("access_token", "lease_time") <= 2 * slowest:
        raise ConfigError("access_token.lease_time",
                          f"must be more than twice the longest app timeout ({slowest} s: a "
                          f"fetch may take that long to connect and as long to answer), got "
                          f"{value('access_token', 'lease_time')}")

    if value("store", "backend") == "memory":
        if value("server", "workers") > 1:
            raise ConfigError("server.workers",
                              "more than one worker needs store.backend = 'mongodb': with the "
                              "in-process store each worker would see only its own sessions")
        notices.append(NOTICE_MEMORY_STORE)

    gateway = _read_gateway(data.get("gateway", {}), value("server", "max_body_size"), apps)

    return Config(
        server=ServerConfig(**given["server"]),
        session=SessionConfig(**given["session"]),
        store=StoreConfig(**given["store"]),
        login=LoginConfig(**given["login"]),
        wechat=WeChatConfig(**given["wechat"]),
        log=LogConfig(**given["log"]),
        admin=AdminConfig(**given["admin"]),
        access_token=AccessTokenConfig(**given["access_token"]),
        notices=tuple(notices),
        apps=apps,
        gateway=gateway,
    )
