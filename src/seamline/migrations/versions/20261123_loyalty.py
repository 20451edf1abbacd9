"""loyalty: program, accounts, points and wallet ledgers, lots, cards, tiers

Revision ID: 20261123_loyalty
Revises: 20261123_commerce_catalog
Create Date: 2026-11-23 20:16:00.749367
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_loyalty'
down_revision = '20261123_commerce_catalog'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every read of a person's orders, carts or points follows merges (`merged_profile_ids`):
    # without this index each one scanned the whole profile table.
    op.create_index(op.f('ix_customer_profile_merged_into_id'), 'customer_profile', ['merged_into_id'], unique=False)
    op.create_table('loyalty_program',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_program'))
    )
    op.create_table('loyalty_account',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('profile_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('points_available', sa.BigInteger(), nullable=False),
    sa.Column('points_pending', sa.BigInteger(), nullable=False),
    sa.Column('wallet_balance', sa.BigInteger(), nullable=False),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('tier_spend', sa.BigInteger(), nullable=False),
    sa.Column('tier_evaluated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enrolled_channel', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['profile_id'], ['customer_profile.id'], name=op.f('fk_loyalty_account_profile_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_account')),
    sa.UniqueConstraint('profile_id', name=op.f('uq_loyalty_account_profile_id'))
    )
    op.create_table('loyalty_card',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('block_reason', sa.String(length=200), nullable=False),
    sa.Column('replaced_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['loyalty_account.id'], name=op.f('fk_loyalty_card_account_id_loyalty_account')),
    sa.ForeignKeyConstraint(['replaced_by_id'], ['loyalty_card.id'], name=op.f('fk_loyalty_card_replaced_by_id_loyalty_card')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_card')),
    sa.UniqueConstraint('number', name=op.f('uq_loyalty_card_number'))
    )
    with op.batch_alter_table('loyalty_card', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_card_account_id'), ['account_id'], unique=False)

    op.create_table('loyalty_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('available_delta', sa.BigInteger(), nullable=False),
    sa.Column('pending_delta', sa.BigInteger(), nullable=False),
    sa.Column('spend_delta', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('staff', sa.String(length=100), nullable=True),
    sa.Column('api_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['loyalty_account.id'], name=op.f('fk_loyalty_entry_account_id_loyalty_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_entry')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_loyalty_entry_idempotency_key'))
    )
    with op.batch_alter_table('loyalty_entry', schema=None) as batch_op:
        batch_op.create_index('ix_loyalty_entry_account', ['account_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_entry_order_id'), ['order_id'], unique=False)

    op.create_table('loyalty_tier_change',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_tier', sa.String(length=32), nullable=True),
    sa.Column('to_tier', sa.String(length=32), nullable=True),
    sa.Column('spend', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['loyalty_account.id'], name=op.f('fk_loyalty_tier_change_account_id_loyalty_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_tier_change'))
    )
    with op.batch_alter_table('loyalty_tier_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_tier_change_account_id'), ['account_id'], unique=False)

    op.create_table('loyalty_wallet_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('staff', sa.String(length=100), nullable=True),
    sa.Column('api_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['loyalty_account.id'], name=op.f('fk_loyalty_wallet_entry_account_id_loyalty_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_wallet_entry')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_loyalty_wallet_entry_idempotency_key'))
    )
    with op.batch_alter_table('loyalty_wallet_entry', schema=None) as batch_op:
        batch_op.create_index('ix_loyalty_wallet_entry_account', ['account_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_wallet_entry_order_id'), ['order_id'], unique=False)

    op.create_table('loyalty_lot',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['loyalty_account.id'], name=op.f('fk_loyalty_lot_account_id_loyalty_account')),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entry.id'], name=op.f('fk_loyalty_lot_entry_id_loyalty_entry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_lot')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_loyalty_lot_entry_id'))
    )
    with op.batch_alter_table('loyalty_lot', schema=None) as batch_op:
        batch_op.create_index('ix_loyalty_lot_account', ['account_id', 'state', 'expires_at', 'id'], unique=False)
        batch_op.create_index('ix_loyalty_lot_due', ['state', 'available_at'], unique=False)
        batch_op.create_index('ix_loyalty_lot_expiry', ['state', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_lot_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    op.drop_index(op.f('ix_customer_profile_merged_into_id'), table_name='customer_profile')
    with op.batch_alter_table('loyalty_lot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_lot_order_id'))
        batch_op.drop_index('ix_loyalty_lot_expiry')
        batch_op.drop_index('ix_loyalty_lot_due')
        batch_op.drop_index('ix_loyalty_lot_account')

    op.drop_table('loyalty_lot')
    with op.batch_alter_table('loyalty_wallet_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_wallet_entry_order_id'))
        batch_op.drop_index('ix_loyalty_wallet_entry_account')

    op.drop_table('loyalty_wallet_entry')
    with op.batch_alter_table('loyalty_tier_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_tier_change_account_id'))

    op.drop_table('loyalty_tier_change')
    with op.batch_alter_table('loyalty_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_entry_order_id'))
        batch_op.drop_index('ix_loyalty_entry_account')

    op.drop_table('loyalty_entry')
    with op.batch_alter_table('loyalty_card', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_card_account_id'))

    op.drop_table('loyalty_card')
    op.drop_table('loyalty_account')
    op.drop_table('loyalty_program')
