"""The load generator: wrk (Debian's package), driven by the Lua scripts in ``bench/lua``.

Every run is bounded twice: ``-d`` seconds, and a cap on answers (each wrk thread stops after
its share). wrk still waits out ``-d`` after a cap is hit, so a capped run's rate is
understated; :attr:`WrkResult.capped` says so, and the harness sizes caps to be safety
bounds, except where the count itself is what is measured (the RSS run).
"""

import json
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import ensure_debian_tool, pinned

LUA = Path(__file__).resolve().parent / "lua"
def ensure_wrk() -> str:
    """The path of ``wrk``, installed from Debian's packages when missing and we are root."""
    return ensure_debian_tool("wrk")


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    statuses: dict[int, int]
    capped: bool = False
    notes: list[str] = field(default_factory=list)
    #: CPU milliseconds the server under load used per answer (set by the harness).
    cpu_ms: float = 0.0
    #: The part of ``cpu_ms`` spent in the kernel (system time).
    system_cpu_ms: float = 0.0
    # CPU time of the FerretDB process the harness started, ms per answer (None: not ours).
    store_cpu_ms: float | None = None

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        """Socket errors, timeouts and 4xx/5xx answers (wrk counts status > 399)."""
        return sum(self.errors.values())


def run_wrk(url: str, script: str, *, duration: float, connections: int, threads: int,
            max_requests: int, env: dict | None = None, workdir: Path) -> WrkResult:
    """Run ``bench/lua/<script>`` (after ``common.lua``) against ``url``; its parsed result."""
    wrk = ensure_wrk()
    combined = Path(workdir) / f"wrk-{script}"
    combined.write_text((LUA / "common.lua").read_text() + "\n" + (LUA / script).read_text())
    threads = max(1, min(threads, connections))
    cap = math.ceil(max_requests / threads)
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "--timeout", "10s", "-s", str(combined), url]
    run_env = {**os.environ, **(env or {}), "BENCH_CAP_PER_THREAD": str(cap)}
    done = subprocess.run(command, env=run_env, capture_output=True, text=True,
                          timeout=duration + 60, check=False, preexec_fn=pinned("load"))
    line = next((raw for raw in done.stdout.splitlines() if raw.startswith("BENCH_RESULT ")),
                None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {' '.join(command)}\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    latency = data["latency_us"]
    result = WrkResult(
        requests=data["requests"], seconds=data["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000, p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000, max_ms=latency["max"] / 1000,
        errors={k: v for k, v in data["errors"].items() if v},
        statuses={int(k): v for k, v in data["statuses"].items()},
        capped=data["requests"] >= cap * threads,
    )
    if result.capped:
        result.notes.append(f"answer cap {cap * threads} reached: rate understated")
    return result
