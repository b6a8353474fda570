"""MongoDB goes away and comes back, under traffic, with real processes.

FerretDB (file-backed, SQLite) is killed with SIGKILL while a minisession process serves steady
traffic, then started again on the same port and data. minisession is never restarted.
"""

import asyncio
import socket
import time
from dataclasses import dataclass

import httpx
import pytest

from server.config import ConfigError
from tests.conftest import make_config
from devtools.ferretdb import FerretDB, ensure_binary
from devtools.processes import ServerProcess, server_config, wait_for

STORE_TIMEOUT = 1.0
# Slack on top of the store timeout for one answer: process scheduling on a busy 2-core CI box.
MARGIN = 1.5
# Service must be back this soon after MongoDB is.
RESUME_WITHIN = 5.0
# FerretDB only: a write in flight when the database dies leaves its lock document behind.
# The process that held it remembers it and releases it on its first write once the
# database is back, so no extra wait is allowed for it.
ORPHANED_LOCK_EXPIRY = 0.0
ACTIVE, IDLE = 6, 2  # sessions used through the outage, sessions left alone


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    kind: str          # "check", "write", "healthz", "readyz"
    started: float     # monotonic seconds
    ended: float
    status: int
    error: str | None
    retry_after: str | None
    session: int = -1
    value: int = -1    # for writes: the value written

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def fetch(client, kind, method, path, token=None, body=None, **extra) -> Answer:
    started = time.monotonic()
    headers = {"X-Session": token} if token else {}
    response = await client.request(method, path, headers=headers, json=body)
    error = response.json().get("error") if response.status_code >= 400 else None
    return Answer(kind, started, time.monotonic(), response.status_code, error,
                  response.headers.get("Retry-After"), **extra)


@pytest.fixture
def ferretdb(tmp_path):
    server = FerretDB(ensure_binary(), tmp_path / "ferretdb")
    yield server
    server.stop()


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
def test_mongodb_killed_under_traffic_then_back_without_restarting_minisession(
        ferretdb, tmp_path, driver):
    ferretdb.start()
    config = server_config(ferretdb.uri, store={"timeout": STORE_TIMEOUT,
                                                "require_at_start": True, "driver": driver})
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()
        pid = server.pid
        answers, timeline, data_before = asyncio.run(
            _outage_under_traffic(server.url, ferretdb))
        assert server.running() and server.pid == pid  # served throughout, never restarted
        assert server.stop() == 0
        assert "Traceback" not in server.log()

    kill, restart, back = timeline["kill"], timeline["restart"], timeline["back"]
    traffic = [a for a in answers if a.kind in ("check", "write")]
    # Nothing hangs: every answer, around the transitions too, within the store timeout + slack.
    slowest = max(traffic, key=lambda a: a.seconds)
    assert slowest.seconds < STORE_TIMEOUT + MARGIN, slowest

    # While it is down: 503 store_unavailable for everything that needs the store.
    down = [a for a in answers if a.started > kill and a.ended < restart]
    down_traffic = [a for a in down if a.kind in ("check", "write")]
    assert len(down_traffic) >= ACTIVE, "too few requests during the outage to judge"
    assert {(a.status, a.error, a.retry_after) for a in down_traffic} == {
        (503, "store_unavailable", "2")}
    assert {a.status for a in down if a.kind == "healthz"} == {200}
    assert {(a.status, a.error) for a in down if a.kind == "readyz"} == {
        (503, "store_unavailable")}

    # Once it is back: service resumes by itself (reads of every session within seconds;
    # writes too, except on a session whose lock the crash orphaned), and stays up.
    for number in range(ACTIVE):
        first_read = min(a.ended for a in traffic if a.started > back and a.status == 200
                         and a.kind == "check" and a.session == number)
        assert first_read - back < RESUME_WITHIN
        first_write = min(a.ended for a in traffic if a.started > back and a.status == 200
                          and a.kind == "write" and a.session == number)
        assert first_write - back < RESUME_WITHIN + ORPHANED_LOCK_EXPIRY
    settled = [a for a in answers if a.started > timeline["all_writing"]]
    assert len(settled) >= 3 * ACTIVE
    failures = [a for a in settled if a.status != 200]
    assert failures == [], failures

    # Nothing lost or half-written: each session keeps its data from before the outage, and
    # every write acknowledged with 200 is there (a write answered 503 may or may not be).
    final = timeline["final_data"]
    for number, before in data_before.items():
        assert final[number]["before"] == before["before"]
        acknowledged = [a.value for a in answers
                        if a.kind == "write" and a.session == number and a.status == 200]
        attempted = [a.value for a in answers if a.kind == "write" and a.session == number]
        if acknowledged:
            assert max(acknowledged) <= final[number]["n"] <= max(attempted)


