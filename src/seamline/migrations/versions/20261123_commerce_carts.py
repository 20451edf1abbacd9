"""commerce: carts, promotions, coupons

Revision ID: 20261123_commerce_carts
Revises: 20261123_commerce
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_commerce_carts'
down_revision = '20261123_commerce'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('commerce_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subtotal', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('discount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('promotions', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('commerce_order_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount', sa.BigInteger(), server_default='0', nullable=False))
    op.execute("UPDATE commerce_order SET subtotal = total")

    op.create_table('commerce_promotion',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name_ru', sa.String(length=300), nullable=False),
    sa.Column('name_en', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('buy_quantity', sa.Integer(), nullable=False),
    sa.Column('get_quantity', sa.Integer(), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('min_subtotal', sa.BigInteger(), nullable=False),
    sa.Column('requires_coupon', sa.Boolean(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_promotion')),
    sa.UniqueConstraint('code', name=op.f('uq_commerce_promotion_code'))
    )
    op.create_table('commerce_coupon',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('promotion_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('usage_limit', sa.Integer(), nullable=True),
    sa.Column('per_customer_limit', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['promotion_id'], ['commerce_promotion.id'], name=op.f('fk_commerce_coupon_promotion_id_commerce_promotion')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_coupon')),
    sa.UniqueConstraint('code', name=op.f('uq_commerce_coupon_code'))
    )
    with op.batch_alter_table('commerce_coupon', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commerce_coupon_promotion_id'), ['promotion_id'], unique=False)
    op.create_table('commerce_coupon_redemption',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('profile_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['commerce_coupon.id'], name=op.f('fk_commerce_coupon_redemption_coupon_id_commerce_coupon')),
    sa.ForeignKeyConstraint(['order_id'], ['commerce_order.id'], name=op.f('fk_commerce_coupon_redemption_order_id_commerce_order')),
    sa.ForeignKeyConstraint(['profile_id'], ['customer_profile.id'], name=op.f('fk_commerce_coupon_redemption_profile_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_coupon_redemption')),
    sa.UniqueConstraint('coupon_id', 'order_id', name=op.f('uq_commerce_coupon_redemption_coupon_id_order_id'))
    )
    with op.batch_alter_table('commerce_coupon_redemption', schema=None) as batch_op:
        batch_op.create_index('ix_commerce_coupon_redemption_use', ['coupon_id', 'profile_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_commerce_coupon_redemption_order_id'), ['order_id'], unique=False)
    op.create_table('commerce_cart',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('profile_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('anonymous_id', sa.String(length=320), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('coupons', sa.JSON(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merged_into_id'], ['commerce_cart.id'], name=op.f('fk_commerce_cart_merged_into_id_commerce_cart')),
    sa.ForeignKeyConstraint(['order_id'], ['commerce_order.id'], name=op.f('fk_commerce_cart_order_id_commerce_order')),
    sa.ForeignKeyConstraint(['profile_id'], ['customer_profile.id'], name=op.f('fk_commerce_cart_profile_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_cart'))
    )
    with op.batch_alter_table('commerce_cart', schema=None) as batch_op:
        batch_op.create_index('ix_commerce_cart_abandoned', ['status', 'updated_at'], unique=False)
        batch_op.create_index('uq_commerce_cart_active_profile', ['profile_id'], unique=True,
                              sqlite_where=sa.text("status = 'active' AND profile_id IS NOT NULL"),
                              postgresql_where=sa.text("status = 'active' AND profile_id IS NOT NULL"))
        batch_op.create_index('uq_commerce_cart_active_anonymous', ['anonymous_id'], unique=True,
                              sqlite_where=sa.text("status = 'active' AND profile_id IS NULL AND anonymous_id IS NOT NULL"),
                              postgresql_where=sa.text("status = 'active' AND profile_id IS NULL AND anonymous_id IS NOT NULL"))
    op.create_table('commerce_cart_line',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('cart_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('variant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cart_id'], ['commerce_cart.id'], name=op.f('fk_commerce_cart_line_cart_id_commerce_cart')),
    sa.ForeignKeyConstraint(['variant_id'], ['commerce_variant.id'], name=op.f('fk_commerce_cart_line_variant_id_commerce_variant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_cart_line')),
    sa.UniqueConstraint('cart_id', 'variant_id', name=op.f('uq_commerce_cart_line_cart_id_variant_id'))
    )
    op.create_table('commerce_cart_change',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('cart_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cart_id'], ['commerce_cart.id'], name=op.f('fk_commerce_cart_change_cart_id_commerce_cart')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_cart_change'))
    )
    with op.batch_alter_table('commerce_cart_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commerce_cart_change_cart_id'), ['cart_id'], unique=False)


def downgrade() -> None:
    for table in ('commerce_cart_change', 'commerce_cart_line', 'commerce_cart', 'commerce_coupon_redemption',
                  'commerce_coupon', 'commerce_promotion'):
        op.drop_table(table)
    with op.batch_alter_table('commerce_order_line', schema=None) as batch_op:
        batch_op.drop_column('discount')
    with op.batch_alter_table('commerce_order', schema=None) as batch_op:
        batch_op.drop_column('promotions')
        batch_op.drop_column('discount')
        batch_op.drop_column('subtotal')
