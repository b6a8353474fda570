"""The peers: the express-session app in ``bench/peer``, on connect-mongo (scenario 6) or on
express-session's own MemoryStore (scenario 2p).

Its packages are installed from the npm registry by ``npm ci`` (exact versions from
``package-lock.json``) into ``bench/peer/node_modules``, once.
"""

import json
import shutil
import subprocess
from pathlib import Path

PEER = Path(__file__).resolve().parent / "peer"


def ensure_installed() -> str:
    """Install the peer's packages when missing; the node binary."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("the peer needs Node.js >= 20.19 and npm: apt-get install -y nodejs "
                           "npm (or your distribution's equivalent)")
    lock = json.loads((PEER / "package-lock.json").read_text())
    wanted = lock["packages"][""]["dependencies"]
    if not all(_installed_version(name) == _pinned(lock, name) for name in wanted):
        print("installing the peer's packages: npm ci (in bench/peer)", flush=True)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEER,
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"npm ci failed in {PEER}:\n{done.stderr[-3000:]}")
    return node


def _pinned(lock: dict, name: str) -> str | None:
    return lock["packages"].get(f"node_modules/{name}", {}).get("version")


def _installed_version(name: str) -> str | None:
    try:
        manifest = PEER / "node_modules" / name / "package.json"
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def versions() -> dict[str, str | None]:
    lock = json.loads((PEER / "package-lock.json").read_text())
    return {name: _pinned(lock, name) for name in lock["packages"][""]["dependencies"]}


def command(node: str, port: int, mongodb_uri: str | None, database: str = "bench_peer",
            touch_after: int = 60, idle_timeout: int = 7200) -> list[str]:
    """The peer on connect-mongo at ``mongodb_uri``; on its MemoryStore when that is None."""
    store = ["--store", "memory"] if mongodb_uri is None else [
        "--store", "mongodb", "--mongodb-uri", mongodb_uri, "--database", database]
    return [node, str(PEER / "server.js"), "--port", str(port), *store,
            "--touch-after", str(touch_after), "--idle-timeout", str(idle_timeout)]
