"""Parquet export for a warehouse, and pruning by retention (with export first)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from seamline.cli import app as cli
from seamline.core.time import utcnow
from seamline.events import service as events_service
from seamline.events.export import export_parquet, prune
from seamline.events.ingest import check_message
from seamline.events.models import EventRecord


def store(database, settings, *messages: dict) -> None:
    now = utcnow()
    checked = [check_message(m, default_type=None, batch_sent_at=None, received_at=now, max_bytes=32768) for m in messages]
    with database.write() as session:
        source = events_service.list_sources(session)[0] if events_service.list_sources(session) else \
            events_service.create_source(session, name="Web", channel="web")[0]
        events_service.store_events(session, source=source, events=checked, received_at=now)


def days_ago(n: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=n)).isoformat()


@pytest.fixture
def events(database, settings):
    store(
        database, settings,
        {"type": "page", "messageId": "old-page", "anonymousId": "a", "timestamp": days_ago(100), "properties": {"path": "/"}},
        {"type": "page", "messageId": "new-page", "anonymousId": "a", "timestamp": days_ago(1)},
        {"type": "track", "messageId": "old-track", "userId": "u", "event": "Order Completed", "timestamp": days_ago(100),
         "properties": {"revenue": 10}, "context": {"campaign": {"source": "ads"}}},
        {"type": "identify", "messageId": "old-identify", "userId": "u", "timestamp": days_ago(400), "traits": {"city": "Омск"}},
    )


def test_parquet_export_by_time(database, events, tmp_path):
    report = export_parquet(database, path=tmp_path / "all.parquet")
    assert report.events == 4
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    track = next(row for row in table if row["message_id"] == "old-track")
    assert track["name"] == "Order Completed" and track["channel"] == "web" and track["user_id"] == "u"
    assert json.loads(track["properties"]) == {"revenue": 10}
    assert json.loads(track["context"])["campaign"] == {"source": "ads"}
    assert json.loads(track["payload"])["event"] == "Order Completed"
    assert track["timestamp"].tzinfo is not None
    recent = export_parquet(database, path=tmp_path / "recent.parquet", since=datetime.now(timezone.utc) - timedelta(days=30))
    assert recent.events == 1
    assert pq.read_table(tmp_path / "recent.parquet").column("message_id").to_pylist() == ["new-page"]


def test_prune_keeps_what_retention_keeps_and_exports_first(database, events, tmp_path):
    retention = {"page": 90, "identify": 365}  # track: no rule, kept forever
    dry = prune(database, retention_days=retention, now=utcnow(), dry_run=True)
    assert dry["would_delete"] == 2
    result = prune(database, retention_days=retention, now=utcnow(), export_to=tmp_path / "pruned.parquet", chunk=1)
    assert result["deleted"] == 2 and result["exported"]["events"] == 2
    assert sorted(pq.read_table(tmp_path / "pruned.parquet").column("message_id").to_pylist()) == ["old-identify", "old-page"]
    with database.read() as session:
        left = sorted(r.message_id for r in session.query(EventRecord))
    assert left == ["new-page", "old-track"]
    assert prune(database, retention_days={"*": 30}, now=utcnow())["deleted"] == 1  # old-track now


def test_cli_export_and_prune(database, events, tmp_path, monkeypatch):
    runner = CliRunner()
    out = tmp_path / "cli.parquet"
    result = runner.invoke(cli, ["events", "export", "-o", str(out), "--since", "2000-01-01", "--database-url", database.url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] == 4
    bad = runner.invoke(cli, ["events", "export", "-o", str(out), "--since", "last week", "--database-url", database.url])
    assert bad.exit_code != 0
    monkeypatch.setenv("SEAMLINE_EVENT_RETENTION_DAYS", '{"*": 30}')
    from seamline.core.config import get_settings

    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["events", "prune", "--database-url", database.url])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"] == 3