async def _outage_under_traffic(url, ferretdb):
    """Sessions, steady traffic, kill -9, 3 s down, restart, recovery; all answers recorded."""
    answers: list[Answer] = []
    timeline: dict = {}
    sessions = ACTIVE + IDLE
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        tokens = []
        for number in range(sessions):
            login = await client.post("/login", json={"code": f"dev:outage-{number}"})
            token = login.json()["session_id"]
            await client.patch("/session/data", headers={"X-Session": token},
                               json={"before": number})
            tokens.append(token)
        data_before = {n: {"before": n} for n in range(sessions)}

        stop = asyncio.Event()

        async def user(number):
            # The first ACTIVE sessions are used through the outage; the others sit idle.
            token, written = tokens[number], 0
            while not stop.is_set():
                answers.append(await fetch(client, "check", "GET", "/session", token,
                                           session=number))
                written += 1
                answers.append(await fetch(client, "write", "PATCH", "/session/data", token,
                                           {"n": written}, session=number, value=written))
                await asyncio.sleep(0.02)

        async def probes():
            while not stop.is_set():
                answers.append(await fetch(client, "healthz", "GET", "/healthz"))
                answers.append(await fetch(client, "readyz", "GET", "/readyz"))
                await asyncio.sleep(0.1)

        workers = [asyncio.ensure_future(user(n)) for n in range(ACTIVE)]
        workers.append(asyncio.ensure_future(probes()))
        try:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(ferretdb.kill)
            timeline["kill"] = time.monotonic()
            await asyncio.sleep(3.0)
            timeline["restart"] = time.monotonic()
            await asyncio.to_thread(ferretdb.start)  # same port, same data directory
            timeline["back"] = time.monotonic()
            deadline = time.monotonic() + RESUME_WITHIN + ORPHANED_LOCK_EXPIRY + 1
            while time.monotonic() < deadline and len({
                    a.session for a in answers if a.kind == "write" and a.status == 200
                    and a.started > timeline["back"]}) < ACTIVE:
                await asyncio.sleep(0.05)
            timeline["all_writing"] = time.monotonic()
            await asyncio.sleep(1.5)  # keep going: it must stay up
        finally:
            stop.set()
            await asyncio.gather(*workers)

        final = {}
        for number, token in enumerate(tokens):
            response = await client.get("/session/data", headers={"X-Session": token})
            assert response.status_code == 200, response.text
            final[number] = response.json()
        timeline["final_data"] = final
    return answers, timeline, data_before


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
def test_started_while_mongodb_is_down_then_ready_once_it_appears(tmp_path, driver):
    ferretdb = FerretDB(ensure_binary(), tmp_path / "ferretdb", port=free_port())
    config = server_config(ferretdb.uri, store={"timeout": 1.0, "driver": driver})
    try:
        with ServerProcess(config, tmp_path).start() as server:
            assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
            response = httpx.get(server.url + "/readyz", timeout=5)
            assert (response.status_code, response.json()["error"]) == (503, "store_unavailable")

            ferretdb.start()
            appeared = time.monotonic()
            # Nobody probes: the server notices by itself (it retries every second).
            wait_for(lambda: "session store reachable: ready" in server.log(), 5,
                     what="ready logged")
            assert time.monotonic() - appeared < 5
            assert server.ready()
            response = httpx.post(server.url + "/login", json={"code": "dev:early"}, timeout=5)
            assert response.status_code == 200
            token = response.json()["session_id"]
            response = httpx.get(server.url + "/session", headers={"X-Session": token},
                                 timeout=5)
            assert response.status_code == 200
            assert server.stop() == 0
            assert "Traceback" not in server.log()
    finally:
        ferretdb.stop()


def test_require_at_start_refuses_to_start_while_mongodb_is_down(tmp_path):
    config = server_config(f"mongodb://127.0.0.1:{free_port()}/",
                           store={"timeout": 0.5, "require_at_start": True})
    server = ServerProcess(config, tmp_path)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with 1") as failure:
        server.start()
    assert time.monotonic() - started < 10
    message = str(failure.value)
    assert "store.require_at_start = true" in message and "not starting" in message
    assert "Traceback" not in message and "listening" not in message


def test_require_at_start_must_be_a_boolean():
    assert make_config(store={"require_at_start": True}).store.require_at_start is True
    assert make_config().store.require_at_start is False
    with pytest.raises(ConfigError, match=r"store\.require_at_start"):
        make_config(store={"require_at_start": "yes"})
