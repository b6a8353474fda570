"""Shared fixtures: a real MongoDB-compatible server, both stores, an in-process server.

MongoDB tests talk to a real server over the network: ``MONGODB_URI`` when set, otherwise a
FerretDB (SQLite backend) built and started here on a free loopback port. If neither can be had
the MongoDB tests fail; they are never skipped.
"""

import json
import os
import tempfile
import uuid
from pathlib import Path

import pymongo
import pytest
import tornado.httpserver
import tornado.testing

from server.app import Minisession
from server.clock import FakeClock
from server.config import parse_config
from server.fakes import make_app
from server.fakes.wechat import FakeWeChat
from server.http.httpserver import make_http_server
from server.stores.memory import MemoryStore
from devtools.ferretdb import FerretDB, ensure_binary
from server.stores.mongodb import MongoStore, mongodb_client
from tests.log_guard import no_secrets_in_logs  # noqa: F401  (autouse: every test is guarded)

SECRET = "test-signing-secret-0123456789abcdef-not-for-production"
#: Seals session_keys in MongoDB-backed test configs, which must name their key (issue 11).
ENCRYPTION_KEY = "bTZ1Qz9kV3hMcTJ2Tjh5UjRzVzdlSzBwWjNnSDZqRmE="
BACKENDS = ["memory", "mongodb"]
#: Run a test once on each store backend.
on_both_stores = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
#: The store contract and the MongoDB-specific tests run the MongoDB store with each driver:
#: "mongodb" through motor (the default), "mongodb-pymongo" through AsyncMongoClient.
STORE_VARIANTS = ["memory", "mongodb", "mongodb-pymongo"]
on_every_store = pytest.mark.parametrize("backend", STORE_VARIANTS, indirect=True)
WECHAT_APPID = "wx-test-appid"
WECHAT_SECRET = "test-secret-0123456789abcdef"


def make_config(**sections):
    """A validated Config for tests: dev login, memory store, our test secret, plus overrides
    (with store.backend = "mongodb", our test encryption key unless one is given)."""
    data = {"session": {"secrets": [SECRET]}, "login": {"provider": "dev"}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    if data.get("store", {}).get("backend") == "mongodb":
        data["store"].setdefault("encryption_keys", [ENCRYPTION_KEY])
    return parse_config(data, environ={}, source="<test>")


@pytest.fixture(scope="session")
def mongodb_uri():
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix="minisession-ferretdb-") as data:
        server = FerretDB(ensure_binary(), Path(data))
        server.start()
        try:
            yield server.uri
        finally:
            server.stop()


def open_store(backend: str, io_loop, request, read_batching: str = "on",
               driver: str = "motor") -> object:
    """A fresh, opened store of that backend; a MongoDB one in its own database, dropped after.

    MongoDB stores batch their reads by default here, which "auto" picks on MongoDB but not on
    FerretDB 1.x: the contract holds for the path real MongoDB users get (the servers run as
    processes keep "auto").
    """
    if backend == "memory":
        return MemoryStore()
    uri = request.getfixturevalue("mongodb_uri")
    database = f"minisession_test_{uuid.uuid4().hex[:12]}"
    store = MongoStore(mongodb_client(uri, 5.0, driver), database, timeout=5.0,
                       read_batching=read_batching)
    io_loop.run_sync(store.open)

    def tear_down():
        # The store closes its client (a server using it has already): drop with another.
        io_loop.run_sync(store.close)
        with pymongo.MongoClient(uri) as client:
            client.drop_database(database)

    request.addfinalizer(tear_down)
    return store


@pytest.fixture
def fake():
    """The fake WeChat's state: mint codes, count calls, move its clock."""
    return FakeWeChat(appid=WECHAT_APPID, secret=WECHAT_SECRET, clock=FakeClock())


def serve_fakes(io_loop, *fakes):
    """For a fixture to ``yield from``: ``fakes`` served on the test's IOLoop on one free
    loopback port, yielding its base URL, closed after the test."""
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(make_app(*fakes))
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}"
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=5)


def run_minisession(io_loop, config, **kwargs):
    """For a ``server`` fixture to ``yield from``: a started Minisession, stopped after."""
    instance = Minisession(config, **kwargs)
    io_loop.run_sync(instance.start)
    yield instance
    io_loop.run_sync(instance.stop)


@pytest.fixture
def api_base(io_loop, fake):
    """The fake WeChat served on the test's IOLoop, on a free loopback port."""
    yield from serve_fakes(io_loop, fake)


def wechat_config(api_base, timeout=5.0, **sections):
    """A test Config that logs in through the (fake) WeChat at ``api_base``."""
    return make_config(login={"provider": "wechat"},
                       wechat={"appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                               "api_base": api_base, "timeout": timeout}, **sections)


@pytest.fixture
def backend(request):
    """Which store the test uses: memory unless marked ``@on_both_stores``
    (``"mongodb"`` for both drivers of ``@on_every_store``)."""
    return getattr(request, "param", "memory").partition("-")[0]


@pytest.fixture
def driver(request):
    """The MongoDB driver of the test's store: "pymongo" for the ``mongodb-pymongo`` variant
    of ``@on_every_store`` (or a module's own ``driver`` fixture), otherwise "motor"."""
    callspec = getattr(request.node, "callspec", None)
    variant = callspec.params.get("backend", "") if callspec else ""
    return "pymongo" if variant == "mongodb-pymongo" else "motor"


@pytest.fixture
def store(backend, driver, io_loop, request):
    return open_store(backend, io_loop, request, driver=driver)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def config():
    """Override in a test module (or parametrize) to change the server's configuration."""
    return make_config()


@pytest.fixture
def server(config, store, clock, io_loop):
    yield from run_minisession(io_loop, config, clock=clock, store=store)


@pytest.fixture
def app(server):
    """pytest-tornado serves this application on a real loopback port (``http_server``)."""
    return server.application


@pytest.fixture
def http_server(request, io_loop, _unused_port, server, app):
    """pytest-tornado's fixture, but the HTTPServer ``minisession serve`` runs."""
    http, _ = make_http_server(app, server.config)
    http.add_socket(_unused_port[0])
    yield http
    http.stop()
    io_loop.run_sync(http.close_all_connections, timeout=request.config.option.async_test_timeout)


class Client:
    """Small helper over Tornado's HTTP client: never raises on HTTP errors, parses JSON."""

    def __init__(self, http_client, base_url):
        self._http = http_client
        self.base_url = base_url

    async def request(self, method, path, body=None, headers=None, json_body=None):
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        response = await self._http.fetch(
            self.base_url + path, method=method, body=body, headers=headers,
            raise_error=False, allow_nonstandard_methods=True, follow_redirects=False,
            request_timeout=20,
        )
        response.json = json.loads(response.body) if response.body else None
        return response

    async def login(self, code="dev:alice", **kwargs):
        return await self.request("POST", "/login", json_body={"code": code}, **kwargs)


@pytest.fixture
def client(server, http_client, base_url):
    # ``server`` is named so that pytest sees the whole chain (pytest-tornado's http_server
    # looks ``app`` up dynamically) and parametrizing ``backend`` or ``config`` reaches it.
    return Client(http_client, base_url)
