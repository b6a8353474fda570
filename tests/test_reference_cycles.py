"""Requests leave no reference cycles behind.

Objects caught in a cycle are not freed when their request ends but by the garbage collector,
whose full passes walk every object of the process (33-45 ms each on the benchmark machine):
that is what made the memory store's p99 three times its median (docs/performance.md). A
bare Tornado handler leaves none, so neither should ours, on the paths every request takes.

The client is a blocking socket in a worker thread, so that it adds no garbage of its own to
the server's loop; what is counted is what the collector finds after the requests, with
``gc.DEBUG_SAVEALL`` keeping it for inspection. On the MongoDB store (both drivers) too: its
reads here are batched (``store.read_batching = "on"``), the path MongoDB users get.
"""

import asyncio
import collections
import gc
import json
import threading

import pytest

from tests.conftest import on_every_store
from tests.rawhttp import connect, read_response, request, send

pytestmark = pytest.mark.usefixtures("http_server")


def _exchange_all(port, requests):
    """Send each request on one kept-alive connection, in turn; the answers' statuses."""
    statuses = []
    with connect(port) as sock:
        for data in requests:
            send(sock, data)
            statuses.append(read_response(sock).status)
    return statuses


async def _cyclic_garbage(port, requests, rounds=20):
    """Type names of what the collector had to free after ``rounds`` of ``requests``."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _exchange_all, port, requests)  # warm-up: caches, pools
    await _earlier_clients_gone()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        statuses = await loop.run_in_executor(None, _exchange_all, port, requests * rounds)
        await asyncio.sleep(0.05)  # let every request finish on the loop
        gc.collect()
        found = collections.Counter(type(obj).__qualname__ for obj in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return statuses, found


async def _earlier_clients_gone():
    """Wait for the driver threads of clients that earlier tests closed to end: a closed
    synchronous MongoClient's monitors notice within their 0.5 s poll and leave their
    executors to the collector, which would count them here."""
    def driver_threads():
        return sum(thread.name.startswith("pymongo") for thread in threading.enumerate())

    count = driver_threads()
    for _ in range(10):
        await asyncio.sleep(0.6)
        count, before = driver_threads(), count
        if count == before:
            return


def _login(port):
    body = json.dumps({"code": "dev:alice"}).encode()
    with connect(port) as sock:
        send(sock, request("POST", "/login", [("Content-Type", "application/json")], body))
        return read_response(sock).json["session_id"]


@on_every_store
@pytest.mark.gen_test(timeout=30)
async def test_session_reads_and_writes_leave_no_cyclic_garbage(http_port):
    session_id = await asyncio.get_running_loop().run_in_executor(None, _login, http_port)
    cookie = [("Cookie", f"sessionid={session_id}")]
    data = json.dumps({"cart": 3}).encode()
    requests = [
        request("GET", "/session", cookie),
        request("GET", "/session", [("X-Session", session_id)]),
        request("GET", "/auth", cookie),
        request("POST", "/session/data", cookie + [("Content-Type", "application/json")], data),
        request("GET", "/session/data", cookie),
    ]
    statuses, found = await _cyclic_garbage(http_port, requests)
    assert statuses == [200] * len(statuses)
    assert not found, f"objects left for the garbage collector: {dict(found.most_common(10))}"


@pytest.mark.gen_test(timeout=30)
async def test_refused_requests_leave_no_cyclic_garbage(http_port):
    requests = [
        request("GET", "/session"),  # no session: 401
        request("GET", "/session", [("Cookie", "sessionid=forged.value")]),  # 401
        request("GET", "/no/such/path"),  # 404
    ]
    statuses, found = await _cyclic_garbage(http_port, requests)
    assert statuses == [401, 401, 404] * (len(statuses) // 3)
    assert not found, f"objects left for the garbage collector: {dict(found.most_common(10))}"


@on_every_store
@pytest.mark.gen_test(timeout=30)
async def test_logins_leave_no_cyclic_garbage(http_port):
    body = json.dumps({"code": "dev:alice"}).encode()
    requests = [request("POST", "/login", [("Content-Type", "application/json")], body)]
    statuses, found = await _cyclic_garbage(http_port, requests, rounds=10)
    assert statuses == [200] * len(statuses)
    assert not found, f"objects left for the garbage collector: {dict(found.most_common(10))}"
