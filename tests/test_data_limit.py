"""``session.data_max_bytes`` holds whatever the concurrency.

Each merge is judged against the data as stored when it is written, not as its request read
it: 40 parallel merges of 15 kB (different keys) against the default 16 kB limit store one of
them, and the others get 413 ``data_too_large``.
"""

import asyncio
import json

import pytest

from tests.conftest import on_both_stores

LIMIT = 16384  # the default session.data_max_bytes
WRITERS = 40
VALUE = "x" * 15000


def _size(data) -> int:
    # As the limit measures it: compact JSON in UTF-8.
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


async def _stored(client, headers) -> dict:
    response = await client.request("GET", "/session/data", headers=headers)
    assert response.code == 200
    return response.json


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_parallel_merges_cannot_exceed_the_limit(client):
    headers = {"X-Session": (await client.login()).json["session_id"]}
    responses = await asyncio.gather(*[
        client.request("PATCH", "/session/data", headers=headers, json_body={f"k{i}": VALUE})
        for i in range(WRITERS)])
    stored = await _stored(client, headers)
    print(f"\nstored bytes after {WRITERS} parallel merges of 15 kB: {_size(stored)} "
          f"(limit {LIMIT})")
    assert _size(stored) <= LIMIT
    accepted = [r for r in responses if r.code == 200]
    assert len(accepted) == len(stored) == 1
    for response in responses:
        assert response.code == 200 or (response.code, response.json["error"]) == (
            413, "data_too_large"), response.body


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_parallel_replaces_and_merges_cannot_exceed_the_limit(client):
    headers = {"X-Session": (await client.login()).json["session_id"]}
    requests = []
    for i in range(WRITERS // 2):
        requests.append(client.request("PUT", "/session/data", headers=headers,
                                       json_body={f"put{i}": VALUE}))
        requests.append(client.request("PATCH", "/session/data", headers=headers,
                                       json_body={f"patch{i}": VALUE}))
    responses = await asyncio.gather(*requests)
    assert {r.code for r in responses} <= {200, 413}
    stored = await _stored(client, headers)
    assert _size(stored) <= LIMIT and len(stored) == 1


@on_both_stores
@pytest.mark.gen_test(timeout=60)
async def test_parallel_small_merges_of_different_keys_all_land(client):
    """Judging size on the stored data must not cost concurrent merges their keys."""
    headers = {"X-Session": (await client.login()).json["session_id"]}
    responses = await asyncio.gather(*[
        client.request("PATCH", "/session/data", headers=headers, json_body={f"k{i}": "v" * 300})
        for i in range(WRITERS)])
    assert [r.code for r in responses] == [200] * WRITERS
    assert await _stored(client, headers) == {f"k{i}": "v" * 300 for i in range(WRITERS)}
