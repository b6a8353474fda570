"""The event loop ``minisession serve`` runs on: ``server.event_loop``.

Tornado runs on any asyncio event loop. uvloop (libuv underneath; installed with minisession
wherever it has wheels: Linux and macOS) spends about 10 % fewer instructions per
``GET /session`` than the standard library's loop on the same work, and less CPU time
(figures: docs/performance.md, bench/run.py scenarios 2 and 3 against 2a and 3a). So
``"auto"``, the default, runs on uvloop when it imports and on asyncio's own loop otherwise;
the "listening" line names the loop it runs on.
"""

import asyncio
from collections.abc import Coroutine


def run(main: Coroutine, event_loop: str = "auto"):
    """``asyncio.run(main)``, on a new loop of the configured kind."""
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            # "auto" without uvloop: the standard loop serves the same, with more CPU. (An
            # explicit "uvloop" that is not installed is refused by the config already.)
            if event_loop == "uvloop":
                raise
        else:
            return uvloop.run(main)
    return asyncio.run(main)
