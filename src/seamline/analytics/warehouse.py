"""Where the metrics run: one Ibis connection holding the logical tables of `schema.LOGICAL`.

- `duckdb` (the embedded default): the mirror file that `mirror.Mirror.sync` keeps fresh;
- `postgres`: the operational PostgreSQL database itself, through views in its `analytics`
  schema (created here, once per process) — no mirror, always current;
- `spark`: PySpark over Parquet files of the logical tables (`Mirror.export_parquet` writes them;
  on a cluster they would live on shared storage).

Metrics (`metrics.py`) are Ibis expressions over `Warehouse.table(name)` and never know which.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ibis
import sqlalchemy as sa

from seamline.analytics import mirror as mirror_module
from seamline.analytics.schema import LOGICAL, MIRRORED
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import AppError

SCHEMA = "analytics"


class AnalyticsUnavailable(AppError):
    status_code = 503
    code = "analytics_unavailable"


class Warehouse:
    """The logical tables on one backend."""

    def __init__(self, backend: str, connection: Any, *, database: str | None = None):
        self.backend, self.connection, self._database = backend, connection, database
        self._cache: dict[Any, ibis.Table] = {}

    def cached(self, key: Any, build: Callable[[], ibis.Table]) -> ibis.Table:
        """`build()`'s table, computed once per warehouse session and kept as a temporary table
        (DuckDB, PostgreSQL) or a cached DataFrame (Spark): what several metrics, or several
        queries of one metric, read (purchases, events with their person, touches)."""
        if key not in self._cache:
            table = build().cache()
            if self.backend == "postgres":  # a new temporary table has no statistics: the planner guessed nested loops
                self.connection.raw_sql(f'ANALYZE "{table.get_name()}"').close()
            self._cache[key] = table
        return self._cache[key]

    def release(self) -> None:
        for table in self._cache.values():
            try:
                table.release()
            except Exception:  # noqa: BLE001 - the connection closes anyway
                pass
        self._cache.clear()

    def table(self, name: str) -> ibis.Table:
        if name not in LOGICAL:
            raise KeyError(name)
        if self._database is not None:
            return self.connection.table(name, database=self._database)
        return self.connection.table(name)

    def execute(self, expression: ibis.Expr) -> Any:
        """A table expression's rows as a DataFrame; a scalar's value."""
        return self.connection.execute(expression)


# --- PostgreSQL: views over the operational tables --------------------------------------------

_PG_DERIVED = {
    ("events", "person_key"): "person",
    ("events", "ts"): '"timestamp" AT TIME ZONE \'UTC\'',
    ("events", "utm_source"): "payload::jsonb #>> '{context,campaign,source}'",
    ("events", "utm_medium"): "payload::jsonb #>> '{context,campaign,medium}'",
    ("events", "utm_campaign"): "payload::jsonb #>> '{context,campaign,name}'",
    ("events", "product_code"): "payload::jsonb #>> '{properties,product_id}'",
    ("events", "list_id"): "payload::jsonb #>> '{properties,list_id}'",
    ("events", "rec_reason"): "payload::jsonb #>> '{properties,recommendation}'",
    ("events", "shown_in"): "payload::jsonb #>> '{properties,shown_in}'",
    ("conversations", "sla_breached"): "coalesce(json_array_length(sla_breaches), 0) > 0",
}


def postgres_views() -> list[str]:
    """The statements that define every logical table as a view in the `analytics` schema."""
    statements = [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"]
    for spec in MIRRORED:
        columns = []
        for column, kind in LOGICAL[spec.name].items():
            expression = _PG_DERIVED.get((spec.name, column))
            if expression is None:
                expression = f'"{column}" AT TIME ZONE \'UTC\'' if kind == "TIMESTAMP" else f'"{column}"'
            if kind == "VARCHAR":  # text, as in the mirror (a union of varchar(32) and varchar(330) is refused)
                expression = f"({expression})::text"
            columns.append(f"{expression} AS {column}")
        where = ""
        if spec.where is not None:
            where = " WHERE " + str(spec.where.compile(dialect=sa.dialects.postgresql.dialect(),
                                                       compile_kwargs={"literal_binds": True}))
        statements.append(f"CREATE OR REPLACE VIEW {SCHEMA}.{spec.name} AS SELECT {', '.join(columns)} "
                          f"FROM public.{spec.source.name}{where}")
    statements.append(
        f"""CREATE OR REPLACE VIEW {SCHEMA}.people AS
        WITH RECURSIVE walk(profile_id, person_id, depth) AS (
            SELECT id, id, 0 FROM public.customer_profile WHERE merged_into_id IS NULL
            UNION ALL
            SELECT p.id, w.person_id, w.depth + 1 FROM public.customer_profile p
            JOIN walk w ON p.merged_into_id = w.profile_id WHERE w.depth < 64
        )
        SELECT w.profile_id::bigint AS profile_id, w.person_id::bigint AS person_id, r.status::text AS status
        FROM walk w JOIN public.customer_profile r ON r.id = w.person_id"""
    )
    statements.append(
        f"""CREATE OR REPLACE VIEW {SCHEMA}.event_people AS
        SELECT DISTINCT (CASE WHEN i.type = 'user_id' THEN 'u:' ELSE 'a:' END || i.value)::text AS person_key,
               p.person_id
        FROM public.customer_identity i JOIN {SCHEMA}.people p ON p.profile_id = i.profile_id
        WHERE i.type IN ('user_id', 'anonymous_id')"""
    )
    return statements


_views_ready: set[str] = set()
_views_lock = threading.Lock()


def ensure_postgres_views(database: Database) -> None:
    with _views_lock:
        if database.url in _views_ready:
            return
        with database.write_engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('seamline.analytics.views'))"))
            for statement in postgres_views():
                connection.execute(sa.text(statement))
        _views_ready.add(database.url)


def _postgres_connection(database: Database) -> Any:
    url = database.write_engine.url
    return ibis.postgres.connect(host=url.host or "localhost", port=url.port or 5432, user=url.username,
                                 password=url.password, database=url.database)


# --- Spark: Parquet files ---------------------------------------------------------------------

_spark_session = None


def spark_session() -> Any:
    """One local Spark session per process (started on first use: a JVM takes seconds)."""
    global _spark_session
    if _spark_session is None:
        from pyspark.sql import SparkSession

        _spark_session = (
            SparkSession.builder.master(os.environ.get("SEAMLINE_SPARK_MASTER", "local[2]"))
            .appName("seamline-analytics")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
    return _spark_session


def spark_warehouse(parquet_dir: str) -> Warehouse:
    session = spark_session()
    for name in LOGICAL:
        path = os.path.join(parquet_dir, f"{name}.parquet")
        if not os.path.exists(path):
            raise AnalyticsUnavailable(f"No Parquet copy of {name} in {parquet_dir}: run `seamline analytics sync --parquet`")
        session.read.parquet(path).createOrReplaceTempView(name)
    return Warehouse("spark", ibis.pyspark.connect(session))


# --- choosing one -----------------------------------------------------------------------------


def mirror_path(settings: Settings) -> str:
    """`analytics_mirror_path`, or beside the SQLite database, or in the working directory."""
    if settings.analytics_mirror_path:
        return settings.analytics_mirror_path
    if settings.database_url.startswith("sqlite"):
        database = sa.engine.make_url(settings.database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            return str(Path(database).expanduser().with_suffix(".analytics.duckdb"))
    return "seamline-analytics.duckdb"


@contextmanager
def open_warehouse(settings: Settings, database: Database) -> Iterator[Warehouse]:
    """The configured backend's warehouse, for the length of one piece of work."""
    backend = settings.analytics_backend
    if backend == "postgres":
        if database.is_sqlite:
            raise AnalyticsUnavailable("analytics_backend=postgres needs a PostgreSQL database_url")
        ensure_postgres_views(database)
        connection = _postgres_connection(database)
        warehouse = Warehouse("postgres", connection, database=SCHEMA)
        try:
            yield warehouse
        finally:
            warehouse.release()
            connection.disconnect()
        return
    if backend == "spark":
        warehouse = spark_warehouse(settings.analytics_parquet_dir)
        try:
            yield warehouse
        finally:
            warehouse.release()
        return
    path = mirror_path(settings)
    if not os.path.exists(path):
        raise AnalyticsUnavailable("The analytics mirror is empty: run `seamline analytics sync` (the worker does it "
                                   "every minute)")
    with mirror_module.locked(path, exclusive=False):
        connection = ibis.duckdb.connect(path, read_only=True)
        warehouse = Warehouse("duckdb", connection)
        try:
            yield warehouse
        finally:
            warehouse.release()
            connection.disconnect()
