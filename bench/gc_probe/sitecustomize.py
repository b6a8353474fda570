"""``python3 -m bench.run --gc-probe``: the garbage collector's passes in each server process.

Python imports ``sitecustomize`` at start-up from its path; the harness puts this directory on
the servers' ``PYTHONPATH`` and names a directory in ``BENCH_GC_PROBE``. Every pass of the
collector is then timed (``gc.callbacks``), and at exit (``minisession serve`` exits cleanly on
SIGTERM) the process writes one JSON file there: its command line and every pass (generation,
milliseconds, wall-clock time, so that the harness can keep those made under load). Nothing is
recorded without the variable.
"""

import os

if os.environ.get("BENCH_GC_PROBE"):
    import atexit
    import gc
    import json
    import sys
    import time

    _started: list[float] = [0.0]
    _passes: list[tuple[int, float, float]] = []

    def _time_pass(phase: str, info: dict) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
        else:
            _passes.append((info["generation"], (time.perf_counter() - _started[0]) * 1000.0,
                            time.time()))

    def _write() -> None:
        path = os.path.join(os.environ["BENCH_GC_PROBE"], f"gc.{os.getpid()}.json")
        with open(path, "w") as out:
            json.dump({"argv": sys.argv, "passes": _passes}, out)

    gc.callbacks.append(_time_pass)
    atexit.register(_write)
