"""``server.event_loop``: ``minisession serve`` on the standard asyncio loop or on uvloop,
one process or pre-forked workers, serving and stopping the same."""

import re
import uuid

import httpx
import pymongo
import pytest

from devtools.processes import ServerProcess, server_config, wait_for
from server.config import ConfigError
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


def test_asyncio_is_the_default_and_other_loops_are_refused():
    assert make_config().server.event_loop == "asyncio"
    with pytest.raises(ConfigError) as info:
        make_config(server={"event_loop": "trio"})
    assert "server.event_loop" in str(info.value) and "uvloop" in str(info.value)


def test_uvloop_when_not_installed_is_refused_with_the_install_command(monkeypatch):
    # uvloop is installed here; the config's check is what a machine without it runs into.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    with pytest.raises(ConfigError) as info:
        make_config(server={"event_loop": "uvloop"})
    assert "pip install 'minisession[uvloop]'" in str(info.value)
