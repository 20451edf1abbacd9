"""foundation: api keys and customer profiles

Revision ID: 20261123_foundation
Revises: (none)
Create Date: 2026-11-23 06:52:42.581838
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_foundation'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('core_api_key',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['created_by_key_id'], ['core_api_key.id'], name=op.f('fk_core_api_key_created_by_key_id_core_api_key')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_api_key')),
    sa.UniqueConstraint('prefix', name=op.f('uq_core_api_key_prefix'))
    )
    op.create_table('customer_profile',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'merged', 'erased')", name=op.f('ck_customer_profile_status')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['customer_profile.id'], name=op.f('fk_customer_profile_merged_into_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_profile'))
    )
    op.create_table('customer_erasure',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('profile_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('removed_counts', sa.JSON(), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['profile_id'], ['customer_profile.id'], name=op.f('fk_customer_erasure_profile_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_erasure')),
    sa.UniqueConstraint('profile_id', name=op.f('uq_customer_erasure_profile_id'))
    )
    op.create_table('customer_identity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.Column('profile_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['profile_id'], ['customer_profile.id'], name=op.f('fk_customer_identity_profile_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_identity')),
    sa.UniqueConstraint('type', 'value', name=op.f('uq_customer_identity_type_value'))
    )
    with op.batch_alter_table('customer_identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_identity_profile_id'), ['profile_id'], unique=False)

    op.create_table('customer_consent',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('identity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['customer_identity.id'], name=op.f('fk_customer_consent_identity_id_customer_identity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_consent'))
    )
    with op.batch_alter_table('customer_consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_consent_identity_id'), ['identity_id'], unique=False)

    op.create_table('customer_link',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('identity_a_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('identity_b_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('identity_a_id < identity_b_id', name=op.f('ck_customer_link_ordered_pair')),
    sa.ForeignKeyConstraint(['identity_a_id'], ['customer_identity.id'], name=op.f('fk_customer_link_identity_a_id_customer_identity'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['identity_b_id'], ['customer_identity.id'], name=op.f('fk_customer_link_identity_b_id_customer_identity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_link'))
    )
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_link_identity_b_id'), ['identity_b_id'], unique=False)
        batch_op.create_index('ix_customer_link_pair', ['identity_a_id', 'identity_b_id'], unique=False)

    op.create_table('customer_trait',
    sa.Column('identity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['customer_identity.id'], name=op.f('fk_customer_trait_identity_id_customer_identity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('identity_id', 'key', name=op.f('pk_customer_trait'))
    )
    op.create_table('customer_conflict',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('link_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('profile_a_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('profile_b_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('violations', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['link_id'], ['customer_link.id'], name=op.f('fk_customer_conflict_link_id_customer_link'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['profile_a_id'], ['customer_profile.id'], name=op.f('fk_customer_conflict_profile_a_id_customer_profile')),
    sa.ForeignKeyConstraint(['profile_b_id'], ['customer_profile.id'], name=op.f('fk_customer_conflict_profile_b_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_conflict')),
    sa.UniqueConstraint('link_id', name=op.f('uq_customer_conflict_link_id'))
    )
    with op.batch_alter_table('customer_conflict', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_conflict_status'), ['status'], unique=False)

    op.create_table('customer_merge',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('survivor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('absorbed_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('link_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('survivor_identity_ids', sa.JSON(), nullable=False),
    sa.Column('absorbed_identity_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('undone_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('undone_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['absorbed_id'], ['customer_profile.id'], name=op.f('fk_customer_merge_absorbed_id_customer_profile')),
    sa.ForeignKeyConstraint(['link_id'], ['customer_link.id'], name=op.f('fk_customer_merge_link_id_customer_link'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['survivor_id'], ['customer_profile.id'], name=op.f('fk_customer_merge_survivor_id_customer_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_merge'))
    )
    with op.batch_alter_table('customer_merge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merge_absorbed_id'), ['absorbed_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merge_survivor_id'), ['survivor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('customer_merge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merge_survivor_id'))
        batch_op.drop_index(batch_op.f('ix_customer_merge_absorbed_id'))

    op.drop_table('customer_merge')
    with op.batch_alter_table('customer_conflict', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_conflict_status'))

    op.drop_table('customer_conflict')
    op.drop_table('customer_trait')
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_link_pair')
        batch_op.drop_index(batch_op.f('ix_customer_link_identity_b_id'))

    op.drop_table('customer_link')
    with op.batch_alter_table('customer_consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_consent_identity_id'))

    op.drop_table('customer_consent')
    with op.batch_alter_table('customer_identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_identity_profile_id'))

    op.drop_table('customer_identity')
    op.drop_table('customer_erasure')
    op.drop_table('customer_profile')
    op.drop_table('core_api_key')
