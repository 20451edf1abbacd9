"""analytics stamps: change stamps the analytics mirror reads by (issue 21)

Conversations get `updated_at` (moved by every change; existing rows take their last message's
time). The mirror re-reads profiles, orders, carts and conversations changed since its last
sync: each stamp gets an index so that read does not scan the table.

Revision ID: 20261207_analytics_stamps
Revises: 20261207_inbound_lanes
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261207_analytics_stamps'
down_revision = '20261207_inbound_lanes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_conversation") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE inbox_conversation SET updated_at = COALESCE(resolved_at, last_message_at, created_at)")
    with op.batch_alter_table("inbox_conversation") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("ix_inbox_conversation_updated_at", "inbox_conversation", ["updated_at"])
    op.create_index("ix_customer_profile_updated_at", "customer_profile", ["updated_at"])
    op.create_index("ix_commerce_order_updated_at", "commerce_order", ["updated_at"])
    op.create_index("ix_commerce_cart_updated_at", "commerce_cart", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_commerce_cart_updated_at", table_name="commerce_cart")
    op.drop_index("ix_commerce_order_updated_at", table_name="commerce_order")
    op.drop_index("ix_customer_profile_updated_at", table_name="customer_profile")
    op.drop_index("ix_inbox_conversation_updated_at", table_name="inbox_conversation")
    with op.batch_alter_table("inbox_conversation") as batch:
        batch.drop_column("updated_at")
