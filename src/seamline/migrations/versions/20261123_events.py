"""events: tracking sources and the events they send

Revision ID: 20261123_events
Revises: 20261123_foundation
Create Date: 2026-11-23 09:24:52.780202
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_events'
down_revision = '20261123_foundation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_source',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_source'))
    )
    op.create_table('event_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('anonymous_id', sa.String(length=320), nullable=True),
    sa.Column('user_id', sa.String(length=320), nullable=True),
    sa.Column('person', sa.String(length=330), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['event_source.id'], name=op.f('fk_event_record_source_id_event_source')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_record')),
    sa.UniqueConstraint('source_id', 'message_id', name=op.f('uq_event_record_source_id_message_id'))
    )
    with op.batch_alter_table('event_record', schema=None) as batch_op:
        batch_op.create_index('ix_event_record_person_timeline', ['person', 'timestamp', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('event_record', schema=None) as batch_op:
        batch_op.drop_index('ix_event_record_person_timeline')

    op.drop_table('event_record')
    op.drop_table('event_source')
