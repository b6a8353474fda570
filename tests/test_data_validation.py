"""Data no store can keep faithfully is a 400 ``invalid_data`` on both stores, with nothing
stored, no 5xx and nothing of the data in the log (issue 11, item 11).

Each body is sent as raw JSON text, as a client would: ``\\ud800`` is a lone surrogate (no
UTF-8 form), ``1e999`` parses as infinity (not JSON), and arrays directly inside arrays are
refused by FerretDB 1.x (MongoDB keeps them), so every backend refuses them up front.
"""

import json
import logging

import pytest

from server.errors import StoreUnavailable
from tests.conftest import make_config, on_both_stores

MARKER = "zq-data-marker-7f3a"  # in every refused body: must never reach a log line
ADMIN_KEY = "admin-key-for-data-validation-0123456789"

INVALID = [
    pytest.param('{"m": "%s", "a": "\\ud800"}', id="lone-high-surrogate"),
    pytest.param('{"m": "%s", "a": {"b": ["x\\udfffy"]}}', id="lone-low-surrogate-nested"),
    pytest.param('{"m": "%s", "\\ud800k": 1}', id="lone-surrogate-in-key"),
    pytest.param('{"m": "%s", "a": 1e999}', id="1e999"),
    pytest.param('{"m": "%s", "a": {"b": [-1E400]}}', id="minus-1e400-nested"),
    pytest.param('{"m": "%s", "a": [["%s"]]}', id="array-in-array"),
    pytest.param('{"m": "%s", "a": [1, []]}', id="empty-array-in-array"),
    pytest.param('{"m": "%s", "a": [{"b": [["%s", 2]]}]}', id="array-in-array-deeper"),
]


def body_of(template: str) -> str:
    return template.replace("%s", MARKER)


def assert_quiet_log(caplog) -> None:
    """No ERROR line, no traceback, and nothing of the refused data in any log line."""
    for record in caplog.records:
        assert record.levelno < logging.ERROR, record.getMessage()
        assert record.exc_info is None, record.getMessage()
        assert MARKER not in record.getMessage()


@on_both_stores
@pytest.mark.parametrize("template", INVALID)
@pytest.mark.gen_test(timeout=20)
async def test_invalid_data_is_400_invalid_data_and_keeps_the_stored_data(client, template,
                                                                          caplog):
    caplog.set_level(logging.DEBUG)
    h = {"X-Session": (await client.login("dev:alice")).json["session_id"]}
    kept = {"keep": [1, {"x": "中"}], "n": 1.5}
    assert (await client.request("PUT", "/session/data", headers=h, json_body=kept)).code == 200
    for method in ("PUT", "PATCH"):
        response = await client.request(method, "/session/data", headers=h,
                                        body=body_of(template).encode("utf-8"))
        assert (response.code, response.json["error"]) == (400, "invalid_data"), \
            (method, response.body)
        assert response.json["message"]
        assert response.headers.get("Retry-After") is None
    after = await client.request("GET", "/session/data", headers=h)
    assert after.code == 200 and after.json == kept
    # What is served back is strict JSON (no Infinity, no lone surrogate).
    json.loads(after.body.decode("utf-8"), parse_constant=lambda name: pytest.fail(name))
    assert_quiet_log(caplog)


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_what_stays_valid_round_trips(client):
    """The rules refuse only what cannot be stored: surrogate pairs, large finite floats,
    arrays of objects holding arrays and empty containers are all kept exactly."""
    h = {"X-Session": (await client.login("dev:alice")).json["session_id"]}
    body = ('{"emoji": "\\ud83d\\ude00", "big": 1e308, "small": -2.5e-300, '
            '"rows": [{"cells": [1, 2]}, {"cells": []}], "e": [], "o": {}}')
    put = await client.request("PUT", "/session/data", headers=h, body=body)
    assert put.code == 200, put.body
    expected = json.loads(body)
    assert put.json == expected
    assert (await client.request("GET", "/session/data", headers=h)).json == expected


@on_both_stores
@pytest.mark.parametrize("config", [make_config(admin={"enabled": True,
                                                       "api_keys": [ADMIN_KEY]})])
@pytest.mark.gen_test(timeout=20)
async def test_other_json_bodies_refuse_lone_surrogates_with_a_400(client, caplog):
    """The login body, a binding's user_id and an introspected token: every other JSON body
    that reaches the store or the answer."""
    caplog.set_level(logging.DEBUG)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    login = await client.request("POST", "/login", body='{"code": "dev:a\\ud800"}')
    assert (login.code, login.json["error"]) == (400, "code_invalid")
    bind = await client.request("PUT", "/admin/bindings/alice", headers=admin,
                                body='{"user_id": "u\\ud800"}')
    assert (bind.code, bind.json["error"]) == (400, "invalid_user_id")
    bound = await client.request("GET", "/admin/bindings/alice", headers=admin)
    assert bound.json["bound"] is False
    introspect = await client.request("POST", "/introspect", headers=admin,
                                      body='{"token": "t\\ud800"}')
    assert (introspect.code, introspect.json) == (200, {"active": False})
    introspect = await client.request("POST", "/introspect", headers=admin,
                                      body='{"token": 1e999}')
    assert (introspect.code, introspect.json["error"]) == (400, "missing_token")
    assert_quiet_log(caplog)


@pytest.mark.parametrize("backend", ["mongodb"], indirect=True)
@pytest.mark.gen_test(timeout=20)
async def test_a_store_error_is_logged_by_type_and_code_never_with_the_document(
        store, caplog):
    """Below the service's checks (data the server itself refuses): the ERROR line names the
    error and its code, never the document. FerretDB 1.x refuses nested arrays (real MongoDB
    keeps them, and then there is no error to log)."""
    caplog.set_level(logging.DEBUG)
    from tests.test_store_contract import identity, record
    session, _, _ = await store.login(identity(), record(), None, 1_800_000_000.0)
    try:
        await store.replace_data(session.id, {"a": [[MARKER]]})
    except StoreUnavailable:
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors and all("replace_data" in line for line in errors)
        assert any("WriteError" in line and "code 2" in line for line in errors), errors
    else:
        assert store.atomic_updates, "FerretDB took a nested array"
    # Any logger's lines: the driver's DEBUG command log, which prints whole documents, is
    # held off by the store whatever the level asked for.
    for line in caplog.records:
        assert MARKER not in line.getMessage(), line.name
