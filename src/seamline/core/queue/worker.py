"""The worker: claims due jobs of its queues, runs them on a pool of threads per queue, keeps
their leases while they run, puts back the jobs of workers that vanished, and starts periodic
tasks once per period for the whole cluster.

Any number of workers may run, in any process on any machine that reaches the database
(`seamline worker`); `seamline serve` runs one inside itself on the embedded default. A worker
asks each queue with a read first and takes the write lock only to claim what is due, so idle
workers cost SQLite's single writer nothing.

A new job wakes the workers at once instead of at their next look (`service.wake_workers`): on
PostgreSQL through LISTEN/NOTIFY, which reaches every worker of the cluster, so an idle worker
there looks only when its next delayed job is due, or every `LISTENING_FALLBACK_SECONDS`; on
SQLite the workers of the enqueuing process are woken, and every worker also looks each
`poll_seconds`.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import structlog

from seamline.core.db import Database
from seamline.core.listen import PostgresListener
from seamline.core.queue import service
from seamline.core.queue.models import DEAD
from seamline.core.queue.registry import Defer, JobContext, Retry, TaskRegistry
from seamline.core.time import utcnow

log = structlog.get_logger("seamline.queue")

#: Called after every job: (queue, task, outcome, seconds). Outcomes: succeeded, retrying,
#: deferred (not started yet, e.g. a channel's rate limit), dead, failed (a periodic run), lost
#: (the lease went to another worker).
Observer = Callable[[str, str, str, float], None]

#: While LISTENing, how long an idle queue waits at most when no job is due sooner (a safety net:
#: every new or returning job is announced).
LISTENING_FALLBACK_SECONDS = 10.0


class Worker:
    def __init__(self, database: Database, registry: TaskRegistry, *, queues: dict[str, int] | None = None,
                 concurrency: int = 2, poll_seconds: float = 0.5, lease_seconds: float = 60.0,
                 periodic: bool = True, name: str | None = None, observer: Observer | None = None):
        self.database, self.registry = database, registry
        self.queues = queues or {queue: concurrency for queue in registry.queues}
        self.poll_seconds, self.lease = poll_seconds, timedelta(seconds=lease_seconds)
        self.periodic = periodic
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.observer = observer
        self._stopping = threading.Event()
        self._wakes = {queue: threading.Event() for queue in self.queues}  # a finished job wakes only its queue
        self._lock = threading.Lock()
        self._running: dict[int, str] = {}  # job id -> queue
        self._found_work: dict[str, bool] = {}
        self._pools = {queue: ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"job-{queue}") for queue, n in self.queues.items()}
        self._threads: list[threading.Thread] = []
        self._listener: PostgresListener | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Worker:
        if not self.database.is_sqlite:
            self._listener = PostgresListener(self.database.url, service.WAKE_CHANNEL, self._woken, name="queue-listen",
                                              on_connect=self.notify).start()
        service.LOCAL_WAKERS.append(self._woken)
        for queue in self.queues:
            self._threads.append(threading.Thread(target=self._dispatch, args=(queue,), name=f"queue-{queue}", daemon=True))
        self._threads.append(threading.Thread(target=self._upkeep, name="queue-upkeep", daemon=True))
        for thread in self._threads:
            thread.start()
        log.info("worker started", worker=self.name, queues=self.queues)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, let running jobs finish (up to `timeout`), then return. A job still
        running after that keeps its lease until it runs out; another worker then takes it."""
        self._stopping.set()
        if self._woken in service.LOCAL_WAKERS:
            service.LOCAL_WAKERS.remove(self._woken)
        self.notify()
        for thread in self._threads:
            thread.join(timeout=timeout)
        if self._listener:
            self._listener.stop()
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=False)
        log.info("worker stopped", worker=self.name)

    def run_until_signalled(self) -> None:
        """`seamline worker`: run until SIGTERM or SIGINT, then stop gracefully."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        stop.wait()
        self.stop()

    def notify(self) -> None:
        """Look for due jobs now instead of at the next poll."""
        for wake in self._wakes.values():
            wake.set()

    def _woken(self, queue: str) -> None:
        if queue == service.ALL_QUEUES:
            self.notify()
        elif queue in self._wakes:
            self._wakes[queue].set()

    # --- claiming ----------------------------------------------------------------------------

    def _free(self, queue: str) -> int:
        with self._lock:
            return self.queues[queue] - sum(1 for q in self._running.values() if q == queue)

    def _dispatch(self, queue: str) -> None:
        while not self._stopping.is_set():
            try:
                claimed = self._claim(queue)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the loop
                log.exception("claiming failed", queue=queue)
                claimed = 0
            if not claimed:
                self._wakes[queue].wait(self._idle_wait(queue))
                self._wakes[queue].clear()

    def _idle_wait(self, queue: str) -> float:
        """How long `queue` may wait for a wake before it looks again: `poll_seconds` unless every
        new job is announced to this worker (LISTENing), then until its next delayed job is due
        (never less than `poll_seconds`: a rate-limited queue with due jobs is not spun on)."""
        if self._listener is None or not self._listener.connected:
            return self.poll_seconds
        longest = max(self.poll_seconds, LISTENING_FALLBACK_SECONDS)
        if self._free(queue) <= 0:  # a finishing job wakes the queue
            return longest
        try:
            with self.database.read() as session:
                next_at = service.next_run_at(session, queue)
        except Exception:  # noqa: BLE001 - a database hiccup: look again soon
            log.exception("reading the next due job failed", queue=queue)
            return self.poll_seconds
        if next_at is None:
            return longest
        return min(longest, max(self.poll_seconds, (next_at - utcnow()).total_seconds()))

    def _claim(self, queue: str) -> int:
        free = self._free(queue)
        if free <= 0:
            return 0
        now = utcnow()
        levels = None  # after a claim that found work, claim again straight away
        if not self._found_work.get(queue):
            with self.database.read() as session:
                levels = service.due_levels(session, queue, now)
            if not levels:
                return 0
        jobs = self.database.run_write(
            lambda session: service.claim(session, queue, worker=self.name, limit=free, lease=self.lease, now=now, levels=levels,
                                          limiter=self.registry.limits.get(queue)))
        self._found_work[queue] = bool(jobs)
        with self._lock:
            self._running.update((job.id, queue) for job in jobs)
        for job in jobs:
            self._pools[queue].submit(self._execute, queue, job)
        return len(jobs)

    # --- running -----------------------------------------------------------------------------

    def _execute(self, queue: str, job: service.Claimed) -> None:
        try:
            outcome, seconds = execute(self.database, self.registry, job, worker=self.name)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            self._wakes[queue].set()
        if self.observer:
            self.observer(queue, job.task, outcome, seconds)

    # --- upkeep: leases, vanished workers, periodic clocks -------------------------------------

    def _upkeep(self) -> None:
        interval = min(1.0, self.lease.total_seconds() / 3)
        while not self._stopping.wait(interval):
            try:
                self.upkeep_once()
            except Exception:  # noqa: BLE001
                log.exception("queue upkeep failed")

    def upkeep_once(self) -> None:
        with self._lock:
            running = list(self._running)
        if running:
            self.database.run_write(lambda session: service.extend(session, running, worker=self.name, lease=self.lease))
        now = utcnow()
        with self.database.read() as session:
            vanished = service.has_expired_leases(session, now)
            due = service.due_schedules(session, list(self.registry.periodic.values()), now) if self.periodic else []
        if vanished:
            self.database.run_write(lambda session: service.rescue(session, now=now))
        if due:
            started = [self.database.run_write(lambda session, p=p: service.start_period(session, p, now)) for p in due]
            if any(started):
                self.notify()


def execute(database: Database, registry: TaskRegistry, job: service.Claimed, *, worker: str) -> tuple[str, float]:
    """Run one claimed job and record how it ended: (outcome, seconds)."""
    started = utcnow()
    entry = registry.get(job.task)
    periodic = job.task.removeprefix("periodic.") if job.task.startswith("periodic.") else None
    outcome, error = "succeeded", None
    try:
        if entry is None:
            raise LookupError(f"no task {job.task!r} is registered in this worker")
        task, handler = entry
        context = JobContext(job_id=job.id, attempt=job.attempt, worker=worker)
        if task.in_transaction:
            def work(session: Any) -> None:
                context.session = session
                handler(context, job.args)
                service.finish(session, job.id, worker=worker)
            database.run_write(work)
        else:
            handler(context, job.args)
            database.run_write(lambda session: service.finish(session, job.id, worker=worker))
    except service.LostLease:
        outcome = "lost"
        log.warning("job lease lost; another worker has it", job_id=job.id, task=job.task)
    except Defer as later:
        kept = database.run_write(lambda session: service.defer(session, job, worker=worker, delay=later.delay, args=later.job_args))
        outcome = "deferred" if kept else "lost"
    except Retry as retry:
        state = database.run_write(lambda session: service.fail(session, job, worker=worker, error=str(retry),
                                                                retry_in=retry.delay))
        outcome = "dead" if state == DEAD else "retrying"
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        error = "".join(traceback.format_exception_only(exc)).strip() + "\n" + "".join(traceback.format_tb(exc.__traceback__)[-5:])
        if periodic:
            outcome = "failed"
            database.run_write(lambda session: service.drop(session, job.id, worker=worker))
        else:
            state = database.run_write(lambda session: service.fail(session, job, worker=worker, error=error))
            outcome = "dead" if state == DEAD else "retrying"
        log.warning("job failed", job_id=job.id, task=job.task, attempt=job.attempt, outcome=outcome, error=str(exc))
    if periodic:
        database.run_write(lambda session: service.record_period(session, periodic, started=started, error=error))
    return outcome, (utcnow() - started).total_seconds()


def run_due(database: Database, registry: TaskRegistry, queue: str, *, limit: int = 100, task: str | None = None,
            lease: timedelta = timedelta(minutes=5)) -> int:
    """Run the due jobs of `queue` (of one `task`, if given) here, one after another, and return
    how many ran (a deferred job did not): for a cron command and for tests that want a pass
    without a worker's threads."""
    name = f"{socket.gethostname()}:{os.getpid()}:once-{uuid.uuid4().hex[:6]}"
    jobs = database.run_write(lambda session: service.claim(session, queue, worker=name, limit=limit, lease=lease, task=task,
                                                            limiter=registry.limits.get(queue)))
    return sum(execute(database, registry, job, worker=name)[0] != "deferred" for job in jobs)
