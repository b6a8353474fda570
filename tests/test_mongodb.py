"""MongoDB-specific behaviour: TTL index where the server has one, periodic purge where not."""

import logging
import os
import uuid

import pytest

from server.stores.mongodb import MongoStore
from tests.conftest import make_config

ON_FERRETDB = not os.environ.get("MONGODB_URI")


@pytest.fixture
def backend():
    return "mongodb"


@pytest.fixture
def config():
    return make_config(store={"backend": "mongodb", "mongodb_uri": "mongodb://unused/"})


@pytest.mark.gen_test(timeout=20)
async def test_expired_sessions_are_removed_by_ttl_or_by_the_purge(server, store, clock,
                                                                   caplog, io_loop):
    # FerretDB 1.x has no TTL indexes and no atomic updates; real MongoDB has both.
    assert store.needs_purge is ON_FERRETDB
    assert store.atomic_updates is not ON_FERRETDB
    session, _ = await server.service.login("dev:alice")
    clock.advance(7201)
    caplog.set_level(logging.INFO, logger="minisession")
    await server._maintain()
    if ON_FERRETDB:
        assert await store.get(session.record.id) is None
        assert "purged 1 expired sessions" in caplog.text
    else:
        # MongoDB's TTL monitor runs every 60 s on its own clock; reads still refuse it.
        assert (await store.get(session.record.id)) is not None


def test_the_ttl_fallback_is_announced(config, mongodb_uri, clock, io_loop, caplog):
    from server.app import Minisession

    # A store not opened yet: the store announces the fallback when it creates its indexes.
    store = MongoStore(mongodb_uri, f"minisession_test_{uuid.uuid4().hex[:12]}", timeout=5.0)
    caplog.set_level(logging.WARNING, logger="minisession")
    instance = Minisession(config, clock=clock, store=store)
    try:
        io_loop.run_sync(instance.start)
        io_loop.run_sync(store.drop)
    finally:
        io_loop.run_sync(instance.stop)
    announced = "does not implement TTL indexes" in caplog.text
    assert announced is ON_FERRETDB
