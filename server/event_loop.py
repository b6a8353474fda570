"""The event loop ``minisession serve`` runs on: ``server.event_loop``.

Tornado runs on any asyncio event loop. "uvloop" (libuv underneath, the optional dependency
``minisession[uvloop]``) spends less CPU per request than the standard library's loop on the
same work (figures: bench/run.py scenarios 2u and 3u against 2 and 3).
"""

import asyncio
from collections.abc import Coroutine


def run(main: Coroutine, event_loop: str = "asyncio"):
    """``asyncio.run(main)``, on a new loop of the configured kind."""
    if event_loop == "uvloop":
        import uvloop  # the config refuses "uvloop" when it is not installed

        return uvloop.run(main)
    return asyncio.run(main)
