"""bench/soak.py, run for a few seconds: it must work and print the figures docs quote."""

import json
import re
import subprocess
import sys

from devtools.processes import ROOT


def test_a_short_soak_serves_mixed_traffic_without_errors(tmp_path, mongodb_uri):
    figures = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "bench/soak.py", "--duration", "3", "--concurrency", "4",
         "--max-requests", "3000", "--report-every", "1", "--mongodb-uri", mongodb_uri,
         "--json", str(figures)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    served = int(re.search(r"^requests served: (\d+) \(", out, re.MULTILINE).group(1))
    assert served > 50
    assert re.search(r"^errors by status: none$", out, re.MULTILINE)
    assert re.search(r"^latency: p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms$",
                     out, re.MULTILINE)
    assert re.search(r"^server RSS: start [\d.]+ MiB, end [\d.]+ MiB; open fds: start \d+, "
                     r"end \d+$", out, re.MULTILINE)
    assert re.search(r"^server shutdown: exit status 0, 0 tracebacks", out, re.MULTILINE)

    result = json.loads(figures.read_text())
    assert result["requests_served"] == served
    # Every kind of request of the mix was answered: logins and checks (200), logouts (204).
    assert result["statuses"]["200"] > 0 and result["statuses"]["204"] > 0
    assert result["errors"] == {}
    assert result["samples"], "no progress line was sampled"
