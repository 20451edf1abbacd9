"""Benchmark: the job queue (`core/queue`, issue 19): enqueue rate, jobs per second through one
worker, and how late due jobs start while a million delayed jobs wait.

For each backend (a SQLite file in a temp dir, the embedded default; a throwaway PostgreSQL 15
with fsync on), one fresh migrated database and this one process, which enqueues and also runs
the worker (`seamline.runtime.build(settings).worker(...)`: one `Worker`, one queue `bench`
with concurrency 2, `poll_seconds` 0.01, periodic tasks off). In order:

1. **The machine's limit** for the rows the queue writes: `--jobs` N plain `INSERT INTO jobs`
   (the columns `service.enqueue` writes, constant values) through the driver on one
   connection, committed one row at a time, then 1,000 rows at a time. Then N jobs through
   `Task.enqueue`, one per committed transaction. All deleted afterwards.
2. **No-op jobs**: N jobs enqueued up front through `Task.enqueue` in transactions of 1,000
   (timed: the enqueue rate), then drained by the worker, timed from `start()` to the N-th job
   finished (the worker's observer).
3. **In-transaction jobs** (`in_transaction=True`): the same, but each handler enqueues a
   follow-up job through `context.session` (a step of a chain, as "order paid" enqueues "send
   the receipt") on a queue this worker does not serve: one `INSERT INTO jobs` in the
   transaction that also deletes the finished job. Checked afterwards: N follow-ups, `bench`
   empty.
4. **Delayed jobs**: `--delayed` M no-op jobs in `bench`, same priority, `run_at` spread evenly
   over 10 minutes .. 30 days from now (none comes due during the run), bulk-inserted (COPY on
   PostgreSQL, 100-row INSERTs on SQLite; not timed as the queue's work). Then, with no worker
   running, the probes: `service.due_levels` (the read a worker makes before every claim, 50
   times), `service.claim` with nothing due (20 times), and `service.stats` (3 times; what every
   /metrics scrape and the console's Background jobs tab run). Then the worker starts; its idle
   cost is measured for 5 s; then `--due` (50) jobs are enqueued one per transaction at random
   moments (0-0.3 s apart), each with `run_at` = now + 0.5..3 s; the latency is from each job's
   `run_at` to its handler starting.

PostgreSQL gets `VACUUM ANALYZE jobs` after the deletes of step 1 and after the bulk insert
(what autovacuum does on a live system); autovacuum is on throughout. Statements and commits
are counted with SQLAlchemy engine events (raw driver calls are not); CPU from /proc: this
process (enqueuer and worker threads) and PostgreSQL's processes.

    .venv/bin/python bench/jobs.py --backend both
    .venv/bin/python bench/jobs.py --backend sqlite --jobs 2000 --delayed 100000

Prints markdown tables for bench/README.md on stdout, details on stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event, func, select

from seamline.core.config import Settings
from seamline.core.db import Database, DriverSQL
from seamline.core.logging import configure_logging
from seamline.core.queue import Task, service
from seamline.core.queue.models import Job
from seamline.core.time import utcnow
from seamline.runtime import Runtime, build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database, tree_cpu  # noqa: E402

QUEUE = "bench"
NOOP = Task("bench.noop", queue=QUEUE)
CHAIN = Task("bench.chain", queue=QUEUE, in_transaction=True)
FOLLOWUP = Task("bench.followup", queue="bench-followup")  # enqueued by CHAIN, never run here
TIMED = Task("bench.timed", queue=QUEUE)
#: The columns `service.enqueue` writes (dedupe_key stays NULL).
JOB_COLUMNS = ("queue", "task", "args", "priority", "state", "run_at", "attempts", "max_attempts", "created_at")
BATCH = 1_000


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else float("nan")


# --- what the run observes -----------------------------------------------------------------------


class Tally:
    """Statements and commits through the database's engines, and jobs the worker finished."""

    def __init__(self, database: Database):
        self._lock = threading.Lock()
        self.statements = self.commits = 0
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (task, outcome) -> jobs
        self._targets: dict[str, tuple[int, threading.Event]] = {}
        for engine in {database.write_engine, database.read_engine}:
            event.listen(engine, "before_cursor_execute", self._statement)
            event.listen(engine, "commit", self._commit)

    def _statement(self, *_: Any) -> None:
        with self._lock:
            self.statements += 1

    def _commit(self, *_: Any) -> None:
        with self._lock:
            self.commits += 1

    def observe(self, queue: str, task: str, outcome: str, seconds: float) -> None:
        """The worker's observer: called after every job, once its transaction committed."""
        with self._lock:
            self.outcomes[task, outcome] += 1
            target = self._targets.get(task)
            if target and sum(n for (t, _), n in self.outcomes.items() if t == task) >= target[0]:
                target[1].set()

    def expect(self, task: str, count: int) -> threading.Event:
        """An event set once `count` more jobs of `task` finished (whatever their outcome)."""
        with self._lock:
            done = sum(n for (t, _), n in self.outcomes.items() if t == task)
            self._targets[task] = (done + count, threading.Event())
            return self._targets[task][1]

    def failures(self) -> dict[str, int]:
        return {f"{t} {o}": n for (t, o), n in self.outcomes.items() if o != "succeeded"}


