"""MongoDB-specific behaviour: TTL index where the server has one, periodic purge where not;
session reads batched into one query where the server finds them by index."""

import asyncio
import logging
import uuid

import pymongo
import pytest
from pymongo import monitoring

from server.errors import StoreUnavailable
from server.stores.base import SessionRecord, UserLogin
from server.stores.mongodb import MongoStore, mongodb_client
from tests.conftest import make_config, open_store
from tests.mongodb_only import backend, driver  # noqa: F401  (each test on both drivers)
from devtools.ferretdb import FerretDB, ensure_binary

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def on_ferretdb(mongodb_uri) -> bool:
    """Whether the server under test is FerretDB, asked as the store asks it (``buildInfo``),
    whatever started it (conftest's FerretDB or ``MONGODB_URI``)."""
    with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=10_000) as client:
        return "ferretdbVersion" in client.admin.command("buildInfo")


@pytest.fixture
def config():
    return make_config(store={"backend": "mongodb", "mongodb_uri": "mongodb://unused/"})


@pytest.mark.gen_test(timeout=20)
async def test_expired_sessions_are_removed_by_ttl_or_by_the_purge(server, store, clock,
                                                                   caplog, io_loop,
                                                                   on_ferretdb):
    # FerretDB 1.x has no TTL indexes and no atomic updates; real MongoDB has both.
    assert store.needs_purge is on_ferretdb
    assert store.atomic_updates is not on_ferretdb
    session, _ = await server.service.login(None, "dev:alice")
    clock.advance(7201)
    caplog.set_level(logging.INFO, logger="minisession")
    await server._maintain()
    if on_ferretdb:
        assert await store.get(session.record.id) is None
        assert "purged 1 expired sessions" in caplog.text
    else:
        # MongoDB's TTL monitor runs every 60 s on its own clock; reads still refuse it.
        assert (await store.get(session.record.id)) is not None


def test_the_ttl_fallback_is_announced(config, mongodb_uri, clock, io_loop, caplog,
                                       on_ferretdb, driver):
    from server.app import Minisession

    # A store not opened yet: the store announces the fallback when it creates its indexes.
    store = MongoStore(mongodb_client(mongodb_uri, 5.0, driver),
                       f"minisession_test_{uuid.uuid4().hex[:12]}", timeout=5.0)
    caplog.set_level(logging.WARNING, logger="minisession")
    instance = Minisession(config, clock=clock, store=store)
    try:
        io_loop.run_sync(instance.start)
        io_loop.run_sync(store.drop)
    finally:
        io_loop.run_sync(instance.stop)
    announced = "does not implement TTL indexes" in caplog.text
    assert announced is on_ferretdb


# ------------------------------------------------------------------ batched session reads

class FindCounter(monitoring.CommandListener):
    """Counts the `find` commands sent to each database (every client made after import)."""

    def __init__(self):
        self.finds: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds[event.database_name] = self.finds.get(event.database_name, 0) + 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


FINDS = FindCounter()
monitoring.register(FINDS)  # at import, before any test makes a client


def stored_record(i: int) -> SessionRecord:
    return SessionRecord(id=f"key-{i}", app="default", openid=f"user-{i}", unionid=None, created_at=NOW,
                         touched_at=NOW, expires_at=NOW + 7200, data={"n": i})


@pytest.fixture
def batching_store(request, io_loop, mode, driver):
    """A MongoStore in a database of its own, with ``store.read_batching = mode``."""
    return open_store("mongodb", io_loop, request, read_batching=mode, driver=driver)


@pytest.mark.parametrize("mode", ["on", "off", "auto"])
@pytest.mark.gen_test(timeout=30)
async def test_concurrent_reads_are_one_query_where_batching_applies(batching_store, mode,
                                                                      on_ferretdb):
    store = batching_store
    for i in range(40):
        await store.login(UserLogin("default", f"user-{i}", None, "sealed-key", "sealed-id"),
                          stored_record(i), None, NOW)
    before = FINDS.finds.get(store._database_name, 0)
    keys = [f"key-{i}" for i in range(40)] + ["missing-1", "missing-2", "key-7"]
    records = await asyncio.gather(*(store.get(key) for key in keys))
    # Each read gets its own session (or None), whichever way they were sent.
    assert records == [stored_record(i) for i in range(40)] + [None, None, stored_record(7)]
    finds = FINDS.finds[store._database_name] - before
    # "auto" batches except on FerretDB 1.x, which scans the collection for an $in of ids.
    batched = mode == "on" or (mode == "auto" and not on_ferretdb)
    assert finds == (1 if batched else len(keys))


@pytest.mark.parametrize("mode", ["on"])
@pytest.mark.gen_test(timeout=30)
async def test_a_batched_read_after_a_delete_never_sees_the_session(batching_store):
    store = batching_store
    for i in range(20):
        await store.login(UserLogin("default", f"user-{i}", None, "sealed-key", "sealed-id"),
                          stored_record(i), None, NOW)

    async def end_then_read(i: int):
        await store.delete(f"key-{i}")
        return await store.get(f"key-{i}")

    # Deletes and reads of other sessions interleave in the same batches.
    results = await asyncio.gather(*(end_then_read(i) if i % 2 else store.get(f"key-{i}")
                                     for i in range(20)))
    assert results == [None if i % 2 else stored_record(i) for i in range(20)]


def test_a_batched_read_fails_with_store_unavailable_when_the_store_dies(tmp_path, io_loop,
                                                                        driver):
    # A server of its own, killed under the store: every read of the batch answers 503.
    ferretdb = FerretDB(ensure_binary(), tmp_path / "ferretdb")
    ferretdb.start()
    store = MongoStore(mongodb_client(ferretdb.uri, 1.0, driver), "batched_reads", 1.0, "on")
    try:
        io_loop.run_sync(store.open)
        io_loop.run_sync(lambda: store.login(UserLogin("default", "user-1", None, "k", "i"),
                                             stored_record(1), None, NOW))
        assert io_loop.run_sync(lambda: store.get("key-1")) == stored_record(1)
        ferretdb.kill()

        async def read_many():
            return await asyncio.gather(*(store.get(f"key-{i}") for i in range(5)),
                                        return_exceptions=True)
        results = io_loop.run_sync(read_many, timeout=10)
    finally:
        io_loop.run_sync(store.close)
        ferretdb.stop()
    assert [type(r) for r in results] == [StoreUnavailable] * 5
