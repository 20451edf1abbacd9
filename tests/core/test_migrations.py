"""One linear migration history; upgrade then downgrade on an empty database; models match."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from seamline.core import migrations
from seamline.core.db import normalize_url
from seamline.models import metadata
from tests.conftest import BACKENDS, make_database_url

import pytest


def test_single_head():
    assert len(migrations.heads()) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_then_downgrade_on_an_empty_database(backend, postgres_server, tmp_path_factory):
    url = make_database_url(backend, postgres_server, tmp_path_factory, f"seamline_migrations_{backend}")
    migrations.upgrade(url)
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            assert migrations.current_revision(connection) == migrations.head_revision()
            # The migrations create exactly what the models describe.
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
            assert diff == [], diff
        migrations.downgrade(url, "base")
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        migrations.upgrade(url)  # and up again
        assert {t.name for t in metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