@dataclass
class Span:
    """Wall time, CPU and database traffic of one timed step."""

    wall: float
    cpu: float  # this process: the enqueuer and the worker's threads
    db_cpu: float  # PostgreSQL's processes (0 on SQLite)
    statements: int
    commits: int

    def cores(self) -> str:
        text = f"python {self.cpu / self.wall:.2f}"
        return text + (f", postgres {self.db_cpu / self.wall:.2f}" if self.db_cpu else "")

    def ms_per(self, n: int) -> str:
        text = f"{self.cpu / n * 1000:.2f}"
        return text + (f" + {self.db_cpu / n * 1000:.2f}" if self.db_cpu else "")


class Meter:
    """`with meter.span() as step:` measures the block; `step.result` is its `Span`."""

    def __init__(self, tally: Tally, pg_pid: int | None):
        self.tally, self.pg_pid = tally, pg_pid

    def now(self) -> tuple[float, float, float, int, int]:
        return (time.perf_counter(), time.process_time(), tree_cpu(self.pg_pid) if self.pg_pid else 0.0,
                self.tally.statements, self.tally.commits)

    @contextmanager
    def span(self) -> Iterator[Step]:
        step, start = Step(), self.now()
        yield step
        step.result = Span(*(b - a for a, b in zip(start, self.now(), strict=True)))


@dataclass
class Step:
    result: Span | None = None


def postgres_pid(database: Database) -> int | None:
    """The postmaster of the throwaway PostgreSQL (for its CPU), from its data directory."""
    if database.is_sqlite:
        return None
    with database.read() as session:
        data_dir = session.execute(select(func.current_setting("data_directory"))).scalar_one()
    return int(Path(data_dir, "postmaster.pid").read_text().split()[0])


def settle(database: Database) -> None:
    """PostgreSQL: what autovacuum does after a big change on a live system (not timed)."""
    if database.is_sqlite:
        return
    with database.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE jobs")


# --- 1. the machine's limit ------------------------------------------------------------------------


def raw_inserts(database: Database, rows: int, per_commit: int) -> float:
    """Rows/s: plain INSERTs of job rows on one driver connection, `per_commit` rows per commit
    (SQLite through the service's engine settings: WAL, synchronous=NORMAL)."""
    sqlite = database.is_sqlite
    at: Any = utcnow()
    if sqlite:
        at = at.replace(tzinfo=None).isoformat(" ", "microseconds")  # as `UTCDateTime` stores it
    p = "?" if sqlite else "%s"
    sql = (f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) "
           f"VALUES ('raw', 'bench.raw', '{{}}', 1, 'queued', {p}, 0, 8, {p})")
    connection = database.write_engine.raw_connection()
    try:
        cursor = connection.cursor()
        start = time.perf_counter()
        for first in range(0, rows, per_commit):
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            for _ in range(min(per_commit, rows - first)):
                cursor.execute(sql, (at, at))
            if sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        return rows / (time.perf_counter() - start)
    finally:
        connection.close()


