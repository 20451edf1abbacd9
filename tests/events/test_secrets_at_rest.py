"""Signing secrets of event destinations and inbox webhooks are stored encrypted (core/crypto.py):
the column never holds the secret, signatures still verify, a wrong key is a clear error (never
garbage used as a secret), values an earlier version stored in clear keep working and are sealed."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from sqlalchemy import select, text, update

from seamline.core import migrations
from seamline.core.crypto import PREFIX, SecretBox, SecretKeyError, key_file_of, secret_box
from seamline.core.queue.models import Job
from seamline.core.time import utcnow
from seamline.events.destinations import create_destination, deliver_due, verify
from seamline.events.models import EventDelivery, EventDestination
from seamline.inbox import webhooks
from seamline.inbox.models import InboxWebhook
from tests.events.test_destinations import Receiver, add_destination, basic, batch, source_key  # noqa: F401 - fixture

KEY_A = "key-a-" + "a" * 40
KEY_B = "key-b-" + "b" * 40


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _stored(database, model, row_id: int) -> str:
    with database.read() as session:
        return session.get(model, row_id).secret


def test_a_destination_secret_is_stored_encrypted_and_still_signs(client, database, settings, admin_headers, source_key,
                                                                  receiver):
    destination = add_destination(client, admin_headers, receiver.url, secret="my-own-secret-of-24-chars")
    assert destination["secret"] == "my-own-secret-of-24-chars"  # shown once, in the answer that creates it
    generated = add_destination(client, admin_headers, receiver.url)
    for made in (destination, generated):
        stored = _stored(database, EventDestination, made["id"])
        assert stored.startswith(PREFIX) and made["secret"] not in stored
        assert secret_box(settings).open(stored) == made["secret"]
    with database.read() as session:  # nowhere in the row, whatever the column
        row = session.execute(text("SELECT * FROM event_destination WHERE id = :id"), {"id": destination["id"]}).one()
    assert not any(destination["secret"] in str(value) for value in row)
    assert all("secret" not in d for d in client.get("/v1/destinations", headers=admin_headers).json())

    assert client.post("/v1/batch", json=batch("m1"), headers=basic(source_key)).status_code == 200
    with httpx.Client() as http:
        assert deliver_due(database, settings=settings, client=http) == 2
    by_secret = {}
    for got in receiver.received:
        for made in (destination, generated):
            if verify(made["secret"], got["headers"]["X-Seamline-Signature"], got["body"]):
                by_secret[made["id"]] = got
    assert set(by_secret) == {destination["id"], generated["id"]}


def test_an_inbox_webhook_secret_is_stored_encrypted_and_still_signs(client, database, settings, admin_headers, receiver):
    hook = client.post("/v1/inbox/webhooks", json={"url": receiver.url, "types": ["message.created"]}, headers=admin_headers)
    assert hook.status_code == 201
    hook = hook.json()
    stored = _stored(database, InboxWebhook, hook["id"])
    assert stored.startswith(PREFIX) and hook["secret"] not in stored
    assert "secret" not in client.get("/v1/inbox/webhooks", headers=admin_headers).json()["items"][0]
    with database.write() as session:
        webhooks.emit(session, "message.created", {"id": 1})
    with httpx.Client() as http:
        assert webhooks.deliver_due(database, settings=settings, client=http) == 1
    (got,) = receiver.received
    assert verify(hook["secret"], got["headers"]["X-Seamline-Signature"], got["body"])


def test_a_wrong_key_is_a_clear_error_and_a_fallback_key_opens_and_reseals(client, database, settings_for, admin_headers,
                                                                            source_key, receiver):
    old = settings_for(database.url, secret_key=KEY_A)
    with database.write() as session:
        made, secret = create_destination(session, settings=old, name="hook", url=receiver.url)
        destination_id = made.id
    sealed_by_a = _stored(database, EventDestination, destination_id)
    client.post("/v1/batch", json=batch("m1"), headers=basic(source_key))

    rotated = settings_for(database.url, secret_key=KEY_B)
    with pytest.raises(SecretKeyError) as refused:
        secret_box(rotated).open(sealed_by_a)
    assert refused.value.code == "secret_key_mismatch" and "another key" in refused.value.message
    with httpx.Client() as http:
        assert deliver_due(database, settings=rotated, client=http) == 1
    assert receiver.received == []  # nothing signed with garbage
    with database.read() as session:
        (delivery,) = session.scalars(select(EventDelivery)).all()
    assert delivery.status == "pending" and delivery.last_error.startswith("secret_key_mismatch:")
    assert _stored(database, EventDestination, destination_id) == sealed_by_a  # left as it was

    with database.write() as session:  # retry now (the failure scheduled a later attempt)
        session.execute(update(Job).values(run_at=utcnow()))
    during_rotation = settings_for(database.url, secret_key=KEY_B, secret_key_fallbacks=[KEY_A])
    with httpx.Client() as http:
        assert deliver_due(database, settings=during_rotation, client=http) == 1
    (got,) = receiver.received
    assert verify(secret, got["headers"]["X-Seamline-Signature"], got["body"])
    resealed = _stored(database, EventDestination, destination_id)
    assert resealed != sealed_by_a and secret_box(rotated).open(resealed) == secret  # the new key alone opens it now


def test_a_secret_stored_in_clear_by_an_earlier_version_works_and_is_sealed(client, database, settings, admin_headers,
                                                                            source_key, receiver):
    with database.write() as session:
        session.add(EventDestination(name="old", url=receiver.url, secret="legacy-secret-in-clear-0123"))
    client.post("/v1/batch", json=batch("m1"), headers=basic(source_key))
    with httpx.Client() as http:
        assert deliver_due(database, settings=settings, client=http) == 1
    (got,) = receiver.received
    assert verify("legacy-secret-in-clear-0123", got["headers"]["X-Seamline-Signature"], got["body"])
    with database.read() as session:
        stored = session.scalar(select(EventDestination.secret))
    assert stored.startswith(PREFIX) and "legacy" not in stored


def test_without_a_key_postgresql_refuses_new_secrets_and_sqlite_makes_a_key_file(tmp_path):
    box = SecretBox(database_url="postgresql://u@db.example/seamline")
    with pytest.raises(SecretKeyError) as refused:
        box.seal("x" * 32)
    assert refused.value.code == "secret_key_required" and "SEAMLINE_SECRET_KEY" in refused.value.message
    assert box.open("in-clear-from-before") == "in-clear-from-before"
    with pytest.raises(SecretKeyError, match="encrypted, but this server has no key"):
        box.open(PREFIX + "gAAAA")

    url = f"sqlite:///{tmp_path / 'seamline.db'}"
    key_file = key_file_of(url)
    box = SecretBox(database_url=url)
    assert not key_file.exists()  # made only when a secret is first stored
    sealed = box.seal("a-signing-secret-0123456789")
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert SecretBox(database_url=url).open(sealed) == "a-signing-secret-0123456789"  # another process: same key
    key_file.unlink()  # the key file lost: a clear error, not garbage
    with pytest.raises(SecretKeyError, match="no key"):
        SecretBox(database_url=url).open(sealed)
    key_file.write_text("k" * 43)
    with pytest.raises(SecretKeyError, match="another key"):
        SecretBox(database_url=url).open(sealed)
    assert SecretBox(secret_key=KEY_A).open(SecretBox(secret_key=KEY_A).seal("s" * 20)) == "s" * 20


def test_too_short_a_key_is_refused_by_the_settings():
    from pydantic import ValidationError

    from seamline.core.config import Settings

    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(_env_file=None, secret_key="short")


def test_the_migration_encrypts_secrets_in_clear_and_the_downgrade_decrypts_them(tmp_path, monkeypatch):
    monkeypatch.delenv("SEAMLINE_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    before = "20261125_login_codes"
    migrations.upgrade(url, before)
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO event_destination (name, url, secret, enabled, created_at) "
                           "VALUES ('d', 'https://e.example/x', 'destination-secret-in-clear', 1, '2026-12-01 00:00:00')")
        connection.execute("INSERT INTO inbox_webhook (url, secret, types, active, created_at) "
                           "VALUES ('https://e.example/y', 'webhook-secret-in-clear', '[]', 1, '2026-12-01 00:00:00')")
    migrations.upgrade(url)
    with sqlite3.connect(path) as connection:
        stored = [connection.execute(f"SELECT secret FROM {t}").fetchone()[0] for t in ("event_destination", "inbox_webhook")]
    assert all(s.startswith(PREFIX) and "in-clear" not in s for s in stored)
    box = SecretBox(database_url=url)  # the key file the migration made beside the database
    assert [box.open(s) for s in stored] == ["destination-secret-in-clear", "webhook-secret-in-clear"]
    migrations.downgrade(url, before)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT secret FROM inbox_webhook").fetchone()[0] == "webhook-secret-in-clear"


def test_the_api_says_what_to_set_when_there_is_no_key(database, settings_for, admin_headers):
    from fastapi.testclient import TestClient

    from seamline.app import create_app

    keyless = settings_for(database.url, secret_key="")
    with TestClient(create_app(keyless, database=database)) as client:
        response = client.post("/v1/destinations", json={"name": "x", "url": "https://e.example/x"}, headers=admin_headers)
        hook = client.post("/v1/inbox/webhooks", json={"url": "https://e.example/y"}, headers=admin_headers)
    if database.is_sqlite:  # the embedded default works out of the box: a key file beside the database
        assert response.status_code == hook.status_code == 201
        assert key_file_of(database.url).exists()
    else:
        for refused in (response, hook):
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "secret_key_required"
            assert "SEAMLINE_SECRET_KEY" in refused.json()["error"]["message"]
