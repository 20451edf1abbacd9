"""The job queue on each database: transactional enqueue, priorities, delays, retries with
backoff, dead letters and their retry, leases (a vanished worker's job runs again; a worker
that lost its lease changes nothing), one run at a time, periodic tasks once per period."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from seamline.core.errors import NotFound
from seamline.core.queue import Defer, Periodic, Priority, Task, TaskRegistry, Worker, run_due, service
from seamline.core.queue.models import DEAD, QUEUED, RUNNING, Job, JobSchedule
from seamline.core.time import utcnow

NOTE = Task("test.note", queue="q1")
CHAIN = Task("test.chain", queue="q1", in_transaction=True)
LEASE = timedelta(seconds=30)


def all_jobs(database) -> list[Job]:
    with database.read() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_rollback_enqueues_nothing_and_a_commit_keeps_the_job(database):
    with pytest.raises(RuntimeError), database.write() as session:
        NOTE.enqueue(session, {"n": 1})
        raise RuntimeError("the order could not be placed")
    assert all_jobs(database) == []
    with database.write() as session:
        NOTE.enqueue(session, {"n": 2}, delay=timedelta(hours=1))
    [job] = all_jobs(database)
    assert (job.args, job.state, job.queue, job.priority, job.attempts) == ({"n": 2}, QUEUED, "q1", Priority.normal, 0)
    assert job.run_at > utcnow() + timedelta(minutes=59)


def test_a_dedupe_key_admits_one_waiting_job(database):
    first = database.run_write(lambda s: NOTE.enqueue(s, {"n": 1}, dedupe_key="order-7"))
    again = database.run_write(lambda s: NOTE.enqueue(s, {"n": 1}, dedupe_key="order-7"))
    assert first and again is None and len(all_jobs(database)) == 1
    [claimed] = database.run_write(lambda s: service.claim(s, "q1", worker="w", limit=5, lease=LEASE))
    assert database.run_write(lambda s: NOTE.enqueue(s, dedupe_key="order-7")) is None  # still running
    database.run_write(lambda s: service.finish(s, claimed.id, worker="w"))
    assert database.run_write(lambda s: NOTE.enqueue(s, dedupe_key="order-7"))  # done: a new one may come


def test_higher_priorities_first_oldest_first_and_never_before_its_time(database):
    now = utcnow()
    with database.write() as session:
        bulk = [NOTE.enqueue(session, {"i": i}, priority=Priority.bulk, run_at=now - timedelta(minutes=10 - i)) for i in range(3)]
        later = NOTE.enqueue(session, priority=Priority.urgent, run_at=now + timedelta(hours=1))
        high = NOTE.enqueue(session, priority=Priority.high)
        Task("other", queue="q2", priority=Priority.urgent).enqueue(session)

    def claim(limit: int, at=None) -> list[int]:
        return [job.id for job in database.run_write(
            lambda s: service.claim(s, "q1", worker="w", limit=limit, lease=LEASE, now=at or utcnow()))]

    assert claim(2) == [high, bulk[0]]
    assert claim(10) == bulk[1:]
    assert claim(10) == []
    assert claim(10, at=now + timedelta(hours=1, seconds=1)) == [later]
    assert {job.state for job in all_jobs(database) if job.queue == "q1"} == {RUNNING}


def test_a_failing_job_is_retried_with_backoff_then_kept_dead_until_staff_retry_it(database):
    registry, done = TaskRegistry(), []
    flaky = Task("test.flaky", queue="q1", max_attempts=2)
    registry.add(NOTE, lambda _ctx, args: done.append(args["n"]))
    registry.add(flaky, lambda _ctx, _args: 1 / 0)
    with database.write() as session:
        NOTE.enqueue(session, {"n": 1})
        flaky_id = flaky.enqueue(session)
    worker = Worker(database, registry, poll_seconds=0.02).start()
    try:
        wait_for(lambda: done == [1] and all_jobs(database)[0].attempts == 1 and all_jobs(database)[0].state == QUEUED)
        [job] = all_jobs(database)
        assert job.id == flaky_id and "ZeroDivisionError" in job.last_error
        assert timedelta(seconds=1) < job.run_at - utcnow() < timedelta(seconds=service.BACKOFF_BASE_SECONDS * 1.25 + 1)
        database.run_write(lambda s: s.execute(update(Job).values(run_at=utcnow())))  # the backoff has passed
        wait_for(lambda: all_jobs(database)[0].state == DEAD)
    finally:
        worker.stop()
    [dead] = all_jobs(database)
    assert dead.attempts == 2 and dead.finished_at is not None and dead.locked_by is None
    with database.read() as session:
        [stats] = service.stats(session, ["q1"])
    assert (stats.queue, stats.queued, stats.running, stats.dead) == ("q1", 0, 0, 1)

    database.run_write(lambda s: service.retry_dead(s, flaky_id))
    [again] = all_jobs(database)
    assert (again.state, again.attempts, again.finished_at) == (QUEUED, 0, None)
    with pytest.raises(NotFound):
        database.run_write(lambda s: service.retry_dead(s, flaky_id))  # not dead any more


def test_a_new_job_wakes_an_idle_worker_at_once(database):
    """With a 60 s poll, only the wake can start the job in time: PostgreSQL's NOTIFY (which
    reaches workers in every process), or on SQLite the commit telling this process's workers."""
    registry, done = TaskRegistry(), []
    registry.add(NOTE, lambda _ctx, args: done.append((args["n"], time.monotonic())))
    worker = Worker(database, registry, poll_seconds=60).start()
    try:
        time.sleep(0.3)  # every queue has looked, found nothing and waits
        for n in range(3):
            enqueued = time.monotonic()
            database.run_write(lambda s, n=n: NOTE.enqueue(s, {"n": n}))
            wait_for(lambda n=n: len(done) == n + 1, timeout=5)
            assert done[-1][1] - enqueued < 2
        with pytest.raises(AssertionError), database.write() as session:  # a rollback wakes nobody in vain
            NOTE.enqueue(session, {"n": 99})
            raise AssertionError
        assert "queue_wakes" not in session.info
    finally:
        worker.stop()
    assert [n for n, _ in done] == [0, 1, 2]


