"""Provision and run FerretDB (MongoDB-compatible, SQLite backend) for the test suite.

The binary is built once from the Go module proxy into a cache directory and reused:
``$MINISESSION_CACHE`` or ``$XDG_CACHE_HOME/minisession`` (default ``~/.cache/minisession``).

Why not simply ``go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2``: on this
project's machines the module proxy refuses the ``@v/list`` query that ``go install pkg@version``
makes for its deprecation check (403), and even where it works, the module archive lacks the
generated ``build/version/version.txt``, so the installed binary panics at start. We download
the same module version (``go mod download``, checksum-verified), write ``version.txt``, and
``go build`` it with its own go.mod and go.sum.

Run ``python -m devtools.ferretdb`` to start one by hand (it prints the URI).
"""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.processes import end_process

MODULE = "github.com/FerretDB/FerretDB"
VERSION = "v1.24.2"


def cache_dir() -> Path:
    root = os.environ.get("MINISESSION_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minisession"


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return done.stdout


def ensure_binary() -> Path:
    """The path of a FerretDB binary, building it first when the cache has none."""
    target = cache_dir() / f"ferretdb-{VERSION}"
    if target.exists():
        return target
    if shutil.which("go") is None:
        raise RuntimeError("FerretDB must be built for the MongoDB tests, and 'go' is not on "
                           "PATH: install Go, or set MONGODB_URI to a MongoDB server")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"}
    print(f"\nbuilding FerretDB {VERSION} into {target} (once; takes a minute or two)...",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="ferretdb-build-") as tmp:
        tmp = Path(tmp)
        info = json.loads(_run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"],
                               tmp, env))
        source = tmp / "src"
        shutil.copytree(info["Dir"], source)
        for path in source.rglob("*"):  # the module cache is read-only
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        (source / "build" / "version" / "version.txt").write_text(VERSION + "\n")
        built = tmp / "ferretdb"
        _run(["go", "build", "-trimpath", "-o", str(built), "./cmd/ferretdb"], source, env)
        shutil.move(str(built), str(target.with_suffix(".tmp")))
        os.replace(target.with_suffix(".tmp"), target)  # atomic: parallel runs never see half
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FerretDB:
    """One FerretDB process on a free loopback port, its data in ``data_dir`` (SQLite files)."""

    def __init__(self, binary: Path, data_dir: Path, port: int | None = None):
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.port = port or _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "ferretdb.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "--handler=sqlite", f"--sqlite-url=file:{self.data_dir}/",
                 f"--listen-addr=127.0.0.1:{self.port}",
                 "--debug-addr=-",          # or it takes port 8088
                 f"--state-dir={self.data_dir}",
                 "--telemetry=disable",     # never reach for the internet
                 "--log-level=error"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"FerretDB exited at start:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"FerretDB did not listen within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        end_process(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no clean shutdown. ``start()`` again
        serves the same data on the same port."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def log_tail(self) -> str:
        try:
            return (self.data_dir / "ferretdb.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="ferretdb-") as data:
        server = FerretDB(ensure_binary(), Path(data))
        server.start()
        print(server.uri, flush=True)
        try:
            server.process.wait()
        except KeyboardInterrupt:
            server.stop()
