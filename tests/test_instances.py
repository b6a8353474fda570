"""Two real minisession processes behind one (imaginary) load balancer, sharing one MongoDB.

Whatever instance a request lands on, the client must see one consistent session: the same
id, the same data, the same logout. The instances log in through one fake WeChat process.
"""

import asyncio
import itertools
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import pymongo
import pytest

from devtools.processes import (
    FakePlatformsProcess,
    ServerProcess,
    new_encryption_key,
    server_config,
)


class Cluster:
    def __init__(self, servers, fake, database):
        self.a, self.b = servers
        self.servers = servers
        self.fake = fake
        self.database = database


@pytest.fixture(scope="module")
def cluster(mongodb_uri, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("instances")
    database = f"minisession_instances_{uuid.uuid4().hex[:12]}"
    key = new_encryption_key()  # shared: each instance must open what the other sealed
    fake = FakePlatformsProcess(workdir).start()
    servers = []
    try:
        for name in ("a", "b"):
            # touch_after = 0: every authenticated request slides the expiry (a store write),
            # so concurrent requests on both instances race on the same session document.
            config = server_config(mongodb_uri, database, wechat_base=fake.url,
                                   encryption_key=key, session={"touch_after": 0})
            servers.append(ServerProcess(config, workdir, name).start())
        for server in servers:
            server.wait_ready()
        yield Cluster(servers, fake, database)
        for server in servers:
            assert server.stop() == 0, server.log()[-3000:]
            assert "Traceback" not in server.log()
    finally:
        for server in servers:
            server.stop()
        fake.stop()
        with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)


def call(server, method, path, token=None, body=None):
    headers = {"X-Session": token} if token else {}
    return httpx.request(method, server.url + path, headers=headers, json=body, timeout=10)


def login(server, code):
    response = call(server, "POST", "/login", body={"code": code})
    assert response.status_code == 200, response.text
    return response.json()["session_id"]


def live_sessions(mongodb_uri, database, openid) -> int:
    """Sessions of ``openid`` that have not expired, straight from the database."""
    with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
        return client[database].sessions.count_documents(
            {"openid": openid, "expires_at": {"$gt": datetime.now(UTC)}})


def test_a_session_issued_by_one_instance_is_honoured_and_ended_by_the_other(cluster):
    a, b = cluster.a, cluster.b
    token = login(a, f"user:ann-{uuid.uuid4().hex[:8]}")
    response = call(b, "GET", "/session", token)
    assert response.status_code == 200 and response.json()["openid"].startswith("ann-")

    assert call(a, "PATCH", "/session/data", token, {"cart": [1, 2]}).status_code == 200
    assert call(b, "GET", "/session/data", token).json() == {"cart": [1, 2]}
    assert call(b, "PATCH", "/session/data", token, {"cart": None, "step": 3}).status_code == 200
    assert call(a, "GET", "/session/data", token).json() == {"step": 3}

    # A logout on A is seen by B on its very next request: no cache between them.
    assert call(a, "DELETE", "/session", token).status_code == 204
    for server in (b, a):
        response = call(server, "GET", "/session", token)
        assert (response.status_code, response.json()["error"]) == (401, "invalid_session")


def test_concurrent_logins_spread_over_both_instances_get_one_session(cluster, mongodb_uri):
    openid = f"carol-{uuid.uuid4().hex[:8]}"
    calls_before = cluster.fake.calls()
    count = 16

    async def burst():
        # One connection per login, as separate mini-program requests would arrive.
        async def one(number):
            server = cluster.servers[number % 2]
            async with httpx.AsyncClient(timeout=10) as client:
                return await client.post(server.url + "/login",
                                         json={"code": f"user:{openid}:{number}"})

        return await asyncio.gather(*(one(n) for n in range(count)))

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses]
    ids = {r.json()["session_id"] for r in responses}
    assert len(ids) == 1
    assert sum(not r.json()["reused"] for r in responses) == 1
    assert cluster.fake.calls() - calls_before == count  # each code exchanged once, no retries
    assert live_sessions(mongodb_uri, cluster.database, openid) == 1
    token = ids.pop()
    for server in cluster.servers:
        assert call(server, "GET", "/session", token).status_code == 200


def test_concurrent_data_patches_on_both_instances_lose_no_key_nor_move_expiry_back(
        cluster, mongodb_uri):
    openid = f"dan-{uuid.uuid4().hex[:8]}"
    token = login(cluster.a, f"user:{openid}")

    # Watch the stored expiry while the instances write: it may only ever move forward.
    seen: list[datetime] = []
    stop = threading.Event()

    def watch():
        with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
            sessions = client[cluster.database].sessions
            while not stop.is_set():
                doc = sessions.find_one({"openid": openid}, {"expires_at": 1})
                if doc is not None:
                    seen.append(doc["expires_at"])
                time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    waves, per_wave = 3, 12
    try:
        async def patches():
            answers = []
            async with httpx.AsyncClient(timeout=10) as client:
                for wave in range(waves):
                    await asyncio.sleep(0.05)  # let the clock move between slides
                    answers += await asyncio.gather(*(
                        client.patch(cluster.servers[n % 2].url + "/session/data",
                                     headers={"X-Session": token},
                                     json={f"k{wave}_{n}": n})
                        for n in range(per_wave)))
            return answers

        results = asyncio.run(patches())
    finally:
        stop.set()
        watcher.join(10)

    statuses = [r.status_code for r in results]
    assert statuses == [200] * (waves * per_wave), [r.text for r in results]
    expected = {f"k{w}_{n}": n for w in range(waves) for n in range(per_wave)}
    for server in cluster.servers:
        assert call(server, "GET", "/session/data", token).json() == expected
    assert len(seen) > 10, "the watcher saw too little to judge"
    assert all(later >= earlier for earlier, later in itertools.pairwise(seen)), \
        "the stored expiry moved backwards"
    assert seen[-1] > seen[0]  # and it did slide
