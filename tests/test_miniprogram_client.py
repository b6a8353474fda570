"""The mini-program client library (clients/miniprogram) and the example app: their Node tests.

They run with Node's own test runner under host stand-ins against real ``minisession serve``
processes (clients/miniprogram/support/). This runs them as part of the Python suite, so README's
test command and CI run them too. ``npm ci`` installs the one devDependency (terser, for the
size check) from the committed lock, only when node_modules is missing or the lock changed.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clients" / "miniprogram"
# Written after a successful npm ci: the sha256 of the lock it installed.
STAMP = PACKAGE / "node_modules" / ".minisession-lock-sha256"
MIN_NODE = 20


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, (f"the mini-program client tests need {name} (Node.js >= {MIN_NODE} with npm): "
                  "apt-get install -y nodejs npm, or see https://nodejs.org")
    return path


def _install(npm: str) -> None:
    lock = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == lock:
        return
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"npm ci failed in {PACKAGE}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    STAMP.write_text(lock)


def test_the_node_tests_of_the_miniprogram_client_pass(capsys):
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    assert int(version.strip().lstrip("v").split(".")[0]) >= MIN_NODE, f"Node {version} is too old"
    _install(npm)

    env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    env["MINISESSION_TEST_PYTHON"] = sys.executable  # the servers run this worktree's code
    done = subprocess.run([node, "--test", "--test-reporter=tap"], cwd=PACKAGE, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    counts = dict(re.findall(r"^# (pass|fail|cancelled|skipped|todo) (\d+)$", output, re.M))
    assert done.returncode == 0 and counts.get("fail") == "0", output[-12000:]
    assert int(counts.get("pass", 0)) > 0, output[-4000:]
    assert counts.get("skipped") == "0" and counts.get("todo") == "0", output[-4000:]
    # The figures the issue asks for, shown in the test run.
    figures = re.findall(r"^# ((?:minified size|\d+ parallel 401s|after expiry).*)$", output, re.M)
    assert len(figures) == 3, output[-4000:]
    with capsys.disabled():
        print(f"\nmini-program client: {counts['pass']} Node tests passed; " + "; ".join(figures))
