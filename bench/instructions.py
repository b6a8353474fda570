"""Instructions per request, counted by valgrind's callgrind: scenario 1 against scenario 2.

Four servers are counted: the bare handler (scenario 1, asyncio, no access line) and on uvloop
(1u), and the memory-store minisession in its default configuration (2: uvloop where it is
installed) and on asyncio's loop (2a).

Requests per second and CPU time on a shared 2-core machine move by 5-10 % from one run to
the next, as much as the margin the 0.8 x target is judged on. Instructions executed do not
depend on what else runs: the same server, requests and inputs give the same count within
0.1 %. So this scenario starts the baseline and a memory-store minisession under callgrind
(instrumentation off while they start), then counts only the ``GET /session`` requests that
one keep-alive client sends in sequence, after a warm-up:

    python3 -m bench.run --scenarios instructions

Instructions are not time (cache misses, system calls and the machine's own speed are not in
them): read the ratio as minisession's own work against Tornado's, beside the measured rates.
valgrind comes from Debian's packages, installed like wrk when it is missing.
"""

import http.client
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench import sessions
from bench.config import server_config, write_config
from bench.procs import ensure_debian_tool, free_port, python_module

#: The servers run ~50 x slower under callgrind (with instrumentation off, less): still
#: they must answer their health check within this.
START_TIMEOUT = 180.0


def scenario(bench) -> None:
    args = bench.args
    counted = {}
    for key, event_loop in (("baseline", "asyncio"), ("baseline_uvloop", "uvloop")):
        port = free_port()
        # With the Cookie header minisession is sent, as in scenario 1 (bench/sessions.py).
        counted[key] = _measure(bench, f"instructions-{key}", python_module(
            "bench.baseline", "--port", str(port), "--log-level", args.log_level,
            "--event-loop", event_loop), port,
            cookie=lambda url: sessions.unchecked_cookies(1)[0])
    for key, server in (("memory", {}), ("memory_asyncio", {"event_loop": "asyncio"})):
        port = free_port()
        config = server_config(port, bench.wechat_url(), log_level=args.log_level, **server)
        path = write_config(config, bench.workdir / f"instructions-{key}.toml")
        # The memory store lives in the process: the session is made on the instance measured.
        counted[key] = _measure(bench, f"instructions-{key}",
                                python_module("server.cli", "serve", "--config", str(path)),
                                port, cookie=lambda url: sessions.login_minisession(url, 1)[0])
    baseline, memory = counted["baseline"], counted["memory"]
    bench.facts["instructions"] = {
        "requests": args.instruction_requests, "ratio": round(baseline / memory, 3),
        **{f"{key}_per_request": value for key, value in counted.items()},
    }
    print(f"  instructions per request: baseline {baseline:,} (on uvloop "
          f"{counted['baseline_uvloop']:,}), memory store {memory:,} (on asyncio "
          f"{counted['memory_asyncio']:,}); scenario 1 / scenario 2: {baseline / memory:.3f}",
          flush=True)


def _measure(bench, name: str, command: list[str], port: int,
             cookie: Callable[[str], str]) -> int:
    """Instructions per ``GET /session`` of the server ``command``, started under callgrind,
    each request sending the ``Cookie`` header ``cookie(its URL)`` gives."""
    requests, warmup = bench.args.instruction_requests, bench.args.instruction_warmup
    out = bench.workdir / f"{name}.callgrind"
    valgrind = [ensure_debian_tool("valgrind"), "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={out}"]
    service = bench.service(name, valgrind + command, port, timeout=START_TIMEOUT)
    headers = {"Cookie": cookie(service.url)}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def send(count: int) -> None:
        for _ in range(count):
            connection.request("GET", "/session", headers=headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{name}: GET /session answered {answer.status}")

    control = ["callgrind_control", "", str(service.process.pid)]
    try:
        send(warmup)
        control[1] = "--instr=on"
        subprocess.run(control, check=True, capture_output=True, timeout=120)
        send(requests)
        control[1] = "--instr=off"
        subprocess.run(control, check=True, capture_output=True, timeout=120)
    finally:
        connection.close()
        service.stop(timeout=120)  # callgrind writes its counts as the process exits
    return _total(out) // requests


def _total(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"callgrind wrote no totals to {path}")
