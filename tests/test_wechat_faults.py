"""WeChat misbehaving, seen through a real minisession process: time bounds, no retries, no leaks.

tests/test_wechat.py and tests/test_http.py check which answer each fake WeChat failure maps
to; here the same failures come in batches, concurrently, and we check what a long-running
server must also get right: every login answers within the configured timeout, a code is
never sent twice, WeChat vanishing and coming back needs no restart, and no socket or task
is left behind (file descriptors of the process; asyncio tasks and the httpx pool in-process).
"""

import asyncio
import os
import signal
import time

import httpx
import pytest

from server.platforms import AppCredentials
from server.platforms.wechat import WeChatLoginProvider
from tests.conftest import WECHAT_APPID, WECHAT_SECRET
from devtools.processes import FakePlatformsProcess, ServerProcess, server_config, wait_for

WECHAT_TIMEOUT = 0.5
MARGIN = 1.0  # scheduling slack on top of the timeout on a busy 2-core machine

# (code, status, error) for a batch of faulty logins; "{n}" makes each code fresh.
FAULTS = [
    ("slow:2:tim:{n}", 504, "platform_timeout"),
    ("http500:{n}", 502, "platform_unavailable"),
    ("garbage:{n}", 502, "platform_unavailable"),
    ("nojson-object:{n}", 502, "platform_unavailable"),
    ("err:-1:{n}", 503, "platform_busy"),
    ("err:40163:{n}", 400, "code_invalid"),
    ("err:45011:{n}", 429, "platform_rate_limited"),
    ("err:40125:{n}", 502, "platform_misconfigured"),
    ("slow:0.2:sue:{n}", 200, None),  # slow, but within the timeout: a normal login
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wechat-faults")
    fake = FakePlatformsProcess(workdir).start()
    config = server_config(wechat_base=fake.url, wechat={"timeout": WECHAT_TIMEOUT})
    server = ServerProcess(config, workdir)
    try:
        server.start().wait_ready()
        yield server, fake
        assert server.stop() == 0
        assert "Traceback" not in server.log()
    finally:
        server.stop()
        fake.stop()


async def logins(url: str, codes: list[str]) -> list[tuple[str, int, str | None, float]]:
    """Log in with every code at once: (code, status, error, seconds) for each."""
    async def one(client, code):
        started = time.monotonic()
        response = await client.post("/login", json={"code": code})
        error = response.json().get("error") if response.status_code != 200 else None
        return code, response.status_code, error, time.monotonic() - started

    # A client closed afterwards, so that its sockets do not count against the server.
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await asyncio.gather(*(one(client, code) for code in codes))


def test_faulty_logins_answer_within_the_timeout_and_leak_no_socket(stack):
    server, _ = stack
    # Warm up: the pools reach their working size before the baseline is taken.
    asyncio.run(logins(server.url, [f"user:warm:{n}" for n in range(len(FAULTS))]))
    time.sleep(0.3)
    baseline = server.open_fds()

    rounds = 3
    for number in range(rounds):
        codes = [code.format(n=f"{number}-{i}") for i, (code, _, _) in enumerate(FAULTS)]
        results = asyncio.run(logins(server.url, codes))
        for (code, status, error, seconds), (_, expected_status, expected_error) in zip(
                results, FAULTS, strict=True):
            assert (status, error) == (expected_status, expected_error), code
            assert seconds < WECHAT_TIMEOUT + MARGIN, (code, seconds)
        # Back to the baseline once the clients are gone (a leak grows with every round).
        wait_for(lambda: server.open_fds() <= baseline + 1, 5,
                 what=f"open fds back near {baseline} after round {number + 1}")


def test_a_code_is_never_sent_twice_even_after_a_timeout(stack):
    server, fake = stack
    before = fake.calls()
    started = time.monotonic()
    response = httpx.post(server.url + "/login", json={"code": "slow:1.5:ted"}, timeout=10)
    assert (response.status_code, response.json()["error"]) == (504, "platform_timeout")
    assert time.monotonic() - started < WECHAT_TIMEOUT + MARGIN
    time.sleep(1.5)  # past the moment WeChat would have answered: a retry would show by now
    assert fake.calls() - before == 1
    # The client's next step, a fresh code, works.
    response = httpx.post(server.url + "/login", json={"code": "user:ted"}, timeout=10)
    assert response.status_code == 200


def test_wechat_going_away_and_coming_back_needs_no_restart(tmp_path):
    fake = FakePlatformsProcess(tmp_path).start()
    config = server_config(wechat_base=fake.url, wechat={"timeout": WECHAT_TIMEOUT})
    try:
        with ServerProcess(config, tmp_path).start() as server:
            server.wait_ready()
            # Kept-alive connections to WeChat exist before it dies.
            results = asyncio.run(logins(server.url, [f"user:uma:{n}" for n in range(4)]))
            assert {status for _, status, _, _ in results} == {200}
            baseline = server.open_fds()

            port = fake.port
            fake.signal(signal.SIGKILL)
            fake.wait(5)
            for attempt in range(3):  # refused, with or without a stale pooled connection
                results = asyncio.run(logins(server.url, [f"user:uma:x{attempt}{n}"
                                                          for n in range(4)]))
                for code, status, error, seconds in results:
                    assert (status, error) == (502, "platform_unavailable"), code
                    assert seconds < WECHAT_TIMEOUT + MARGIN

            fake.start(port=port)  # the same address: nothing changes on our side
            results = asyncio.run(logins(server.url, ["user:uma:back"]))
            assert results[0][1] == 200
            wait_for(lambda: server.open_fds() <= baseline + 1, 5, what="fds back to baseline")
            assert server.stop() == 0
            assert "Traceback" not in server.log()
    finally:
        fake.stop()


def _pool_connections(provider: WeChatLoginProvider) -> int:
    # httpx keeps its connection pool private; its transport's pool is httpcore's.
    return len(provider._client._transport._pool.connections)


def _open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.mark.gen_test(timeout=30)
async def test_faulty_exchanges_leave_no_task_or_connection_behind(api_base, fake):
    provider = WeChatLoginProvider(AppCredentials(
        name="default", platform="wechat", appid=WECHAT_APPID, secret=WECHAT_SECRET,
        api_base=api_base, timeout=0.2))
    try:
        width = 12
        await asyncio.gather(*(provider.exchange(f"user:vic:{n}") for n in range(width)))
        tasks, connections, fds = len(asyncio.all_tasks()), _pool_connections(provider), \
            _open_fds()
        assert connections <= width

        kinds = ["slow:0.6:vic", "http500", "garbage", "nojson-object", "err:-1", "err:40029",
                 "user:vic"]
        for number in range(3):
            await asyncio.gather(
                *(provider.exchange(f"{kinds[n % len(kinds)]}:{number}-{n}")
                  for n in range(width)),
                return_exceptions=True)
            # The fake's own slow handlers run in this loop too: let them end first.
            await asyncio.sleep(0.7)
            assert len(asyncio.all_tasks()) <= tasks
            assert _pool_connections(provider) <= connections
            assert _open_fds() <= fds
    finally:
        await provider.close()
    assert _pool_connections(provider) == 0
