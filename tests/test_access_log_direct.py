"""The access line written past logging's machinery (server.log_format.DirectLog) is the line
logging writes, byte for byte, and only taken when nothing else would see the record.

``minisession serve`` writes each access line straight to its stderr handler (about 4 % of the
instructions of a GET /session); a reader of the log, a log shipper parsing the JSON, or a
filter an embedding program adds must not be able to tell.
"""

import io
import logging
import time

import httpx
import pytest

from devtools.processes import ServerProcess, server_config
from server.log_format import TEXT_FORMAT, DirectLog, JsonFormatter, log_with_fields

FIELDS = {"method": "GET", "path": "/session", "status": 200, "duration_ms": 0.4, "app": "lab"}
ARGS = ("%d %s %s %.1fms%s", 200, "GET", "/session", 0.4, " app=lab")


def isolated_logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO,
                                                           logging.StreamHandler]:
    """A logger outside the tree (the test's log guard sits on the root), one handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.Logger("minisession.access", logging.INFO)
    logger.addHandler(handler)
    return logger, stream, handler


@pytest.mark.parametrize("formatter", [logging.Formatter(TEXT_FORMAT), JsonFormatter()],
                         ids=["text", "json"])
@pytest.mark.parametrize("now", [1767225600.0, 1767225600.999, 1767225601.0405])
def test_the_direct_line_is_the_line_logging_writes(monkeypatch, formatter, now):
    monkeypatch.setattr(time, "time", lambda: now)
    logger, stream, handler = isolated_logger(formatter)
    direct = DirectLog(handler)
    assert direct.sole_destination(logger, logging.INFO)

    logger.log(logging.INFO, *ARGS, extra=FIELDS)  # logging's own way
    direct.write(logger.name, logging.INFO, ARGS[0] % ARGS[1:], FIELDS)
    direct.write(logger.name, logging.WARNING, ARGS[0] % ARGS[1:], {"status": 503})
    logger.log(logging.WARNING, ARGS[0], *ARGS[1:], extra={"status": 503})

    by_logging, by_direct, direct_warning, logging_warning = stream.getvalue().splitlines()
    assert by_direct == by_logging
    assert direct_warning == logging_warning


def test_anything_else_on_the_way_gets_the_record_through_logging(monkeypatch):
    logger, stream, handler = isolated_logger(logging.Formatter(TEXT_FORMAT))
    direct = DirectLog(handler)
    monkeypatch.setattr("server.log_format._direct", direct)
    seen = []

    class Redact(logging.Filter):
        def filter(self, record):
            seen.append(record.getMessage())
            record.msg, record.args = "redacted", ()
            return True

    # A filter on the logger or on the handler, a second handler, a level above the line's:
    # each must see (or drop) the record as it would without the shortcut.
    logger.addFilter(Redact())
    log_with_fields(logger, logging.INFO, FIELDS, *ARGS)
    assert seen == ["200 GET /session 0.4ms app=lab"]
    assert stream.getvalue().endswith("minisession.access: redacted\n")

    logger.filters.clear()
    handler.addFilter(Redact())
    log_with_fields(logger, logging.INFO, FIELDS, *ARGS)
    assert len(seen) == 2 and stream.getvalue().count("redacted") == 2

    handler.filters.clear()
    other = io.StringIO()
    logger.addHandler(logging.StreamHandler(other))
    log_with_fields(logger, logging.INFO, FIELDS, *ARGS)
    assert other.getvalue() == "200 GET /session 0.4ms app=lab\n"

    logger.handlers[1:] = []
    handler.setLevel(logging.WARNING)
    log_with_fields(logger, logging.INFO, FIELDS, *ARGS)
    assert stream.getvalue().count("\n") == 3  # the INFO line went nowhere
    handler.setLevel(logging.NOTSET)
    log_with_fields(logger, logging.INFO, FIELDS, *ARGS)
    assert stream.getvalue().count("\n") == 4 and stream.getvalue().endswith(" app=lab\n")


def test_the_direct_path_takes_no_record_the_guard_would_miss(monkeypatch, caplog):
    # In a process set up by setup_logging, a capture handler added later (pytest's caplog,
    # this suite's log guard) receives every access line.
    logger, stream, handler = isolated_logger(logging.Formatter(TEXT_FORMAT))
    monkeypatch.setattr("server.log_format._direct", DirectLog(handler))
    real = logging.getLogger("minisession.access")
    caplog.set_level(logging.INFO, logger="minisession.access")
    log_with_fields(real, logging.INFO, FIELDS, *ARGS)
    assert [r.getMessage() for r in caplog.records] == ["200 GET /session 0.4ms app=lab"]
    assert stream.getvalue() == ""


def test_a_served_text_log_has_the_formatters_access_lines(tmp_path):
    config = server_config(log={"level": "info"})
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            token = client.post("/login", json={"code": "dev:direct"}).json()["session_id"]
            for _ in range(3):
                assert client.get("/session", headers={"X-Session": token}).status_code == 200
    lines = [line for line in server.log().splitlines()
             if " minisession.access: " in line and " GET /session " in line]
    assert len(lines) == 3, lines
    for line in lines:
        stamp = line[:23]
        level, name, status, method, route, duration, app = line[24:].split(" ")
        time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")
        assert stamp[19] == "," and stamp[20:].isdigit()
        assert (level, name, status, method, route) == (
            "INFO", "minisession.access:", "200", "GET", "/session")
        assert duration.endswith("ms") and app == "app=default"
