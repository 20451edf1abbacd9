"""commerce: the catalog version, raised by triggers on every catalog change

Revision ID: 20261123_commerce_catalog
Revises: 20261123_commerce_sync
Create Date: 2026-11-23 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '20261123_commerce_catalog'
down_revision = '20261123_commerce_sync'
branch_labels = None
depends_on = None

#: The tables whose changes a cached catalog must see (coupons are read per request).
CATALOG_TABLES = ('commerce_category', 'commerce_product', 'commerce_variant', 'commerce_price',
                  'commerce_location', 'commerce_promotion')


def upgrade() -> None:
    op.create_table('commerce_catalog_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_catalog_version'))
    )
    op.execute("INSERT INTO commerce_catalog_version (id, version) VALUES (1, 0)")
    bump = "UPDATE commerce_catalog_version SET version = version + 1 WHERE id = 1"
    if op.get_bind().dialect.name == 'postgresql':
        # Once per transaction: updating one row again and again in a transaction makes each
        # update walk a longer chain of its versions (a bulk load of 100,000 rows took minutes).
        op.execute("CREATE FUNCTION commerce_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF current_setting('seamline.catalog_changed_in', true) IS DISTINCT FROM txid_current()::text THEN "
                   f"{bump}; PERFORM set_config('seamline.catalog_changed_in', txid_current()::text, true); "
                   "END IF; RETURN NULL; END $$")
        for table in CATALOG_TABLES:  # once per statement: a bulk import raises it once
            op.execute(f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION commerce_catalog_changed()")
    else:  # SQLite has row triggers only
        for table in CATALOG_TABLES:
            for event in ('INSERT', 'UPDATE', 'DELETE'):
                op.execute(f"CREATE TRIGGER {table}_{event.lower()}d AFTER {event} ON {table} BEGIN {bump}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in CATALOG_TABLES:
            op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.execute("DROP FUNCTION commerce_catalog_changed()")
    else:
        for table in CATALOG_TABLES:
            for event in ('INSERT', 'UPDATE', 'DELETE'):
                op.execute(f"DROP TRIGGER {table}_{event.lower()}d")
    op.drop_table('commerce_catalog_version')
