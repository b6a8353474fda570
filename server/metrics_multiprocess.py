"""The shared directory where pre-forked workers write their metrics (prometheus-client's
multiprocess mode).

Made private by the parent before it forks (``mkdtemp``: mode 0700, a fresh name, so no other
user and no earlier run can add figures), handed to the workers in ``PROMETHEUS_MULTIPROC_DIR``,
and removed when the parent exits. This module does not import prometheus-client at the top:
the variable must be set before anything imports it.
"""

import contextlib
import logging
import os
import shutil
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger("minisession")


@contextlib.contextmanager
def metrics_dir(workers: int):
    """With several workers, a fresh private directory in ``PROMETHEUS_MULTIPROC_DIR`` for as
    long as the block runs; with one, no directory (the plain in-process registry)."""
    for name in (ENV, ENV.lower()):  # never figures left in an inherited directory
        os.environ.pop(name, None)
    if workers == 1:
        yield None
        return
    path = tempfile.mkdtemp(prefix="minisession-metrics-")
    os.environ[ENV] = path
    log.info("metrics of %d workers gathered in %s", workers, path)
    try:
        yield path
    finally:
        os.environ.pop(ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """Tell prometheus-client a worker is gone (its counters stay: totals never go down)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
