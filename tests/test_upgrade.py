"""Upgrading to apps (issue 12): data written by the version before apps keeps working.

The database is written here exactly as that version's MongoStore wrote it (users keyed by the
bare openid, sessions without an app, secrets sealed without the app in their associated
data), then ``minisession migrate`` runs as an administrator would run it, and the new server
serves on it: the old session id still authenticates, its binding holds, its session_key opens.
"""

import asyncio
import logging
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from server.app import Minisession
from server.config import load_config
from server.ids import SessionIdSigner, storage_key
from server.sealing import Sealer
from devtools.processes import SECRET, ServerProcess, new_encryption_key, server_config, to_toml

ROOT = Path(__file__).resolve().parent.parent
SESSION_KEY = "dGhlLW9sZC1zZXNzaW9uLWtleQ=="
# This test's own HTTP client traces response headers (Set-Cookie: a session id) at DEBUG.
logging.getLogger("httpcore").setLevel(logging.INFO)


def write_legacy_database(uri: str, database: str, key: str) -> dict:
    """One bound user with one live session, as the single-app MongoStore stored them."""
    sealer, signer = Sealer([key]), SessionIdSigner([SECRET])
    raw_id, token = signer.new_token()
    now = time.time()
    at = datetime.fromtimestamp(now, UTC)
    sid = storage_key(raw_id)
    with MongoClient(uri, tz_aware=True) as client:
        db = client[database]
        db.users.insert_one({
            "_id": "olga", "session_key": sealer.seal(SESSION_KEY, "session_key\x00olga"),
            "login_at": at, "unionid": "union-olga", "recent_session_id": sid,
            "recent_sealed_id": sealer.seal(raw_id, "session_id\x00olga"), "recent_at": at,
            "user_id": "acct-1", "bound_at": at})
        db.sessions.insert_one({
            "_id": sid, "openid": "olga", "unionid": "union-olga", "created_at": at,
            "touched_at": at, "expires_at": datetime.fromtimestamp(now + 3600, UTC),
            "data": {"cart": [1, 2]}, "user_id": "acct-1", "client_ip": "127.0.0.1",
            "user_agent": "MicroMessenger/8.0", "handle": sid, "generation": 0})
    return {"token": token}


def migrate(config_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "server.cli", "migrate", "--config",
                           str(config_path), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
def test_data_of_the_version_before_apps_keeps_working_after_migrate(mongodb_uri, tmp_path,
                                                                     driver):
    database = f"minisession_upgrade_{uuid.uuid4().hex[:10]}"
    key = new_encryption_key()
    legacy = write_legacy_database(mongodb_uri, database, key)
    api_key = "admin-api-key-0123456789abcdefghijklmnop"
    config = server_config(store_uri=mongodb_uri, database=database, encryption_key=key,
                           admin={"enabled": True, "api_keys": [api_key]},
                           session={"secrets": [SECRET], "login_reuse_window": 300},
                           store={"driver": driver})
    config_path = tmp_path / "upgrade.toml"
    config_path.write_text(to_toml(config))
    session = {"X-Session": legacy["token"]}
    try:
        with ServerProcess(config, tmp_path, "before") as before:
            before.start().wait_ready()
            # Not migrated yet: the old id is refused cleanly (401, not a 5xx), and the log
            # says what to do.
            assert httpx.get(before.url + "/session", headers=session).status_code == 401
            before.stop()
            assert "minisession migrate" in before.log()

        done = migrate(config_path)
        assert done.returncode == 0, done.stderr
        assert "1 user(s) and 1 session(s) of app 'default'" in done.stdout
        again = migrate(config_path)  # idempotent
        assert again.returncode == 0 and "0 user(s) and 0 session(s)" in again.stdout

        # Its session_key still opens, through the new code's sealing.
        async def read_session_key():
            server = Minisession(load_config(config_path, environ={}))
            try:
                return await server.service.session_key("default", "olga")
            finally:
                await server.stop()
        assert asyncio.run(read_session_key()) == SESSION_KEY

        with ServerProcess(config, tmp_path, "after") as after:
            after.start().wait_ready()
            answer = httpx.get(after.url + "/session", headers=session)
            assert answer.status_code == 200, answer.text
            assert {k: answer.json()[k] for k in ("app", "openid", "unionid", "user_id")} == {
                "app": "default", "openid": "olga", "unionid": "union-olga",
                "user_id": "acct-1"}
            assert httpx.get(after.url + "/session/data", headers=session).json() == {
                "cart": [1, 2]}
            # A new login of the same user finds its binding in its migrated record, and
            # within the reuse window is handed the migrated session (its sealed id opened).
            login = httpx.post(after.url + "/login", json={"code": "dev:olga"}).json()
            assert (login["user_id"], login["session_id"]) == ("acct-1", legacy["token"])
            listed = httpx.get(after.url + "/admin/apps/default/sessions?openid=olga",
                               headers={"Authorization": f"Bearer {api_key}"}).json()
            assert [s["app"] for s in listed["sessions"]] == ["default"]
            after.stop()
            after.assert_no_secrets_logged()

    finally:
        with MongoClient(mongodb_uri) as client:
            client.drop_database(database)


def test_migrate_needs_to_know_the_app_when_several_are_configured(tmp_path, mongodb_uri):
    path = tmp_path / "apps.toml"
    path.write_text(f'[session]\nsecrets = ["{SECRET}"]\n'
                    f'[store]\nbackend = "mongodb"\nmongodb_uri = "{mongodb_uri}"\n'
                    f'encryption_keys = ["{new_encryption_key()}"]\n'
                    '[apps.shop]\nplatform = "dev"\n[apps.lab]\nplatform = "dev"\n')
    done = migrate(path)
    assert done.returncode == 2
    assert "--app" in done.stderr and "Traceback" not in done.stderr
    done = migrate(path, "--app", "nope")
    assert done.returncode == 2 and "unknown app 'nope'" in done.stderr
