"""outbound jobs: each queued outbound message is a job of the job queue (issue 19)

Messages waiting to be sent (the old send pass's own outbox) get their `inbox.send` jobs here,
in their channel's queue (`outbound.<channel>`), due when the message was, so nothing queued is
stranded by the upgrade.

Revision ID: 20261206_outbound_jobs
Revises: 20261206_jobs
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '20261206_outbound_jobs'
down_revision = '20261206_jobs'
branch_labels = None
depends_on = None

HIGH = 2  # core.queue.Priority.high: the replies an agent is waiting on go first


def upgrade() -> None:
    connection = op.get_bind()
    queued = list(connection.execute(sa.text(
        "SELECT id, channel, next_attempt_at FROM inbox_message WHERE direction = 'out' AND delivery_status = 'queued' "
        "ORDER BY id")))
    if not queued:
        return
    jobs = sa.table(
        "jobs", sa.column("queue", sa.String), sa.column("task", sa.String), sa.column("args", sa.JSON),
        sa.column("priority", sa.SmallInteger), sa.column("state", sa.String), sa.column("run_at", sa.DateTime(timezone=True)),
        sa.column("attempts", sa.Integer), sa.column("max_attempts", sa.Integer), sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(jobs, [{"queue": f"outbound.{channel}", "task": "inbox.send", "args": {"message_id": message_id}, "priority": HIGH,
                           "state": "queued", "run_at": _aware(due) or now, "attempts": 0, "max_attempts": 1000,
                           "created_at": now} for message_id, channel, due in queued])


def _aware(value):  # noqa: ANN001, ANN202 - SQLite gives back text or naive datetimes
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM jobs WHERE task = 'inbox.send'"))
