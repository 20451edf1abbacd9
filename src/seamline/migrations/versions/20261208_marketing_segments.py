"""marketing segments: definitions, members, entries and exits, profile facts (issue 22)

Revision ID: 20261208_marketing_segments
Revises: 20261207_analytics_stamps
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261208_marketing_segments'
down_revision = '20261207_analytics_stamps'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
At = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "marketing_segment",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("evaluated_at", At, nullable=True),
        sa.Column("evaluated_version", sa.Integer(), nullable=True),
        sa.Column("evaluation_ms", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
        sa.Column("created_at", At, nullable=False),
        sa.Column("updated_at", At, nullable=False),
    )
    op.create_table(
        "marketing_segment_member",
        sa.Column("segment_id", BigId, sa.ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("profile_id", BigId, sa.ForeignKey("customer_profile.id"), primary_key=True),
        sa.Column("entered_at", At, nullable=False),
    )
    op.create_index("ix_marketing_segment_member_profile", "marketing_segment_member", ["profile_id"])
    op.create_table(
        "marketing_segment_change",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("segment_id", BigId, sa.ForeignKey("marketing_segment.id", ondelete="CASCADE"), nullable=False),
        sa.Column("profile_id", BigId, sa.ForeignKey("customer_profile.id"), nullable=False),
        sa.Column("change", sa.String(8), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("at", At, nullable=False),
    )
    op.create_index("ix_marketing_segment_change_profile", "marketing_segment_change", ["profile_id", "at"])
    op.create_index("ix_marketing_segment_change_segment", "marketing_segment_change", ["segment_id", "id"])
    op.create_table(
        "marketing_profile_fact",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("profile_id", BigId, sa.ForeignKey("customer_profile.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("text_value", sa.Text(), nullable=True),
        sa.Column("number_value", sa.Float(), nullable=True),
    )
    op.create_index("ix_marketing_profile_fact_text", "marketing_profile_fact", ["key", "text_value"])
    op.create_index("ix_marketing_profile_fact_number", "marketing_profile_fact", ["key", "number_value"])
    op.create_index("ix_marketing_profile_fact_profile", "marketing_profile_fact", ["profile_id"])
    op.create_table(
        "marketing_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", At, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("marketing_state")
    op.drop_table("marketing_profile_fact")
    op.drop_table("marketing_segment_change")
    op.drop_table("marketing_segment_member")
    op.drop_table("marketing_segment")
