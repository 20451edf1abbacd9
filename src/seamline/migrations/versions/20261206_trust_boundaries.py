"""trust boundaries: verified identifiers and links, trusted sources (issue 18)

Revision ID: 20261206_trust_boundaries
Revises: 20261125_login_codes
Create Date: 2026-12-06 00:00:00.000000

Several parts of issue 18 change the schema; each keeps its operations in its own section below
so the history stays linear (one migration for the issue).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261206_trust_boundaries'
down_revision = '20261125_login_codes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    _customers_trust_upgrade()
    _staff_login_throttle_upgrade()
    _secrets_at_rest_upgrade()


def downgrade() -> None:
    _secrets_at_rest_downgrade()
    _staff_login_throttle_downgrade()
    _customers_trust_downgrade()


# --- customers: verified identifiers, trusted links, trusted sources ---------------------------


#: Sources of what only a browser (a public write key) could have said before this version:
#: the tracker's events and the web chat. Everything else came with a server key, a clerk, a
#: login code or a provider's webhook, and is taken as verified.
_CLAIM_SOURCES = "(source LIKE 'events:%' OR source = 'webchat')"
_DEVICE_TYPES = "('anonymous_id', 'device_id')"


def _customers_trust_upgrade() -> None:
    with op.batch_alter_table('customer_identity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verified_by', sa.String(length=64), nullable=True))
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted', sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table('customer_trait', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified', sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table('event_source', schema=None) as batch_op:
        batch_op.add_column(sa.Column('server_side', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(f"UPDATE customer_identity SET verified_at = created_at, verified_by = source "
               f"WHERE NOT {_CLAIM_SOURCES} AND type NOT IN {_DEVICE_TYPES}")
    op.execute(f"UPDATE customer_link SET trusted = false WHERE {_CLAIM_SOURCES}")
    op.execute(f"UPDATE customer_trait SET verified = false WHERE {_CLAIM_SOURCES}")


def _customers_trust_downgrade() -> None:
    with op.batch_alter_table('event_source', schema=None) as batch_op:
        batch_op.drop_column('server_side')
    with op.batch_alter_table('customer_trait', schema=None) as batch_op:
        batch_op.drop_column('verified')
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.drop_column('trusted')
    with op.batch_alter_table('customer_identity', schema=None) as batch_op:
        batch_op.drop_column('verified_by')
        batch_op.drop_column('verified_at')


# --- console sign-in: throttling per (email, address) and per address instead of a lock --------


def _staff_login_throttle_upgrade() -> None:
    op.create_table('web_staff_login_throttle',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_web_staff_login_throttle'))
    )
    op.create_index(op.f('ix_web_staff_login_throttle_last_failure_at'), 'web_staff_login_throttle', ['last_failure_at'],
                    unique=False)
    with op.batch_alter_table('web_staff_user', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')


def _staff_login_throttle_downgrade() -> None:
    with op.batch_alter_table('web_staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
    op.drop_index(op.f('ix_web_staff_login_throttle_last_failure_at'), table_name='web_staff_login_throttle')
    op.drop_table('web_staff_login_throttle')


# --- signing secrets of event destinations and inbox webhooks, encrypted at rest ---------------
# The column grows for `enc1:<Fernet token>`; values in clear are encrypted here when a key is
# at hand (SEAMLINE_SECRET_KEY, or the key file beside a SQLite database), else at their next
# delivery once the server has one (core/crypto.py).

_SECRET_TABLES = ('event_destination', 'inbox_webhook')


def _secret_box():  # noqa: ANN202 - seamline.core.crypto.SecretBox, or None without a lasting key
    from seamline.core.config import Settings
    from seamline.core.crypto import SecretBox

    try:
        given = Settings().secret_key.get_secret_value()
    except Exception:  # noqa: BLE001 - unusable settings here: the server will say why
        given = ''
    box = SecretBox(secret_key=given, database_url=op.get_bind().engine.url.render_as_string(hide_password=False))
    return box if given or box.key_file is not None else None


def _secrets_at_rest_upgrade() -> None:
    for table in _SECRET_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('secret', existing_type=sa.String(length=200), type_=sa.String(length=512),
                                  existing_nullable=False)
    bind = op.get_bind()
    box = None
    for table in _SECRET_TABLES:
        rows = bind.execute(sa.text(f"SELECT id, secret FROM {table} WHERE secret NOT LIKE 'enc1:%'")).all()
        box = box or (_secret_box() if rows else None)
        for row_id, secret in rows if box is not None else ():
            bind.execute(sa.text(f"UPDATE {table} SET secret = :secret WHERE id = :id"),
                         {"secret": box.seal(secret), "id": row_id})


def _secrets_at_rest_downgrade() -> None:
    bind = op.get_bind()
    box = None
    for table in _SECRET_TABLES:
        rows = bind.execute(sa.text(f"SELECT id, secret FROM {table} WHERE secret LIKE 'enc1:%'")).all()
        box = box or (_secret_box() if rows else None)
        if rows and box is None:
            raise RuntimeError(f"{table} holds encrypted signing secrets and no key is at hand: set SEAMLINE_SECRET_KEY "
                               "to decrypt them before downgrading")
        for row_id, secret in rows:
            bind.execute(sa.text(f"UPDATE {table} SET secret = :secret WHERE id = :id"),
                         {"secret": box.open(secret), "id": row_id})
    for table in _SECRET_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('secret', existing_type=sa.String(length=512), type_=sa.String(length=200),
                                  existing_nullable=False)
