"""The printed result of a run: the machine, the table, the targets, the other figures."""

import os
import platform
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.wrk import WrkResult


@dataclass
class Row:
    key: str
    label: str
    result: WrkResult
    load: float  # 1-minute load average when the run started
    rounds: list[int] = field(default_factory=list)  # req/s of every round, in order
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        r = self.result
        return {"key": self.key, "label": self.label, "requests": r.requests,
                "seconds": round(r.seconds, 2), "rate": round(r.rate, 1),
                "p50_ms": r.p50_ms, "p90_ms": r.p90_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
                "server_cpu_ms_per_request": round(r.cpu_ms, 4),
                "server_system_cpu_ms_per_request": round(r.system_cpu_ms, 4),
                "store_cpu_ms_per_request": (None if r.store_cpu_ms is None
                                             else round(r.store_cpu_ms, 4)),
                "errors": r.errors, "statuses": r.statuses, "load_1min": self.load,
                "rounds_rate": self.rounds, "notes": self.notes + r.notes}


def machine() -> dict:
    def first(pattern: str, text: str) -> str | None:
        match = re.search(pattern, text, re.MULTILINE)
        return match.group(1).strip() if match else None

    cpuinfo = _read("/proc/cpuinfo")
    meminfo = _read("/proc/meminfo")
    mem_kib = first(r"^MemTotal:\s+(\d+)", meminfo)
    return {
        "cpu": first(r"^model name\s*:(.*)$", cpuinfo) or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kib) / 2**20, 1) if mem_kib else None,
        "kernel": platform.release(),
        "os": first(r'^PRETTY_NAME="?([^"\n]*)', _read("/etc/os-release")),
        "python": platform.python_version(),
        "tornado": _module_version("tornado"),
        "motor": _module_version("motor"),
        "pymongo": _module_version("pymongo"),
        "uvloop": _module_version("uvloop"),
        "wrk": _tool_version(["wrk", "-v"], r"wrk (\S+)"),
        "node": _tool_version(["node", "--version"], r"(v\S+)"),
        "commit": _commit(),
    }


