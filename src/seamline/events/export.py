"""Raw events out to a warehouse (Parquet), and pruning by retention.

Both stream in id order in chunks, so memory stays flat whatever the table's size. The Parquet
file has the event's columns plus its JSON (`properties`, `context`, `traits`, and the whole
`payload` as received), which every warehouse can query (BigQuery, ClickHouse, DuckDB, Spark).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import and_, delete, or_, select

from seamline.core.db import Database
from seamline.events.ingest import MESSAGE_TYPES
from seamline.events.models import EventRecord

_TIME = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("source_id", pa.int64()),
    ("message_id", pa.string()),
    ("type", pa.string()),
    ("name", pa.string()),
    ("anonymous_id", pa.string()),
    ("user_id", pa.string()),
    ("channel", pa.string()),
    ("timestamp", _TIME),
    ("received_at", _TIME),
    ("properties", pa.string()),
    ("traits", pa.string()),
    ("context", pa.string()),
    ("payload", pa.string()),
])


@dataclass
class ExportReport:
    path: str
    events: int
    row_groups: int


def _columns(records: list[EventRecord]) -> dict[str, list]:
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    for record in records:
        message = orjson.loads(record.payload)
        for name in ("id", "source_id", "message_id", "type", "name", "anonymous_id", "user_id", "channel",
                     "timestamp", "received_at", "payload"):
            columns[name].append(getattr(record, name))
        for name in ("properties", "traits", "context"):
            value = message.get(name)
            columns[name].append(orjson.dumps(value).decode() if value is not None else None)
    return columns


def export_parquet(
    database: Database, *, path: Path, since: datetime | None = None, until: datetime | None = None,
    condition=None, chunk: int = 50_000,  # noqa: ANN001
) -> ExportReport:
    """Events with since <= timestamp < until (and `condition`) into one Parquet file."""
    filters = []
    if since is not None:
        filters.append(EventRecord.timestamp >= since)
    if until is not None:
        filters.append(EventRecord.timestamp < until)
    if condition is not None:
        filters.append(condition)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = groups = 0
    last_id = 0
    with pq.ParquetWriter(str(path), SCHEMA, compression="zstd") as writer, database.read() as session:
        while True:
            records = list(session.scalars(
                select(EventRecord).where(EventRecord.id > last_id, *filters).order_by(EventRecord.id).limit(chunk)
            ))
            if not records:
                break
            writer.write_table(pa.table(_columns(records), schema=SCHEMA))
            count, groups, last_id = count + len(records), groups + 1, records[-1].id
            session.expunge_all()
    return ExportReport(str(path), count, groups)


def expired_condition(retention_days: dict[str, int], now: datetime):  # noqa: ANN201
    """Events past their type's retention (`*` for types not named), or None if none expire."""
    parts = []
    for type_name in MESSAGE_TYPES:
        days = retention_days.get(type_name, retention_days.get("*"))
        if days is not None:
            parts.append(and_(EventRecord.type == type_name, EventRecord.timestamp < now - timedelta(days=days)))
    return or_(*parts) if parts else None


def prune(database: Database, *, retention_days: dict[str, int], now: datetime, export_to: Path | None = None,
          dry_run: bool = False, chunk: int = 10_000) -> dict:
    """Delete events past retention, in chunks (short write transactions), optionally exporting
    them to Parquet first. Returns what was exported and deleted."""
    condition = expired_condition(retention_days, now)
    if condition is None:
        return {"deleted": 0, "exported": None}
    exported = None
    if export_to is not None:
        exported = export_parquet(database, path=export_to, condition=condition).__dict__
    if dry_run:
        with database.read() as session:
            from sqlalchemy import func

            return {"would_delete": session.scalar(select(func.count()).where(condition)), "exported": exported}
    deleted = 0
    while True:
        with database.write() as session:
            ids = list(session.scalars(select(EventRecord.id).where(condition).order_by(EventRecord.id).limit(chunk)))
            if ids:
                session.execute(delete(EventRecord).where(EventRecord.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < chunk:
            break
    return {"deleted": deleted, "exported": exported}
