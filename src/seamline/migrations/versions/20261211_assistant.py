"""assistant: the chat bot's answers, phrases and topics the business edits, each conversation's
dialogue state, its turns, and "back in stock" alerts; inbox conversations say when the bot
holds them (docs/assistant.md).

Revision ID: 20261211_assistant
Revises: 20261210_recommendations
Create Date: 2026-12-11 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261211_assistant'
down_revision = '20261210_recommendations'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('assistant_answer',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', 'lang', name=op.f('pk_assistant_answer'))
    )
    op.create_table('assistant_phrase',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('intent', sa.String(length=64), nullable=False),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assistant_phrase'))
    )
    with op.batch_alter_table('assistant_phrase', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assistant_phrase_intent'), ['intent'], unique=False)

    op.create_table('assistant_topic',
    sa.Column('intent', sa.String(length=64), nullable=False),
    sa.Column('human_only', sa.Boolean(), nullable=False),
    sa.Column('skill', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('intent', name=op.f('pk_assistant_topic'))
    )
    op.create_table('assistant_turn',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('message_id', BigId, nullable=True),
    sa.Column('customer_id', BigId, nullable=False),
    sa.Column('intent', sa.String(length=64), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('text', sa.String(length=1000), nullable=True),
    sa.Column('millis', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assistant_turn'))
    )
    with op.batch_alter_table('assistant_turn', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assistant_turn_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index('ix_assistant_turn_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_assistant_turn_customer_id'), ['customer_id'], unique=False)

    op.create_table('assistant_stock_watch',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('customer_id', BigId, nullable=False),
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('product_id', BigId, nullable=False),
    sa.Column('location_id', BigId, nullable=True),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['commerce_location.id'], name=op.f('fk_assistant_stock_watch_location_id_commerce_location')),
    sa.ForeignKeyConstraint(['product_id'], ['commerce_product.id'], name=op.f('fk_assistant_stock_watch_product_id_commerce_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assistant_stock_watch'))
    )
    with op.batch_alter_table('assistant_stock_watch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assistant_stock_watch_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_assistant_stock_watch_waiting', ['notified_at', 'product_id'], unique=False)

    op.create_table('assistant_state',
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('misunderstood', sa.Integer(), nullable=False),
    sa.Column('pending', sa.JSON(), nullable=True),
    sa.Column('verified_profile_id', BigId, nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('codes_requested', sa.Integer(), server_default='0', nullable=False),
    sa.Column('topics', sa.JSON(), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('handover_reason', sa.String(length=32), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_turn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['inbox_conversation.id'], name=op.f('fk_assistant_state_conversation_id_inbox_conversation')),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_assistant_state'))
    )
    with op.batch_alter_table('assistant_state', schema=None) as batch_op:
        batch_op.create_index('ix_assistant_state_open', ['outcome', 'last_turn_at'], unique=False)
        batch_op.create_index('ix_assistant_state_started', ['started_at'], unique=False)

    with op.batch_alter_table('inbox_conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handled_by_bot', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('inbox_conversation', schema=None) as batch_op:
        batch_op.drop_column('handled_by_bot')

    with op.batch_alter_table('assistant_state', schema=None) as batch_op:
        batch_op.drop_index('ix_assistant_state_started')
        batch_op.drop_index('ix_assistant_state_open')

    op.drop_table('assistant_state')
    with op.batch_alter_table('assistant_stock_watch', schema=None) as batch_op:
        batch_op.drop_index('ix_assistant_stock_watch_waiting')
        batch_op.drop_index(batch_op.f('ix_assistant_stock_watch_customer_id'))

    op.drop_table('assistant_stock_watch')
    with op.batch_alter_table('assistant_turn', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assistant_turn_customer_id'))
        batch_op.drop_index('ix_assistant_turn_created')
        batch_op.drop_index(batch_op.f('ix_assistant_turn_conversation_id'))

    op.drop_table('assistant_turn')
    op.drop_table('assistant_topic')
    with op.batch_alter_table('assistant_phrase', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assistant_phrase_intent'))

    op.drop_table('assistant_phrase')
    op.drop_table('assistant_answer')
