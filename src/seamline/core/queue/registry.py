"""What the queue can run: tasks (declared once, at module level, by the domain that owns
them) and the handlers the composition root binds to them for one process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session


class Priority(IntEnum):
    """Within a queue, every due job of a higher level starts before any of a lower one."""

    bulk = 0  # campaigns, backfills
    normal = 1
    high = 2  # transactional messages, agents' replies, login codes
    urgent = 3


@dataclass(frozen=True)
class Task:
    """A kind of job. `in_transaction` tasks do database work only: the handler runs inside the
    transaction that also deletes the finished job, so its effects happen exactly once even when
    a worker dies or loses its lease. The others (a call to a provider, a mailbox poll) run
    outside any transaction and may run again after a crash: they must be idempotent."""

    name: str
    queue: str = "default"
    priority: Priority = Priority.normal
    max_attempts: int = 8
    in_transaction: bool = False

    def enqueue(self, session: Session, args: dict[str, Any] | None = None, *, run_at: datetime | None = None,
                delay: timedelta | None = None, priority: Priority | None = None, dedupe_key: str | None = None,
                queue: str | None = None, coalesce: bool = False) -> int | None:
        """`queue`: another queue than the task's own, for a task whose jobs are split over
        queues of their own (e.g. a send per channel, each queue with its channel's rate limit)."""
        from seamline.core.queue import service

        return service.enqueue(session, self, args, run_at=run_at, delay=delay, priority=priority, dedupe_key=dedupe_key,
                               queue=queue, coalesce=coalesce)


class Limiter(Protocol):
    """A rate limit on a queue, shared by every worker: each claim takes one unit per job from
    it in the claiming transaction (a provider's messages per second, say), so jobs wait in the
    queue, in priority order, until the limit lets them go."""

    def take(self, session: Session, wanted: int, now: datetime) -> int:
        """How many jobs may start now (at most `wanted`)."""

    def give_back(self, session: Session, unused: int) -> None:
        """Units taken for jobs that were not there after all."""


class Retry(Exception):
    """Raised by a handler whose work should be tried again after `delay` (the handler kept its
    own account of the failure, e.g. a webhook's delivery row): the queue's backoff is not used."""

    def __init__(self, delay: timedelta, reason: str = ""):
        super().__init__(reason or f"retry in {delay.total_seconds():g} s")
        self.delay = delay


class Defer(Exception):
    """Raised by a handler that may not do its work yet, through no failure (its channel was
    paused after the job was claimed): the job runs again after `delay`, the attempt is not
    counted, and `args`, when given, replace the job's (e.g. how far a long task got)."""

    def __init__(self, delay: timedelta, args: dict[str, Any] | None = None):
        super().__init__(f"deferred {delay.total_seconds():g} s")
        self.delay, self.job_args = delay, args


@dataclass
class JobContext:
    """What a handler gets besides its arguments."""

    job_id: int
    attempt: int
    worker: str
    #: The job's own transaction, for `in_transaction` tasks (None otherwise).
    session: Session | None = None


Handler = Callable[[JobContext, dict[str, Any]], object]


@dataclass(frozen=True)
class Periodic:
    """Work to do every `interval` seconds, once for the whole cluster."""

    name: str
    interval: float
    work: Callable[[], object]
    queue: str = "periodic"

    @property
    def task(self) -> Task:
        return Task(f"periodic.{self.name}", queue=self.queue, priority=Priority.normal, max_attempts=1)


@dataclass
class TaskRegistry:
    handlers: dict[str, tuple[Task, Handler]] = field(default_factory=dict)
    periodic: dict[str, Periodic] = field(default_factory=dict)
    #: Rate limits of queues (`Limiter`), by queue
    limits: dict[str, Limiter] = field(default_factory=dict)
    served: set[str] = field(default_factory=set)

    def add(self, task: Task, handler: Handler, *, queues: dict[str, Limiter | None] | None = None) -> None:
        """Bind `handler` to `task` in this process; `queues`: the queues its jobs are in when
        not only the task's own, each with its rate limit (or None)."""
        self.handlers[task.name] = (task, handler)
        for queue, limiter in (queues or {task.queue: None}).items():
            self.served.add(queue)
            if limiter is not None:
                self.limits[queue] = limiter

    def every(self, periodic: Periodic) -> None:
        self.periodic[periodic.name] = periodic
        self.add(periodic.task, lambda _ctx, _args: periodic.work())

    def get(self, name: str) -> tuple[Task, Handler] | None:
        return self.handlers.get(name)

    @property
    def queues(self) -> list[str]:
        return sorted(self.served)