def enqueue_jobs(database: Database, task: Task, count: int, per_commit: int) -> None:
    """`count` jobs through `Task.enqueue`, `per_commit` per write transaction."""
    for first in range(0, count, per_commit):
        with database.write() as session:
            for _ in range(min(per_commit, count - first)):
                task.enqueue(session)


def delete_jobs(database: Database) -> None:
    with database.write() as session:
        session.execute(Job.__table__.delete())
    settle(database)


# --- 2, 3. jobs through the worker ---------------------------------------------------------------


def drain(runtime: Runtime, tally: Tally, meter: Meter, task: Task, count: int) -> Span:
    """Start a worker on the `count` queued jobs of `task`; time it until the last one finished."""
    done = tally.expect(task.name, count)
    worker = runtime.worker(queues={QUEUE: 2}, periodic=False)
    with meter.span() as step:
        worker.start()
        finished = done.wait(timeout=max(600.0, count / 10))
    worker.stop()
    if not finished:
        raise RuntimeError(f"{task.name}: the worker did not finish {count} jobs in time")
    return step.result


def count_jobs(database: Database, queue: str) -> int:
    with database.read() as session:
        return session.execute(select(func.count()).select_from(Job).where(Job.queue == queue)).scalar_one()


# --- 4. due jobs among a million delayed ones ------------------------------------------------------


def insert_delayed(database: Database, count: int, seed: int = 19) -> float:
    """`count` queued no-op jobs due between 10 minutes and 30 days from now, in bulk (seconds)."""
    rng = random.Random(seed)
    now = utcnow()
    start = time.perf_counter()
    chunk = 100_000
    for first in range(0, count, chunk):
        run_ats = [now + timedelta(seconds=rng.uniform(600, 30 * 86400)) for _ in range(min(chunk, count - first))]
        with database.write() as session:
            if database.is_sqlite:
                sql = DriverSQL(session)
                created = sql.time(now)
                sql.insert_rows("jobs", JOB_COLUMNS, [
                    (QUEUE, NOOP.name, "{}", int(NOOP.priority), "queued", sql.time(at), 0, NOOP.max_attempts, created)
                    for at in run_ats])
            else:
                cursor = session.connection().connection.dbapi_connection.cursor()
                with cursor.copy(f"COPY jobs ({', '.join(JOB_COLUMNS)}) FROM STDIN") as copy:
                    for at in run_ats:
                        copy.write_row((QUEUE, NOOP.name, "{}", int(NOOP.priority), "queued", at, 0, NOOP.max_attempts, now))
    settle(database)
    return time.perf_counter() - start


