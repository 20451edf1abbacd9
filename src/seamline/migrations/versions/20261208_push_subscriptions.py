"""push subscriptions: browsers' web push subscriptions and apps' FCM tokens (issue 22)

Two sibling tables, one per push channel (`channels/webpush`, `channels/mobilepush`), each
unique on the address the provider knows (an endpoint URL, a registration token), so a repeated
registration keeps one row and a device that changed hands moves.

Revision ID: 20261208_push_subscriptions
Revises: 20261208_marketing_journeys
Create Date: 2026-12-08 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261208_push_subscriptions'
down_revision = '20261208_marketing_journeys'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('webpush_subscription',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('customer_id', BigId, nullable=False),
    sa.Column('endpoint', sa.String(length=2000), nullable=False),
    sa.Column('p256dh', sa.String(length=200), nullable=False),
    sa.Column('auth', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_webpush_subscription_customer_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webpush_subscription')),
    sa.UniqueConstraint('endpoint', name=op.f('uq_webpush_subscription_endpoint'))
    )
    with op.batch_alter_table('webpush_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webpush_subscription_customer_id'), ['customer_id'], unique=False)

    op.create_table('mobilepush_device',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('customer_id', BigId, nullable=False),
    sa.Column('token', sa.String(length=1024), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('app_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_mobilepush_device_customer_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mobilepush_device')),
    sa.UniqueConstraint('token', name=op.f('uq_mobilepush_device_token'))
    )
    with op.batch_alter_table('mobilepush_device', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mobilepush_device_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mobilepush_device', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mobilepush_device_customer_id'))
    op.drop_table('mobilepush_device')
    with op.batch_alter_table('webpush_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webpush_subscription_customer_id'))
    op.drop_table('webpush_subscription')
