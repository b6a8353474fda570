"""The request path's counters and histograms (server/loop_metrics.py) scrape exactly as
prometheus-client's own Counter and Histogram would after the same events."""

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from server import metrics
from server.loop_metrics import LoopCounter, LoopHistogram

BUCKETS = (.001, .0025, .005, .01, 1, 10)
# Observations on the bucket bounds themselves, between them, at 0 and beyond the last one.
AMOUNTS = st.one_of(st.sampled_from([0.0, *BUCKETS, 11.0]),
                    st.floats(min_value=0, max_value=1e6, allow_nan=False))
EVENTS = st.lists(st.tuples(st.sampled_from(["/session", "/login"]),
                            st.sampled_from(["GET", "POST"]), AMOUNTS), max_size=60)


def both(make_ours, make_theirs):
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    return make_ours(ours), make_theirs(theirs), ours, theirs


def scrape(registry: CollectorRegistry) -> str:
    # The creation times differ by the microseconds between the two objects' creation.
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 <time>", generate_latest(registry).decode())


@settings(max_examples=200, deadline=None)
@given(EVENTS)
def test_a_histogram_scrapes_as_prometheus_clients_own(events):
    ours, theirs, a, b = both(
        lambda r: LoopHistogram("t_seconds", "Time.", ["route", "method"], buckets=BUCKETS,
                                registry=r),
        lambda r: Histogram("t_seconds", "Time.", ["route", "method"], buckets=BUCKETS,
                            registry=r))
    for route, method, amount in events:
        ours.labels(route, method).observe(amount)
        theirs.labels(route, method).observe(amount)
    assert scrape(a) == scrape(b)


@settings(max_examples=200, deadline=None)
@given(EVENTS)
def test_a_counter_scrapes_as_prometheus_clients_own(events):
    ours, theirs, a, b = both(
        lambda r: LoopCounter("t_requests", "Requests.", ["route", "method"], registry=r),
        lambda r: Counter("t_requests", "Requests.", ["route", "method"], registry=r))
    for route, method, amount in events:
        ours.labels(route, method).inc()
        theirs.labels(route, method).inc()
        ours.labels(route, "ANY").inc(amount)
        theirs.labels(route, "ANY").inc(amount)
    assert scrape(a) == scrape(b)


def test_each_series_carries_the_time_it_was_first_used():
    registry = CollectorRegistry()
    histogram = LoopHistogram("t_seconds", "Time.", ["route"], buckets=BUCKETS,
                              registry=registry)
    histogram.labels("/session").observe(0.002)
    created = registry.get_sample_value("t_seconds_created", {"route": "/session"})
    assert created == pytest.approx(time.time(), abs=60)


def test_misuse_is_refused_as_prometheus_client_refuses_it():
    registry = CollectorRegistry()
    counter = LoopCounter("t_requests", "Requests.", ["route"], registry=registry)
    with pytest.raises(ValueError):
        counter.labels("/session").inc(-1)
    with pytest.raises(ValueError):
        counter.labels("/session", "GET")
    with pytest.raises(ValueError):  # a second metric of the same name in one registry
        Counter("t_requests", "Requests.", ["route"], registry=registry)


def test_the_request_families_are_the_loop_ones_in_a_single_process():
    # Each request adds to these three (tests run the server in one process, without
    # PROMETHEUS_MULTIPROC_DIR; the two-worker test in test_metrics.py covers the other mode).
    assert isinstance(metrics.HTTP_REQUESTS, LoopCounter)
    assert isinstance(metrics.HTTP_REQUEST_DURATION, LoopHistogram)
    assert isinstance(metrics.STORE_OPERATION_DURATION, LoopHistogram)