def test_a_new_job_is_announced_once_and_a_coalesced_enqueue_not_again(database):
    """On PostgreSQL: one NOTIFY per queue and transaction however many jobs it adds, none for a
    rolled-back one, none for an enqueue that joins the job already announced."""
    if database.is_sqlite:
        pytest.skip("PostgreSQL's NOTIFY")
    import psycopg

    with psycopg.connect(database.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as listener:
        listener.execute(f"LISTEN {service.WAKE_CHANNEL}")

        def announced() -> list[str]:
            return [notice.payload for notice in listener.notifies(timeout=0.3)]

        with database.write() as session:
            for n in range(5):
                NOTE.enqueue(session, {"n": n})
            Task("other", queue="q2").enqueue(session)
        assert sorted(announced()) == ["q1", "q2"]
        with pytest.raises(RuntimeError), database.write() as session:
            NOTE.enqueue(session)
            raise RuntimeError
        assert announced() == []
        database.run_write(lambda s: NOTE.enqueue(s, dedupe_key="lane-1", coalesce=True))
        assert announced() == ["q1"]
        database.run_write(lambda s: NOTE.enqueue(s, dedupe_key="lane-1", coalesce=True))
        assert announced() == []


def test_a_listening_worker_waits_until_its_next_job_is_due(database):
    """On PostgreSQL every enqueue is announced, so an idle queue need not poll: it waits until
    its soonest delayed job, never less than the poll (a rate-limited queue is not spun on), and
    looks every LISTENING_FALLBACK_SECONDS when nothing waits."""
    if database.is_sqlite:
        pytest.skip("SQLite has no NOTIFY: its workers poll")
    from seamline.core.queue.worker import LISTENING_FALLBACK_SECONDS

    worker = Worker(database, TaskRegistry(), queues={"q1": 1}, poll_seconds=0.2, periodic=False).start()
    try:
        wait_for(lambda: worker._listener.connected)
        assert worker._idle_wait("q1") == LISTENING_FALLBACK_SECONDS
        database.run_write(lambda s: NOTE.enqueue(s, delay=timedelta(seconds=3)))
        assert 2 < worker._idle_wait("q1") <= 3
        database.run_write(lambda s: NOTE.enqueue(s))
        assert worker._idle_wait("q1") == 0.2
    finally:
        worker.stop()
    assert Worker(database, TaskRegistry(), poll_seconds=0.2)._idle_wait("q1") == 0.2  # not listening: the poll


def test_a_deferred_job_waits_without_spending_an_attempt_and_keeps_its_new_args(database):
    registry, seen = TaskRegistry(), []
    patient = Task("test.patient", queue="q1", max_attempts=1)

    def handler(_ctx, args) -> None:  # noqa: ANN001
        seen.append(args)
        if "ready" not in args:
            raise Defer(timedelta(seconds=60), args={**args, "ready": True})

    registry.add(patient, handler)
    with database.write() as session:
        patient.enqueue(session, {"n": 1})
    assert run_due(database, registry, "q1") == 0  # deferred: it did not run
    [job] = all_jobs(database)
    assert (job.state, job.attempts, job.args) == (QUEUED, 0, {"n": 1, "ready": True})
    assert timedelta(seconds=59) < job.run_at - utcnow() <= timedelta(seconds=60)
    database.run_write(lambda s: s.execute(update(Job).values(run_at=utcnow())))
    assert run_due(database, registry, "q1") == 1  # its one attempt was still there
    assert seen == [{"n": 1}, {"n": 1, "ready": True}] and all_jobs(database) == []


class Bucket:
    """A `Limiter` of `tokens` in all, counting what was given back."""

    def __init__(self, tokens: int) -> None:
        self.tokens, self.returned = tokens, 0

    def take(self, _session, wanted: int, _now) -> int:  # noqa: ANN001
        granted = min(wanted, self.tokens)
        self.tokens -= granted
        return granted

    def give_back(self, _session, unused: int) -> None:  # noqa: ANN001
        self.tokens += unused
        self.returned += unused


def test_a_rate_limited_queue_starts_no_more_than_its_limiter_lets_go_highest_priority_first(database):
    registry, done, bucket = TaskRegistry(), [], Bucket(3)
    registry.add(NOTE, lambda _ctx, args: done.append(args["n"]), queues={"q1.limited": bucket})
    assert registry.queues == ["q1.limited"] and registry.limits == {"q1.limited": bucket}
    with database.write() as session:
        for n in range(5):
            NOTE.enqueue(session, {"n": n}, queue="q1.limited", priority=Priority.bulk)
        NOTE.enqueue(session, {"n": "urgent"}, queue="q1.limited", priority=Priority.high)
    assert run_due(database, registry, "q1.limited") == 3
    assert done == ["urgent", 0, 1] and bucket.tokens == 0 and bucket.returned == 0
    assert run_due(database, registry, "q1.limited") == 0  # no token: the jobs wait, unclaimed
    assert {job.state for job in all_jobs(database)} == {QUEUED}
    bucket.tokens = 10
    assert run_due(database, registry, "q1.limited") == 3
    assert done == ["urgent", 0, 1, 2, 3, 4] and bucket.tokens == 7 and bucket.returned == 7


def test_a_worker_that_lost_its_lease_changes_nothing(database):
    job_id = database.run_write(lambda s: CHAIN.enqueue(s))
    [mine] = database.run_write(lambda s: service.claim(s, "q1", worker="slow", limit=1, lease=LEASE))
    # It stalls past its lease; the job goes back and another worker takes it.
    database.run_write(lambda s: s.execute(update(Job).values(locked_until=utcnow() - timedelta(seconds=1))))
    assert database.run_write(lambda s: service.rescue(s)) == 1
    [theirs] = database.run_write(lambda s: service.claim(s, "q1", worker="fast", limit=1, lease=LEASE))
    assert mine.id == theirs.id == job_id and theirs.attempt == 2

    with pytest.raises(service.LostLease), database.write() as session:  # what the stalled worker would commit
        NOTE.enqueue(session, {"effect": "of the stalled worker"})
        service.finish(session, job_id, worker="slow")
    assert [job.task for job in all_jobs(database)] == ["test.chain"]
    assert database.run_write(lambda s: service.fail(s, mine, worker="slow", error="late")) == ""
    with database.write() as session:
        NOTE.enqueue(session, {"effect": "of the worker that holds it"})
        service.finish(session, job_id, worker="fast")
    assert [job.args for job in all_jobs(database)] == [{"effect": "of the worker that holds it"}]


def test_the_job_of_a_vanished_worker_runs_again_and_dies_on_its_last_attempt(database):
    registry, done = TaskRegistry(), []
    registry.add(NOTE, lambda ctx, args: done.append((args["n"], ctx.attempt)))
    last = Task("test.note", queue="q1", max_attempts=1)
    with database.write() as session:
        NOTE.enqueue(session, {"n": 1})
        last_id = last.enqueue(session, {"n": 2})
    # A worker claims both and is killed: its leases run out.
    database.run_write(lambda s: service.claim(s, "q1", worker="killed", limit=2, lease=timedelta(milliseconds=100)))
    worker = Worker(database, registry, poll_seconds=0.02, lease_seconds=3).start()
    try:
        wait_for(lambda: done == [(1, 2)] and len(all_jobs(database)) == 1 and all_jobs(database)[0].state == DEAD)
    finally:
        worker.stop()
    [dead] = all_jobs(database)
    assert dead.id == last_id and "stopped" in dead.last_error


def test_two_workers_never_run_the_same_job_at_once(database):
    registry, lock = TaskRegistry(), threading.Lock()
    running: set[int] = set()
    runs: Counter[int] = Counter()
    overlaps: list[int] = []

    def work(ctx, _args) -> None:  # noqa: ANN001
        with lock:
            if ctx.job_id in running:
                overlaps.append(ctx.job_id)
            running.add(ctx.job_id)
            runs[ctx.job_id] += 1
        time.sleep(0.005)
        with lock:
            running.discard(ctx.job_id)

    registry.add(NOTE, work)
    with database.write() as session:
        ids = [NOTE.enqueue(session, {"i": i}) for i in range(80)]
    workers = [Worker(database, registry, concurrency=3, poll_seconds=0.01, name=f"w{n}").start() for n in range(2)]
    try:
        wait_for(lambda: all_jobs(database) == [], timeout=60)
    finally:
        for worker in workers:
            worker.stop()
    assert overlaps == [] and sorted(runs) == ids and set(runs.values()) == {1}


def test_a_periodic_task_starts_once_per_period_for_the_whole_cluster(database):
    tick = Periodic("tick", 60, lambda: None)
    now = utcnow()
    started = [database.run_write(lambda s: service.start_period(s, tick, now)) for _ in range(3)]
    assert started[0] and started[1:] == [None, None]  # two other processes saw the same period
    assert database.run_write(lambda s: service.start_period(s, tick, now + timedelta(seconds=59))) is None
    # The run of the last period is still waiting: the next period's run is absorbed, not stacked.
    assert database.run_write(lambda s: service.start_period(s, tick, now + timedelta(seconds=61))) is None
    assert [job.task for job in all_jobs(database)] == ["periodic.tick"]

    runs: list[float] = []
    registry = TaskRegistry()
    database.run_write(lambda s: s.execute(Job.__table__.delete()))
    database.run_write(lambda s: s.execute(JobSchedule.__table__.delete()))
    registry.every(Periodic("often", 1.0, lambda: runs.append(time.monotonic())))
    workers = [Worker(database, registry, poll_seconds=0.02, name=f"w{n}").start() for n in range(2)]
    time.sleep(3.6)
    for worker in workers:
        worker.stop()
    assert 2 <= len(runs) <= 4, runs  # two workers ticking every second would run it 6-8 times
    with database.read() as session:
        schedule = session.get(JobSchedule, "often")
    assert schedule.last_succeeded_at is not None and schedule.last_error is None


def test_a_failing_periodic_run_is_recorded_on_its_schedule_not_as_a_dead_letter(database):
    registry = TaskRegistry()
    registry.every(Periodic("broken", 3600, lambda: {}["missing"]))
    worker = Worker(database, registry, poll_seconds=0.02).start()
    try:
        def failed() -> bool:
            with database.read() as session:
                schedule = session.get(JobSchedule, "broken")
                return schedule is not None and schedule.last_failed_at is not None
        wait_for(failed)
    finally:
        worker.stop()
    with database.read() as session:
        assert "KeyError" in session.get(JobSchedule, "broken").last_error
    assert all_jobs(database) == []


def test_metrics_show_every_registered_queue_and_its_dead_letters(client, database, admin_headers):
    job_id = database.run_write(lambda s: Task("events.deliver", queue="webhooks", max_attempts=1).enqueue(s))
    [claimed] = database.run_write(lambda s: service.claim(s, "webhooks", worker="w", limit=1, lease=LEASE))
    database.run_write(lambda s: service.fail(s, claimed, worker="w", error="HTTP 500"))
    assert claimed.id == job_id
    text = client.get("/metrics", headers=admin_headers).text
    assert 'seamline_queue_jobs_dead{queue="webhooks"} 1.0' in text
    assert 'seamline_queue_jobs_queued{queue="webhooks"} 0.0' in text
    assert 'seamline_queue_oldest_due_seconds{queue="webhooks"} 0.0' in text
