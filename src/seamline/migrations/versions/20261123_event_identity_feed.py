"""event identity feed: identity-graph work applied after collection answers

Revision ID: 20261123_event_identity_feed
Revises: 20261123_event_destinations
Create Date: 2026-11-23 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261123_event_identity_feed"
down_revision = "20261123_event_destinations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_identity_feed",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_identity_feed")),
    )


def downgrade() -> None:
    op.drop_table("event_identity_feed")
