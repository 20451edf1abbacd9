"""customers: one-time login codes

Revision ID: 20261125_login_codes
Revises: 20261125_console
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261125_login_codes'
down_revision = '20261125_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_login_code',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('identifier_type', sa.String(length=32), nullable=False),
    sa.Column('identifier_value', sa.String(length=320), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_customer', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_profile.id'], name=op.f('fk_customer_login_code_customer_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_login_code'))
    )
    with op.batch_alter_table('customer_login_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_login_code_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_customer_login_code_identifier', ['identifier_type', 'identifier_value', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer_login_code', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_login_code_identifier')
        batch_op.drop_index(batch_op.f('ix_customer_login_code_created_at'))

    op.drop_table('customer_login_code')
