"""console: staff accounts and their browser sessions

Revision ID: 20261125_console
Revises: 20261124_channels
Create Date: 2026-11-24 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '20261125_console'
down_revision = '20261124_channels'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('web_staff_user',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('agent_id', BigId, nullable=True),
    sa.Column('store', sa.String(length=64), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['inbox_agent.id'], name=op.f('fk_web_staff_user_agent_id_inbox_agent')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_staff_user')),
    sa.UniqueConstraint('agent_id', name=op.f('uq_web_staff_user_agent_id')),
    sa.UniqueConstraint('email', name=op.f('uq_web_staff_user_email'))
    )
    op.create_table('web_staff_session',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['web_staff_user.id'], name=op.f('fk_web_staff_session_user_id_web_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_staff_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_web_staff_session_token_hash'))
    )
    op.create_index(op.f('ix_web_staff_session_user_id'), 'web_staff_session', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_web_staff_session_user_id'), table_name='web_staff_session')
    op.drop_table('web_staff_session')
    op.drop_table('web_staff_user')
