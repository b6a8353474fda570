"""docs/openapi.yaml is true: schemathesis sends generated requests to a real server and checks
every answer against the document it serves at /openapi.json.

A real ``minisession serve`` (dev login, memory store, admin API on with a key); each case is
sent with a fresh live session and the admin key, so the authenticated paths are reached. The
number of examples per operation is ``MINISESSION_SCHEMATHESIS_EXAMPLES`` (default 8, so that
the run stays well under a minute); raise it for a longer run.
"""

import os
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.processes import ServerProcess, server_config

ADMIN_KEY = "openapi-test-admin-key-0123456789abcdef"
EXAMPLES = int(os.environ.get("MINISESSION_SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = server_config(admin={"enabled": True, "api_keys": [ADMIN_KEY]})
    with ServerProcess(config, tmp_path_factory.mktemp("openapi")).start() as process:
        process.wait_ready()
        yield process


@pytest.fixture(scope="module")
def served_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("served_schema")


#: Operations after which the caller's session may be gone: the next case logs in again.
ENDS_SESSION = {"DELETE /session", "POST /session/rotate", "DELETE /admin/sessions",
                "DELETE /admin/apps/{app}/sessions", "DELETE /admin/sessions/{handle}"}


class Caller:
    """Sends the cases over one kept-alive connection, with a live session and the admin key."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.token = None

    def headers(self) -> dict:
        if self.token is None:
            answer = self.http.post(self.url + "/login", json={"code": "dev:openapi-user"},
                                    timeout=10)
            assert answer.status_code == 200, answer.text
            self.token = answer.json()["session_id"]
        return {"X-Session": self.token, "Authorization": f"Bearer {ADMIN_KEY}"}

    def send(self, case) -> None:
        try:
            case.call_and_validate(session=self.http, headers=self.headers(), checks=CHECKS)
        finally:
            if case.operation.label in ENDS_SESSION:
                self.token = None


@pytest.fixture(scope="module")
def caller(server):
    caller = Caller(server.url)
    yield caller
    caller.http.close()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document(case, caller):
    caller.send(case)


def test_served_document_is_the_yaml_one(server):
    answer = httpx.get(server.url + "/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert answer.json() == yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    assert answer.json()["openapi"] == "3.1.0"


def test_every_route_is_documented():
    from server.app import ROUTES

    documented = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    # "/admin/apps/([^/]+)/sessions" -> "/admin/apps/{}/sessions", the same for the document.
    import re

    routes = {re.sub(r"\([^)]*\)", "{}", pattern).replace("\\.", ".") for pattern, _ in ROUTES}
    paths = {re.sub(r"\{[^}]*\}", "{}", path) for path in documented}
    assert routes == paths
