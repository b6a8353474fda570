"""Debian's nginx for tests: installed with apt-get when missing, run as the current user with
everything under a temporary prefix, in front of real minisession processes (tests/test_deploy.py,
tests/test_forward_auth_nginx.py).
"""

import grp
import os
import pwd
import socket
import subprocess
from pathlib import Path

from devtools.apt import apt_binary
from devtools.processes import end_process, wait_for


def nginx_binary() -> str:
    """Debian's nginx, installed with apt-get if missing (nginx-light, else nginx)."""
    return apt_binary("nginx", ["nginx-light", "nginx"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def render_site(text: str, replacements: dict[str, str]) -> str:
    """A site of deploy/ with its ports, certificate and log paths swapped for the test's."""
    for old, new in replacements.items():
        assert old in text, f"the nginx site no longer has {old!r}: update this test"
        text = text.replace(old, new)
    return text


#: The forward-auth site README shows and the tests run (nginx auth_request to /auth).
FORWARD_AUTH_SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx-forward-auth.conf"


def forward_auth_site(minisession: str, backend: str, port: int, log_dir: Path) -> str:
    """deploy/nginx-forward-auth.conf listening on 127.0.0.1:``port``, in front of
    ``minisession`` and ``backend`` ("host:port" each), logging under ``log_dir``."""
    return render_site(FORWARD_AUTH_SITE.read_text(), {
        "    server 127.0.0.1:8888;": f"    server {minisession};",
        "    server 127.0.0.1:9000;": f"    server {backend};",
        "    listen 80;": f"    listen 127.0.0.1:{port};",
        "/var/log/nginx/": f"{log_dir}/",
    })


class Nginx:
    """nginx as the current user, everything (pid, temp files, logs) under ``prefix``."""

    def __init__(self, binary: str, prefix: Path, site: str):
        self.binary, self.prefix = binary, prefix
        (prefix / "minisession.conf").write_text(site)
        compiled = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
        temp_paths = "\n".join(
            f"    {module}_temp_path {prefix}/{module}_temp;"
            for module in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            if f"--without-http_{module}_module" not in compiled)
        user = pwd.getpwuid(os.geteuid()).pw_name  # ignored, with a notice, unless root
        group = grp.getgrgid(os.getegid()).gr_name
        self.config = prefix / "nginx.conf"
        self.config.write_text(
            f"user {user} {group};\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"events {{ worker_connections 128; }}\n"
            f"http {{\n{temp_paths}\n    include {prefix}/minisession.conf;\n}}\n")
        self.error_log = prefix / "error.log"
        self.process: subprocess.Popen | None = None

    def start(self, port: int, address: str = "127.0.0.1") -> "Nginx":
        with open(self.prefix / "nginx.out", "wb") as out:
            self.process = subprocess.Popen(
                [self.binary, "-p", f"{self.prefix}/", "-c", str(self.config),
                 "-e", str(self.error_log), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: self._accepts(address, port), 10, what="nginx listening")
        return self

    def _accepts(self, address: str, port: int) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.process.returncode}:\n"
                               f"{(self.prefix / 'nginx.out').read_text()}\n"
                               f"{self.error_log.read_text() if self.error_log.exists() else ''}")
        try:
            socket.create_connection((address, port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        end_process(self.process)
