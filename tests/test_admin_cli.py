"""``minisession sessions list|revoke``, ``users show`` and ``purge`` as an operator runs them:
real CLI processes, reading the config file of a real ``minisession serve`` on the same
FerretDB database, whose answers show that what the CLI did took effect."""

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pymongo
import pytest

from devtools.processes import ROOT, ServerProcess, _child_env, server_config, to_toml
from server.admin_cli import EXIT_STATUS
from server.stores.base import SessionRecord, UserLogin
from server.stores.mongodb import MongoStore, mongodb_client
from tests.conftest import on_both_stores

APP = "default"  # the one app of the dev shorthand config
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
# Anything shaped like a session id (raw.mac) or a session_key (16 bytes of base64).
SECRET_SHAPES = re.compile(r"[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}|[A-Za-z0-9+/]{22}==")


def run_cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT,
                          env=_child_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


class Deployment:
    """A running server and its config file, on a database of its own."""

    def __init__(self, server: ServerProcess, uri: str, database: str):
        self.server, self.uri, self.database = server, uri, database
        self.config = str(server.config_path)
        self.tokens: list[str] = []

    def cli(self, *args):
        done = run_cli(*args, "--config", self.config)
        output = done.stdout + done.stderr
        assert "Traceback" not in output
        for token in self.tokens:  # never a session id, whatever the command
            assert token.split(".")[0] not in output
        assert not SECRET_SHAPES.search(output)
        for secret in self.server.secrets():
            assert secret not in output
        return done

    def login(self, openid: str) -> str:
        answer = httpx.post(self.server.url + "/login", json={"code": f"dev:{openid}"},
                            timeout=10)
        assert answer.status_code == 200, answer.text
        token = answer.json()["session_id"]
        self.tokens.append(token)
        return token

    def session_status(self, token: str) -> int:
        return httpx.get(self.server.url + "/session", headers={"X-Session": token},
                         timeout=10).status_code

    def store_call(self, method: str, *args):
        """A call on the store itself (what the API offers no way to do: a session already
        expired, an identity with a unionid)."""
        async def call():
            store = MongoStore(mongodb_client(self.uri, 5.0), self.database, 5.0)
            await store.open()
            try:
                return await getattr(store, method)(*args)
            finally:
                await store.close()
        return asyncio.run(call())

    def add_session(self, openid: str, unionid: str | None = None, expires_in: float = 3600):
        now = time.time()
        record = SessionRecord(id=uuid.uuid4().hex, app=APP, openid=openid, unionid=unionid,
                               created_at=now - 10, touched_at=now - 10,
                               expires_at=now + expires_in)
        user = UserLogin(app=APP, openid=openid, unionid=unionid,
                         sealed_session_key="sealed-key", sealed_session_id="sealed-id")
        self.store_call("login", user, record, None, now)

    def stored_sessions(self, openid: str) -> int:
        with pymongo.MongoClient(self.uri) as client:
            return client[self.database]["sessions"].count_documents({"openid": openid})


@pytest.fixture
def deployment(mongodb_uri, tmp_path, request):
    """Server and CLI through store.driver = the test's parameter (default "motor")."""
    database = f"minisession_cli_{uuid.uuid4().hex[:12]}"
    driver = getattr(request, "param", "motor")
    # login_reuse_window = 0: two logins are two sessions.
    config = server_config(mongodb_uri, database, session={"login_reuse_window": 0},
                           store={"driver": driver})
    server = ServerProcess(config, tmp_path).start().wait_ready()
    try:
        yield Deployment(server, mongodb_uri, database)
    finally:
        assert server.stop() == 0
        with pymongo.MongoClient(mongodb_uri) as client:
            client.drop_database(database)


def test_list_shows_a_users_sessions_in_aligned_columns_and_as_json(deployment):
    alice = [deployment.login("alice"), deployment.login("alice")]
    deployment.login("bob")
    done = deployment.cli("sessions", "list", "--app", APP, "--openid", "alice")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:3] == ["HANDLE", "APP", "OPENID"] and len(rows) == len(alice)
    for row in rows:
        assert row.split()[1:3] == [APP, "alice"]
        # Aligned: each column starts where its header does.
        assert row.index(APP) == header.index("APP") and row.index("alice") == header.index(
            "OPENID")
        assert len(ISO_UTC.findall(row)) == 3  # created, last used, expires

    listed = json.loads(deployment.cli("sessions", "list", "--openid", "alice",
                                       "--json").stdout)["sessions"]
    assert [s["openid"] for s in listed] == ["alice", "alice"]
    assert all(ISO_UTC.fullmatch(s["expires_at"]) and len(s["handle"]) == 43 for s in listed)
    assert [row.split()[0] for row in rows] == [s["handle"] for s in listed]

    nobody = deployment.cli("sessions", "list", "--openid", "nobody")
    assert nobody.returncode == 0 and nobody.stdout.strip() == "no live session"


@pytest.mark.parametrize("deployment", ["motor", "pymongo"], indirect=True)
def test_revoke_ends_the_sessions_on_the_running_server_and_only_those(deployment):
    alice = [deployment.login("alice"), deployment.login("alice")]
    bob = deployment.login("bob")
    assert all(deployment.session_status(token) == 200 for token in [*alice, bob])

    done = deployment.cli("sessions", "revoke", "--app", APP, "--openid", "alice")
    assert (done.returncode, done.stdout.strip()) == (0, "revoked 2 session(s)")
    assert [deployment.session_status(token) for token in alice] == [401, 401]
    assert deployment.session_status(bob) == 200

    again = deployment.cli("sessions", "revoke", "--openid", "alice", "--json")
    assert again.returncode == 1 and json.loads(again.stdout) == {"revoked": 0}


