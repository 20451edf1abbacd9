"""Prometheus metrics of the queue: what each worker did (counters and durations, in the process
that ran the jobs) and what is waiting (gauges read from the database at each scrape, so any
process's /metrics shows the whole cluster's queues)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from seamline.core.db import Database
from seamline.core.queue import service
from seamline.core.time import utcnow


class JobMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.finished = Counter("seamline_jobs_finished_total", "Jobs this process ran, by outcome "
                                "(succeeded, retrying, deferred, dead, failed periodic run, lost lease)",
                                ["queue", "task", "outcome"], registry=registry)
        self.duration = Histogram("seamline_job_duration_seconds", "How long a job ran", ["queue", "task"],
                                  buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300), registry=registry)

    def observe(self, queue: str, task: str, outcome: str, seconds: float) -> None:
        self.finished.labels(queue, task, outcome).inc()
        self.duration.labels(queue, task).observe(seconds)


class QueueCollector(Collector):
    """Depth, due, running and dead jobs per queue, and the age of the oldest due job."""

    def __init__(self, database: Database, queues: list[str]):
        self.database, self.queues = database, queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        with self.database.read() as session:
            rows = service.stats(session, self.queues, now)
        families = {
            "queued": GaugeMetricFamily("seamline_queue_jobs_queued", "Jobs waiting, delayed ones included "
                                        f"(counted up to {service.COUNT_CAP} per priority level)", labels=["queue"]),
            "due": GaugeMetricFamily("seamline_queue_jobs_due", "Jobs whose time has come and that no worker took yet "
                                     f"(counted up to {service.COUNT_CAP} per priority level)", labels=["queue"]),
            "running": GaugeMetricFamily("seamline_queue_jobs_running", "Jobs a worker is running", labels=["queue"]),
            "dead": GaugeMetricFamily("seamline_queue_jobs_dead", "Jobs that used all their attempts (dead letters)", labels=["queue"]),
        }
        oldest = GaugeMetricFamily("seamline_queue_oldest_due_seconds", "How long the oldest due job has waited", labels=["queue"])
        for row in rows:
            for name, family in families.items():
                family.add_metric([row.queue], getattr(row, name))
            oldest.add_metric([row.queue], (now - row.oldest_due_at).total_seconds() if row.oldest_due_at else 0.0)
        yield from families.values()
        yield oldest
