"""An unreachable MongoDB: bounded 503s, a failing readiness probe, a live process."""

import socket
import time

import pytest

from server.stores.mongodb import MongoStore, mongodb_client
from tests.conftest import make_config


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def config():
    return make_config(store={"backend": "mongodb", "timeout": 0.5,
                              "mongodb_uri": f"mongodb://127.0.0.1:{_closed_port()}/"})


@pytest.fixture(params=["motor", "pymongo"])
def store(config, request):
    # Never opened successfully: the server must start anyway and report not ready.
    return MongoStore(mongodb_client(config.store.mongodb_uri, config.store.timeout,
                                     request.param), "minisession_down", config.store.timeout)


@pytest.mark.gen_test(timeout=20)
async def test_requests_answer_503_quickly_while_the_store_is_down(client):
    assert (await client.request("GET", "/healthz")).code == 200
    started = time.monotonic()
    response = await client.request("GET", "/readyz")
    assert (response.code, response.json["error"]) == (503, "store_unavailable")
    response = await client.login("dev:alice")
    assert (response.code, response.json["error"]) == (503, "store_unavailable")
    assert response.headers["Retry-After"]
    assert response.headers.get_list("Set-Cookie") == []
    # Bounded by the configured 0.5 s store timeout (a few waits of it at most), never a hang.
    assert time.monotonic() - started < 5
