"""Prometheus metrics. Observations are made in many processes (pool processes, schedulers, API servers), so
they accumulate in Redis hashes; `/metrics` reads them together with gauges computed from the database.

Keys (see `scheduler.keys` for the rest of the layout):
- `jobctl:metrics:<queue>:hist:<name>`   hash: `le:<bound>` per-bucket (not cumulative) counts, `sum`, `count`
- `jobctl:metrics:<queue>:count:<name>`  hash: one field per label value
(one deployment is one queue: systems sharing a Redis database keep their figures apart).
A failed observation is logged and dropped: metrics never break the work they describe.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from jobctl.scheduler import keys
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.scheduler.store.db import Database

log = logging.getLogger(__name__)

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "step_duration_seconds": ("Time a step attempt spent RUNNING, observed when it ends", DURATION_BUCKETS),
    "step_waiting_seconds": ("Time a step waited before its attempt started", DURATION_BUCKETS),
    "dispatch_latency_seconds": ("Time a job spent PENDING before the scheduler dispatched it", LATENCY_BUCKETS),
    "stop_latency_seconds": ("Time from a stop request to the step's code stopped", LATENCY_BUCKETS),
}
COUNTERS: dict[str, tuple[str, str]] = {
    "transitions": ("Job status changes, by action", "action"),
}


def _hist_key(queue: str, name: str) -> str:
    return f"jobctl:metrics:{queue}:hist:{name}"


def _count_key(queue: str, name: str) -> str:
    return f"jobctl:metrics:{queue}:count:{name}"


class Metrics:
    """Records observations into Redis; safe to call from any process."""

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.redis = client
        self.queue = queue

    def observe(self, name: str, value: float, pipe: redis.client.Pipeline | None = None) -> None:
        """Add one observation to histogram `name` (one of `HISTOGRAMS`). With `pipe`, the commands are only
        queued on it (the caller sends them together with its own, and owns the errors)."""
        bound = next((b for b in HISTOGRAMS[name][1] if value <= b), math.inf)
        key = _hist_key(self.queue, name)
        queue = pipe if pipe is not None else self.redis.pipeline(transaction=True)
        queue.hincrby(key, f"le:{bound}", 1)
        queue.hincrbyfloat(key, "sum", value)
        queue.hincrby(key, "count", 1)
        if pipe is not None:
            return
        try:
            queue.execute()
        except redis.RedisError as exc:
            log.warning("metric %s not recorded: %s", name, exc)

    def observe_many(self, observations: Sequence[tuple[str, float]], pipe: redis.client.Pipeline) -> None:
        """Queue `observations` (histogram name, value) on `pipe` as few commands as they take: one count per
        histogram bucket hit, one sum and one total per histogram."""
        hits: Counter[tuple[str, str]] = Counter()
        sums: dict[str, float] = {}
        for name, value in observations:
            bound = next((b for b in HISTOGRAMS[name][1] if value <= b), math.inf)
            hits[(name, f"le:{bound}")] += 1
            hits[(name, "count")] += 1
            sums[name] = sums.get(name, 0.0) + value
        for (name, field), n in hits.items():
            pipe.hincrby(_hist_key(self.queue, name), field, n)
        for name, total in sums.items():
            pipe.hincrbyfloat(_hist_key(self.queue, name), "sum", total)

    def count(self, name: str, label: str, amount: int = 1, pipe: redis.client.Pipeline | None = None) -> None:
        """Add `amount` to counter `name` (one of `COUNTERS`) for the label value `label` (with `pipe`: queued
        on it, as in `observe`)."""
        if pipe is not None:
            pipe.hincrby(_count_key(self.queue, name), label, amount)
            return
        try:
            self.redis.hincrby(_count_key(self.queue, name), label, amount)
        except redis.RedisError as exc:
            log.warning("metric %s not recorded: %s", name, exc)


class JobctlCollector(Collector):
    """What `/metrics` shows: Redis-backed histograms and counters, and gauges read at scrape time."""

    def __init__(self, db: Database, client: redis.Redis, queue: str, projects: set[str] | None = None) -> None:
        self.projects = projects  # None: every project
        self.db = db
        self.redis = client
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        """Everything for every project (`projects` None: an admin); else only the job counts and the queue depth
        of those projects: the histograms, counters, broker queue and workers are the whole system's, and would
        tell a user of one project about the work of the others."""
        if self.projects is None:
            yield from self._histograms()
            yield from self._counters()
        yield from self._gauges()

    def _histograms(self) -> Iterator[Metric]:
        for name, (doc, bounds) in HISTOGRAMS.items():
            raw = {_text(k): _text(v) for k, v in self.redis.hgetall(_hist_key(self.queue, name)).items()}
            cumulative, buckets = 0, []
            for bound in (*bounds, math.inf):
                cumulative += int(raw.get(f"le:{bound}", 0))
                buckets.append(("+Inf" if bound == math.inf else str(bound), cumulative))
            yield HistogramMetricFamily(f"jobctl_{name}", doc, buckets=buckets, sum_value=float(raw.get("sum", 0)))

    def _counters(self) -> Iterator[Metric]:
        for name, (doc, label) in COUNTERS.items():
            family = CounterMetricFamily(f"jobctl_{name}", doc, labels=[label])
            for value, amount in sorted(self.redis.hgetall(_count_key(self.queue, name)).items()):
                family.add_metric([_text(value)], int(amount))
            yield family

    def _gauges(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("jobctl_jobs", "Jobs by project and status", labels=["project", "status"])
        with self.db.read() as s:
            counts = jobs_store.count_jobs_by_project_status(s)
        pending = 0
        for (project, status), n in sorted(counts.items()):
            if self.projects is not None and project not in self.projects:
                continue
            jobs.add_metric([project, status], n)
            pending += n if status == "PENDING" else 0
        yield jobs
        yield GaugeMetricFamily("jobctl_queue_depth", "PENDING jobs waiting for dispatch", value=pending)
        if self.projects is not None:
            return
        yield GaugeMetricFamily(
            "jobctl_broker_queue_length", "Step messages waiting in the Celery queue", value=self.redis.llen(self.queue)
        )
        workers = [self.redis.get(k) for k in self.redis.scan_iter(match=keys.workers_of(self.queue), count=500)]
        alive = [int(w) for w in workers if w is not None]
        yield GaugeMetricFamily("jobctl_workers_alive", "Workers that announced themselves recently", value=len(alive))
        yield GaugeMetricFamily("jobctl_worker_processes", "Pool processes of the live workers", value=sum(alive))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
