"""channels: idempotent outbound, channel throttles, agent extensions, telephony calls

Revision ID: 20261124_channels
Revises: 20261123_inbox
Create Date: 2026-11-24 02:14:40.767782
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261124_channels'
down_revision = '20261123_inbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_channel_throttle',
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('refilled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_inbox_channel_throttle'))
    )
    op.create_table('telephony_call',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider_call_id', sa.String(length=255), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('customer_phone', sa.String(length=32), nullable=False),
    sa.Column('line', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('extension', sa.String(length=32), nullable=True),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('recording_url', sa.String(length=2000), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['inbox_agent.id'], name=op.f('fk_telephony_call_agent_id_inbox_agent')),
    sa.ForeignKeyConstraint(['conversation_id'], ['inbox_conversation.id'], name=op.f('fk_telephony_call_conversation_id_inbox_conversation')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_telephony_call_customer_id_customer_profile')),
    sa.ForeignKeyConstraint(['message_id'], ['inbox_message.id'], name=op.f('fk_telephony_call_message_id_inbox_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telephony_call')),
    sa.UniqueConstraint('provider_call_id', name=op.f('uq_telephony_call_provider_call_id'))
    )
    with op.batch_alter_table('telephony_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telephony_call_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_telephony_call_customer_phone'), ['customer_phone'], unique=False)

    with op.batch_alter_table('inbox_agent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extension', sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_inbox_agent_extension'), ['extension'])

    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_inbox_message_idempotency_key'), ['idempotency_key'])



def downgrade() -> None:
    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_inbox_message_idempotency_key'), type_='unique')
        batch_op.drop_column('idempotency_key')

    with op.batch_alter_table('inbox_agent', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_inbox_agent_extension'), type_='unique')
        batch_op.drop_column('extension')

    with op.batch_alter_table('telephony_call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telephony_call_customer_phone'))
        batch_op.drop_index(batch_op.f('ix_telephony_call_customer_id'))

    op.drop_table('telephony_call')
    op.drop_table('inbox_channel_throttle')
