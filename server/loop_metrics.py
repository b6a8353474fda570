"""Counters and histograms for the figures every request adds to, kept in plain Python numbers.

prometheus-client's ``Counter`` and ``Histogram`` guard each value with a lock and go through
several calls per observation: a ``GET /session`` spent about 3 % of its instructions on its
request count, its duration and its store call's duration (bench: instructions). These classes
keep the same figures as plain attributes, which is safe because only the event loop's thread
changes them, and hand them to prometheus-client when it collects (its public custom-collector
interface). A scrape then shows the same families, names, labels, buckets and ``_created``
series as prometheus-client's own classes would; ``tests/test_loop_metrics.py`` compares the
two outputs.

They implement only what the server calls: ``labels(*values)``, then ``inc()`` or ``observe()``
on the child. With several worker processes, the figures must be written to the files the
workers share, so :mod:`server.metrics` uses prometheus-client's own classes in that mode.
"""

import time
from bisect import bisect_left

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import INF, floatToGoString


class _Family:
    """A metric with labels whose children (one per label values) are made on first use."""

    def __init__(self, name: str, documentation: str, labelnames,
                 registry: CollectorRegistry | None = REGISTRY):
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values):
        values = tuple(str(value) for value in values)
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._new_child()
        return child

    def _new_child(self):
        raise NotImplementedError

    def describe(self):
        # Lets the registry refuse a second metric of the same name, as it does for its own.
        return [self._family()]

    def collect(self):
        family = self._family()
        for values, child in self._children.items():
            self._add(family, list(values), child)
        return [family]


class _CounterChild:
    __slots__ = ("value", "created")

    def __init__(self):
        self.value, self.created = 0.0, time.time()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.value += amount


class LoopCounter(_Family):
    """prometheus-client's ``Counter`` with labels, for the event loop's thread only."""

    def _new_child(self):
        return _CounterChild()

    def _family(self):
        # Named without "_total", as prometheus-client names its Counter's family.
        name = self.name[:-len("_total")] if self.name.endswith("_total") else self.name
        return CounterMetricFamily(name, self.documentation, labels=self.labelnames)

    def _add(self, family, values, child) -> None:
        family.add_metric(values, child.value, created=child.created)


class _HistogramChild:
    __slots__ = ("upper_bounds", "counts", "sum", "created")

    def __init__(self, upper_bounds):
        self.upper_bounds = upper_bounds
        self.counts = [0] * len(upper_bounds)  # per bucket, not cumulative
        self.sum, self.created = 0.0, time.time()

    def observe(self, amount: float) -> None:
        # The first bucket whose upper bound is >= amount: Prometheus' "le".
        self.counts[bisect_left(self.upper_bounds, amount)] += 1
        self.sum += amount


class LoopHistogram(_Family):
    """prometheus-client's ``Histogram`` with labels, for the event loop's thread only."""

    def __init__(self, name: str, documentation: str, labelnames, buckets,
                 registry: CollectorRegistry | None = REGISTRY):
        bounds = sorted(float(bound) for bound in buckets)
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        self.upper_bounds = tuple(bounds)
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self):
        return _HistogramChild(self.upper_bounds)

    def _family(self):
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _add(self, family, values, child) -> None:
        buckets, total = [], 0
        for bound, count in zip(self.upper_bounds, child.counts):
            total += count
            buckets.append((floatToGoString(bound), float(total)))
        family.add_metric(values, buckets, child.sum)
        family.add_sample(self.name + "_created", dict(zip(self.labelnames, values)),
                          child.created)
