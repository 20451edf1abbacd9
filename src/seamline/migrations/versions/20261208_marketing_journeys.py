"""marketing journeys, templates, messages and campaigns; personal coupons (issue 22)

Revision ID: 20261208_marketing_journeys
Revises: 20261208_marketing_segments
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261208_marketing_journeys'
down_revision = '20261208_marketing_segments'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
At = sa.DateTime(timezone=True)
WAITING = sa.text("status = 'waiting'")


def upgrade() -> None:
    op.create_table(
        "marketing_journey",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("template", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
        sa.Column("created_at", At, nullable=False),
        sa.Column("updated_at", At, nullable=False),
    )
    op.create_table(
        "marketing_journey_version",
        sa.Column("journey_id", BigId, sa.ForeignKey("marketing_journey.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", At, nullable=False),
    )
    op.create_table(
        "marketing_enrollment",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("journey_id", BigId, sa.ForeignKey("marketing_journey.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile_id", BigId, sa.ForeignKey("customer_profile.id"), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("step_id", sa.String(40), nullable=True),
        sa.Column("wake_at", At, nullable=True),
        sa.Column("waiting_step", sa.String(40), nullable=True),
        sa.Column("arm", sa.String(40), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("entered_at", At, nullable=False),
        sa.Column("finished_at", At, nullable=True),
        sa.Column("exit_reason", sa.String(16), nullable=True),
        sa.Column("converted_at", At, nullable=True),
        sa.Column("conversion_order_id", BigId, nullable=True),
        sa.Column("conversion_revenue", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("uq_marketing_enrollment_live", "marketing_enrollment", ["journey_id", "profile_id"], unique=True,
                    postgresql_where=WAITING, sqlite_where=WAITING)
    op.create_index("ix_marketing_enrollment_due", "marketing_enrollment", ["wake_at"], postgresql_where=WAITING, sqlite_where=WAITING)
    op.create_index("ix_marketing_enrollment_profile", "marketing_enrollment", ["profile_id", "status"])
    op.create_index("ix_marketing_enrollment_journey", "marketing_enrollment", ["journey_id", "status", "id"])
    op.create_table(
        "marketing_enrollment_step",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("enrollment_id", BigId, sa.ForeignKey("marketing_enrollment.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step_id", sa.String(40), nullable=False),
        sa.Column("at", At, nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.UniqueConstraint("enrollment_id", "step_id"),
    )
    op.create_table(
        "marketing_template",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
        sa.Column("created_at", At, nullable=False),
        sa.Column("updated_at", At, nullable=False),
    )
    op.create_table(
        "marketing_message",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("profile_id", BigId, sa.ForeignKey("customer_profile.id"), nullable=False),
        sa.Column("template_id", BigId, sa.ForeignKey("marketing_template.id"), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("journey_id", BigId, sa.ForeignKey("marketing_journey.id", ondelete="SET NULL"), nullable=True),
        sa.Column("enrollment_id", BigId, nullable=True),
        sa.Column("step_id", sa.String(40), nullable=True),
        sa.Column("arm", sa.String(40), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("locale", sa.String(8), nullable=True),
        sa.Column("inbox_message_id", BigId, nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", At, nullable=False),
        sa.Column("opened_at", At, nullable=True),
        sa.Column("clicked_at", At, nullable=True),
        sa.Column("unsubscribed_at", At, nullable=True),
    )
    op.create_index("ix_marketing_message_profile", "marketing_message", ["profile_id", "created_at"])
    op.create_index("ix_marketing_message_journey", "marketing_message", ["journey_id", "step_id"])
    op.create_index("ix_marketing_message_inbox", "marketing_message", ["inbox_message_id"])
    op.create_table(
        "marketing_campaign",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("segment_id", BigId, sa.ForeignKey("marketing_segment.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("holdout_percent", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("send_at", At, nullable=True),
        sa.Column("local_time", sa.String(5), nullable=True),
        sa.Column("per_minute", sa.Integer(), nullable=True),
        sa.Column("ab_test", sa.JSON(), nullable=True),
        sa.Column("winner", sa.String(40), nullable=True),
        sa.Column("journey_id", BigId, sa.ForeignKey("marketing_journey.id"), nullable=True),
        sa.Column("audience", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
        sa.Column("created_at", At, nullable=False),
        sa.Column("started_at", At, nullable=True),
        sa.Column("test_ends_at", At, nullable=True),
        sa.Column("finished_at", At, nullable=True),
    )
    with op.batch_alter_table("commerce_coupon") as batch:
        batch.add_column(sa.Column("profile_id", BigId, nullable=True))
        batch.add_column(sa.Column("expires_at", At, nullable=True))
        batch.create_foreign_key("fk_commerce_coupon_profile_id_customer_profile", "customer_profile", ["profile_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("commerce_coupon") as batch:
        batch.drop_constraint("fk_commerce_coupon_profile_id_customer_profile", type_="foreignkey")
        batch.drop_column("expires_at")
        batch.drop_column("profile_id")
    op.drop_table("marketing_campaign")
    op.drop_table("marketing_message")
    op.drop_table("marketing_template")
    op.drop_table("marketing_enrollment_step")
    op.drop_table("marketing_enrollment")
    op.drop_table("marketing_journey_version")
    op.drop_table("marketing_journey")
