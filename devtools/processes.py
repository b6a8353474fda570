"""Real processes for tests and the soak: ``minisession serve`` and ``minisession fake-platforms``.

Each process gets its own written config file, listens on a free loopback port (``port = 0``;
the port is read back from its log), and logs to a file, never to a pipe: a pipe nobody reads
fills up under load and stalls the server. Always ``stop()`` them (or use ``with``).
"""

import base64
import dataclasses
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from server.config import AdminConfig, LoginConfig, StoreConfig

ROOT = Path(__file__).resolve().parent.parent
SECRET = "process-test-signing-secret-0123456789abcdef"
WECHAT_APPID = "wx-process-test"
WECHAT_SECRET = "process-test-wechat-secret-0123456789"

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_METRICS = re.compile(r"metrics on (http://127\.0\.0\.1:\d+/metrics)")
# What must never be in a process's log, whatever the test did: a session token (raw.mac), or
# a WeChat session_key (16 bytes in base64).
_SECRET_SHAPES = re.compile(r"[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}"
                            r"|(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{22}==")


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05,
             what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; that value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


def readable_log(text: str) -> str:
    """``text``, then each of its JSON lines (``[log] format = "json"``) as its values decoded:
    JSON escapes a quote, a backslash, a control or non-ASCII character, which would hide a
    secret holding one from a search of the raw text."""
    decoded = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            decoded.extend(str(value) for value in record.values())
    return "\n".join([text, *decoded])


