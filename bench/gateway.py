"""The gateway's cost: an authenticated GET through minisession's built-in proxy, against the
same backend asked directly, and against nginx ``auth_request`` + ``proxy_pass`` asking
minisession's ``/auth`` (deploy/nginx-forward-auth.conf), side by side in one run:

    python -m bench.gateway [--seconds 5] [--rounds 3] [--connections 16] [--sessions 200]

Everything runs on loopback: the backend (devtools/echo_backend.py, a small Tornado app in its
own process), one ``minisession serve`` (memory store) with one
``[[gateway.routes]]`` ``/api/`` to it, and Debian's nginx in front of the same two. wrk
(bench/wrk.py, bench/lua/session.lua) sends each request with one of ``--sessions`` session
cookies; the three targets are measured in interleaved rounds and the table gives the median
of the rounds for p50, p99, requests per second and the CPU time minisession's process used
per answer (utime+stime from /proc, steadier than req/s on a shared machine). Not a timed test: figures depend on the
machine and what else runs on it.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.wrk import run_wrk
from devtools.nginx import Nginx, forward_auth_site, free_port, nginx_binary
from devtools.processes import ServerProcess, server_config

ROOT = Path(__file__).resolve().parent.parent
#: The backend's answer asked for: a short text, as a small JSON API would give.
PATH = "/api/status/200"


def start_backend(workdir: Path) -> tuple[subprocess.Popen, str]:
    with open(workdir / "backend.log", "wb") as errors:
        process = subprocess.Popen([sys.executable, "-m", "devtools.echo_backend"], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=errors,
                                   stdin=subprocess.DEVNULL)
    line = process.stdout.readline().decode()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"the backend did not start: {(workdir / 'backend.log').read_text()}")
    return process, line.split()[-1]


def measure(args, workdir: Path) -> dict[str, list]:
    backend, backend_url = start_backend(workdir)
    server = nginx = None
    try:
        config = server_config(gateway={"routes": [
            {"prefix": "/api/", "upstream": backend_url, "auth": "required"}]})
        server = ServerProcess(config, workdir / "minisession").start().wait_ready()
        port = free_port()
        site = forward_auth_site(f"127.0.0.1:{server.port}",
                                 backend_url.removeprefix("http://"), port, workdir)
        nginx = Nginx(nginx_binary(), workdir, site).start(port)
        cookies = workdir / "cookies.txt"
        with httpx.Client(base_url=server.url, timeout=10) as client:
            ids = [client.post("/login", json={"code": f"dev:bench{n}"}).json()["session_id"]
                   for n in range(args.sessions)]
        cookies.write_text("".join(f"sessionid={token}\n" for token in ids))
        targets = {"direct (backend)": backend_url, "minisession gateway": server.url,
                   "nginx auth_request + /auth": f"http://127.0.0.1:{port}"}
        for name, url in targets.items():  # each answers as expected before it is measured
            answer = httpx.get(url + PATH, headers={"Cookie": f"sessionid={ids[0]}"}, timeout=10)
            assert answer.status_code == 200, (name, answer.status_code, answer.text[:200])
        results = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                cpu_before = server.cpu_seconds()
                result = run_wrk(
                    url + PATH, "session.lua", duration=args.seconds,
                    connections=args.connections, threads=2, max_requests=10_000_000,
                    env={"BENCH_COOKIES": str(cookies)}, workdir=workdir)
                # minisession's CPU per answer (0 for the direct runs): the figure that the
                # other processes on a shared machine do not move, as they move req/s.
                result.cpu_ms = (server.cpu_seconds() - cpu_before) * 1000 / max(
                    1, result.requests)
                results[name].append(result)
        return results
    finally:
        if nginx is not None:
            nginx.stop()
        if server is not None:
            server.stop()
        backend.terminate()
        backend.wait(10)


def table(results: dict[str, list]) -> str:
    rows = [f"{'target':<28}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>10}{'errors':>8}"
            f"{'minisession CPU ms/req':>24}"]
    for name, runs in results.items():
        rows.append(f"{name:<28}{statistics.median(r.p50_ms for r in runs):>9.2f}"
                    f"{statistics.median(r.p99_ms for r in runs):>9.2f}"
                    f"{statistics.median(r.rate for r in runs):>10.0f}"
                    f"{sum(r.error_count for r in runs):>8}"
                    f"{statistics.median(r.cpu_ms for r in runs):>24.3f}")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="minisession-bench-gateway-") as workdir:
        results = measure(args, Path(workdir))
    print(f"authenticated GET {PATH}, {args.connections} connections, median of "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
