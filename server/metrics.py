"""Prometheus metrics: what an operator graphs and alerts on, served on their own listener.

Every label value is one of a small, fixed set chosen by this code (route templates, HTTP
methods and statuses, store method names, platform and error codes, app names), never a value a
client or a user chose: no id, openid, user id or path. That keeps each series count bounded
and the scrape free of user data.

With ``server.workers > 1`` the command sets ``PROMETHEUS_MULTIPROC_DIR`` (see
:mod:`server.metrics_multiprocess`) before this module is imported, so each worker writes its
figures to a shared directory and any worker answering a scrape reports all of them.
"""

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
)

from server.loop_metrics import LoopCounter, LoopHistogram


def _multiprocess() -> bool:
    """Whether workers share their figures through files: prometheus-client's multiprocess
    mode, which also takes the variable's deprecated lower-case spelling."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                or os.environ.get("prometheus_multiproc_dir"))


# The families every request adds to: counted in plain numbers on the event loop
# (server/loop_metrics.py), unless several workers share their figures through files.
_HotCounter, _HotHistogram = ((Counter, Histogram) if _multiprocess()
                              else (LoopCounter, LoopHistogram))

#: Request methods kept as a label; any other token a client sends is counted as "other".
#: Methods named as they are in metrics and the access log; any other is "other" (a method is
#: any token the client chooses, and a session id is one).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: a request is mostly a store call or two; a login adds the platform's round trip.
_FAST_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)

HTTP_REQUESTS = _HotCounter(
    "minisession_http_requests", "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"])
HTTP_REQUEST_DURATION = _HotHistogram(
    "minisession_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method", ["route", "method"],
    buckets=_FAST_BUCKETS)
LOGINS = Counter(
    "minisession_logins", "Successful logins, by app and outcome (new session or reused)",
    ["app", "outcome"])
SESSIONS_REVOKED = Counter(
    "minisession_sessions_revoked",
    "Sessions ended before their expiry, by kind (logout, admin, rotation_supersede)", ["kind"])
SESSIONS_ROTATED = Counter(
    "minisession_sessions_rotated", "Sessions moved to a fresh id (POST /session/rotate)")
SESSIONS_EXPIRED = Counter(
    "minisession_sessions_expired",
    "Expired sessions removed, by how (on_read: a request found it expired; purged: by the "
    "periodic purge)", ["how"])
STORE_OPERATION_DURATION = _HotHistogram(
    "minisession_store_operation_duration_seconds",
    "Time of each session store call, by operation (its method name); _count counts them",
    ["operation"], buckets=_FAST_BUCKETS)
STORE_ERRORS = Counter(
    "minisession_store_errors",
    "Session store calls that failed, by operation and error (unavailable, unexpected)",
    ["operation", "error"])
PLATFORM_CALLS = Counter(
    "minisession_platform_calls",
    "Calls to a platform's API (login code exchanges; WeChat's stable_token, checksession, "
    "resetusersessionkey, getuserphonenumber), by platform, endpoint and outcome (ok or the "
    "error code)", ["platform", "endpoint", "outcome"])
PLATFORM_CALL_DURATION = Histogram(
    "minisession_platform_call_duration_seconds",
    "Time of each call to a platform's API, by platform and endpoint", ["platform", "endpoint"],
    buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
LOGIN_RATE_LIMITED = Counter(
    "minisession_login_rate_limited",
    "Logins refused with 429 by a login rate limit (per_address or overall)", ["limit"])
ACCESS_TOKEN_REFRESHES = Counter(
    "minisession_access_token_refreshes",
    "Fetches of an app's access_token from its platform, by app, mode (normal, or force after "
    "the platform refused the current token) and outcome (ok or the error code)",
    ["app", "mode", "outcome"])
GATEWAY_REQUESTS = Counter(
    "minisession_gateway_upstream_requests",
    "Requests the gateway passed to an upstream, by route prefix (configured) and the "
    "upstream's status class (2xx...5xx; 'error' when it gave no answer)", ["route", "status"])
GATEWAY_DURATION = Histogram(
    "minisession_gateway_upstream_duration_seconds",
    "Time from sending a request upstream to the upstream's answer headers, by route prefix",
    ["route"], buckets=_FAST_BUCKETS)
GATEWAY_ERRORS = Counter(
    "minisession_gateway_upstream_errors",
    "Upstream requests without an answer, by route prefix and error (unavailable, timeout)",
    ["route", "error"])

# Known label values start at 0, so that rate() and alerts see them before the first event.
for _kind in ("logout", "admin", "rotation_supersede"):
    SESSIONS_REVOKED.labels(_kind)
for _how in ("on_read", "purged"):
    SESSIONS_EXPIRED.labels(_how)
for _limit in ("per_address", "overall"):
    LOGIN_RATE_LIMITED.labels(_limit)


#: The series of each (route, method, status) answered so far: ``labels()`` checks and locks
#: on every call, a dict lookup does not. Bounded as the label values are (module doc).
_REQUEST_SERIES: dict[tuple[str, str, int], tuple] = {}


def known_method(method: str) -> str:
    """``method`` if it is one of :data:`KNOWN_METHODS`, else ``"other"``."""
    return method if method in KNOWN_METHODS else "other"


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request; ``route`` is the access log's (a template, never a path)."""
    method = known_method(method)
    series = _REQUEST_SERIES.get((route, method, status))
    if series is None:
        series = (HTTP_REQUESTS.labels(route, method, str(status)),
                  HTTP_REQUEST_DURATION.labels(route, method))
        _REQUEST_SERIES[(route, method, status)] = series
    series[0].inc()
    series[1].observe(seconds)


def observe_upstream(route: str, status: int | None, seconds: float) -> None:
    """One upstream request of gateway route ``route`` (its configured prefix); ``status``
    None when it gave no answer."""
    GATEWAY_REQUESTS.labels(route, f"{status // 100}xx" if status else "error").inc()
    if status:
        GATEWAY_DURATION.labels(route).observe(seconds)


def count_upstream_error(route: str, error: str) -> None:
    GATEWAY_ERRORS.labels(route, error).inc()


def count_login(app: str, reused: bool) -> None:
    LOGINS.labels(app, "reused" if reused else "new").inc()


def count_revoked(kind: str, sessions: int = 1) -> None:
    if sessions:
        SESSIONS_REVOKED.labels(kind).inc(sessions)


def count_expired(how: str, sessions: int = 1) -> None:
    if sessions:
        SESSIONS_EXPIRED.labels(how).inc(sessions)


def count_access_token_refresh(app: str, mode: str, outcome: str) -> None:
    ACCESS_TOKEN_REFRESHES.labels(app, mode, outcome).inc()


def registry() -> CollectorRegistry:
    """What a scrape reports: this process's figures, or every worker's when there are several."""
    if not _multiprocess():
        return REGISTRY  # one process: its own figures (plus process and Python metrics)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # every worker's files, summed
    return registry
