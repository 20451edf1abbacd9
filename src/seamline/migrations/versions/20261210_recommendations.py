"""recommendations: trained models and their precomputed lists

One row per model version; the lists (for a person, product to product, popular per store, what
was learned per product) carry the version they belong to (docs/recommendations.md).

Revision ID: 20261210_recommendations
Revises: 20261209_inbox_suppression
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261210_recommendations'
down_revision = '20261210_marketing_optichannel'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('recommendation_model',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('trained_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_recommendation_model'))
    )
    op.create_index('ix_recommendation_model_status', 'recommendation_model', ['status'], unique=False)
    op.create_table('recommendation_for_person',
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('person_id', BigId, nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('product_id', BigId, nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('model_version', 'person_id', 'rank', name=op.f('pk_recommendation_for_person'))
    )
    op.create_table('recommendation_related',
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('product_id', BigId, nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('related_product_id', BigId, nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('model_version', 'kind', 'product_id', 'rank', name=op.f('pk_recommendation_related'))
    )
    op.create_table('recommendation_popular',
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('location_id', BigId, nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('product_id', BigId, nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('model_version', 'location_id', 'rank', name=op.f('pk_recommendation_popular'))
    )
    op.create_table('recommendation_product',
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('product_id', BigId, nullable=False),
    sa.Column('buyers', sa.Integer(), nullable=False),
    sa.Column('repeat_rate', sa.Float(), nullable=False),
    sa.Column('consumable', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('model_version', 'product_id', name=op.f('pk_recommendation_product'))
    )


def downgrade() -> None:
    op.drop_table('recommendation_product')
    op.drop_table('recommendation_popular')
    op.drop_table('recommendation_related')
    op.drop_table('recommendation_for_person')
    op.drop_index('ix_recommendation_model_status', table_name='recommendation_model')
    op.drop_table('recommendation_model')
