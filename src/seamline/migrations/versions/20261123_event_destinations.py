"""event destinations: webhooks and their delivery outbox

Revision ID: 20261123_event_destinations
Revises: 20261123_events
Create Date: 2026-11-23 09:30:11.345267
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_event_destinations'
down_revision = '20261123_events'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_destination',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('types', sa.JSON(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_destination'))
    )
    op.create_table('event_delivery',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('destination_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_ids', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['destination_id'], ['event_destination.id'], name=op.f('fk_event_delivery_destination_id_event_destination')),
    sa.ForeignKeyConstraint(['source_id'], ['event_source.id'], name=op.f('fk_event_delivery_source_id_event_source')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_delivery'))
    )
    with op.batch_alter_table('event_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_event_delivery_due', ['status', 'next_attempt_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('event_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_event_delivery_due')

    op.drop_table('event_delivery')
    op.drop_table('event_destination')
