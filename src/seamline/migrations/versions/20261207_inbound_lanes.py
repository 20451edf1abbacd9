"""inbound lanes: provider messages wait in lanes by sender, processed in batches (issue 20)

Each stored provider message gets the lane of its sender (`inbox.delivery.lane_of`): one
lane's batches run one at a time, in order, and lanes run side by side. A partial index finds
a lane's waiting rows without scanning the processed ones. Rows stored before the upgrade wait
in lane 0. Messages waiting for a job when the upgrade runs get one here.

Revision ID: 20261207_inbound_lanes
Revises: 20261206_outbound_jobs
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '20261207_inbound_lanes'
down_revision = '20261206_outbound_jobs'
branch_labels = None
depends_on = None

HIGH = 2  # core.queue.Priority.high


def upgrade() -> None:
    with op.batch_alter_table("inbox_inbound") as batch:
        batch.add_column(sa.Column("lane", sa.SmallInteger(), nullable=False, server_default="0"))
    op.create_index("ix_inbox_inbound_waiting", "inbox_inbound", ["lane", "id"],
                    postgresql_where=sa.text("status = 'received'"), sqlite_where=sa.text("status = 'received'"))
    connection = op.get_bind()
    if connection.execute(sa.text("SELECT 1 FROM inbox_inbound WHERE status = 'received' LIMIT 1")).first() is None:
        return
    jobs = sa.table(
        "jobs", sa.column("queue", sa.String), sa.column("task", sa.String), sa.column("args", sa.JSON),
        sa.column("priority", sa.SmallInteger), sa.column("state", sa.String), sa.column("run_at", sa.DateTime(timezone=True)),
        sa.column("attempts", sa.Integer), sa.column("max_attempts", sa.Integer), sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("dedupe_key", sa.String),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(jobs, [{"queue": "inbound", "task": "inbox.inbound", "args": {"lane": 0}, "priority": HIGH, "state": "queued",
                           "run_at": now, "attempts": 0, "max_attempts": 1000, "created_at": now, "dedupe_key": "inbox.inbound:0"}])


def downgrade() -> None:
    op.drop_index("ix_inbox_inbound_waiting", table_name="inbox_inbound")
    with op.batch_alter_table("inbox_inbound") as batch:
        batch.drop_column("lane")
