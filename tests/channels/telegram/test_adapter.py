"""Telegram through the inbox, with update payloads in the Bot API's documented format
(tests/fixtures/telegram) and a loopback HTTP server standing in for api.telegram.org (its
base URL is a setting): secret token, repeats, every message kind, a shared phone joining the
profile of the person who ordered on the website, replies, and the Bot API's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.inbox import delivery
from tests.channels.fakes import FakeJsonApi
from tests.inbox.conftest import conversation, create_agent, pause_over, process_inbound, reply

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "telegram"
SECRET, TOKEN = "webhook-secret-1", "123456:ABC-test-token"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def bot_api_answer(body: dict, n: int) -> dict:
    """The answer of sendMessage, sendPhoto and sendDocument, as the Bot API gives it."""
    return {"ok": True, "result": {"message_id": 5000 + n, "chat": {"id": int(body["chat_id"])}, "date": 1763900500,
                                   **({"text": body["text"]} if "text" in body else {"caption": body.get("caption", "")})}}


@pytest.fixture
def bot():
    api = FakeJsonApi(bot_api_answer)
    yield api
    api.close()


@pytest.fixture
def tg_settings(settings, bot):
    return settings.model_copy(update={"inbox_telegram_bot_token": SecretStr(TOKEN), "inbox_telegram_webhook_secret": SecretStr(SECRET),
                                       "inbox_telegram_api_base": bot.url})


@pytest.fixture
def client(tg_settings, database):
    with TestClient(create_app(tg_settings, database=database)) as test_client:
        yield test_client


def deliver(client, update: dict, secret: str | None = SECRET, expect: int = 200) -> dict:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    response = client.post("/v1/channels/telegram/webhook", json=update, headers=headers)
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response.json()


def only_conversation(client, headers) -> dict:
    items = client.get("/v1/inbox/conversations", headers=headers).json()["items"]
    assert len(items) == 1, items
    return conversation(client, headers, items[0]["id"])


def test_secret_token_is_required_and_nothing_is_stored_without_it(client, admin_headers):
    assert deliver(client, fixture("text_message"), secret=None, expect=401)["error"]["code"] == "invalid_signature"
    assert deliver(client, fixture("text_message"), secret="wrong", expect=401)["error"]["code"] == "invalid_signature"
    assert client.get("/v1/inbox/inbound", headers=admin_headers).json()["items"] == []
    assert client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"] == []


def test_messages_of_every_kind_and_repeats(client, admin_headers):
    for name in ("text_message", "photo_message", "document_message", "edited_message"):
        stored = deliver(client, fixture(name))["stored"]
        assert stored[0]["duplicate"] is False and stored[0]["error"] is None, name
    assert deliver(client, fixture("text_message"))["stored"][0]["duplicate"] is True  # Telegram resent it
    assert deliver(client, fixture("my_chat_member"))["stored"] == []  # acknowledged, not a message
    view = only_conversation(client, admin_headers)
    messages = [m for m in view["messages"] if m["kind"] == "message"]
    assert [m["text"] for m in messages] == [
        "Здравствуйте! Можно вернуть один тюбик крема?", "Вот чек", "заказ-1042.pdf", "Здравствуйте! Можно вернуть два тюбика крема?"]
    assert messages[1]["meta"]["telegram"]["files"][0]["file_id"] == "AgACAgIAAxkBAAIBQ2X-large"
    assert messages[2]["meta"]["telegram"]["files"][0]["content_type"] == "application/pdf"
    assert messages[3]["meta"]["telegram"]["edited"] is True
    customer = client.get(f"/v1/customers/{view['customer_id']}", headers=admin_headers).json()
    assert {"type": "telegram_id", "value": "111111111"} in [
        {"type": i["type"], "value": i["value"]} for i in customer["sections"]["identities"]]
    assert customer["sections"]["profile"]["traits"]["name"]["value"] == "Анна Петрова"


def test_a_malformed_update_is_refused(client):
    response = client.post("/v1/channels/telegram/webhook", content=b"{not json",
                           headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_payload"


def test_a_shared_phone_joins_the_profile_that_ordered_on_the_website(client, admin_headers, write_headers):
    web = client.post("/v1/customers", json={"identifiers": [{"type": "user_id", "value": "site-77"},
                                                              {"type": "phone", "value": "8 (916) 123-45-67"}]},
                      headers=write_headers).json()["customer"]["id"]
    deliver(client, fixture("text_message"))
    deliver(client, fixture("contact_message"))
    view = only_conversation(client, admin_headers)
    assert view["customer_id"] == web  # the Telegram profile merged into the website's person
    mine = client.get("/v1/inbox/conversations", params={"customer_id": web}, headers=admin_headers).json()["items"]
    assert [c["id"] for c in mine] == [view["id"]]


def test_replies_go_out_through_the_bot_api_and_its_errors_are_kept(client, admin_headers, database, tg_settings, bot):
    agent = create_agent(client, admin_headers)
    deliver(client, fixture("text_message"))
    cid = only_conversation(client, admin_headers)["id"]
    sent = reply(client, admin_headers, cid, "Да, в любом магазине.", agent_id=agent["id"])
    assert sent["delivery_status"] == "queued"
    assert delivery.send_due(database, settings=tg_settings) == 1
    path, body, _auth = bot.calls[-1]
    assert path == f"/bot{TOKEN}/sendMessage" and body == {"chat_id": 111111111, "text": "Да, в любом магазине."}
    stored = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == sent["id"])
    assert stored["delivery_status"] == "sent"

    bot.errors = [(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                         "parameters": {"retry_after": 7}})]
    again = reply(client, admin_headers, cid, "Ещё", agent_id=agent["id"])
    delivery.send_due(database, settings=tg_settings)
    waiting = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == again["id"])
    assert waiting["delivery_status"] == "queued" and "429" in waiting["error"]  # retried later
    channel = next(c for c in client.get("/v1/inbox/channels", headers=admin_headers).json()["items"] if c["channel"] == "telegram")
    assert channel["paused_until"] is not None and channel["failures"] == 1  # Telegram's retry_after is obeyed

    bot.errors = [(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})]
    blocked = reply(client, admin_headers, cid, "Вы здесь?", agent_id=agent["id"])
    calls = len(bot.calls)
    assert delivery.send_due(database, settings=tg_settings) == 0 and len(bot.calls) == calls  # paused: nothing sent
    pause_over(database)
    delivery.send_due(database, settings=tg_settings)
    failed = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == blocked["id"])
    assert failed["delivery_status"] == "failed" and "blocked" in failed["error"]


def test_an_agents_files_go_as_photo_and_document_with_the_text_as_caption(client, admin_headers, database, tg_settings, bot):
    agent = create_agent(client, admin_headers)
    deliver(client, fixture("text_message"))
    cid = only_conversation(client, admin_headers)["id"]
    photo = client.post("/v1/inbox/attachments", files={"file": ("чек.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")},
                        headers=admin_headers).json()
    document = client.post("/v1/inbox/attachments", files={"file": ("возврат.pdf", b"%PDF-1.4 test", "application/pdf")},
                           headers=admin_headers).json()
    sent = reply(client, admin_headers, cid, "Бланк возврата и чек", agent_id=agent["id"], attachment_ids=[photo["id"], document["id"]])
    assert delivery.send_due(database, settings=tg_settings) == 1
    (photo_path, photo_body, _), (document_path, document_body, _) = bot.calls[-2:]
    assert photo_path == f"/bot{TOKEN}/sendPhoto" and photo_body["chat_id"] == "111111111"
    assert photo_body["caption"] == "Бланк возврата и чек" and photo_body["photo"][0] == "чек.png"
    assert photo_body["photo"][1].startswith(b"\x89PNG")
    assert document_path == f"/bot{TOKEN}/sendDocument" and "caption" not in document_body
    assert document_body["document"][:2] == ("возврат.pdf", b"%PDF-1.4 test")
    stored = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == sent["id"])
    assert stored["delivery_status"] == "sent" and len(stored["meta"]["telegram"]["message_ids"]) == 2
