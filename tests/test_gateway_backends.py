"""Unchanged backends behind the built-in proxy's server-side cookie jar (issue 14).

A real ``minisession serve`` (memory store, or FerretDB through the real driver) proxies
``/app/`` to an application that knows nothing of minisession: PHP's native sessions under
Debian's ``php -S`` (PHPSESSID, ``session_regenerate_id``), or Express with express-session
(signed ``connect.sid``, ``req.session.regenerate``). The client behaves as a mini-program:
``wx.request`` keeps no cookies, so it sends only ``X-Session``; the backend's own session lives
in minisession's jar.
"""

import asyncio
import contextlib
import json
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import pymongo
import pytest

from devtools.apt import apt_binary
from devtools.nginx import free_port
from devtools.node import node_binary, npm_ci
from devtools.processes import ROOT, ServerProcess, end_process, server_config, wait_for
from server.gateway.cookie_jar import jar_size

UPSTREAMS = ROOT / "tests" / "upstreams"
JAR_LIMIT = 4096


def _accepts(process: subprocess.Popen, port: int, log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the upstream exited with {process.returncode}:\n{log.read_text()}")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def upstream_process(command: list[str], cwd: Path, port: int, log: Path):
    """The backend as its users run it, on loopback; its base URL."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _accepts(process, port, log), 20, what="the upstream listening")
        yield f"http://127.0.0.1:{port}"
    finally:
        end_process(process)


@contextlib.contextmanager
def php_app(tmp_path: Path):
    php = apt_binary("php", ["php-cli"])
    sessions = tmp_path / "php-sessions"
    sessions.mkdir()
    port = free_port()
    with upstream_process([php, "-d", f"session.save_path={sessions}", "-S",
                           f"127.0.0.1:{port}", "router.php"], UPSTREAMS / "php", port,
                          tmp_path / "php.log") as url:
        yield url


@contextlib.contextmanager
def express_app(tmp_path: Path):
    package = UPSTREAMS / "express"
    npm_ci(package)
    port = free_port()
    with upstream_process([node_binary(), "server.js", str(port)], package, port,
                          tmp_path / "express.log") as url:
        yield url


BACKENDS = {"php": (php_app, "PHPSESSID"), "express": (express_app, "connect.sid")}


@contextlib.contextmanager
def gateway(tmp_path: Path, upstream: str, store: str, request, **route):
    """``minisession serve`` proxying /app/ to ``upstream`` with its cookie jar; yields the
    server and, with FerretDB, the sessions collection (else None)."""
    sessions, uri = None, None
    database = f"minisession_gateway_{uuid.uuid4().hex[:12]}"
    if store == "mongodb":
        uri = request.getfixturevalue("mongodb_uri")
    config = server_config(store_uri=uri, database=database, gateway={"routes": [
        {"prefix": "/app/", "upstream": upstream + "/", "auth": "required",
         "cookie_jar": True, "timeout": 10, **route}]})
    server = ServerProcess(config, tmp_path / "minisession").start()
    try:
        if uri:
            client = pymongo.MongoClient(uri)
            sessions = client[database]["sessions"]
        yield server, sessions
    finally:
        server.stop()
        if uri:
            client.drop_database(database)
            client.close()


def login(server, user: str) -> str:
    answer = httpx.post(f"{server.url}/login", json={"code": f"dev:{user}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["session_id"]


def call(server, token: str, path: str, **headers) -> dict:
    """A mini-program's request: X-Session only, no cookie jar of its own (a fresh client)."""
    answer = httpx.get(f"{server.url}{path}", headers={"X-Session": token, **headers},
                       timeout=10)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    # The backend's cookies stay with minisession: the client sees none of them.
    assert "set-cookie" not in answer.headers, answer.headers.get_list("set-cookie")
    return answer.json()


@pytest.mark.parametrize("store", ["memory", "mongodb"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_an_unchanged_backend_keeps_its_sessions_through_the_jar(tmp_path, request, backend,
                                                                  store):
    app, cookie_name = BACKENDS[backend]
    with app(tmp_path) as upstream, gateway(tmp_path, upstream, store, request) as (server, _):
        alice, bob = login(server, "alice"), login(server, "bob")
        backend_ids = set()

        # The counter persists across requests: the jar sends the backend's cookie back.
        counts = [call(server, alice, "/app/counter") for _ in range(3)]
        assert [c["count"] for c in counts] == [1, 2, 3]
        assert len({c["session"] for c in counts}) == 1
        backend_ids.add(counts[0]["session"])

        # Two users never share state.
        bobs = call(server, bob, "/app/counter")
        assert bobs["count"] == 1 and bobs["session"] != counts[0]["session"]
        backend_ids.add(bobs["session"])
        assert call(server, alice, "/app/counter")["count"] == 4

        # A client cannot plant a backend cookie: its own Cookie header does not go upstream
        # on a jar route, so alice sending bob's backend session id is still alice.
        planted = call(server, alice, "/app/whoami",
                       Cookie=f"{cookie_name}={bobs['session']}")
        assert planted["session"] == counts[0]["session"]
        assert bobs["session"] not in planted["cookie"]

        # The backend's login regenerates its session id: the new cookie replaces the old one
        # in the jar, and the old one is never sent again.
        logged_in = call(server, alice, "/app/login?user=alice")
        assert logged_in["previous"] == counts[0]["session"]
        assert logged_in["session"] != logged_in["previous"]
        backend_ids.add(logged_in["session"])
        me = call(server, alice, "/app/whoami")
        assert (me["user"], me["session"]) == ("alice", logged_in["session"])
        assert me["cookie"].count(f"{cookie_name}=") == 1
        assert logged_in["session"] in me["cookie"]
        assert logged_in["previous"] not in me["cookie"]
        assert call(server, bob, "/app/whoami")["user"] is None

        # Rotating minisession's id (after a privilege change) carries the jar along.
        rotated = httpx.post(f"{server.url}/session/rotate", headers={"X-Session": alice},
                             timeout=10)
        assert rotated.status_code == 200, rotated.text
        alice = rotated.json()["session_id"]
        assert call(server, alice, "/app/whoami")["session"] == logged_in["session"]

        # Logging out of minisession ends the backend session for that client: a new login
        # starts with an empty jar, so a fresh backend session and a fresh counter.
        out = httpx.delete(f"{server.url}/session", headers={"X-Session": alice}, timeout=10)
        assert out.status_code == 204, out.text
        again = login(server, "alice")
        assert again != alice
        fresh = call(server, again, "/app/whoami")
        assert fresh["user"] is None and fresh["cookie"] is None
        assert call(server, again, "/app/counter")["count"] == 1

        # The backend's session ids (its cookie values) never reach minisession's log.
        server.stop()
        text = server.log()
        assert "listening on" in text
        assert not [i for i in backend_ids if i in text]


@pytest.mark.parametrize("store", ["memory", "mongodb"])
def test_concurrent_responses_setting_different_cookies_lose_none(tmp_path, request, store):
    with express_app(tmp_path) as upstream, \
            gateway(tmp_path, upstream, store, request) as (server, sessions):
        token = login(server, "alice")

        async def set_all():
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
                return await asyncio.gather(*(
                    client.get(f"/app/set/c{i}", headers={"X-Session": token})
                    for i in range(20)))

        answers = asyncio.run(set_all())
        assert [a.status_code for a in answers] == [200] * 20
        sent = call(server, token, "/app/whoami")["cookie"]
        held = dict(part.split("=", 1) for part in sent.split("; "))
        assert held == {f"c{i}": f"value-of-c{i}" for i in range(20)}
        if sessions is not None:  # as stored in FerretDB, through the driver
            (jar,) = sessions.find_one({}, {"cookie_jars": 1})["cookie_jars"].values()
            assert len(jar) == 20


@pytest.mark.parametrize("store", ["memory", "mongodb"])
def test_an_upstream_flooding_cookies_cannot_grow_the_session_past_the_jar_limit(
        tmp_path, request, store):
    with express_app(tmp_path) as upstream, \
            gateway(tmp_path, upstream, store, request,
                    cookie_jar_max_bytes=JAR_LIMIT) as (server, sessions):
        token = login(server, "alice")
        assert call(server, token, "/app/counter")["count"] == 1  # connect.sid in the jar
        for flood in range(5):  # 5 x 200 cookies of 100 bytes: 100 KB offered
            call(server, token, f"/app/flood?n=200&size=100&round={flood}")
        sent = call(server, token, "/app/whoami")["cookie"]
        # What goes upstream is bounded by the jar, and the backend session survived it.
        assert len(sent) < JAR_LIMIT and "connect.sid=" in sent
        assert call(server, token, "/app/counter")["count"] == 2
        # minisession's own session still works.
        data = httpx.get(f"{server.url}/session/data", headers={"X-Session": token}, timeout=10)
        assert data.status_code == 200 and data.json() == {}
        if sessions is not None:
            doc = sessions.find_one({})
            (jar,) = doc["cookie_jars"].values()
            assert jar_size(jar) <= JAR_LIMIT
            print(f"\njar after 1000 offered cookies: {len(jar)} cookies, {jar_size(jar)} bytes "
                  f"(limit {JAR_LIMIT})")
        # Nothing of the jar is visible to the client through its session data.
        assert "flood" not in json.dumps(data.json())
