"""Login rate limits: per client address and overall, so a flood of /login cannot burn the
WeChat API quota (code2Session calls) or this server.

Each limit is a GCRA (the "generic cell rate algorithm", a token bucket kept as one number per
key): ``rate`` logins per minute, in bursts of up to ``rate``. Limits live in this process only;
with N processes behind a load balancer the overall limit is N times the configured one.

The per-address limit counts a network block as one client (:func:`client_block`): an IPv6
host is given a whole /64 and can send each login from a new address of it.
"""

import ipaddress
import math
from collections import OrderedDict

from server import metrics
from server.errors import RateLimited

#: Addresses tracked at once; beyond it the least recently seen are forgotten (bounded memory
#: under a flood from many addresses: a forgotten address starts afresh, nothing worse).
MAX_TRACKED = 100_000


class RateLimit:
    """``rate`` events per minute per key, bursts of up to ``rate``; 0 disables."""

    def __init__(self, rate: int, max_tracked: int = MAX_TRACKED):
        self.rate = rate
        self._interval = 60.0 / rate if rate else 0.0
        self._burst = rate * self._interval  # 60 s worth of events may come at once
        self._due: OrderedDict[str, float] = OrderedDict()  # key -> theoretical arrival time
        self._max_tracked = max_tracked

    def take(self, key: str, now: float) -> float:
        """Count one event; 0.0 if allowed, else the seconds to wait before it would be."""
        if not self.rate:
            return 0.0
        due = max(self._due.get(key, now), now) + self._interval
        wait = due - self._burst - now
        if wait > 0:
            return wait
        self._due[key] = due
        self._due.move_to_end(key)
        if len(self._due) > self._max_tracked:
            self._due.popitem(last=False)
        return 0.0


def client_block(address: str, ipv4_prefix: int, ipv6_prefix: int) -> str:
    """The network ``address`` is counted in, e.g. "2001:db8:1:2::/64"; IPv4-mapped IPv6
    addresses count as IPv4, and anything that is no IP address is counted as it is."""
    try:
        ip = ipaddress.ip_address(address)
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
        return str(ipaddress.ip_network((ip, prefix), strict=False))
    except ValueError:
        return address


class LoginRateLimits:
    """The two limits on ``/login``; :meth:`check` raises 429 ``rate_limited`` with Retry-After."""

    def __init__(self, per_address: int, overall: int, clock, ipv4_prefix: int = 32,
                 ipv6_prefix: int = 64):
        self.per_address = RateLimit(per_address)
        self.overall = RateLimit(overall, max_tracked=1)
        self.clock = clock
        self.prefixes = (ipv4_prefix, ipv6_prefix)

    def check(self, address: str) -> None:
        now = self.clock.now()
        # The address first: one noisy client must not use up everybody's overall allowance.
        wait = self.per_address.take(client_block(address, *self.prefixes), now)
        if wait:
            metrics.LOGIN_RATE_LIMITED.labels("per_address").inc()
            raise _limited(wait, "too many logins from your address")
        wait = self.overall.take("", now)
        if wait:
            metrics.LOGIN_RATE_LIMITED.labels("overall").inc()
            raise _limited(wait, "too many logins right now")


def _limited(wait: float, why: str) -> RateLimited:
    seconds = max(1, math.ceil(wait))
    return RateLimited(f"{why}; try again in {seconds} s", retry_after=seconds)
