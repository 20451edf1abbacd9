"""Test fixtures: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL: `SEAMLINE_TEST_POSTGRES_URL` points at a server to use (a database is created in it);
otherwise a throwaway server is started from the installed binaries. Without binaries the
PostgreSQL half is skipped locally and fails under CI (`CI=true`), so CI cannot go green on
SQLite alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from seamline.app import create_app
from seamline.core import migrations
from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.devtools.postgres import PostgresServer, find_bin_dir
from seamline.events import service as events_service
from seamline.models import metadata

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """Base URL (database 'postgres') of a PostgreSQL server, or None when there is none."""
    given = os.environ.get("SEAMLINE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if find_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but PostgreSQL is not installed: .ci/run must install it")
        yield None
        return
    server = PostgresServer().start()
    try:
        yield server.url()
    finally:
        server.stop()


def _create_pg_database(base_url: str, name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def make_database_url(backend: str, postgres_server: str | None, tmp_path_factory, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp(name) / 'seamline.db'}"
    if postgres_server is None:
        pytest.skip("PostgreSQL is not installed here (CI installs it)")
    return _create_pg_database(postgres_server, name)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, postgres_server, tmp_path_factory) -> str:
    """A migrated, empty database of each backend, shared by the tests of a session."""
    url = make_database_url(request.param, postgres_server, tmp_path_factory, f"seamline_test_{request.param}")
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="session")
def settings_for(tmp_path_factory):
    mirrors = tmp_path_factory.mktemp("analytics-mirrors")

    def build(url: str, **overrides) -> Settings:
        # No background threads (delivery, the job worker) in tests unless a test asks.
        quiet = {"serve_worker": False, "commerce_expire_interval_seconds": 0, "commerce_refund_retry_seconds": 0,
                 "loyalty_job_interval_seconds": 0, "inbox_job_interval_seconds": 0,
                 "inbox_imap_poll_seconds": 0, "analytics_sync_seconds": 0,
                 "marketing_segment_refresh_seconds": 0, "marketing_advance_seconds": 0,
                 "recommendations_retrain_minutes": 0,
                 # one analytics mirror per database, never in the working directory
                 "analytics_mirror_path": str(mirrors / f"{abs(hash(url))}.duckdb")}
        if not url.startswith("sqlite"):  # SQLite keeps its key file beside the database (core/crypto.py)
            quiet["secret_key"] = "seamline-tests-secret-key-0123456789abcdef"
        return Settings(_env_file=None, database_url=url, log_level="WARNING", **{**quiet, **overrides})

    return build


@pytest.fixture(scope="session")
def session_database(database_url, settings_for) -> Iterator[Database]:
    database = Database(settings_for(database_url))
    yield database
    database.dispose()


def _truncate(database: Database) -> None:
    # The catalog version row stays (migrations seed it); emptying the catalog raises it.
    tables = [t.name for t in reversed(metadata.sorted_tables) if t.name != "commerce_catalog_version"]
    with database.write_engine.begin() as connection:
        if database.is_sqlite:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))
            if connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
                connection.execute(text("DELETE FROM sqlite_sequence"))
        else:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database(session_database) -> Iterator[Database]:
    """The backend's database, emptied before each test."""
    _truncate(session_database)
    yield session_database


@pytest.fixture
def settings(database, settings_for) -> Settings:
    return settings_for(database.url)


@pytest.fixture
def app(settings, database):
    return create_app(settings, database=database)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def make_key(database: Database, *scopes: Scope, name: str = "test") -> str:
    with database.write() as session:
        _, secret = auth_service.create_api_key(session, name=name, scopes=scopes)
    return secret


@pytest.fixture
def admin_headers(database) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(database, Scope.admin, name='admin')}"}


@pytest.fixture
def write_headers(database) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(database, Scope.write, name='writer')}"}


@pytest.fixture
def read_headers(database) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(database, Scope.read, name='reader')}"}


@pytest.fixture
def reset_database(session_database):
    """For property tests: a callable that empties the database between generated examples."""
    return lambda: _truncate(session_database)


@pytest.fixture
def write_key(database) -> str:
    """A website's event source write key (the tracker's and the web chat widget's)."""
    with database.write() as session:
        _source, key = events_service.create_source(session, name="Website", channel="web")
    return key
