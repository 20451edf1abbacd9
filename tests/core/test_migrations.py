"""One linear migration history; upgrade then downgrade on an empty database; models match."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pending_event_delivery_gets_its_job_on_upgrade(backend, postgres_server, tmp_path_factory):
    """The job queue's migration enqueues what the old delivery worker had not sent yet."""
    from sqlalchemy import text

    url = make_database_url(backend, postgres_server, tmp_path_factory, f"seamline_jobs_upgrade_{backend}")
    migrations.upgrade(url, "20261206_trust_boundaries")
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO event_source (name, channel, created_at, server_side) "
                                    "VALUES ('web', 'web', CURRENT_TIMESTAMP, false)"))
            connection.execute(text("INSERT INTO event_destination (name, url, secret, enabled, created_at) "
                                    "VALUES ('hook', 'https://example.com/h', 's', true, CURRENT_TIMESTAMP)"))
            for status in ("pending", "delivered", "pending"):
                connection.execute(text(
                    "INSERT INTO event_delivery (destination_id, source_id, message_ids, status, attempts, next_attempt_at, "
                    "created_at) VALUES (1, 1, '[\"m\"]', :status, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"status": status})
        migrations.upgrade(url)
        with engine.connect() as connection:
            jobs = connection.execute(text("SELECT queue, task, args, state FROM jobs ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [(q, t, s) for q, t, _, s in jobs] == [("webhooks", "events.deliver", "queued")] * 2
    assert [(json.loads(args) if isinstance(args, str) else args)["delivery_id"] for _, _, args, _ in jobs] == [1, 3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_queued_outbound_message_gets_its_send_job_on_upgrade(backend, postgres_server, tmp_path_factory):
    """Sends became jobs: what the old send pass had not sent yet is enqueued, nothing else."""
    from sqlalchemy import text

    url = make_database_url(backend, postgres_server, tmp_path_factory, f"seamline_send_jobs_upgrade_{backend}")
    migrations.upgrade(url, "20261206_jobs")
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO customer_profile (status, created_at, updated_at) "
                                    "VALUES ('active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO inbox_conversation (customer_id, channel, reply_channel, status, priority, weight, labels, "
                "channel_state, sla_breaches, last_message_at, created_at) VALUES (1, 'telegram', 'telegram', 'open', 0, 1, "
                "'[]', '{}', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            for direction, status in (("out", "queued"), ("out", "sent"), ("in", "queued"), ("out", "failed"), ("out", "queued")):
                connection.execute(text(
                    "INSERT INTO inbox_message (conversation_id, direction, kind, channel, text, search_text, delivery_status, "
                    "attempts, meta, next_attempt_at, created_at) VALUES (1, :direction, 'message', 'telegram', 'hi', 'hi', "
                    ":status, 0, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"direction": direction, "status": status})
        migrations.upgrade(url)
        with engine.connect() as connection:
            jobs = connection.execute(text("SELECT queue, task, args, state, priority FROM jobs ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [(q, t, s, p) for q, t, _, s, p in jobs] == [("outbound.telegram", "inbox.send", "queued", 2)] * 2
    assert [(json.loads(args) if isinstance(args, str) else args)["message_id"] for _, _, args, _, _ in jobs] == [1, 5]
