"""``server.workers = 2``: pre-forked processes sharing one port, supervised by one parent."""

import os
import re
import signal
import time
import uuid

import httpx
import pymongo
import pytest

from devtools.processes import ServerProcess, server_config, wait_for


def children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return {int(child) for child in listing.read().split()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def database(mongodb_uri):
    name = f"minisession_workers_{uuid.uuid4().hex[:12]}"
    yield name
    with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)


def test_two_workers_serve_one_port_and_a_dead_one_is_replaced(mongodb_uri, database, tmp_path):
    server = ServerProcess(server_config(mongodb_uri, database, server={"workers": 2}),
                           tmp_path).start()
    try:
        server.wait_ready()
        workers = wait_for(lambda: len(children(server.pid)) == 2 and children(server.pid),
                           10, what="two workers")
        listening = set(re.findall(r"listening on http://127\.0\.0\.1:\d+ .*pid (\d+)",
                                   wait_for(lambda: server.log().count("listening on") == 2
                                            and server.log(), 10, what="two listening lines")))
        assert {int(pid) for pid in listening} == workers
        # Sessions are shared through the store, whichever worker answers.
        with httpx.Client(base_url=server.url, timeout=10,
                          limits=httpx.Limits(max_keepalive_connections=0)) as client:
            token = client.post("/login", json={"code": "dev:wanda"}).json()["session_id"]
            for _ in range(40):  # a new connection each: the kernel spreads them
                assert client.get("/session", headers={"X-Session": token}).status_code == 200

            # A worker that dies is replaced, and the port keeps being served meanwhile.
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            replaced = wait_for(lambda: len(children(server.pid)) == 2
                                and victim not in children(server.pid)
                                and children(server.pid), 10, what="a replacement worker")
            assert len(replaced & workers) == 1
            for _ in range(20):
                assert client.get("/session", headers={"X-Session": token}).status_code == 200

        # SIGTERM to the parent drains and stops every worker; the parent exits 0.
        started = time.monotonic()
        assert server.stop(timeout=20) == 0, server.log()[-3000:]
        assert time.monotonic() - started < 15
        assert not any(alive(pid) for pid in replaced)
        assert "Traceback" not in server.log()
        assert server.log().count("stopped:") == 2  # each worker drained on its own
    finally:
        server.kill()
