"""marketing optichannel: each person's evidence per channel and hour, their cohort's, and what each message earned

Revision ID: 20261210_marketing_optichannel
Revises: 20261209_inbox_suppression
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261210_marketing_optichannel'
down_revision = '20261209_inbox_suppression'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('marketing_channel_evidence',
    sa.Column('profile_id', BigId, nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('cohort', sa.String(length=200), nullable=False),
    sa.Column('responses', sa.Double(), nullable=False),
    sa.Column('sends', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('profile_id', 'channel', name=op.f('pk_marketing_channel_evidence'))
    )
    op.create_table('marketing_hour_evidence',
    sa.Column('profile_id', BigId, nullable=False),
    sa.Column('hour', sa.SmallInteger(), nullable=False),
    sa.Column('cohort', sa.String(length=200), nullable=False),
    sa.Column('responses', sa.Double(), nullable=False),
    sa.Column('sends', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('profile_id', 'hour', name=op.f('pk_marketing_hour_evidence'))
    )
    op.create_table('marketing_cohort_evidence',
    sa.Column('cohort', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('option', sa.String(length=32), nullable=False),
    sa.Column('responses', sa.Double(), nullable=False),
    sa.Column('sends', sa.Double(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('cohort', 'kind', 'option', name=op.f('pk_marketing_cohort_evidence'))
    )
    with op.batch_alter_table('marketing_message') as batch_op:
        batch_op.add_column(sa.Column('response', sa.Double(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('local_hour', sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('marketing_message') as batch_op:
        batch_op.drop_column('local_hour')
        batch_op.drop_column('response')
    op.drop_table('marketing_cohort_evidence')
    op.drop_table('marketing_hour_evidence')
    op.drop_table('marketing_channel_evidence')
