"""Viber through the inbox, with callbacks in the REST bot API's documented format
(tests/fixtures/viber) and a loopback HTTP server standing in for chatapi.viber.com (its base
URL is a setting): the body signature, the set_webhook check, repeats, message kinds, a shared
contact joining the website profile, acknowledged events, replies, statuses out of order, and
the API's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from seamline.app import create_app
from seamline.channels.viber.adapter import signature
from seamline.customers.models import CustomerIdentity
from seamline.inbox import delivery
from tests.channels.fakes import FakeJsonApi
from tests.inbox.conftest import conversation, create_agent, process_inbound, reply

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "viber"
TOKEN, SENDER = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f", "Магазин Ромашка"
FIRST_TOKEN = 5741311803571721087  # send_message's message_token for the n-th call: FIRST_TOKEN + n
VIEWER = "pttm25kSGUo1919sBORWyA=="


def payload(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def viber_answer(body: dict, n: int) -> dict:
    """send_message's answer, as the REST API gives it."""
    return {"status": 0, "status_message": "ok", "message_token": FIRST_TOKEN + n, "chat_hostname": "SN-CHAT-05_", "billing_status": 1}


@pytest.fixture
def viber_api():
    api = FakeJsonApi(viber_answer)
    yield api
    api.close()


@pytest.fixture
def viber_settings(settings, viber_api):
    return settings.model_copy(update={"inbox_viber_auth_token": SecretStr(TOKEN), "inbox_viber_sender_name": SENDER,
                                       "inbox_viber_api_base": viber_api.url})


@pytest.fixture
def client(viber_settings, database):
    with TestClient(create_app(viber_settings, database=database)) as test_client:
        yield test_client


def post(client, body: bytes, *, sign: str | None = TOKEN, expect: int = 200) -> dict:
    headers = {"Content-Type": "application/json"}
    if sign is not None:
        headers["X-Viber-Content-Signature"] = signature(sign, body)
    response = client.post("/v1/channels/viber/webhook", content=body, headers=headers)
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response.json()


def message(client, headers, conversation_id: int, message_id: int) -> dict:
    return next(m for m in conversation(client, headers, conversation_id)["messages"] if m["id"] == message_id)


def test_the_webhook_check_is_answered_and_unsigned_callbacks_are_refused(client, admin_headers):
    assert post(client, payload("webhook")) == {"messages": [], "statuses": 0, "statuses_applied": 0}
    body = payload("text_message")
    assert post(client, body, sign=None, expect=401)["error"]["code"] == "invalid_signature"
    assert post(client, body, sign="not-the-token", expect=401)["error"]["code"] == "invalid_signature"
    tampered = body.replace(b"1042", b"9999")
    response = client.post("/v1/channels/viber/webhook", content=tampered,
                           headers={"X-Viber-Content-Signature": signature(TOKEN, body), "Content-Type": "application/json"})
    assert response.status_code == 401
    assert client.get("/v1/inbox/inbound", headers=admin_headers).json()["items"] == []
    assert client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"] == []


def test_a_shared_contact_is_a_claim_that_joins_no_one_and_repeats_are_ignored(client, admin_headers, write_headers):
    """Viber does not say whose a shared contact card is: a phone someone else already has is a
    claim and joins nothing (docs/customers.md, "Trust"); the agent still sees the card."""
    web = client.post("/v1/customers", json={"identifiers": [{"type": "user_id", "value": "site-77"},
                                                              {"type": "phone", "value": "8 (916) 123-45-67"}]},
                      headers=write_headers).json()["customer"]["id"]
    first = post(client, payload("text_message"))["messages"][0]
    assert first["duplicate"] is False and first["error"] is None
    assert post(client, payload("text_message"))["messages"][0]["duplicate"] is True  # Viber resent it
    for name in ("picture_message", "file_message", "contact_message"):
        assert post(client, payload(name))["messages"][0]["error"] is None, name
    assert client.get("/v1/inbox/conversations", params={"customer_id": web}, headers=admin_headers).json()["items"] == []
    items = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"]
    assert len(items) == 1
    view = conversation(client, admin_headers, items[0]["id"])
    assert view["customer_id"] != web
    messages = [m for m in view["messages"] if m["kind"] == "message"]
    assert [m["text"] for m in messages] == [
        "Добрый день! Можно поменять размер в заказе 1042?", "Вот этикетка", "заказ-1042.pdf", "📞 +79161234567"]
    assert messages[1]["meta"]["viber"]["files"][0]["filename"] == "IMG_20251123_140101.jpg"
    assert messages[2]["meta"]["viber"]["files"][0]["url"].endswith(".pdf") and messages[2]["meta"]["viber"]["files"][0]["size"] == 48213
    assert messages[3]["meta"]["viber"]["contact"]["phone_number"] == "+79161234567"
    viewer = client.get(f"/v1/customers/{view['customer_id']}", headers=admin_headers).json()
    assert [(i["type"], i["value"]) for i in viewer["sections"]["identities"]] == [("viber_id", VIEWER)]
    assert viewer["sections"]["profile"]["traits"]["name"]["value"] == "Анна Петрова"
    website = client.get(f"/v1/customers/{web}", headers=admin_headers).json()
    assert {i["type"] for i in website["sections"]["identities"]} == {"user_id", "phone"}


