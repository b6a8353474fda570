"""Two real instances on one FerretDB, configured with what `minisession keygen` printed, as
issue 11 item 13 asks a site to deploy them: they agree on one session for a user's concurrent
logins, honour each other's ids, and still do after a restart."""

import asyncio
import uuid

import httpx
import pymongo

from devtools.processes import FakePlatformsProcess, ServerProcess, server_config
from tests.test_cli import keygen
from tests.test_instances import call, live_sessions


def test_instances_with_keygen_secrets_agree_on_one_session_across_a_restart(mongodb_uri,
                                                                             tmp_path):
    values, _ = keygen()
    database = f"minisession_keygen_{uuid.uuid4().hex[:12]}"
    fake = FakePlatformsProcess(tmp_path).start()
    servers = []
    try:
        for name in ("a", "b"):
            config = server_config(mongodb_uri, database, wechat_base=fake.url,
                                   encryption_key=values["store"]["encryption_keys"][0],
                                   # A wide reuse window: the restart must not outlast it.
                                   session={"secrets": values["session"]["secrets"],
                                            "login_reuse_window": 600})
            servers.append(ServerProcess(config, tmp_path, name).start().wait_ready())
        a, b = servers
        openid = f"kai-{uuid.uuid4().hex[:8]}"
        count = 20

        async def burst():
            async def one(number):
                async with httpx.AsyncClient(timeout=10) as client:
                    return await client.post(servers[number % 2].url + "/login",
                                             json={"code": f"user:{openid}:{number}"})
            return await asyncio.gather(*(one(n) for n in range(count)))

        responses = asyncio.run(burst())
        assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses]
        ids = {r.json()["session_id"] for r in responses}
        assert len(ids) == 1  # 20 concurrent logins over two instances: one session
        assert live_sessions(mongodb_uri, database, openid) == 1
        token = ids.pop()
        assert call(b, "PUT", "/session/data", token, {"step": 1}).status_code == 200
        assert call(a, "GET", "/session/data", token).json() == {"step": 1}

        # A restarts: it signs and seals as before, so the id still works on it, and a login
        # in the reuse window opens the recent id B sealed and hands it out again.
        assert a.stop() == 0
        a.start().wait_ready()
        assert call(a, "GET", "/session", token).status_code == 200
        again = call(a, "POST", "/login", body={"code": f"user:{openid}:again"})
        assert again.status_code == 200 and again.json()["session_id"] == token
        for server in servers:
            assert "Traceback" not in server.log()
    finally:
        for server in servers:
            server.stop()
        fake.stop()
        with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)