def timed_probe(work: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        work()
        out.append(time.perf_counter() - t)
    return out


def probes(database: Database) -> dict[str, list[float]]:
    """What a worker runs against the table, with no worker running."""

    def due_levels() -> None:
        with database.read() as session:
            assert service.due_levels(session, QUEUE, utcnow()) == []

    def claim_nothing() -> None:
        got = database.run_write(lambda session: service.claim(session, QUEUE, worker="probe", limit=2,
                                                               lease=timedelta(seconds=60)))
        assert got == []

    def stats() -> None:
        with database.read() as session:
            service.stats(session)

    return {"due_levels": timed_probe(due_levels, 50), "claim": timed_probe(claim_nothing, 20),
            "stats": timed_probe(stats, 3)}


def due_latency(runtime: Runtime, meter: Meter, tally: Tally, due: int, rng: random.Random) -> dict[str, Any]:
    """Idle worker cost for 5 s, then `due` jobs enqueued at random moments, each due 0.5-3 s
    later: seconds from each job's run_at to its handler starting."""
    latencies: list[float] = []
    runtime.tasks.add(TIMED, lambda _ctx, args: latencies.append(
        (utcnow() - datetime.fromisoformat(args["run_at"])).total_seconds()))
    done = tally.expect(TIMED.name, due)
    worker = runtime.worker(queues={QUEUE: 2}, periodic=False).start()
    try:
        time.sleep(0.5)  # the worker's first polls (connections, statement caches)
        with meter.span() as idle:
            time.sleep(5)
        for _ in range(due):
            time.sleep(rng.uniform(0, 0.3))
            run_at = utcnow() + timedelta(seconds=rng.uniform(0.5, 3.0))
            with runtime.database.write() as session:
                TIMED.enqueue(session, {"run_at": run_at.isoformat()}, run_at=run_at)
        if not done.wait(timeout=60):
            print(f"  only {len(latencies)} of {due} due jobs started within 60 s", file=sys.stderr)
    finally:
        worker.stop()
    return {"idle": idle.result, "latencies": latencies}


# --- one backend ---------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    n = args.jobs
    with throwaway_database(backend, "seamline-bench-jobs") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING", worker_poll_seconds=0.01,
                            worker_concurrency=2)
        runtime = build(settings)
        database = runtime.database
        tally = Tally(database)
        runtime.job_observer = tally.observe
        runtime.tasks.add(NOOP, lambda _ctx, _args: None)
        runtime.tasks.add(CHAIN, lambda ctx, _args: FOLLOWUP.enqueue(ctx.session, {"after": ctx.job_id}))
        meter = Meter(tally, postgres_pid(database))
        say = lambda text: print(f"[{backend}] {text}", file=sys.stderr)  # noqa: E731

        # 1. the limit: plain INSERTs, then Task.enqueue one per transaction
        out["raw_1"] = raw_inserts(database, n, 1)
        out["raw_1000"] = raw_inserts(database, n, BATCH)
        with meter.span() as single:
            enqueue_jobs(database, NOOP, n, 1)
        out["enqueue_1"] = n / single.result.wall
        say(f"raw INSERT {out['raw_1']:,.0f} rows/s (1 per commit), {out['raw_1000']:,.0f} rows/s (1,000 per commit); "
            f"enqueue 1 per transaction {out['enqueue_1']:,.0f} jobs/s ({single.result.statements / n:.1f} statements/job)")
        delete_jobs(database)

        # 2, 3. enqueue N up front in transactions of 1,000, then drain with one worker
        for key, task in (("noop", NOOP), ("chain", CHAIN)):
            with meter.span() as enqueued:
                enqueue_jobs(database, task, n, BATCH)
            drained = drain(runtime, tally, meter, task, n)
            left = count_jobs(database, QUEUE)
            out[key] = {"enqueue": enqueued.result, "drain": drained, "left": left}
            say(f"{task.name}: enqueue {n / enqueued.result.wall:,.0f} jobs/s; drain {n / drained.wall:,.0f} jobs/s "
                f"({drained.wall:.1f} s; {drained.statements / n:.1f} statements, {drained.commits / n:.2f} commits per job; "
                f"CPU ms/job {drained.ms_per(n)}; cores {drained.cores()}); left in queue: {left}")
        out["followups"] = count_jobs(database, FOLLOWUP.queue)
        say(f"follow-up jobs written by {CHAIN.name}: {out['followups']:,} (expected {n:,})")
        delete_jobs(database)

        # 4. due jobs among M delayed ones
        out["setup"] = insert_delayed(database, args.delayed)
        say(f"{args.delayed:,} delayed jobs inserted in {out['setup']:.1f} s (with VACUUM ANALYZE on PostgreSQL)")
        out["probes"] = probes(database)
        for name, values in out["probes"].items():
            say(f"probe {name}: min {min(values) * 1000:.2f} p50 {pct(values, 0.5):.2f} max {pct(values, 1.0):.2f} ms")
        out.update(due_latency(runtime, meter, tally, args.due, random.Random(7)))
        lat = out["latencies"]
        say(f"idle worker with {args.delayed:,} pending: cores {out['idle'].cores()}, "
            f"{out['idle'].statements / out['idle'].wall:,.0f} statements/s")
        say(f"due-job latency: n {len(lat)}, p50 {pct(lat, 0.5):.1f} p95 {pct(lat, 0.95):.1f} max {pct(lat, 1.0):.1f} ms; "
            f"over 1 s: {sum(1 for x in lat if x > 1)}")
        out["failures"] = tally.failures()
        if out["failures"]:
            say(f"jobs that did not succeed: {out['failures']}")
        runtime.close()
    return out


