"""Child processes of a benchmark run: start on a chosen loopback port, wait, sample, stop.

Every process logs to a file in the run's work directory, never to a pipe (a pipe nobody
reads fills up under load and stalls the writer). The port is chosen here, not by the child,
so the same code starts minisession (one process or pre-forked workers), the bare Tornado
baseline, the fake WeChat and the Node peer.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env() -> dict:
    # Settings come from the files the harness writes, whatever MINISESSION_* the caller has.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINISESSION_")}
    env["PYTHONPATH"] = str(ROOT)
    if env.get("BENCH_GC_PROBE"):  # --gc-probe: bench/gc_probe/sitecustomize.py times the GC
        env["PYTHONPATH"] += os.pathsep + str(ROOT / "bench" / "gc_probe")
    return env


def with_group(group: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when no process of it is left."""
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a zombie leader not yet reaped still holds the group


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    return sum(cpu_times(pid))


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process (0, 0 when it is gone): system time is the
    kernel's work on its behalf (sockets, epoll, writes), which instruction counts miss."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # Fields after the command name (which may hold spaces) start after its ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


#: ``--pin``: the CPUs of the measured servers, and of the rest (wrk, FerretDB, the fake
#: platform); None: no pinning. Set once by bench/run.py.
CPUS: dict[str, set[int] | None] = {"servers": None, "load": None}


def pinned(role: str):
    """A ``preexec_fn`` that puts the child, and so every thread it will start (Node's and Go's
    runtimes start theirs early), on the CPUs of ``role``; None without pinning."""
    cpus = CPUS[role]
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def pin_running(pid: int, role: str) -> None:
    """Put every thread a running process already has on the CPUs of ``role``."""
    if cpus := CPUS[role]:
        for task in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(task), cpus)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


class Service:
    """One child process listening on ``127.0.0.1:port``; ``health`` is a path answering 200."""

    def __init__(self, name: str, command: list[str], port: int, workdir: Path,
                 health: str = "/healthz", role: str = "servers"):
        self.name = name
        self.role = role  # whose CPUs it runs on (--pin)
        self.command = command
        self.port = port
        self.health = health
        self.log_path = Path(workdir) / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Service":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=pinned(self.role))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} at "
                                   f"start:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + self.health, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health} within {timeout} s:\n"
                           f"{self.log_tail()}")

    def pids(self) -> list[int]:
        """The process and its children (pre-forked workers), for RSS and profiling."""
        found = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            found += [int(pid) for pid in children.read_text().split()]
        except OSError:
            pass
        return found

    def rss_kib(self) -> int:
        """Resident memory of the process and its children, KiB."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as status:
                    total += next(int(line.split()[1]) for line in status
                                  if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                pass
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the process and its children."""
        return sum(self.cpu_times())

    def cpu_times(self) -> tuple[float, float]:
        """(user, system) CPU seconds used so far by the process and its children."""
        times = [cpu_times(pid) for pid in self.pids()]
        return sum(user for user, _ in times), sum(system for _, system in times)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to its process group (workers too), then SIGKILL after ``timeout``."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the group id is the leader's pid
        with_group(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        # Wait for the whole group: workers may outlive their parent by a moment.
        while with_group(group, 0) and time.monotonic() < deadline:
            self.process.poll()
            time.sleep(0.05)
        with_group(group, signal.SIGKILL)
        self.process.wait(5)

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"


class ToolMissing(RuntimeError):
    pass


def ensure_debian_tool(command: str, package: str | None = None) -> str:
    """The path of ``command``, installed from Debian's packages when missing and we are root
    (``apt-get install -y <package>``, after ``apt-get update`` on a machine without lists)."""
    found = shutil.which(command)
    if found:
        return found
    install = ["apt-get", "install", "-y", "-q", package or command]
    if os.geteuid() != 0:
        raise ToolMissing(f"{command} is not installed; install it with: sudo {' '.join(install)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {command}: {' '.join(install)}", flush=True)

    def apt(arguments: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=600,
                              check=False)

    if apt(install).returncode != 0:
        apt(["apt-get", "update", "-q"])  # a fresh machine has no package lists yet
        done = apt(install)
        if done.returncode != 0:
            raise ToolMissing(f"could not install {command} ({' '.join(install)}):\n"
                              f"{done.stderr[-2000:]}")
    found = shutil.which(command)
    if not found:
        raise ToolMissing(f"{command} was installed but is not on PATH")
    return found
