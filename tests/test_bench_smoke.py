"""A smoke run of the benchmark harness (bench/run.py), with tiny durations and counts.

The benchmarks themselves are not tests; this checks that the one documented command still
starts everything it needs, drives real load through wrk, gets only good answers, and reports
what the performance doc quotes. The npm peer (scenario 6) is left out: it needs the npm
registry, and the rest must work without it. wrk and valgrind are installed by the harness
when missing (through apt, as root); if that is impossible this test fails, it is not skipped.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("roundtrips,baseline,baseline-uvloop,memory,memory-asyncio,mongodb,mongodb-asyncio,"
             "pymongo,batched,batched-pymongo,instructions,login,workers,size,rss")


def test_the_benchmark_command_measures_every_scenario_without_errors(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--scenarios", SCENARIOS, "--duration", "1",
         "--warmup", "0", "--rounds", "1", "--connections", "4", "--sessions", "5",
         "--sizes", "50,200", "--sample", "40", "--ferretdb-id-index",
         "--instruction-requests", "20", "--instruction-warmup", "5",
         "--rss-first", "300", "--rss-requests", "1500", "--gc-probe",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["failures"] == []

    rows = {row["key"]: row for row in result["rows"]}
    expected = {"baseline", "baseline-uvloop", "memory", "memory-asyncio", "mongodb",
                "mongodb-asyncio", "pymongo", "batched", "batched-pymongo", "login"}
    # Each size: a sample of the preloaded sessions, and sessions logged in before and after.
    expected |= {f"size-{n}{which}" for n in (50, 200) for which in ("", "-before", "-after")}
    if "workers_skipped" in result["facts"]:
        # A minisession without [server] workers: the harness says so instead of measuring.
        assert "workers" in result["facts"]["workers_skipped"]
    else:
        expected |= {"workers-1", "workers-2"}
    assert expected <= set(rows)
    for key in expected:
        row = rows[key]
        # Real load reached the server, and every answer was the expected success.
        assert row["requests"] > 0 and row["rate"] > 0, row
        assert row["errors"] == {} and set(row["statuses"]) == {"200"}, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row

    # The store round trips of one authenticated request, counted on the wire.
    steps = result["facts"]["roundtrips"]["steps"]
    inside = steps["GET /session, inside touch_after"]
    assert (inside["reads"], inside["writes"]) == (1, 0)
    assert steps["GET /session, touch_after passed"]["writes"] >= 1  # the expiry slid

    rss = result["facts"]["rss"]
    assert rss["first_requests"] >= 300 and rss["last_requests"] >= 1500
    assert rss["first_kib"] > 0 and rss["last_kib"] > 0
    assert [p["size"] for p in result["facts"]["preload"]] == [50, 200]
    # callgrind counted the instructions of the four servers' requests.
    counted = result["facts"]["instructions"]
    for server in ("baseline", "baseline_uvloop", "memory", "memory_asyncio"):
        assert counted[f"{server}_per_request"] > 0, counted
    # The size scenario gave FerretDB's table the _id index its lookups can use.
    assert "CREATE INDEX" in result["facts"]["ferretdb_id_index"]

    # --gc-probe: every minisession server of the side-by-side runs reported its collector.
    assert {"memory", "mongodb", "pymongo"} <= set(result["facts"]["gc"])
    assert "## Garbage collector passes under load" in done.stdout

    # The printed report carries the table and the targets the performance doc quotes.
    assert "| 1. bare Tornado JSON handler, no logging (ceiling) |" in done.stdout
    assert "scenario 2 >= 0.8 x scenario 1 throughput" in done.stdout
    assert "scenario 2 >= 0.8 x scenario 1u (the bare handler on the same loop)" in done.stdout
    assert "one store read, zero writes per request inside touch_after" in done.stdout
