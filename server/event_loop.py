"""The event loop ``minisession serve`` runs on: ``server.event_loop``.

Tornado runs on any asyncio event loop. uvloop (libuv underneath; installed with minisession
wherever it has wheels: Linux and macOS) spends about 10 % fewer instructions per
``GET /session`` than the standard library's loop on the same work, and less CPU time
(figures: docs/performance.md, bench/run.py scenarios 2u and 3u against 2 and 3). So
``"auto"``, the default, runs on uvloop when it can be imported and on asyncio's own loop
otherwise; the "listening" line names the loop it runs on.
"""

import asyncio
import importlib.util
from collections.abc import Coroutine


def resolve(event_loop: str = "auto") -> str:
    """The loop ``event_loop`` (a ``server.event_loop`` value) stands for on this machine."""
    if event_loop == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return event_loop


def run(main: Coroutine, event_loop: str = "auto"):
    """``asyncio.run(main)``, on a new loop of the configured kind."""
    if resolve(event_loop) == "uvloop":
        try:
            import uvloop
        except ImportError:
            # "auto" found a uvloop that does not import (a broken install): the standard
            # loop serves the same, only with more CPU. An explicit "uvloop" was checked by
            # the config already.
            if event_loop == "uvloop":
                raise
        else:
            return uvloop.run(main)
    return asyncio.run(main)
