"""The layers of issue 12: nothing below handlers/ knows Tornado, and every domain error has
its one status and machine code, as clients saw them before."""

import re
from pathlib import Path

import pytest

from handlers.errors import api_error
from server import errors

SERVER = Path(__file__).resolve().parent.parent / "server"
#: The Tornado adapter: assembling the application and serving it (server/http/ holds the
#: HTTP-level helpers); fake platform servers (server/fakes/) are dev tools with their own HTTP.
ADAPTER = {"app.py", "cli.py"}
_IMPORTS_TORNADO = re.compile(r"^\s*(import tornado|from tornado)", re.MULTILINE)


def test_nothing_below_handlers_imports_tornado():
    checked, offenders = 0, []
    for path in sorted(SERVER.rglob("*.py")):
        relative = path.relative_to(SERVER)
        if str(relative) in ADAPTER or relative.parts[0] in ("http", "fakes"):
            continue
        checked += 1
        if _IMPORTS_TORNADO.search(path.read_text()):
            offenders.append(str(relative))
    assert checked >= 15  # sessions, errors, stores, login, config, sealing, ids...
    assert offenders == []


@pytest.mark.parametrize("error, status, code, retry_after", [
    (errors.NoSession(), 401, "no_session", None),
    (errors.SessionInvalid(), 401, "invalid_session", None),
    (errors.SessionExpired(), 401, "session_expired", None),
    (errors.InvalidInput("invalid_data", "bad"), 400, "invalid_data", None),
    (errors.DataTooLarge(20000), 413, "data_too_large", None),
    (errors.UnknownApp(), 404, "unknown_app", None),
    (errors.AppRequired(), 404, "app_required", None),
    (errors.RateLimited("slow down", retry_after=7), 429, "rate_limited", "7"),
    (errors.StoreUnavailable(), 503, "store_unavailable", "2"),
    (errors.SessionKeyStale(), 409, "session_key_stale", None),
    (errors.SessionKeyUnavailable(), 409, "session_key_unavailable", None),
    (errors.DomainError(), 500, "error", None),
])
def test_each_domain_error_has_one_status_and_code(error, status, code, retry_after):
    answer = api_error(error)
    assert (answer.status, answer.code, answer.message) == (status, code, error.message)
    assert answer.headers.get("Retry-After") == retry_after


def test_the_contract_suite_calls_every_method_of_each_store_contract():
    from server.stores.base import SessionStore, StoreLifecycle, UserStore

    suite = (Path(__file__).parent / "test_store_contract.py").read_text()
    contracts = {cls.__name__: [name for name in vars(cls) if not name.startswith("_")
                                and callable(vars(cls)[name])]
                 for cls in (StoreLifecycle, SessionStore, UserStore)}
    assert [len(methods) for methods in contracts.values()] == [3, 11, 13]
    missing = [f"{contract}.{name}" for contract, methods in contracts.items()
               for name in methods if f".{name}(" not in suite]
    assert missing == []
