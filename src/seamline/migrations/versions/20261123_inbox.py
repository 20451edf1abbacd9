"""inbox: conversations, messages, agents, teams, routing, SLA, surveys, webhooks

Revision ID: 20261123_inbox
Revises: 20261123_loyalty
Create Date: 2026-11-23 23:19:44.150228
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_inbox'
down_revision = '20261123_loyalty'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_canned_response',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shortcut', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_canned_response')),
    sa.UniqueConstraint('shortcut', name=op.f('uq_inbox_canned_response_shortcut'))
    )
    op.create_table('inbox_routing_rule',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('pattern', sa.String(length=1000), nullable=False),
    sa.Column('skill', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_routing_rule'))
    )
    op.create_table('inbox_sla_policy',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('first_response_minutes', sa.Integer(), nullable=True),
    sa.Column('next_response_minutes', sa.Integer(), nullable=True),
    sa.Column('resolution_minutes', sa.Integer(), nullable=True),
    sa.Column('calendar', sa.JSON(), nullable=True),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('min_priority', sa.Integer(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_sla_policy')),
    sa.UniqueConstraint('name', name=op.f('uq_inbox_sla_policy_name'))
    )
    op.create_table('inbox_team',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_team')),
    sa.UniqueConstraint('name', name=op.f('uq_inbox_team_name'))
    )
    op.create_table('inbox_webhook',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('types', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_webhook'))
    )
    op.create_table('inbox_agent',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('load', sa.Integer(), nullable=False),
    sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('api_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['core_api_key.id'], name=op.f('fk_inbox_agent_api_key_id_core_api_key')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_agent')),
    sa.UniqueConstraint('api_key_id', name=op.f('uq_inbox_agent_api_key_id')),
    sa.UniqueConstraint('email', name=op.f('uq_inbox_agent_email'))
    )
    op.create_table('inbox_chat_session',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('anonymous_id', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_inbox_chat_session_customer_id_customer_profile')),
    sa.ForeignKeyConstraint(['source_id'], ['event_source.id'], name=op.f('fk_inbox_chat_session_source_id_event_source')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_chat_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_inbox_chat_session_token_hash'))
    )
    with op.batch_alter_table('inbox_chat_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_chat_session_anonymous_id'), ['anonymous_id'], unique=False)

    op.create_table('inbox_webhook_delivery',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('webhook_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['webhook_id'], ['inbox_webhook.id'], name=op.f('fk_inbox_webhook_delivery_webhook_id_inbox_webhook'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_webhook_delivery'))
    )
    with op.batch_alter_table('inbox_webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_webhook_delivery_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('inbox_conversation',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('reply_channel', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('required_skill', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('queue_rank_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('channel_state', sa.JSON(), nullable=False),
    sa.Column('sla_policy_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_response_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_response_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sla_next_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sla_breaches', sa.JSON(), nullable=False),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('awaiting_reply_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merged_into_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['inbox_agent.id'], name=op.f('fk_inbox_conversation_assignee_id_inbox_agent')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_inbox_conversation_customer_id_customer_profile')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['inbox_conversation.id'], name=op.f('fk_inbox_conversation_merged_into_id_inbox_conversation')),
    sa.ForeignKeyConstraint(['sla_policy_id'], ['inbox_sla_policy.id'], name=op.f('fk_inbox_conversation_sla_policy_id_inbox_sla_policy')),
    sa.ForeignKeyConstraint(['team_id'], ['inbox_team.id'], name=op.f('fk_inbox_conversation_team_id_inbox_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_conversation'))
    )
    with op.batch_alter_table('inbox_conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_conversation_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_conversation_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_inbox_conversation_queue', ['status', 'assignee_id', 'queue_rank_at'], unique=False)
        batch_op.create_index('ix_inbox_conversation_sla_due', ['sla_next_due_at'], unique=False)
        batch_op.create_index('ix_inbox_conversation_snoozed', ['status', 'snoozed_until'], unique=False)

    op.create_table('inbox_team_member',
    sa.Column('team_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['inbox_agent.id'], name=op.f('fk_inbox_team_member_agent_id_inbox_agent'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['inbox_team.id'], name=op.f('fk_inbox_team_member_team_id_inbox_team'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'agent_id', name=op.f('pk_inbox_team_member'))
    )
    op.create_table('inbox_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('author_agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('provider_message_id', sa.String(length=255), nullable=True),
    sa.Column('delivery_status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_agent_id'], ['inbox_agent.id'], name=op.f('fk_inbox_message_author_agent_id_inbox_agent')),
    sa.ForeignKeyConstraint(['conversation_id'], ['inbox_conversation.id'], name=op.f('fk_inbox_message_conversation_id_inbox_conversation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_message'))
    )
    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_message_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index('ix_inbox_message_outbound_due', ['delivery_status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_inbox_message_provider_id', ['channel', 'provider_message_id'], unique=False)

    op.create_table('inbox_survey',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['inbox_agent.id'], name=op.f('fk_inbox_survey_agent_id_inbox_agent')),
    sa.ForeignKeyConstraint(['conversation_id'], ['inbox_conversation.id'], name=op.f('fk_inbox_survey_conversation_id_inbox_conversation')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_inbox_survey_customer_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_survey'))
    )
    with op.batch_alter_table('inbox_survey', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_survey_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_survey_customer_id'), ['customer_id'], unique=False)

    op.create_table('inbox_attachment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=127), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_inbox_attachment_customer_id_customer_profile')),
    sa.ForeignKeyConstraint(['message_id'], ['inbox_message.id'], name=op.f('fk_inbox_attachment_message_id_inbox_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_attachment'))
    )
    with op.batch_alter_table('inbox_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_attachment_message_id'), ['message_id'], unique=False)

    op.create_table('inbox_inbound',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('provider_message_id', sa.String(length=255), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['inbox_message.id'], name=op.f('fk_inbox_inbound_message_id_inbox_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_inbound')),
    sa.UniqueConstraint('channel', 'provider_message_id', name=op.f('uq_inbox_inbound_channel_provider_message_id'))
    )
    with op.batch_alter_table('inbox_inbound', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_inbound_status', ['status', 'received_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('inbox_inbound', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_inbound_status')

    op.drop_table('inbox_inbound')
    with op.batch_alter_table('inbox_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_attachment_message_id'))

    op.drop_table('inbox_attachment')
    with op.batch_alter_table('inbox_survey', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_survey_customer_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_survey_conversation_id'))

    op.drop_table('inbox_survey')
    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_message_provider_id')
        batch_op.drop_index('ix_inbox_message_outbound_due')
        batch_op.drop_index(batch_op.f('ix_inbox_message_conversation_id'))

    op.drop_table('inbox_message')
    op.drop_table('inbox_team_member')
    with op.batch_alter_table('inbox_conversation', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_conversation_snoozed')
        batch_op.drop_index('ix_inbox_conversation_sla_due')
        batch_op.drop_index('ix_inbox_conversation_queue')
        batch_op.drop_index(batch_op.f('ix_inbox_conversation_customer_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_conversation_assignee_id'))

    op.drop_table('inbox_conversation')
    with op.batch_alter_table('inbox_webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_webhook_delivery_due')

    op.drop_table('inbox_webhook_delivery')
    with op.batch_alter_table('inbox_chat_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_chat_session_anonymous_id'))

    op.drop_table('inbox_chat_session')
    op.drop_table('inbox_agent')
    op.drop_table('inbox_webhook')
    op.drop_table('inbox_team')
    op.drop_table('inbox_sla_policy')
    op.drop_table('inbox_routing_rule')
    op.drop_table('inbox_canned_response')