def to_toml(data: dict) -> str:
    """The few TOML forms a config needs: tables of strings, numbers, booleans, lists, and
    tables in tables (``{"apps": {"shop": {...}}}`` -> ``[apps.shop]``), lists of tables
    (``{"gateway": {"routes": [{...}]}}`` -> ``[[gateway.routes]]``)."""

    def value(item) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        if isinstance(item, str):
            return '"' + item.replace("\\", "\\\\").replace('"', '\\"') \
                .replace("\n", "\\n") + '"'
        if isinstance(item, list | tuple):
            return "[" + ", ".join(value(i) for i in item) + "]"
        raise TypeError(f"cannot write {item!r} as TOML")

    def key(name: str) -> str:
        return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else value(name)

    lines = []

    def tables(v) -> bool:  # a list of tables: [[section.key]]
        return isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)

    def table(path: list[str], items: dict, brackets: str = "[]") -> None:
        lines.append(brackets[:len(brackets) // 2] + ".".join(key(part) for part in path)
                     + brackets[len(brackets) // 2:])
        lines.extend(f"{key(k)} = {value(v)}" for k, v in items.items()
                     if not isinstance(v, dict) and not tables(v))
        lines.append("")
        for k, v in items.items():
            if isinstance(v, dict):
                table([*path, k], v)
            elif tables(v):
                for item in v:
                    table([*path, k], item, "[[]]")

    for section, items in data.items():
        table([section], items)
    return "\n".join(lines)


def new_encryption_key() -> str:
    """A store.encryption_keys entry (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(32)).decode()


def _has_key(section_class, key: str) -> bool:
    return key in {f.name for f in dataclasses.fields(section_class)}


def server_config(store_uri: str | None = None, database: str = "minisession_test",
                  wechat_base: str | None = None, encryption_key: str | None = None,
                  **sections: dict) -> dict:
    """A serve config: loopback, port 0, our signing secret; MongoDB store when ``store_uri``,
    WeChat login through ``wechat_base`` (a fake) or else the dev provider; plus overrides.

    Instances that share a database must share ``encryption_key`` too (it seals what they
    store); these tests send many logins from one address, so login rate limits are off.
    """
    config = {
        "server": {"host": "127.0.0.1", "port": 0},
        "session": {"secrets": [SECRET]},
        "store": {"backend": "memory"},
        "login": {"provider": "dev"},
        "log": {"level": "info"},
    }
    if store_uri:
        config["store"] = {"backend": "mongodb", "mongodb_uri": store_uri, "database": database}
        if _has_key(StoreConfig, "encryption_keys"):
            config["store"]["encryption_keys"] = [encryption_key or new_encryption_key()]
    if wechat_base:
        config["login"] = {"provider": "wechat"}
        config["wechat"] = {"appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                            "api_base": wechat_base, "timeout": 5.0}
    for key in ("rate_per_address", "rate_overall"):
        if _has_key(LoginConfig, key):
            config["login"][key] = 0
    if _has_key(AdminConfig, "metrics_listen"):
        # A free port (read back from the log), so that tests never fight over 9464.
        config["admin"] = {"metrics_listen": "127.0.0.1:0"}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    if "apps" in config:  # [login] provider is the one-app shorthand: not with [apps.*]
        config["login"].pop("provider", None)
    return config


def _child_env() -> dict:
    # Settings come from the written file only, whatever MINISESSION_* the caller has set.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINISESSION_")}
    env["PYTHONPATH"] = str(ROOT)
    return env



def end_process(process: subprocess.Popen | None) -> None:
    """Stop a child politely (SIGTERM, 10 s), then firmly; nothing if it is gone already."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)

class _Process:
    """A child process that logs to ``<workdir>/<name>.log`` and prints its port there."""

    def __init__(self, workdir: Path, name: str):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = self.workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    def _spawn(self, args: list[str], timeout: float,
               fd_limit: tuple[int, int] | None = None) -> None:
        """``fd_limit``: the child's RLIMIT_NOFILE (soft, hard), set before it starts."""
        def limit_fds() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, fd_limit)

        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=_child_env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=limit_fds if fd_limit else None)
        try:
            self.port = int(wait_for(self._port_from_log, timeout, what=f"{self.name} listening"))
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}") from None

    def _port_from_log(self):
        match = _LISTENING.search(self.log()[self._log_start:])
        if match:
            return match.group(1)
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode} at start:\n"
                               f"{self.log()[-3000:]}")
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.assert_no_secrets_logged()
        return self.process.returncode

    def secrets(self) -> set[str]:
        """The configured secrets this process must never log."""
        return {WECHAT_SECRET}

    def assert_no_secrets_logged(self) -> None:
        """The log guard of tests/log_guard.py, for a process of its own."""
        text = readable_log(self.log())
        shapes = _SECRET_SHAPES.findall(text)
        known = [secret for secret in self.secrets() if secret in text]
        assert not shapes and not known, (
            f"{self.name} logged {len(shapes) + len(known)} secret(s), e.g. "
            f"{(shapes + known)[0][:6]}… in {self.log_path}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def open_fds(self) -> int:
        """How many file descriptors the process has open (sockets included)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        with open(f"/proc/{self.pid}/stat") as stat:
            # Fields 14 and 15 (utime, stime), counted after the ")" that ends the name.
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_bytes(self) -> int:
        return self.log_path.stat().st_size

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ServerProcess(_Process):
    """``minisession serve`` with ``config`` (a dict, see :func:`server_config`)."""

    def __init__(self, config: dict, workdir: Path, name: str = "minisession"):
        super().__init__(workdir, name)
        self.config = config
        self.config_path = self.workdir / f"{name}.toml"

    def secrets(self) -> set[str]:
        config = self.config
        return {*config.get("session", {}).get("secrets", ()),
                *config.get("store", {}).get("encryption_keys", ()),
                *(v for v in (config.get("wechat", {}).get("secret"),) if v),
                *(app["secret"] for app in config.get("apps", {}).values() if app.get("secret")),
                *config.get("admin", {}).get("api_keys", ())}

    def start(self, timeout: float = 20,
              fd_limit: tuple[int, int] | None = None) -> "ServerProcess":
        self.config_path.write_text(to_toml(self.config))
        self._spawn(["serve", "--config", str(self.config_path)], timeout, fd_limit)
        return self

    @property
    def metrics_url(self) -> str:
        """Where this server serves /metrics (admin.metrics_listen), from its log."""
        match = wait_for(lambda: _METRICS.search(self.log()[self._log_start:]), 10,
                         what=f"{self.name} metrics listener")
        return match.group(1)

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 15) -> "ServerProcess":
        wait_for(self.ready, timeout, interval=0.1, what=f"{self.name} ready")
        return self


class FakePlatformsProcess(_Process):
    """``minisession fake-platforms`` (every platform's fake) with our test appid and secret."""

    def __init__(self, workdir: Path, name: str = "fake-platforms"):
        super().__init__(workdir, name)

    def start(self, port: int = 0, timeout: float = 20) -> "FakePlatformsProcess":
        """Start it (again: pass the old ``port`` to come back where clients expect it)."""
        self._spawn(["fake-platforms", "--port", str(port), "--appid", WECHAT_APPID,
                     "--secret", WECHAT_SECRET], timeout)
        return self

    def calls(self) -> int:
        """How many code2Session calls it has answered or started answering."""
        return httpx.get(self.url + "/fake/stats", timeout=5).json()["jscode2session_calls"]