def _commit() -> str | None:
    """The checkout measured: its commit, and whether files were changed since."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, check=True, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + (" (with uncommitted changes)" if dirty else "")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _module_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _tool_version(command: list[str], pattern: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else None


def table(rows: list[Row]) -> str:
    header = ("| scenario | req/s | p50 ms | p99 ms | errors | requests "
              "| server CPU ms/req (system) | FerretDB CPU ms/req | load (1 min) "
              "| req/s of each round |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        r = row.result
        errors = str(r.error_count)
        if r.errors:
            errors += " (" + ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) + ")"
        rounds = ", ".join(f"{rate:,}" for rate in row.rounds)
        store = "" if r.store_cpu_ms is None else f"{r.store_cpu_ms:.3f}"
        lines.append(f"| {row.label} | {r.rate:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                     f"{errors} | {r.requests:,} | {r.cpu_ms:.3f} ({r.system_cpu_ms:.3f}) | "
                     f"{store} | {row.load:.2f} | "
                     f"{rounds} |")
    return "\n".join(lines)


def targets(rows: list[Row], facts: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target the run has the figures for."""
    by_key = {row.key: row.result for row in rows}
    found = []

    rounds = {row.key: row.rounds for row in rows}

    def ratio(a: str, b: str) -> float | None:
        if a in by_key and b in by_key and by_key[b].rate:
            return by_key[a].rate / by_key[b].rate
        return None

    def by_round(a: str, b: str) -> str:
        """The ratio in each round, and their median: the two runs of one round, seconds apart,
        share the machine's speed, which drifts by up to a third within minutes here."""
        pairs = [x / y for x, y in zip(rounds[a], rounds[b]) if y]
        if len(pairs) < 2:
            return ""
        each = ", ".join(f"{pair:.2f}" for pair in pairs)
        return f"; round by round {each}: median {statistics.median(pairs):.2f} x"

    if (value := ratio("memory", "baseline")) is not None:
        base, mine = by_key["baseline"].cpu_ms, by_key["memory"].cpu_ms
        by_cpu = f" (server CPU per request: {base / mine:.2f} x)" if base and mine else ""
        found.append(("scenario 2 >= 0.8 x scenario 1 throughput",
                      f"{value:.2f} x{by_cpu}{by_round('memory', 'baseline')}", value >= 0.8))
    if (value := ratio("memory", "baseline-uvloop")) is not None:
        found.append(("scenario 2 >= 0.8 x scenario 1u (the bare handler on the same loop)",
                      f"{value:.2f} x{by_round('memory', 'baseline-uvloop')}", value >= 0.8))
    if (value := ratio("memory", "peer-memory")) is not None:
        found.append(("scenario 2 >= the memory peer (scenario 2p) throughput",
                      f"{value:.2f} x{by_round('memory', 'peer-memory')}", value >= 1.0))
    for key, name in (("mongodb", "scenario 3"), ("pymongo", "scenario 3p (pymongo)"),
                      ("batched", "scenario 3b (batched reads)"),
                      ("batched-pymongo", "scenario 3bp (pymongo, batched reads)")):
        if (value := ratio(key, "peer")) is not None:
            mine, peer = by_key[key], by_key["peer"]
            found.append((f"{name} >= peer (scenario 6) throughput",
                          f"{value:.2f} x{by_round(key, 'peer')}", value >= 1.0))
            found.append((f"{name} p99 no worse than the peer's",
                          f"{mine.p99_ms:.1f} ms vs {peer.p99_ms:.1f} ms",
                          mine.p99_ms <= peer.p99_ms))
    for suffix, which in (("", ""), ("-before", ", logged in before"),
                          ("-after", ", logged in after")):
        sizes = sorted((int(k.split("-")[1]), r) for k, r in by_key.items()
                       if k.startswith("size-") and k.endswith(suffix) and k.count("-") == 1
                       + bool(suffix))
        if len(sizes) >= 2:
            (small, r_small), (large, r_large) = sizes[0], sizes[-1]
            value = r_large.rate / r_small.rate if r_small.rate else 0.0
            found.append((f"throughput at {large:,} sessions within 10 % of {small:,}{which}",
                          f"{value:.2f} x", value >= 0.9))
    if trips := facts.get("roundtrips"):
        inside = trips["steps"]["GET /session, inside touch_after"]
        found.append(("one store read, zero writes per request inside touch_after",
                      f"{inside['reads']} read(s), {inside['writes']} write(s)",
                      inside["reads"] == 1 and inside["writes"] == 0))
    if (value := ratio("workers-2", "workers-1")) is not None:
        found.append(("workers = 2 >= 1.7 x workers = 1", f"{value:.2f} x", value >= 1.7))
    elif "workers_skipped" in facts:
        found.append(("workers = 2 >= 1.7 x workers = 1", "not measured: "
                      + facts["workers_skipped"], None))
    if counted := facts.get("instructions"):
        # Not the target's own measure (throughput), its noise-free companion.
        target = "scenario 2 >= 0.8 x scenario 1, in instructions per request (callgrind)"
        measured = (f"{counted['ratio']:.3f} x ({counted['baseline_per_request']:,} vs "
                    f"{counted['memory_per_request']:,})")
        found.append((target, measured, counted["ratio"] >= 0.8))
        if counted.get("baseline_uvloop_per_request"):
            same_loop = counted["baseline_uvloop_per_request"] / counted["memory_per_request"]
            found.append(("scenario 2 >= 0.8 x scenario 1u, in instructions per request",
                          f"{same_loop:.3f} x ({counted['baseline_uvloop_per_request']:,} vs "
                          f"{counted['memory_per_request']:,})", same_loop >= 0.8))
    if rss := facts.get("rss"):
        value = rss["last_kib"] / rss["first_kib"]
        target = (f"RSS after {rss['last_requests']:,} requests within 5 % of after "
                  f"{rss['first_requests']:,}")
        found.append((target,
                      f"{rss['first_kib']:,} -> {rss['last_kib']:,} KiB ({value:.3f} x)",
                      value <= 1.05))
    return found


def format_targets(found: list[tuple[str, str, bool | None]]) -> str:
    lines = ["| target | measured | |", "|---|---|---|"]
    for target, measured, met in found:
        verdict = {True: "met", False: "MISSED", None: "skipped"}[met]
        lines.append(f"| {target} | {measured} | {verdict} |")
    return "\n".join(lines)
