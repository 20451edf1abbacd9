"""commerce: stock and price sync runs

Revision ID: 20261123_commerce_sync
Revises: 20261123_commerce_payments
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_commerce_sync'
down_revision = '20261123_commerce_payments'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('commerce_location', sa.Column('external_id', sa.String(length=100), nullable=True))
    op.create_index(op.f('ix_commerce_location_external_id'), 'commerce_location', ['external_id'], unique=True)
    op.create_table('commerce_stock_import',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('duplicate_of', BigId, nullable=True),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('stock_lines', sa.Integer(), nullable=False),
    sa.Column('movements', sa.Integer(), nullable=False),
    sa.Column('prices_changed', sa.Integer(), nullable=False),
    sa.Column('clamped', sa.Integer(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['duplicate_of'], ['commerce_stock_import.id'], name=op.f('fk_commerce_stock_import_duplicate_of_commerce_stock_import')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_stock_import'))
    )
    op.create_index('ix_commerce_stock_import_sha256', 'commerce_stock_import', ['sha256', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_commerce_stock_import_sha256', table_name='commerce_stock_import')
    op.drop_table('commerce_stock_import')
    op.drop_index(op.f('ix_commerce_location_external_id'), table_name='commerce_location')
    with op.batch_alter_table('commerce_location') as batch:
        batch.drop_column('external_id')
