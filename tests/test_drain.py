"""SIGTERM: stop accepting, finish what was accepted (within the grace period), close, exit 0.

Real ``minisession serve`` processes; slow logins come from the fake WeChat's
``slow:<seconds>:<openid>`` codes, so requests are provably in flight when the signal lands.
"""

import asyncio
import re
import signal
import socket
import time

import httpx
import pytest

from devtools.processes import FakePlatformsProcess, ServerProcess, server_config

MARGIN = 3.0  # seconds of slack for process start/exit on a busy 2-core machine
UNCLEAN = ("Traceback", "Task was destroyed", "Unclosed", "ERROR", "Exception ignored")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakePlatformsProcess(tmp_path_factory.mktemp("drain-fake")).start() as process:
        yield process


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def assert_clean(log: str) -> None:
    for marker in UNCLEAN:
        assert marker not in log, f"{marker!r} in the server log:\n{log[-3000:]}"


async def slow_logins(url: str, codes: list[str]) -> list[httpx.Response]:
    async def one(code):
        async with httpx.AsyncClient(timeout=15) as client:  # a connection each
            return await client.post(url + "/login", json={"code": code})

    return await asyncio.gather(*(one(code) for code in codes))


def test_sigterm_finishes_accepted_requests_and_refuses_new_connections(
        fake, mongodb_uri, tmp_path):
    grace, count, delay = 8.0, 6, 1.5
    config = server_config(mongodb_uri, "minisession_drain", wechat_base=fake.url,
                           server={"shutdown_grace": grace})
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()
        port = server.port

        async def scenario():
            before = await asyncio.to_thread(fake.calls)
            codes = [f"slow:{delay}:drain-{n}" for n in range(count)]
            pending = asyncio.ensure_future(slow_logins(server.url, codes))
            # Accepted: minisession has read every request and is waiting on WeChat for it.
            while await asyncio.to_thread(fake.calls) - before < count:
                await asyncio.sleep(0.02)
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            while not await asyncio.to_thread(refused, port):
                assert time.monotonic() - signalled < 1.0, "still accepting connections"
                await asyncio.sleep(0.02)
            responses = await pending
            answered = time.monotonic()
            refused_after = await asyncio.to_thread(refused, port)
            return signalled, answered, responses, refused_after

        signalled, answered, responses, refused_after = asyncio.run(scenario())
        assert [r.status_code for r in responses] == [200] * count
        assert sorted(r.json()["openid"] for r in responses) == [
            f"drain-{n}" for n in range(count)]
        # Answered during the drain: each tells its keep-alive client to go elsewhere.
        assert {r.headers.get("Connection") for r in responses} == {"close"}
        assert refused_after

        assert server.wait(grace + MARGIN) == 0
        exited = time.monotonic()
        assert answered <= exited < signalled + grace + MARGIN
        log = server.log()
        assert re.search(rf"shutting down: .*{count} requests in flight", log), log[-2000:]
        assert re.search(r"stopped: \d+ requests accepted since start, 0 cut off", log)
        assert_clean(log)


def test_the_grace_period_bounds_the_shutdown(fake, tmp_path):
    grace = 0.5
    config = server_config(wechat_base=fake.url,
                           server={"shutdown_grace": grace}, wechat={"timeout": 10.0})
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()

        async def scenario():
            before = await asyncio.to_thread(fake.calls)
            pending = asyncio.ensure_future(slow_logins(
                server.url, ["slow:5:late-1", "slow:5:late-2"]))
            while await asyncio.to_thread(fake.calls) - before < 2:
                await asyncio.sleep(0.02)
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            code = await asyncio.to_thread(server.wait, grace + MARGIN)
            exited = time.monotonic()
            outcomes = await asyncio.gather(pending, return_exceptions=True)
            return code, exited - signalled, outcomes

        code, seconds, outcomes = asyncio.run(scenario())
        assert code == 0
        assert seconds < grace + MARGIN
        # Those two were cut off: their clients see the connection close, not an answer.
        assert isinstance(outcomes[0], httpx.TransportError)
        log = server.log()
        assert "2 requests still in flight after the grace period" in log
        assert re.search(r"stopped: \d+ requests accepted since start, 2 cut off", log)
        assert "Traceback" not in log and "Task was destroyed" not in log


def test_sigterm_under_load_fails_no_accepted_request(fake, mongodb_uri, tmp_path):
    config = server_config(mongodb_uri, "minisession_drain_load", wechat_base=fake.url,
                           server={"shutdown_grace": 8.0})
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()
        successes, failures = asyncio.run(_load_then_sigterm(server))
        assert server.wait(8.0 + MARGIN) == 0
        log = server.log()

    assert_clean(log)
    accepted = int(re.search(r"stopped: (\d+) requests accepted since start, 0 cut off",
                             log).group(1))
    in_flight = int(re.search(r"shutting down: .* (\d+) requests in flight", log).group(1))
    answered = re.findall(r"minisession\.access: (\d+) (\w+) (/\S*)", log)
    load = [status for status, _, path in answered if path in ("/login", "/session")]
    # The server answered every request it accepted, each with a success...
    assert accepted == len(answered)
    assert set(load) == {"200"}
    # ...and every one of those answers reached its client: none of the accepted ones failed.
    assert successes == len(load)
    # The signal landed on real work: requests in flight, and plenty served before.
    assert in_flight >= 1 and successes > 50, (in_flight, successes, failures)
    # What failed was never accepted: refused connections, and kept-alive connections the
    # server closed as idle (a request written into one just then is reset, unread). No
    # timeouts: nothing hung.
    assert set(failures) <= {"ConnectError", "RemoteProtocolError", "ReadError"}, failures


async def _load_then_sigterm(server) -> tuple[int, list[str]]:
    successes, failures = 0, []

    async def worker(number, client):
        nonlocal successes
        n = 0
        while True:
            n += 1
            try:
                # Slow logins (WeChat answers after 1 s), so that most workers are waiting on
                # one when the signal lands, even if this process is briefly starved of CPU.
                login = await client.post("/login", json={"code": f"slow:1:load-{number}:{n}"})
                assert login.status_code == 200, login.text
                successes += 1
                token = login.json()["session_id"]
                for _ in range(3):
                    check = await client.get("/session", headers={"X-Session": token})
                    assert check.status_code == 200, check.text
                    successes += 1
            except httpx.TransportError as exc:
                failures.append(type(exc).__name__)
                return

    async def terminate():
        deadline = time.monotonic() + 10
        while successes < 60 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        server.signal(signal.SIGTERM)

    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        await asyncio.wait_for(
            asyncio.gather(terminate(), *(worker(n, client) for n in range(16))), 20)
    return successes, failures
