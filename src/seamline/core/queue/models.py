"""The queue's tables.

`jobs` holds work that is waiting (`queued`, possibly delayed by `run_at`), being done
(`running`, leased to one worker until `locked_until`) or given up on (`dead`). A job that
succeeds is deleted: the table holds only what still matters, so its indexes stay small.

Claiming reads the partial index `ix_jobs_due` (queue, priority, run_at) of queued jobs only: a
worker asks for each priority level in turn for the oldest due jobs, so a million jobs delayed
into the future are never scanned (they sit past `now` in the index) and a backlog of bulk jobs
never hides an urgent one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow

QUEUED, RUNNING, DEAD = "queued", "running", "dead"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(128))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: `registry.Priority`: higher runs first within a queue.
    priority: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    #: Not before this time: the delay of a delayed job, or the backoff of a retry.
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    #: At most one queued or running job per key (a retried enqueue, a periodic task's run).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When it died (dead letters only).
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_jobs_due", "queue", "priority", "run_at",
              postgresql_where=text("state = 'queued'"), sqlite_where=text("state = 'queued'")),
        Index("ix_jobs_lease", "locked_until",
              postgresql_where=text("state = 'running'"), sqlite_where=text("state = 'running'")),
        Index("ix_jobs_dead", "queue", "finished_at",
              postgresql_where=text("state = 'dead'"), sqlite_where=text("state = 'dead'")),
        Index("uq_jobs_dedupe_key", "dedupe_key", unique=True,
              postgresql_where=text("state <> 'dead'"), sqlite_where=text("state <> 'dead'")),
    )


class JobSchedule(Base):
    """A periodic task's clock, shared by every process: whoever moves `next_run_at` forward
    (a conditional update, so only one can) enqueues that period's run."""

    __tablename__ = "job_schedule"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
