"""Time comes from one injectable clock, so tests drive expiry without sleeping."""

import time


class SystemClock:
    """Wall-clock time as float seconds since the Unix epoch."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when told to (tests, the fake WeChat server's code expiry)."""

    def __init__(self, start: float = 1_800_000_000.0):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
