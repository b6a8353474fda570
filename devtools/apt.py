"""Debian packages that tests need (nginx, php-cli): installed with apt-get when missing, once
per machine, parallel test runs waiting for each other on a lock file.
"""

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

APT_TIMEOUT = 300


def _installed(binary: str) -> str | None:
    found = shutil.which(binary)
    if found is None:
        for directory in ("/usr/sbin", "/usr/bin"):
            if os.access(f"{directory}/{binary}", os.X_OK):
                return f"{directory}/{binary}"
    return found


def apt_binary(binary: str, packages: list[str]) -> str:
    """The path of ``binary``, installing the first of ``packages`` that apt-get can install
    (the next one if it fails) when it is missing. RuntimeError, with apt's output, if none."""
    if found := _installed(binary):
        return found
    lock_path = Path(tempfile.gettempdir()) / f"minisession-test-{binary}-install.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if found := _installed(binary):  # another run installed it while we waited
            return found
        apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=120"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        output = []
        for command in ([*apt, "update"],
                        *([*apt, "install", "-y", "--no-install-recommends", package]
                          for package in packages)):
            try:
                done = subprocess.run(command, env=env, capture_output=True, text=True,
                                      timeout=APT_TIMEOUT)
                output.append(f"$ {' '.join(command)} -> {done.returncode}\n"
                              f"{(done.stdout + done.stderr)[-1500:]}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                output.append(f"$ {' '.join(command)} -> {exc}")
            if "install" in command and (found := _installed(binary)):
                return found
    raise RuntimeError(f"this test needs Debian's {binary}, and apt-get could not install it:\n"
                       + "\n".join(output))
