"""Benchmark: how soon a worker starts a new job, and what an idle worker costs.

One process per backend runs the real worker of `seamline worker` (every queue and periodic task
of the runtime, default settings: `worker_poll_seconds` 0.5) plus a no-op task on a queue of its
own. Then:
- **start latency**: `--jobs` jobs enqueued one at a time, each in its own transaction, at random
  moments 50-300 ms apart; latency = from the enqueue's commit returning to the handler starting;
- **idle cost**: CPU seconds (user + system) of this process over `--idle` seconds with nothing
  to do, as a share of one core (the worker's queue threads, its upkeep and periodic tasks; on
  PostgreSQL the server's own share is not included).

    .venv/bin/python bench/job_wake.py --backend both
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database

from seamline.core.config import Settings
from seamline.core.queue import Task
from seamline.runtime import build

PROBE = Task("bench.probe", queue="bench")


def run(backend: str, jobs: int, idle: float) -> str:
    with throwaway_database(backend, "seamline-wake") as (url, _):
        runtime = build(Settings(database_url=url, secret_key="bench-secret-key-0123456789abcdef0123"))
        started: dict[int, float] = {}
        done = threading.Event()

        def probe(_ctx, args) -> None:  # noqa: ANN001
            started[args["n"]] = time.monotonic()
            if len(started) == jobs:
                done.set()

        runtime.tasks.add(PROBE, probe)
        worker = runtime.worker().start()
        try:
            time.sleep(2)  # the periodic tasks' first runs
            committed: dict[int, float] = {}
            for n in range(jobs):
                time.sleep(random.uniform(0.05, 0.3))
                runtime.database.run_write(lambda s, n=n: PROBE.enqueue(s, {"n": n}))
                committed[n] = time.monotonic()
            done.wait(60)
            latencies = sorted((started[n] - committed[n]) * 1000 for n in committed if n in started)
            time.sleep(3)
            cpu_before, wall_before = time.process_time(), time.monotonic()
            time.sleep(idle)
            idle_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
        finally:
            worker.stop()
            runtime.close()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    return (f"| {backend} | {len(latencies)} of {jobs} | {statistics.median(latencies):.1f} | {p95:.1f} | "
            f"{latencies[-1]:.1f} | {idle_share * 100:.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measured")
    args = parser.parse_args()
    print("| backend | jobs started | start latency p50 ms | p95 ms | max ms | idle worker: share of a core |")
    print("|---|---|---|---|---|---|")
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        print(run(backend, args.jobs, args.idle), flush=True)


if __name__ == "__main__":
    main()
