"""Node.js packages that tests run (tests/upstreams/express): ``npm ci`` from the committed
lock, only when node_modules is missing or the lock changed since the last install."""

import hashlib
import shutil
import subprocess
from pathlib import Path

#: Written after a successful npm ci: the sha256 of the lock it installed.
STAMP = ".minisession-lock-sha256"


def node_binary() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("this test needs Node.js >= 20.19 with npm: apt-get install -y "
                           "nodejs npm (or see https://nodejs.org)")
    return node


def npm_ci(package: Path) -> None:
    """The packages of ``package`` (a directory with package-lock.json), installed."""
    node_binary()
    lock = hashlib.sha256((package / "package-lock.json").read_bytes()).hexdigest()
    stamp = package / "node_modules" / STAMP
    if stamp.exists() and stamp.read_text() == lock:
        return
    done = subprocess.run([shutil.which("npm"), "ci", "--no-audit", "--no-fund"], cwd=package,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"npm ci failed in {package}:\n{done.stdout[-2000:]}"
                           f"{done.stderr[-3000:]}")
    stamp.write_text(lock)
