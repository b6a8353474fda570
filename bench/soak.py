"""Soak test: steady mixed traffic against one minisession process for a set time.

Each of ``--concurrency`` virtual users loops: log in, then 8 rounds of (check the session,
write a key of session data, read the data back and compare), then log out. The run stops
after ``--duration`` seconds or ``--max-requests`` requests, whichever comes first, and prints
requests served, errors by status, latency percentiles, and the server's RSS and open file
descriptors at the start and the end.

By default it starts everything itself on 127.0.0.1 (FerretDB from devtools/ferretdb.py in a
temporary directory, the fake WeChat, one ``minisession serve``) and stops it afterwards.
``--url`` points it at a running server instead (loopback only; ``--pid`` to sample its RSS;
``--login-code 'dev:{openid}'`` for a server with the dev login provider).

    python bench/soak.py --duration 600 --concurrency 16

Exit status: 0 when every answer was the expected one, 1 otherwise.
"""

import argparse
import asyncio
import ipaddress
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.ferretdb import FerretDB, ensure_binary
from devtools.processes import FakePlatformsProcess, ServerProcess, server_config

ROUNDS = 8  # check/write/read rounds per login


class Stats:
    def __init__(self, max_requests: int, deadline: float):
        self.max_requests = max_requests
        self.deadline = deadline
        self.started = 0
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.errors: Counter = Counter()  # unexpected outcomes, by status or kind

    def may_start(self) -> bool:
        if self.started >= self.max_requests or time.monotonic() >= self.deadline:
            return False
        self.started += 1
        return True


class StopRun(Exception):
    """The time or request budget is spent."""


class VirtualUser:
    def __init__(self, client: httpx.AsyncClient, stats: Stats, openid: str, code: str):
        self.client = client
        self.stats = stats
        self.openid = openid
        self.code = code
        self.logins = 0

    async def call(self, method: str, path: str, expect: int, token: str | None = None,
                   body: dict | None = None) -> httpx.Response | None:
        if not self.stats.may_start():
            raise StopRun
        headers = {"X-Session": token} if token else {}
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, headers=headers, json=body)
        except httpx.HTTPError as exc:
            self.stats.errors[type(exc).__name__] += 1
            return None
        self.stats.latencies.append(time.perf_counter() - started)
        self.stats.statuses[response.status_code] += 1
        if response.status_code != expect:
            self.stats.errors[response.status_code] += 1
            return None
        return response

    async def run(self) -> None:
        try:
            while True:
                await self.cycle()
        except StopRun:
            pass

    async def cycle(self) -> None:
        self.logins += 1
        code = self.code.format(openid=self.openid, n=self.logins)
        login = await self.call("POST", "/login", 200, body={"code": code})
        if login is None:
            await asyncio.sleep(0.1)  # the failure is counted; do not spin on it
            return
        token = login.json()["session_id"]
        for step in range(ROUNDS):
            await self.call("GET", "/session", 200, token)
            await self.call("PATCH", "/session/data", 200, token,
                            {"step": step, f"k{step % 4}": self.logins})
            read = await self.call("GET", "/session/data", 200, token)
            if read is not None and read.json().get("step") != step:
                self.stats.errors["wrong data"] += 1
        await self.call("DELETE", "/session", 204, token)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def process_figures(pid: int | None) -> dict:
    if pid is None:
        return {}
    figures = {"fds": len(os.listdir(f"/proc/{pid}/fd"))}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                figures["rss_mib"] = round(int(line.split()[1]) / 1024, 1)
    return figures


async def monitor(stats: Stats, pid: int | None, every: float, samples: list,
                  done: asyncio.Event) -> None:
    begun = time.monotonic()
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), every)
        except TimeoutError:
            pass
        elapsed = time.monotonic() - begun
        sample = {"at_s": round(elapsed), "requests": len(stats.latencies),
                  "errors": sum(stats.errors.values()), **process_figures(pid)}
        samples.append(sample)
        print("  " + "  ".join(f"{k}={v}" for k, v in sample.items()), flush=True)


