"""Analytics' scheduled work: the mirror's sync every `analytics_sync_seconds` (DuckDB and Spark
backends; the PostgreSQL backend reads the live tables and needs none). The queue runs it once
per period for the whole cluster; the mirror's file lock keeps it to one writer per file."""

from __future__ import annotations

from seamline.analytics.mirror import Mirror, SyncReport
from seamline.analytics.warehouse import mirror_path
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic


def sync(database: Database, settings: Settings, *, full: bool = False, parquet: bool | None = None) -> SyncReport:
    """Copy what is new into the mirror (and, for Spark, refresh its Parquet copy)."""
    mirror = Mirror(database, mirror_path(settings))
    report = mirror.sync(full=full)
    if parquet if parquet is not None else settings.analytics_backend == "spark":
        mirror.export_parquet(settings.analytics_parquet_dir)
    return report


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    if not settings.analytics_sync_seconds or settings.analytics_backend == "postgres":
        return []
    # its own queue: a long first sync never holds up the other domains' periodic work
    return [Periodic("analytics.sync", settings.analytics_sync_seconds, lambda: sync(database, settings), queue="analytics")]