def test_revoke_without_a_filter_or_with_an_unknown_app_is_refused(deployment):
    token = deployment.login("alice")
    refused = deployment.cli("sessions", "revoke")
    assert refused.returncode == 2 and "--openid, --user-id or --unionid" in refused.stderr
    unknown = deployment.cli("sessions", "revoke", "--app", "shop", "--openid", "alice")
    assert unknown.returncode == 2 and "apps: default" in unknown.stderr
    bad_user = deployment.cli("sessions", "revoke", "--user-id", "a\tb")
    assert bad_user.returncode == 2 and "user_id" in bad_user.stderr
    assert deployment.session_status(token) == 200  # nothing was ended


def test_revoke_by_user_id_ends_every_session_bound_to_it(deployment):
    alice, bob = deployment.login("alice"), deployment.login("bob")
    deployment.store_call("bind", APP, "alice", "1001", time.time())
    done = deployment.cli("sessions", "revoke", "--user-id", "1001")
    assert (done.returncode, done.stdout.strip()) == (0, "revoked 1 session(s)")
    assert (deployment.session_status(alice), deployment.session_status(bob)) == (401, 200)


def test_users_show_tells_binding_unionid_key_held_and_live_sessions(deployment):
    deployment.login("alice")
    deployment.store_call("bind", APP, "alice", "1001", time.time())
    deployment.add_session("carol", unionid="union-carol")

    alice = json.loads(deployment.cli("users", "show", "--openid", "alice", "--json").stdout)
    assert {k: alice[k] for k in ("bound", "user_id", "holds_session_key", "live_sessions")} \
        == {"bound": True, "user_id": "1001", "holds_session_key": True, "live_sessions": 1}
    assert ISO_UTC.fullmatch(alice["bound_at"])
    carol = deployment.cli("users", "show", "--app", APP, "--openid", "carol")
    assert carol.returncode == 0
    lines = dict(line.split(None, 1) for line in carol.stdout.splitlines())
    assert lines["unionid"] == "union-carol" and lines["bound"] == "no"
    assert lines["holds_session_key"] == "yes" and lines["live_sessions"] == "1"
    assert "sealed-key" not in carol.stdout
    stranger = json.loads(deployment.cli("users", "show", "--openid", "stranger",
                                         "--json").stdout)
    assert (stranger["bound"], stranger["holds_session_key"],
            stranger["live_sessions"]) == (False, False, 0)


@pytest.mark.parametrize("deployment", ["motor", "pymongo"], indirect=True)
def test_purge_removes_the_expired_sessions_and_keeps_the_live_ones(deployment):
    for _ in range(3):
        deployment.add_session("ghost", expires_in=-60)
    live = deployment.login("alice")
    assert deployment.stored_sessions("ghost") == 3
    done = deployment.cli("purge", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["purged"] >= 3
    assert deployment.stored_sessions("ghost") == 0
    assert deployment.session_status(live) == 200
    assert deployment.cli("purge").stdout.strip() == "purged 0 expired session(s)"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_store_that_does_not_answer_is_exit_3_with_a_clear_message(tmp_path):
    config = server_config(f"mongodb://127.0.0.1:{_closed_port()}/", "unreachable",
                           store={"timeout": 1.0})
    path = tmp_path / "down.toml"
    path.write_text(to_toml(config))
    for command in (["sessions", "list", "--openid", "alice"], ["purge"],
                    ["users", "show", "--openid", "alice"]):
        started = time.monotonic()
        done = run_cli(*command, "--config", str(path))
        assert done.returncode == 3, done.stderr
        assert "did not answer within store.timeout (1 s)" in done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
        assert time.monotonic() - started < 15


def test_the_memory_store_and_a_bad_config_are_refused(tmp_path):
    path = tmp_path / "memory.toml"
    path.write_text(to_toml(server_config()))
    done = run_cli("sessions", "list", "--openid", "alice", "--config", str(path))
    assert done.returncode == 2 and "store.backend = 'memory'" in done.stderr
    path.write_text('[session]\nidle_timeout = "2h"\n')
    done = run_cli("purge", "--config", str(path))
    assert done.returncode == 2 and "session.idle_timeout" in done.stderr


def test_help_documents_the_exit_codes():
    for command in ([], ["sessions", "revoke"], ["users", "show"], ["purge"]):
        done = run_cli(*command, "--help")
        assert done.returncode == 0 and EXIT_STATUS.splitlines()[-1].strip() in done.stdout


# -- the two service methods the CLI adds, on both stores --------------------------------------

@on_both_stores
@pytest.mark.gen_test
async def test_user_summary_and_purge_of_the_service(server, client, clock):
    service = server.service
    for _ in range(2):
        assert (await client.login("dev:alice")).code == 200
    await service.bind(None, "alice", 1001)
    summary = await service.user_summary(None, "alice")
    assert (summary.app, summary.binding.user_id, summary.holds_session_key,
            summary.live_sessions) == (APP, "1001", True, 1)  # a reused login: one session
    nobody = await service.user_summary(APP, "nobody")
    assert (nobody.binding, nobody.holds_session_key, nobody.live_sessions) == (None, False, 0)

    clock.advance(server.config.session.idle_timeout + 1)
    assert (await service.user_summary(APP, "alice")).live_sessions == 0
    assert await service.purge_expired() == 1
    assert await service.purge_expired() == 0
