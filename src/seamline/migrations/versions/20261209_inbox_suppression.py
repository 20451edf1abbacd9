"""inbox suppression: addresses their channel said are gone for good (an email's hard bounce)

One row per channel and address; sends skip it until it is lifted (docs/inbox.md, "Bounces").

Revision ID: 20261209_inbox_suppression
Revises: 20261208_push_subscriptions
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261209_inbox_suppression'
down_revision = '20261208_push_subscriptions'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('inbox_suppression',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('message_id', BigId, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['inbox_message.id'], name=op.f('fk_inbox_suppression_message_id_inbox_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_suppression')),
    sa.UniqueConstraint('channel', 'address', name=op.f('uq_inbox_suppression_channel_address'))
    )


def downgrade() -> None:
    op.drop_table('inbox_suppression')
