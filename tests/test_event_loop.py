"""``server.event_loop``: ``minisession serve`` on the standard asyncio loop or on uvloop,
one process or pre-forked workers, serving and stopping the same; ``"auto"`` (the default)
on uvloop when it is installed, else on asyncio's loop."""

import asyncio
import re
import sys
import uuid

import httpx
import pymongo
import pytest

from devtools.processes import ServerProcess, server_config, wait_for
from server.config import ConfigError
from server.event_loop import run
from tests.conftest import make_config


def _serves_and_stops(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        login = client.post("/login", json={"code": "dev:lena"})
        assert login.status_code == 200, login.text
        session = client.get("/session", headers={"X-Session": login.json()["session_id"]})
        assert session.status_code == 200 and session.json()["openid"] == "lena"
    assert server.stop() == 0
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_serve_runs_on_the_configured_event_loop(tmp_path, event_loop):
    server = ServerProcess(server_config(server={"event_loop": event_loop}), tmp_path).start()
    try:
        server.wait_ready()
        assert re.findall(r"event loop: (\w+)", server.log()) == [event_loop]
        _serves_and_stops(server)
    finally:
        server.stop()


def test_every_worker_runs_on_uvloop(tmp_path, mongodb_uri):
    database = f"minisession_loop_{uuid.uuid4().hex[:12]}"
    config = server_config(mongodb_uri, database,
                           server={"workers": 2, "event_loop": "uvloop"})
    server = ServerProcess(config, tmp_path).start()
    try:
        server.wait_ready()
        log = wait_for(lambda: server.log().count("listening on") == 2 and server.log(), 10,
                       what="two listening lines")
        assert re.findall(r"event loop: (\w+)", log) == ["uvloop", "uvloop"]
        _serves_and_stops(server)
    finally:
        server.stop()
        with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)


def test_the_default_runs_on_uvloop_where_it_is_installed(tmp_path):
    assert make_config().server.event_loop == "auto"
    server = ServerProcess(server_config(), tmp_path).start()  # no event_loop key at all
    try:
        server.wait_ready()
        assert re.findall(r"event loop: (\w+)", server.log()) == ["uvloop"]
        _serves_and_stops(server)
    finally:
        server.stop()


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch):
    assert run(_loop_module(), "auto") == "uvloop"
    # None in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert run(_loop_module(), "auto") == "asyncio"
    assert make_config(server={"event_loop": "auto"}).server.event_loop == "auto"
    with pytest.raises(ConfigError) as info:
        make_config(server={"event_loop": "uvloop"})
    assert "server.event_loop" in str(info.value) and "not installed" in str(info.value)


def test_other_loops_are_refused():
    with pytest.raises(ConfigError) as info:
        make_config(server={"event_loop": "trio"})
    assert "server.event_loop" in str(info.value) and "uvloop" in str(info.value)
