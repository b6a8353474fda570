"""Fixtures for a test module that runs only on the MongoDB store, through each driver.

Imported by name into such a module (as conftest imports ``log_guard``'s fixture): they
override conftest's ``backend`` and ``driver`` there, so that every test of the module runs
once through motor and once through PyMongo's AsyncMongoClient (``store.driver``).
"""

import pytest


@pytest.fixture
def backend():
    return "mongodb"


@pytest.fixture(params=["motor", "pymongo"])
def driver(request):
    """Every test of the module runs through each driver (store.driver)."""
    return request.param
