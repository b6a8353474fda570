"""``store.driver``: which MongoDB driver the store, ``serve`` and the CLI commands use.

Both drivers run the whole store contract (tests/test_store_contract.py, ``mongodb-pymongo``),
the MongoDB-specific tests, the outage tests and the CLI commands (purge, revoke, migrate);
here: the key itself.
"""

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient

from server.app import _make_store
from server.config import ConfigError
from tests.conftest import make_config

URI = "mongodb://127.0.0.1:9/"  # never connected to: no I/O until the store is used


def test_motor_is_the_default_and_pymongo_is_chosen_by_the_key(io_loop):
    chosen = {}
    for driver in (None, "motor", "pymongo"):
        store = {"backend": "mongodb", "mongodb_uri": URI}
        if driver:
            store["driver"] = driver
        config = make_config(store=store)
        made = _make_store(config)
        chosen[driver] = (config.store.driver, type(made._client))
        io_loop.run_sync(made.close)
    assert chosen == {None: ("motor", AsyncIOMotorClient),
                      "motor": ("motor", AsyncIOMotorClient),
                      "pymongo": ("pymongo", AsyncMongoClient)}


@pytest.mark.parametrize("value", ["mongo", "PyMongo", "", 1])
def test_an_unknown_driver_is_refused_naming_the_key_and_the_choices(value):
    with pytest.raises(ConfigError) as info:
        make_config(store={"backend": "mongodb", "mongodb_uri": URI, "driver": value})
    message = str(info.value)
    assert "store.driver" in message and "motor" in message and "pymongo" in message