def source_version() -> str:
    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                            check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=repo, capture_output=True, text=True,
                           check=False).stdout.strip()
    return commit + (" (src/ has uncommitted changes)" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=20_000, help="N: jobs enqueued and drained per kind, raw rows")
    parser.add_argument("--delayed", type=int, default=1_000_000, help="M: delayed jobs pending in the latency test")
    parser.add_argument("--due", type=int, default=50, help="due jobs whose start latency is measured")
    args = parser.parse_args()
    # The worker's warnings (a failed job, a failed claim) on stderr, not among the tables.
    configure_logging("WARNING", json=False)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    version = source_version()  # the code this process imported, not what is checked out at the end

    results = [run_backend(b, args) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])]

    n = args.jobs
    command = ".venv/bin/python bench/jobs.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, {os.cpu_count()} CPUs, commit {version}: `{command.strip()}`\n")
    print(f"Writes, {n:,} rows each (rows or jobs per second, one connection):\n")
    print("| backend | raw INSERT, 1 row per commit | raw INSERT, 1,000 rows per commit "
          "| `enqueue`, 1 job per transaction | `enqueue`, 1,000 jobs per transaction |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['raw_1']:,.0f} | {r['raw_1000']:,.0f} | {r['enqueue_1']:,.0f} "
              f"| {n / r['noop']['enqueue'].wall:,.0f} |")
    print(f"\nDraining {n:,} jobs enqueued up front, one worker, 1 queue × concurrency 2, poll 0.01 s:\n")
    print("| backend | jobs | jobs/s | seconds | statements per job | commits per job "
          "| CPU ms per job (python + postgres) | cores busy |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for key, label in (("noop", "no-op"), ("chain", "in-transaction, enqueues a follow-up")):
            d = r[key]["drain"]
            print(f"| {r['backend']} | {label} | {n / d.wall:,.0f} | {d.wall:.1f} | {d.statements / n:.1f} "
                  f"| {d.commits / n:.2f} | {d.ms_per(n)} | {d.cores()} |")
    print(f"\n{args.delayed:,} delayed jobs pending (due over the next 30 days), one worker polling every 0.01 s:\n")
    print("| backend | bulk insert | `due_levels` p50 / max ms | `claim` (nothing due) p50 ms | `stats` ms "
          "| idle worker: cores busy | due jobs | start latency p50 ms | p95 ms | max ms | over 1 s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        p, lat = r["probes"], r["latencies"]
        print(f"| {r['backend']} | {r['setup']:.0f} s | {pct(p['due_levels'], 0.5):.2f} / {pct(p['due_levels'], 1.0):.2f} "
              f"| {pct(p['claim'], 0.5):.2f} | {pct(p['stats'], 0.5):,.0f} | {r['idle'].cores()} "
              f"| {len(lat)} of {args.due} | {pct(lat, 0.5):.1f} | {pct(lat, 0.95):.1f} | {pct(lat, 1.0):.1f} "
              f"| {sum(1 for x in lat if x > 1)} |")

    bad = [r for r in results if r["failures"] or r["noop"]["left"] or r["chain"]["left"] or r["followups"] != n
           or len(r["latencies"]) != args.due]
    for r in bad:
        print(f"\n[{r['backend']}] problems: failures {r['failures']}, left {r['noop']['left']}/{r['chain']['left']}, "
              f"follow-ups {r['followups']}, due jobs started {len(r['latencies'])}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
