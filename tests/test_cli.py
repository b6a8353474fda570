"""The ``minisession`` command as an administrator runs it: a real process, a real config file."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from devtools.processes import to_toml

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, env=None, timeout=20):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_bad_config_refuses_to_start_naming_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[session]\nidle_timeout = "2h"\n')
    done = run_cli("serve", "--config", str(path))
    assert done.returncode == 2
    assert "session.idle_timeout" in done.stderr and "Traceback" not in done.stderr


def test_unsafe_config_refuses_to_start(tmp_path):
    path = tmp_path / "open.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\n[login]\nprovider = "dev"\n'
                    '[session]\nsecrets = ["a-long-enough-secret-for-the-check-0123456789"]\n')
    done = run_cli("serve", "--config", str(path))
    assert done.returncode == 2 and "login.provider" in done.stderr


def test_check_config_accepts_the_example_with_secrets_from_the_environment():
    env = {**os.environ,
           "MINISESSION_SESSION_SECRETS": "an-example-signing-secret-0123456789abcdef",
           "MINISESSION_WECHAT_SECRET": "wechat-app-secret",
           "MINISESSION_STORE_MONGODB_URI": "mongodb://127.0.0.1:27017/",
           "MINISESSION_STORE_ENCRYPTION_KEYS": "q4Ll2lDCe2nR1kpdsQ0S7h6C0m3nCQmQkeFOV3hF7yY="}
    done = run_cli("check-config", "--config", "config/example.toml", env=env)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def _fetch(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_serve_dev_config_logs_in_and_stops_cleanly_on_sigterm(tmp_path):
    # The dev config of the README, on a free port so that tests never collide.
    config = (ROOT / "config" / "dev.toml").read_text().replace("port = 8888", "port = 0")
    config += '\n[admin]\nmetrics_listen = "127.0.0.1:0"\n'  # metrics on a free port too
    path = tmp_path / "dev.toml"
    path.write_text(config)
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--config",
                                str(path)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        port = None
        lines = []
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            lines.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        status, headers, body = _fetch(base + "/login", "POST", b'{"code":"dev:alice"}')
        assert status == 200 and body["openid"] == "alice"
        assert headers["Set-Cookie"].startswith(f"sessionid={body['session_id']};")
        status, _, body = _fetch(base + "/session", headers={"X-Session": body["session_id"]})
        assert status == 200 and body["openid"] == "alice"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        rest = process.stderr.read()
        assert "shutting down" in rest and "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


@pytest.mark.parametrize("args", [["fake-platforms", "--help"], ["fake-wechat", "--help"],
                                  ["--help"]])
def test_help_is_available(args):
    done = run_cli(*args)
    assert done.returncode == 0 and "usage" in done.stdout.lower()


# -- secrets for a shared store: refused without them, made by `minisession keygen` -----------

def keygen() -> tuple[dict, dict]:
    """What `minisession keygen` prints: (the TOML, the environment variables in its comments)."""
    done = run_cli("keygen")
    assert done.returncode == 0, done.stderr
    environ = dict(re.findall(r"^#\s*(MINISESSION_[A-Z_]+)=(\S+)$", done.stdout, re.MULTILINE))
    return tomllib.loads(done.stdout), environ


def shared_store_config(**sections) -> dict:
    config = {"server": {"host": "127.0.0.1", "port": 0},
              "store": {"backend": "mongodb", "mongodb_uri": "mongodb://127.0.0.1:27017/"},
              "login": {"provider": "dev"}}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def test_a_shared_store_without_secrets_refuses_to_start_on_loopback_too(tmp_path):
    path = tmp_path / "shared.toml"
    path.write_text(to_toml(shared_store_config()))
    done = run_cli("serve", "--config", str(path), env=_clean_env())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "session.secrets: required" in done.stderr and "minisession keygen" in done.stderr
    path.write_text(to_toml(shared_store_config(
        session={"secrets": ["a-long-enough-secret-for-the-check-0123456789"]})))
    done = run_cli("serve", "--config", str(path), env=_clean_env())
    assert done.returncode == 2 and "store.encryption_keys: required" in done.stderr


def test_keygen_prints_fresh_values_that_the_config_loader_accepts(tmp_path):
    values, environ = keygen()
    assert set(values) == {"session", "store", "admin"}
    secrets = (values["session"]["secrets"], values["store"]["encryption_keys"],
               values["admin"]["api_keys"])
    assert all(len(items) == 1 and isinstance(items[0], str) for items in secrets)
    # The environment form in the comments carries the same values.
    assert environ == {"MINISESSION_SESSION_SECRETS": secrets[0][0],
                       "MINISESSION_STORE_ENCRYPTION_KEYS": secrets[1][0],
                       "MINISESSION_ADMIN_API_KEYS": secrets[2][0]}
    # Pasted into a public, shared-store config with the admin API on: accepted, no notice.
    public = {"server": {"host": "0.0.0.0"}, "admin": {"enabled": True},
              "session": {"cookie_secure": True}, "login": {"provider": "wechat"},
              "wechat": {"appid": "wx0123456789abcdef", "secret": "wechat-app-secret-0123456789"}}
    config = shared_store_config(**public)
    for name, table in values.items():
        config.setdefault(name, {}).update(table)
    path = tmp_path / "pasted.toml"
    path.write_text(to_toml(config))
    done = run_cli("check-config", "--config", str(path), env=_clean_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{path}: OK"
    # And so is the environment form, with no secret in the file.
    path.write_text(to_toml(shared_store_config(**public)))
    done = run_cli("check-config", "--config", str(path), env={**_clean_env(), **environ})
    assert done.returncode == 0, done.stderr
    # Each run makes new values.
    again, _ = keygen()
    for section, key in (("session", "secrets"), ("store", "encryption_keys"),
                         ("admin", "api_keys")):
        assert again[section][key] != values[section][key]
    assert len({secrets[0][0], secrets[1][0], secrets[2][0]}) == 3


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("MINISESSION_")}
