"""Every test runs under a guard that captures all log output, at DEBUG level from every logger
(minisession, tornado, httpx, pymongo...), and fails the test if any secret it handled shows up.

Secrets are collected where they are born, whoever makes them:

- every session token signed, and its raw id (``SessionIdSigner.sign``);
- every value sealed for the store: WeChat session_keys and raw ids (``Sealer.seal``);
- every signing secret, encryption key, admin API key, WeChat app secret and MongoDB URI a
  server was configured with (``Minisession.__init__``);
- every app secret and private key a platform provider was built with, every login code it
  exchanged and every session_key it received (``LoginProvider``);
- every cookie value a gateway upstream set and the jar kept (``CookieJar``): a backend's
  own session ids (issue 14).

A secret is looked for whole; short values (under 12 characters) are skipped, since they
would match by chance.

The spies are installed once, when this module is imported, not per test: a secret born in a
module- or session-scoped fixture (a token signed before the first test of a module runs) is
watched in every test that follows, not only in the test during which it was made. Secrets born
inside a test are watched in that test only, which keeps the check cheap.
"""

import logging

import pytest

from devtools.processes import readable_log
from server.app import Minisession
from server.gateway.cookie_jar import CookieJar
from server.ids import SessionIdSigner
from server.log_format import JsonFormatter
from server.platforms import LoginProvider
from server.sealing import Sealer

MIN_LENGTH = 12


class _Capture(logging.Handler):
    """Each record as the text format shows it, then as the JSON format writes it (message,
    access fields, exception), decoded: escaping cannot hide a secret from the search."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            text += "\n" + readable_log(self.json.format(record))
        except (TypeError, ValueError):  # a bad format string: keep its parts
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


#: Secrets born outside any test (in fixtures of a wider scope, or at import): watched always.
_ambient: set[str] = set()
#: Secrets born during the running test; None between tests.
_current: set[str] | None = None


def _watch(*values: str) -> None:
    (_ambient if _current is None else _current).update(values)


def _install_spies() -> None:
    sign = SessionIdSigner.sign

    def spy_sign(self, raw):
        token = sign(self, raw)
        _watch(token, raw)
        return token

    seal = Sealer.seal

    def spy_seal(self, plaintext, context):
        _watch(plaintext)
        return seal(self, plaintext, context)

    init = Minisession.__init__

    def spy_init(self, config, **kwargs):
        _watch(*config.session.secrets, *config.store.encryption_keys, *config.admin.api_keys,
               *(v for v in (config.wechat.secret, config.store.mongodb_uri) if v),
               *(v for app in config.apps.values()  # every app's secret and private key
                 for v in (app.secret, app.private_key_pem) if v))
        init(self, config, **kwargs)

    provider_init = LoginProvider.__init__

    def spy_provider_init(self, credentials):
        _watch(*(v for v in (credentials.secret, credentials.private_key_pem) if v))
        provider_init(self, credentials)

    exchange = LoginProvider.exchange

    async def spy_exchange(self, code, anonymous_code=None):
        _watch(*(c for c in (code, anonymous_code) if isinstance(c, str)))
        identity = await exchange(self, code, anonymous_code)
        _watch(*(v for v in (identity.session_key,) if v))
        return identity

    parse_cookie = CookieJar._parse

    def spy_parse_cookie(self, header, request_path, now):
        cookie = parse_cookie(self, header, request_path, now)
        if cookie is not None:
            _watch(cookie["value"])
        return cookie

    SessionIdSigner.sign = spy_sign
    CookieJar._parse = spy_parse_cookie
    Sealer.seal = spy_seal
    Minisession.__init__ = spy_init
    LoginProvider.__init__ = spy_provider_init
    LoginProvider.exchange = spy_exchange


_install_spies()


@pytest.fixture(autouse=True)
def no_secrets_in_logs():
    global _current
    _current = secrets = set()

    capture = _Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
        _current = None
    secrets |= _ambient
    text = "\n".join(capture.lines)
    leaked = sorted(s for s in secrets if len(s) >= MIN_LENGTH and s in text)
    if leaked:
        line = next(line for line in capture.lines if any(s in line for s in leaked))
        pytest.fail(f"{len(leaked)} secret(s) reached the log, e.g. in: {line[:300]}",
                    pytrace=False)
