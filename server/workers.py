"""Pre-forked workers: ``server.workers`` processes serving one listening socket.

Python runs one request at a time per process, so one process uses one core; N workers
accept from the same socket (bound once, before forking) and the kernel spreads connections
between them. Workers share nothing but the store, which is why the configuration refuses
more than one worker with the in-process store.

The parent only supervises: it forwards SIGTERM/SIGINT to every worker (each then drains its
own requests, see ``server.cli``), replaces a worker that dies on its own, and exits once
all have stopped. Workers get a process group of their own, so a Ctrl-C in a terminal
reaches them once, through the parent, not twice.
"""

import logging
import os
import signal
import time
from collections.abc import Callable

log = logging.getLogger("minisession")

#: A worker that keeps dying is not restarted for ever: past this many restarts in a minute,
#: the parent stops everything and exits with an error.
MAX_RESTARTS_PER_MINUTE = 5
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def run_workers(count: int, serve_one: Callable[[], int],
                on_exit: Callable[[int], None] = lambda pid: None) -> int:
    """Fork ``count`` workers, each running ``serve_one()``; return the exit status.
    ``on_exit(pid)`` is called as each worker is found gone."""
    workers: dict[int, int] = {}  # pid -> worker number
    stopping = False
    status = 0
    restarts: list[float] = []

    def spawn(number: int) -> None:
        # A stop signal must not kill a worker before it can drain: it stays blocked (pending)
        # from the fork until the worker's own handlers are in place (server.cli unblocks it).
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker
            os.setpgid(0, 0)
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            code = 1
            try:
                code = serve_one()
            except BaseException:
                log.exception("worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(code)
        workers[pid] = number
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def stop_all(sig: int, _frame=None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(workers):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # Before forking: a signal that arrives while workers start must still reach them.
    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for number in range(count):
        spawn(number)
    log.info("started %d workers: %s", count, " ".join(map(str, workers)))

    while workers:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        number = workers.pop(pid, None)
        if number is None:
            continue
        on_exit(pid)
        code = os.waitstatus_to_exitcode(wait_status)
        if stopping:
            if code != 0:  # killed by a signal (negative) counts as a failure too
                status = status or (code if code > 0 else 1)
            continue
        now = time.monotonic()
        restarts[:] = [t for t in restarts if now - t < 60] + [now]
        if len(restarts) > MAX_RESTARTS_PER_MINUTE:
            log.error("worker %d exited with %d; too many restarts, stopping", number, code)
            status = 1
            stop_all(signal.SIGTERM)
            continue
        log.warning("worker %d (pid %d) exited with %d; starting a new one", number, pid, code)
        spawn(number)
    return status
