"""``[log] format = "json"`` (issue 16): one JSON object per line, and the log guards read it.

A real ``minisession serve`` writes the log; every line must parse, access lines must carry
method, path (the route, never the client's path), status and duration. Both guards (the
process log scan in devtools/processes.py and tests/log_guard.py) must find a secret however
JSON escapes it.
"""

import json
import logging
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from devtools.processes import ServerProcess, server_config
from server.log_format import JsonFormatter
from tests import log_guard

ADMIN_KEY = "admin-key-for-json-log-test-0123456789abcdef"
MARKER = "zq-json-log-marker-7d31"
#: Secrets JSON would escape: a quote, a backslash, a control character, non-ASCII letters.
ESCAPED_SECRETS = [
    'signing-secret-with-"quotes"-0123456789abcdef',
    "signing-secret-with-back\\slash-0123456789abcdef",
    "signing-secret-with-\ttab-0123456789abcdef",
    "signing-secret-sécret-ключ-秘密-0123456789abcdef",
]


def json_line(message: str, *args, **extra) -> str:
    record = logging.LogRecord("minisession", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return JsonFormatter().format(record)


def test_a_real_server_logs_one_json_object_per_line_with_access_fields(tmp_path):
    config = server_config(log={"level": "debug", "format": "json"},
                           admin={"enabled": True, "api_keys": [ADMIN_KEY]})
    started = datetime.now(timezone.utc)
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            token = client.post("/login", json={"code": "dev:jason"}).json()["session_id"]
            assert client.get("/session", headers={"X-Session": token}).status_code == 200
            assert client.get(f"/session/{token}").status_code == 404
            assert client.get(f"/admin/bindings/{MARKER}",
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
            assert client.post("/login", json={"code": "not-a-dev-code"}).status_code == 400
    lines = server.log().splitlines()
    records = [json.loads(line) for line in lines]  # every line, or this raises
    assert all(isinstance(r, dict) and {"time", "level", "logger", "message"} <= r.keys()
               for r in records), lines
    for record in records:
        time = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        assert time.utcoffset() == timedelta(0) and record["time"].endswith("Z")
        assert started - timedelta(seconds=5) <= time <= datetime.now(timezone.utc)
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    assert any(r["logger"] == "minisession" and "listening on" in r["message"] for r in records)

    access = [(r["method"], r["path"], r["status"]) for r in records
              if r["logger"] == "minisession.access"]
    assert access == [("GET", "/readyz", 200)] * (len(access) - 5) + [
        ("POST", "/login", 200), ("GET", "/session", 200), ("GET", "(no route)", 404),
        ("GET", "/admin/bindings/{}", 200), ("POST", "/login", 400)], access
    durations = [r["duration_ms"] for r in records if r["logger"] == "minisession.access"]
    assert all(isinstance(d, int | float) and 0 <= d < 10_000 for d in durations), durations
    log = server.log()
    assert token not in log and MARKER not in log and "jason" not in log


@pytest.mark.parametrize("secret", ESCAPED_SECRETS)
def test_the_process_log_scan_finds_a_secret_that_json_escaped(tmp_path, secret):
    server = ServerProcess(server_config(session={"secrets": [secret]}), tmp_path)
    line = json_line("configured with %s", secret)
    assert secret not in line  # escaped: a plain search of the file would miss it
    server.log_path.write_text(json_line("starting") + "\n" + line + "\n")
    with pytest.raises(AssertionError, match=r"logged \d+ secret"):
        server.assert_no_secrets_logged()


def test_the_process_log_scan_finds_a_token_in_a_json_access_field(tmp_path):
    server = ServerProcess(server_config(), tmp_path)
    token = "A" * 32 + "." + "b" * 22
    server.log_path.write_text(json_line("200 GET", path=f"/session/{token}") + "\n")
    with pytest.raises(AssertionError, match=r"logged \d+ secret"):
        server.assert_no_secrets_logged()


@pytest.mark.parametrize("secret", ESCAPED_SECRETS[:1])
def test_the_log_guard_sees_what_the_json_format_writes(secret):
    """tests/log_guard.py must see the access fields a JSON line carries besides the message
    (an ``extra=`` path, say), not only the message the text format writes."""
    capture = log_guard._Capture()
    logger = logging.getLogger("minisession.access")
    logger.addHandler(capture)
    try:
        logger.info("200 GET route", extra={"path": f"/session/{secret}", "status": 200})
    finally:
        logger.removeHandler(capture)
    assert len(capture.lines) == 1 and secret in capture.lines[0]


def test_an_unknown_log_format_is_a_clear_configuration_error():
    from server.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"log\.format.*json"):
        parse_config({"log": {"format": "yaml"}}, environ={}, source="<test>")
    assert parse_config({"login": {"provider": "dev"}}, environ={},
                        source="<test>").log.format == "text"
