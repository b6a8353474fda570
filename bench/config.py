"""The minisession configs a benchmark run writes: loopback, no login rate limits, one secret.

Login rate limits are off (``0``): scenario 4 sends thousands of logins a second from one
address, and with the defaults (30 a minute per address) it would measure 429s. Everything else
keeps its default, ``touch_after = 60`` and ``log.level = "info"`` (one access-log line per
request, to a file) included: the figures are those of the configuration users run.
"""

import base64
import os
import subprocess
from pathlib import Path

from bench.procs import child_env, python_module
from devtools.processes import to_toml

#: Signs the benchmark's session ids; preloaded sessions are signed with it too.
SECRET = "bench-signing-secret-0123456789abcdef-not-for-production"
#: Seals stored session_keys; every server of one run shares it, like a real deployment.
ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()
WECHAT_APPID = "wx-bench-appid"
WECHAT_SECRET = "bench-wechat-secret-0123456789abcdef"


def server_config(port: int, wechat_url: str, mongodb_uri: str | None = None,
                  database: str = "bench", log_level: str = "info", store: dict | None = None,
                  **server: object) -> dict:
    """A ``minisession serve`` config: memory store, or MongoDB when ``mongodb_uri`` is given;
    ``store`` adds keys under ``[store]`` (``read_batching = "on"``), ``server`` under
    ``[server]`` (``workers = 2``)."""
    store = {"backend": "memory", "encryption_keys": [ENCRYPTION_KEY], **(store or {})}
    if mongodb_uri:
        store.update(backend="mongodb", mongodb_uri=mongodb_uri, database=database)
    return {
        "server": {"host": "127.0.0.1", "port": port, **server},
        "session": {"secrets": [SECRET]},
        "store": store,
        "login": {"provider": "wechat", "rate_per_address": 0, "rate_overall": 0},
        "wechat": {"appid": WECHAT_APPID, "secret": WECHAT_SECRET, "api_base": wechat_url,
                   "timeout": 5.0},
        "log": {"level": log_level},
        # Metrics on (as users run it), on a free port: a run starts several servers at once.
        "admin": {"metrics_listen": "127.0.0.1:0"},
    }


def write_config(config: dict, path: Path) -> Path:
    path.write_text(to_toml(config))
    return path


def check_config(path: Path) -> tuple[bool, str]:
    """``minisession check-config``: (accepted, what it printed)."""
    done = subprocess.run(python_module("server.cli", "check-config", "--config", str(path)),
                          env=child_env(), capture_output=True, text=True, timeout=60,
                          check=False)
    return done.returncode == 0, (done.stdout + done.stderr).strip()
