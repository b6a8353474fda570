"""``POST /session/data`` merges, for mini-programs whose ``wx.request`` cannot send PATCH.

``wx.request`` (and the Taro/uni/fly wrappers on it) sends only OPTIONS, GET, HEAD, POST, PUT,
DELETE, TRACE and CONNECT; on devices PATCH fails with "method invalid". Without a POST merge
a mini-program must GET then PUT and lose concurrent updates.
"""

import asyncio

import pytest

from tests.conftest import make_config, on_both_stores


async def login(client) -> dict:
    return {"X-Session": (await client.login("dev:alice")).json["session_id"]}


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_post_merges_like_patch(client):
    h = await login(client)
    await client.request("PUT", "/session/data", headers=h,
                         json_body={"cart": [1, 2], "step": "pay", "n": 1})
    merged = await client.request("POST", "/session/data", headers=h,
                                  json_body={"step": "done", "n": None, "extra": {"x": "中"}})
    assert merged.code == 200, merged.body
    assert merged.json == {"cart": [1, 2], "step": "done", "extra": {"x": "中"}}
    assert (await client.request("GET", "/session/data", headers=h)).json == merged.json
    # PATCH stays, with the same meaning.
    patched = await client.request("PATCH", "/session/data", headers=h, json_body={"cart": None})
    assert patched.json == {"step": "done", "extra": {"x": "中"}}


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_concurrent_post_merges_of_different_keys_lose_nothing(client):
    h = await login(client)
    await client.request("PUT", "/session/data", headers=h, json_body={"kept": True})
    answers = await asyncio.gather(*(
        client.request("POST", "/session/data", headers=h, json_body={f"k{i}": i})
        for i in range(20)))
    assert [a.code for a in answers] == [200] * 20
    data = (await client.request("GET", "/session/data", headers=h)).json
    assert data == {"kept": True, **{f"k{i}": i for i in range(20)}}


@pytest.mark.parametrize("config", [make_config(session={"data_max_bytes": 100})])
@pytest.mark.gen_test(timeout=10)
async def test_post_follows_the_merge_rules(client):
    h = await login(client)
    await client.request("PUT", "/session/data", headers=h, json_body={"a": "x" * 50})
    for body, status, error in (('{"b": "' + "y" * 80 + '"}', 413, "data_too_large"),
                                ("[1]", 400, "invalid_json"), ('{"a.b": 1}', 400, "invalid_data")):
        response = await client.request("POST", "/session/data", headers=h, body=body)
        assert (response.code, response.json["error"]) == (status, error), body
    assert (await client.request("GET", "/session/data", headers=h)).json == {"a": "x" * 50}
    response = await client.request("POST", "/session/data", body="{}")
    assert (response.code, response.json["error"]) == (401, "no_session")