async def soak(url: str, pid: int | None, args) -> dict:
    stats = Stats(args.max_requests, time.monotonic() + args.duration)
    limits = httpx.Limits(max_connections=args.concurrency,
                          max_keepalive_connections=args.concurrency)
    before = process_figures(pid)
    samples: list = []
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        users = [VirtualUser(client, stats, f"soak-{n}", args.login_code)
                 for n in range(args.concurrency)]
        watcher = asyncio.ensure_future(monitor(stats, pid, args.report_every, samples, done))
        started = time.monotonic()
        await asyncio.gather(*(user.run() for user in users))
        elapsed = time.monotonic() - started
        done.set()
        await watcher
    after = process_figures(pid)
    latencies = sorted(stats.latencies)
    return {
        "duration_s": round(elapsed, 1),
        "concurrency": args.concurrency,
        "requests_served": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors": {str(k): v for k, v in sorted(stats.errors.items(), key=str)},
        "latency_ms": {name: round(1000 * percentile(latencies, q), 2)
                       for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99),
                                       ("max", 1.0))},
        "server_start": before,
        "server_end": after,
        "samples": samples,
    }


def print_report(result: dict) -> None:
    errors = result["errors"]
    lat = result["latency_ms"]
    start, end = result["server_start"], result["server_end"]
    print(f"duration: {result['duration_s']} s at concurrency {result['concurrency']}")
    print(f"requests served: {result['requests_served']} ({result['requests_per_s']}/s)")
    print("statuses: " + ", ".join(f"{k}: {v}" for k, v in result["statuses"].items()))
    print("errors by status: " + (", ".join(f"{k}: {v}" for k, v in errors.items())
                                  if errors else "none"))
    print(f"latency: p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, "
          f"max {lat['max']} ms")
    if start:
        print(f"server RSS: start {start['rss_mib']} MiB, end {end['rss_mib']} MiB; "
              f"open fds: start {start['fds']}, end {end['fds']}")


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        sys.exit(f"soak: {url} is not a loopback address; this tool only targets this machine")


def own_stack(workdir: Path, args):
    """FerretDB + fake WeChat + one minisession on loopback; returns (server, stop function)."""
    started = []
    try:
        uri = args.mongodb_uri
        if not uri:
            ferret = FerretDB(ensure_binary(), workdir / "ferretdb")
            ferret.start()
            started.append(ferret)
            uri = ferret.uri
        fake = FakePlatformsProcess(workdir).start()
        started.append(fake)
        config = server_config(uri, database="minisession_soak", wechat_base=fake.url,
                               log={"level": args.log_level})
        server = ServerProcess(config, workdir).start()
        started.append(server)
        server.wait_ready()
    except BaseException:
        for part in reversed(started):
            part.stop()
        raise

    def stop() -> dict:
        status = server.stop()
        log = server.log()
        for part in reversed(started[:-1]):
            part.stop()
        return {"exit_status": status, "tracebacks": log.count("Traceback"),
                "error_lines": log.count(" ERROR "), "warning_lines": log.count(" WARNING ")}

    return server, stop


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds (default 60)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="virtual users, each one request at a time (default 16)")
    parser.add_argument("--max-requests", type=int, default=5_000_000,
                        help="stop after this many requests (default 5000000)")
    parser.add_argument("--url", help="a running minisession (loopback) instead of our own")
    parser.add_argument("--pid", type=int, help="with --url: its process id, to sample RSS")
    parser.add_argument("--login-code", default="user:{openid}:{n}",
                        help="login code template (default 'user:{openid}:{n}', fake WeChat)")
    parser.add_argument("--mongodb-uri", help="our own server uses this MongoDB, not FerretDB")
    parser.add_argument("--log-level", default="info", help="our own server's log level")
    parser.add_argument("--report-every", type=float, default=30,
                        help="seconds between progress lines (default 30)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.max_requests < 1:
        parser.error("--duration, --concurrency and --max-requests must be positive")

    with tempfile.TemporaryDirectory(prefix="minisession-soak-") as tmp:
        if args.url:
            check_loopback(args.url)
            url, pid, stop = args.url.rstrip("/"), args.pid, None
        else:
            server, stop = own_stack(Path(tmp), args)
            url, pid = server.url, server.pid
        print(f"soak: {url}, {args.duration:g} s, concurrency {args.concurrency}, "
              f"at most {args.max_requests} requests", flush=True)
        try:
            result = asyncio.run(soak(url, pid, args))
        finally:
            shutdown = stop() if stop else None
    if shutdown is not None:
        result["server_shutdown"] = shutdown
    print_report(result)
    if shutdown is not None:
        print(f"server shutdown: exit status {shutdown['exit_status']}, "
              f"{shutdown['tracebacks']} tracebacks, {shutdown['error_lines']} ERROR lines, "
              f"{shutdown['warning_lines']} WARNING lines in its log")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    clean = not result["errors"] and (shutdown is None or (
        shutdown["exit_status"] == 0 and shutdown["tracebacks"] == 0))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