def test_a_shared_contact_with_a_new_number_joins_the_viewer_unverified(client, admin_headers, database):
    for name in ("text_message", "contact_message"):
        assert post(client, payload(name))["messages"][0]["error"] is None, name
    with database.read() as session:
        phone = session.scalar(select(CustomerIdentity).where(CustomerIdentity.type == "phone"))
        viber = session.scalar(select(CustomerIdentity).where(CustomerIdentity.type == "viber_id"))
    assert phone.value == "+79161234567" and phone.profile_id == viber.profile_id
    assert phone.verified_at is None and viber.verified_at is not None


def test_subscriptions_and_unknown_events_are_acknowledged_with_nothing_created(client, admin_headers):
    unknown = json.dumps({"event": "client_status", "timestamp": 1763900000000, "message_token": 1, "user_id": VIEWER}).encode()
    for body in (payload("subscribed"), payload("conversation_started"), payload("unsubscribed"), unknown):
        assert post(client, body) == {"messages": [], "statuses": 0, "statuses_applied": 0}
    assert client.get("/v1/inbox/inbound", headers=admin_headers).json()["items"] == []
    assert client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"] == []
    assert post(client, b"{not json", expect=422)["error"]["code"] == "invalid_payload"


def test_replies_statuses_out_of_order_and_the_api_errors(client, admin_headers, database, viber_settings, viber_api):
    agent = create_agent(client, admin_headers)
    post(client, payload("text_message"))
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    sent = reply(client, admin_headers, cid, "Да, поменяем на M.", agent_id=agent["id"])
    assert delivery.send_due(database, settings=viber_settings) == 1
    path, body, _auth = viber_api.calls[-1]
    assert path == "/pa/send_message"
    assert body == {"receiver": VIEWER, "type": "text", "text": "Да, поменяем на M.", "sender": {"name": SENDER}}
    assert {k.lower(): v for k, v in viber_api.headers[-1].items()}["x-viber-auth-token"] == TOKEN
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "sent"

    assert post(client, payload("seen"))["statuses_applied"] == 1  # seen before delivered
    assert post(client, payload("delivered"))["statuses_applied"] == 0  # nothing moves back
    assert post(client, payload("seen"))["statuses_applied"] == 0
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "read"

    second = reply(client, admin_headers, cid, "Что-то ещё?", agent_id=agent["id"])
    delivery.send_due(database, settings=viber_settings)
    failed = payload("failed").replace(str(FIRST_TOKEN + 1).encode(), str(FIRST_TOKEN + 2).encode())
    assert post(client, failed) == {"messages": [], "statuses": 1, "statuses_applied": 1}
    stored = message(client, admin_headers, cid, second["id"])
    assert stored["delivery_status"] == "failed" and "no suitable device" in stored["error"]

    viber_api.errors = [(200, {"status": 6, "status_message": "notSubscribed", "chat_hostname": "SN-CHAT-05_"})]
    gone = reply(client, admin_headers, cid, "Вы здесь?", agent_id=agent["id"])
    delivery.send_due(database, settings=viber_settings)
    stored = message(client, admin_headers, cid, gone["id"])
    assert stored["delivery_status"] == "failed" and "notSubscribed" in stored["error"]

    viber_api.errors = [(200, {"status": 12, "status_message": "tooManyRequests", "chat_hostname": "SN-CHAT-05_"})]
    later = reply(client, admin_headers, cid, "Ещё", agent_id=agent["id"])
    delivery.send_due(database, settings=viber_settings)
    stored = message(client, admin_headers, cid, later["id"])
    assert stored["delivery_status"] == "queued" and "tooManyRequests" in stored["error"]  # retried later
    assert TOKEN not in stored["error"]
