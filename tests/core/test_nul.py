"""NUL characters, through HTTP, on SQLite and PostgreSQL alike (PostgreSQL text cannot hold one,
SQLite would store it): an API request with one is a 422 naming where, a collection event with
one is rejected on its own (the rest of its batch is stored), what a provider sends is kept
without them, and a failure kept on a row never carries a SQL statement."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from seamline.app import create_app
from seamline.events import service as events_service
from seamline.inbox import service as inbox_service
from tests.core.test_auth import assert_error
from tests.inbox.conftest import conversation_of as _conversation_of
from tests.inbox.conftest import process_inbound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TELEGRAM_SECRET = "webhook-secret-1"


@pytest.fixture
def client(settings, database):
    configured = settings.model_copy(update={"inbox_telegram_webhook_secret": SecretStr(TELEGRAM_SECRET),
                                             "inbox_email_address": "support@shop.example"})
    with TestClient(create_app(configured, database=database)) as test_client:
        yield test_client


@pytest.fixture
def source_key(database) -> str:
    with database.write() as session:
        return events_service.create_source(session, name="Website", channel="web")[1]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def conversation_of(client, headers, response) -> int:
    return _conversation_of(client, headers, response.json()["message_id"])


def stored_ids(client, headers) -> list[str]:
    return sorted(e["message_id"] for e in client.get("/v1/events", params={"limit": 500}, headers=headers).json()["items"])


# --- collection: the documented per-event 400 ---------------------------------------------------------


@pytest.mark.parametrize(("kind", "message", "field"), [
    ("track", {"userId": "u-1", "event": "Viewed\x00"}, "event"),
    ("track", {"userId": "u-\x001", "event": "Viewed"}, "userId"),
    ("track", {"anonymousId": "a-\x001", "event": "Viewed"}, "anonymousId"),
    ("track", {"userId": "u-1", "event": "Viewed", "messageId": "m\x00"}, "messageId"),
    ("track", {"userId": "u-1", "event": "Viewed", "properties": {"sku": "cream\x00"}}, "properties.sku"),
    ("track", {"userId": "u-1", "event": "Viewed", "properties": {"bad\x00key": 1}}, "properties.bad\\0key"),
    ("page", {"anonymousId": "a-1", "context": {"page": {"url": "https://x\x00"}}}, "context.page.url"),
    ("identify", {"userId": "u-1", "traits": {"name": "Анна\x00", "email": "anna@example.com"}}, "traits.name"),
    ("alias", {"userId": "u-1", "previousId": "a-\x00"}, "previousId"),
])
def test_a_nul_anywhere_in_an_event_rejects_that_event(client, source_key, admin_headers, kind, message, field):
    response = client.post(f"/v1/{kind}", json=message, headers=basic(source_key))
    error = assert_error(response, 400, "invalid_events")
    (rejected,) = error["details"]["rejected"]
    assert rejected["code"] == "nul_character" and rejected["reason"].startswith(f"{field} contains a NUL")
    assert error["details"]["stored"] == 0
    assert stored_ids(client, admin_headers) == []


def test_a_batch_stores_its_valid_events_and_names_the_ones_with_nul(client, source_key, admin_headers):
    batch = {"batch": [
        {"type": "track", "userId": "u-1", "event": "Viewed", "messageId": "ok-1"},
        {"type": "track", "userId": "u-1", "event": "Viewed\x00", "messageId": "bad-1"},
        {"type": "identify", "userId": "u-\x00", "messageId": "bad-2"},
        {"type": "page", "anonymousId": "a-1", "messageId": "ok-2", "properties": {"note": "a literal \\u0000 is text"}},
    ]}
    response = client.post("/v1/batch", json=batch, headers=basic(source_key))
    error = assert_error(response, 400, "invalid_events")
    assert [(r["index"], r["messageId"], r["code"]) for r in error["details"]["rejected"]] == [
        (1, "bad-1", "nul_character"), (2, "bad-2", "nul_character")]
    assert error["details"]["stored"] == 2
    assert stored_ids(client, admin_headers) == ["ok-1", "ok-2"]
    # The SDK resends the whole batch: nothing twice, the same answer.
    again = assert_error(client.post("/v1/batch", json=batch, headers=basic(source_key)), 400, "invalid_events")
    assert again["details"]["stored"] == 0 and again["details"]["duplicates"] == 2
    assert stored_ids(client, admin_headers) == ["ok-1", "ok-2"]


def test_a_write_key_with_nul_is_a_bad_key(client, source_key):
    assert_error(client.post("/v1/track", json={"userId": "u", "event": "e"}, headers=basic(source_key + "\x00")),
                 401, "invalid_api_key")
    assert_error(client.post("/v1/track", json={"userId": "u", "event": "e", "writeKey": "sl_\x00_x"}), 401, "invalid_api_key")


# --- the API: 422 naming each place --------------------------------------------------------------------


def test_inbox_search_with_nul_is_a_422(client, admin_headers):
    error = assert_error(client.get("/v1/inbox/search", params={"q": "кр\x00ем"}, headers=admin_headers), 422, "validation_error")
    assert error["details"]["errors"] == [
        {"location": ["query", "q"], "message": "must not contain NUL characters (\\u0000)", "type": "nul_character"}]


def test_json_bodies_paths_queries_and_forms_with_nul_are_a_422(client, admin_headers, source_key):
    body = {"identifiers": [{"type": "email", "value": "anna@example.com"}], "traits": {"name": "Анна\x00", "tags": ["ok", "x\x00"]}}
    error = assert_error(client.post("/v1/customers", json=body, headers=admin_headers), 422, "validation_error")
    assert [e["location"] for e in error["details"]["errors"]] == [["body", "traits", "name"], ["body", "traits", "tags", "1"]]
    assert error["message"] == "body.traits.name: must not contain NUL characters (\\u0000)"
    assert client.get("/v1/customers", headers=admin_headers).json()["items"] == []  # nothing written

    assert_error(client.post("/v1/webchat/sessions", json={"writeKey": source_key, "anonymousId": "a-1", "userId": "u\x00"}),
                 422, "validation_error")
    path = assert_error(client.get("/v1/catalog/products/cream%00", headers=admin_headers), 422, "validation_error")
    assert path["details"]["errors"][0]["location"] == ["path"]
    query = assert_error(client.get("/v1/customers/lookup", params={"email": "a\x00@example.com"}, headers=admin_headers),
                         422, "validation_error")
    assert query["details"]["errors"][0]["location"] == ["query", "email"]
    form = client.post("/console/login", data={"email": "a@example.com\x00", "password": "x"})
    assert form.status_code == 422 and form.json()["error"]["details"]["errors"][0]["location"] == ["body", "email"]
    # A literal backslash-u-0000 is text, not a NUL.
    fine = client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": "anna@example.com"}],
                                              "traits": {"note": "\\u0000"}}, headers=admin_headers)
    assert fine.status_code == 200, fine.text


# --- what providers send: kept, without the NULs -------------------------------------------------------


def test_an_email_with_nul_in_its_subject_is_kept_without_it(client, admin_headers):
    for n, subject in enumerate([b"Hi\x00 there", b"=?utf-8?b?%s?=" % b"0JLQvtC30LLRgNCw0YIAINC60YDQtdC80LA="]):  # raw, and RFC 2047
        raw = (b"From: Anna <anna-%d@example.com>\r\nTo: support@shop.example\r\nSubject: " % n + subject + b"\r\n"
               b"Message-ID: <nul-%d@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\x00 there\r\n" % n)
        response = client.post("/v1/channels/email/messages", content=raw,
                               headers={**admin_headers, "Content-Type": "message/rfc822"})
        assert response.status_code == 202 and response.json()["error"] is None, response.text
        conversation = client.get(f"/v1/inbox/conversations/{conversation_of(client, admin_headers, response)}",
                                  headers=admin_headers).json()
        assert conversation["subject"] == ["Hi there", "Возврат крема"][n]
        assert conversation["messages"][-1]["text"].startswith("Hello there")
    assert client.get("/v1/inbox/inbound", params={"status": "failed"}, headers=admin_headers).json()["items"] == []


def test_a_messenger_text_with_nul_is_kept_without_it(client, admin_headers):
    update = (FIXTURES / "telegram" / "text_message.json").read_text(encoding="utf-8")
    update = update.replace("Здравствуйте!", "Здравствуйте!\\u0000").replace('"Анна"', '"Ан\\u0000на"', 1)
    response = client.post("/v1/channels/telegram/webhook", content=update.encode(),
                           headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"})
    (stored,) = response.json()["stored"]
    assert response.status_code == 200 and stored["status"] == "received", response.text
    assert process_inbound(client) == 1
    (row,) = client.get("/v1/inbox/inbound", headers=admin_headers).json()["items"]
    assert row["status"] == "processed" and row["error"] is None, row
    message_id = row["message_id"]
    conversation = client.get(f"/v1/inbox/conversations/{_conversation_of(client, admin_headers, message_id)}",
                              headers=admin_headers).json()
    assert conversation["messages"][-1]["text"] == "Здравствуйте! Можно вернуть один тюбик крема?"


# --- failures kept on rows: no SQL ------------------------------------------------------------------


def test_a_failed_inbound_message_keeps_the_drivers_message_not_the_statement(client, admin_headers, monkeypatch):
    def broken(session, **_kwargs):  # noqa: ANN001, ANN003 - a bug deep in processing
        session.execute(text("INSERT INTO no_such_table (secret) VALUES ('anna@example.com')"))

    monkeypatch.setattr(inbox_service, "receive", broken)
    raw = (b"From: anna@example.com\r\nTo: support@shop.example\r\nSubject: Hi\r\nMessage-ID: <sql-1@example.com>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n")
    response = client.post("/v1/channels/email/messages", content=raw,
                           headers={**admin_headers, "Content-Type": "message/rfc822"})
    assert response.status_code == 202, response.text
    (failed,) = client.get("/v1/inbox/inbound", params={"status": "failed"}, headers=admin_headers).json()["items"]
    for error in (response.json()["error"], failed["error"]):
        assert "no_such_table" in error and error.split(":")[0] in ("OperationalError", "UndefinedTable")
        assert "INSERT" not in error and "[SQL" not in error and "anna@example.com" not in error and "\n" not in error
