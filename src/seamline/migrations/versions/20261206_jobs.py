"""jobs: one job queue on the database (issue 19)

Event deliveries and inbox webhooks waiting to be sent (the old workers' outboxes) get their
jobs here, so nothing pending is stranded by the upgrade.

Revision ID: 20261206_jobs
Revises: 20261206_trust_boundaries
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '20261206_jobs'
down_revision = '20261206_trust_boundaries'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("task", sa.String(128), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("locked_by", sa.String(100), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    queued, running, dead, alive = (sa.text("state = 'queued'"), sa.text("state = 'running'"),
                                    sa.text("state = 'dead'"), sa.text("state <> 'dead'"))
    op.create_index("ix_jobs_due", "jobs", ["queue", "priority", "run_at"], postgresql_where=queued, sqlite_where=queued)
    op.create_index("ix_jobs_lease", "jobs", ["locked_until"], postgresql_where=running, sqlite_where=running)
    op.create_index("ix_jobs_dead", "jobs", ["queue", "finished_at"], postgresql_where=dead, sqlite_where=dead)
    op.create_index("uq_jobs_dedupe_key", "jobs", ["dedupe_key"], unique=True, postgresql_where=alive, sqlite_where=alive)
    op.create_table(
        "job_schedule",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_job_schedule"),
    )
    _enqueue_pending_deliveries()


def _enqueue_pending_deliveries() -> None:
    connection = op.get_bind()
    pending = [("events.deliver", *row) for row in connection.execute(sa.text(
        "SELECT id, next_attempt_at FROM event_delivery WHERE status = 'pending' ORDER BY id"))]
    pending += [("inbox.webhook", *row) for row in connection.execute(sa.text(
        "SELECT id, next_attempt_at FROM inbox_webhook_delivery WHERE status = 'pending' ORDER BY id"))]
    if not pending:
        return
    jobs = sa.table(
        "jobs", sa.column("queue", sa.String), sa.column("task", sa.String), sa.column("args", sa.JSON),
        sa.column("priority", sa.SmallInteger), sa.column("state", sa.String), sa.column("run_at", sa.DateTime(timezone=True)),
        sa.column("attempts", sa.Integer), sa.column("max_attempts", sa.Integer), sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(jobs, [{"queue": "webhooks", "task": task, "args": {"delivery_id": delivery_id},
                           "priority": 1, "state": "queued", "run_at": _aware(due) or now, "attempts": 0,
                           "max_attempts": 1000, "created_at": now} for task, delivery_id, due in pending])


def _aware(value):  # noqa: ANN001, ANN202 - SQLite gives back text or naive datetimes
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def downgrade() -> None:
    op.drop_table("job_schedule")
    op.drop_table("jobs")
