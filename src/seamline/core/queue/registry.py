"""What the queue can run: tasks (declared once, at module level, by the domain that owns
them) and the handlers the composition root binds to them for one process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

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
                delay: timedelta | None = None, priority: Priority | None = None, dedupe_key: str | None = None) -> int | None:
        from seamline.core.queue import service

        return service.enqueue(session, self, args, run_at=run_at, delay=delay, priority=priority, dedupe_key=dedupe_key)


class Retry(Exception):
    """Raised by a handler whose work should be tried again after `delay` (the handler kept its
    own account of the failure, e.g. a webhook's delivery row): the queue's backoff is not used."""

    def __init__(self, delay: timedelta, reason: str = ""):
        super().__init__(reason or f"retry in {delay.total_seconds():g} s")
        self.delay = delay


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

    def add(self, task: Task, handler: Handler) -> None:
        self.handlers[task.name] = (task, handler)

    def every(self, periodic: Periodic) -> None:
        self.periodic[periodic.name] = periodic
        self.add(periodic.task, lambda _ctx, _args: periodic.work())

    def get(self, name: str) -> tuple[Task, Handler] | None:
        return self.handlers.get(name)

    @property
    def queues(self) -> list[str]:
        return sorted({task.queue for task, _ in self.handlers.values()})
