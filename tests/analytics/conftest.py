"""The analytics backends under test, each over the same operational data.

`warehouse_for(database, settings)` syncs the operational database into the backend and opens
it: DuckDB (a mirror file, from SQLite and from PostgreSQL), PostgreSQL (views over the
operational database itself) and Spark (local mode, over the mirror's Parquet copy; from SQLite
only: one JVM per test session is enough).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from seamline.analytics.mirror import Mirror
from seamline.analytics.warehouse import Warehouse, open_warehouse

ANALYTICS_BACKENDS = ["duckdb", "postgres", "spark"]


def _java() -> bool:
    return shutil.which("java") is not None


#: (operational database, analytics backend) pairs that make sense: the postgres backend is the
#: operational PostgreSQL database itself; Spark runs once, over the mirror made from SQLite.
PAIRS = {("sqlite", "duckdb"), ("sqlite", "spark"), ("postgresql", "duckdb"), ("postgresql", "postgres")}


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        pair = (params.get("database_url"), params.get("analytics_backend"))
        (drop if None not in pair and pair not in PAIRS else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=ANALYTICS_BACKENDS)
def analytics_backend(request, database) -> str:
    backend = request.param
    if backend == "spark":
        if not _java():
            if os.environ.get("CI"):
                pytest.fail("CI=true but Java is missing: .ci/run must install default-jre-headless")
            pytest.skip("no Java here (CI installs default-jre-headless)")
    return backend


@pytest.fixture
def warehouse_for(analytics_backend, tmp_path, settings_for) -> Callable:
    """`with warehouse_for(database) as w:` syncs what is in the database now and opens the backend."""

    @contextmanager
    def build(database) -> Iterator[Warehouse]:
        path = str(tmp_path / "mirror.duckdb")
        parquet = str(tmp_path / "parquet")
        settings = settings_for(database.url, analytics_backend=analytics_backend, analytics_mirror_path=path,
                                analytics_parquet_dir=parquet)
        if analytics_backend != "postgres":
            mirror = Mirror(database, path)
            mirror.sync()
            if analytics_backend == "spark":
                mirror.export_parquet(parquet)
        with open_warehouse(settings, database) as warehouse:
            yield warehouse

    return build


@pytest.fixture(scope="session", autouse=True)
def _stop_spark():
    """The JVM goes down with the test session (not in an atexit hook that logs to a closed stream)."""
    yield
    from seamline.analytics import warehouse

    if warehouse._spark_session is not None:
        warehouse._spark_session.stop()
        warehouse._spark_session = None
