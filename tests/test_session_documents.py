"""What a session costs the MongoDB server to find: its stored document.

FerretDB 1.x (SQLite) finds a session by ``_id`` by reading the rows of the collection in turn,
each row's whole document; every stored byte costs on every request (bench/ferretdb_cost.py
measures it). A session stores no field without a value.
"""

import pymongo
import pytest

from server.stores.base import UserLogin
from tests.test_store_contract import NOW, record
from tests.mongodb_only import backend, driver  # noqa: F401  (each test on both drivers)


@pytest.mark.gen_test(timeout=20)
async def test_a_session_document_stores_no_field_without_a_value(store, mongodb_uri):
    session = record("nobody")  # no unionid, no binding, no client address or agent
    await store.login(UserLogin("default", "nobody", None, "k", "i"), session, None, NOW)
    with pymongo.MongoClient(mongodb_uri) as client:
        stored = client[store._database_name]["sessions"].find_one({"_id": session.id})
    assert None not in stored.values(), stored
    assert {"unionid", "user_id", "client_ip", "user_agent"}.isdisjoint(stored)
    # Read back, the missing fields are the record's empty values.
    assert await store.get(session.id) == session
    listed = await store.list_sessions(NOW, app="default", openid="nobody")
    assert [s.id for s in listed] == [session.id]
