"""WhatsApp Cloud API through the inbox, with webhook payloads in Meta's documented format
(tests/fixtures/whatsapp) and a loopback HTTP server standing in for the Graph API: the
subscription check, the body signature, repeats, message kinds, the phone joining the website
profile, statuses out of order, and the 24-hour window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.channels.whatsapp.adapter import signature
from seamline.inbox import delivery
from seamline.inbox.models import InboxConversation
from tests.channels.fakes import FakeJsonApi
from tests.inbox.conftest import conversation, create_agent, process_inbound, reply

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "whatsapp"
APP_SECRET, VERIFY, TOKEN, NUMBER_ID = "app-secret-1", "verify-me", "EAAG-test", "106540352242922"


def payload(name: str, *, timestamp: int | None = None) -> bytes:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    if timestamp is not None:
        for change in data["entry"][0]["changes"]:
            for message in change["value"].get("messages", []):
                message["timestamp"] = str(timestamp)
    return json.dumps(data, ensure_ascii=False).encode()


def graph_answer(body: dict, n: int) -> dict:
    """The messages endpoint's answer, as the Graph API gives it."""
    return {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
            "messages": [{"id": f"wamid.OUT{n}"}]}


@pytest.fixture
def graph():
    api = FakeJsonApi(graph_answer, path_prefix="/v21.0")
    yield api
    api.close()


@pytest.fixture
def wa_settings(settings, graph):
    return settings.model_copy(update={
        "inbox_whatsapp_app_secret": SecretStr(APP_SECRET), "inbox_whatsapp_verify_token": SecretStr(VERIFY),
        "inbox_whatsapp_access_token": SecretStr(TOKEN), "inbox_whatsapp_phone_number_id": NUMBER_ID,
        "inbox_whatsapp_api_base": graph.url})


@pytest.fixture
def client(wa_settings, database):
    with TestClient(create_app(wa_settings, database=database)) as test_client:
        yield test_client


def post(client, body: bytes, *, sign: str | None = APP_SECRET, expect: int = 200) -> dict:
    headers = {"Content-Type": "application/json"}
    if sign is not None:
        headers["X-Hub-Signature-256"] = signature(sign, body)
    response = client.post("/v1/channels/whatsapp/webhook", content=body, headers=headers)
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response.json()


def test_subscription_check_echoes_the_challenge_for_the_right_token(client):
    ok = client.get("/v1/channels/whatsapp/webhook", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = client.get("/v1/channels/whatsapp/webhook", params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "x"})
    assert bad.status_code == 403


def test_unsigned_or_forged_notifications_are_refused_with_nothing_stored(client, admin_headers):
    body = payload("text_message")
    assert post(client, body, sign=None, expect=401)["error"]["code"] == "invalid_signature"
    assert post(client, body, sign="not-the-secret", expect=401)["error"]["code"] == "invalid_signature"
    tampered = body.replace("Заказ 1042".encode(), "Заказ 9999".encode())
    response = client.post("/v1/channels/whatsapp/webhook", content=tampered,
                           headers={"X-Hub-Signature-256": signature(APP_SECRET, body), "Content-Type": "application/json"})
    assert response.status_code == 401
    assert client.get("/v1/inbox/inbound", headers=admin_headers).json()["items"] == []


def test_messages_join_the_phone_profile_and_repeats_are_ignored(client, admin_headers, write_headers):
    web = client.post("/v1/customers", json={"identifiers": [{"type": "user_id", "value": "site-77"},
                                                              {"type": "phone", "value": "8 916 123-45-67"}]},
                      headers=write_headers).json()["customer"]["id"]
    now = int(datetime.now(UTC).timestamp())
    first = post(client, payload("text_message", timestamp=now))["messages"][0]
    assert first["duplicate"] is False and first["error"] is None
    assert post(client, payload("text_message", timestamp=now))["messages"][0]["duplicate"] is True
    post(client, payload("image_message", timestamp=now + 60))
    post(client, payload("unsupported_message", timestamp=now + 120))
    items = client.get("/v1/inbox/conversations", params={"customer_id": web}, headers=admin_headers).json()["items"]
    assert len(items) == 1
    messages = [m for m in conversation(client, admin_headers, items[0]["id"])["messages"] if m["kind"] == "message"]
    assert [m["text"] for m in messages] == ["Добрый день! Заказ 1042 уже в пути?", "Фото чека", "[unsupported message]"]
    assert messages[1]["meta"]["whatsapp"]["files"][0]["media_id"] == "1479537139650973"
    assert messages[2]["meta"]["whatsapp"]["errors"][0]["code"] == 131051
    customer = client.get(f"/v1/customers/{web}", headers=admin_headers).json()
    assert {"type": "whatsapp", "value": "+79161234567"} in [
        {"type": i["type"], "value": i["value"]} for i in customer["sections"]["identities"]]


def test_replies_in_the_window_statuses_forward_only_and_the_window_closing(client, admin_headers, database, wa_settings, graph):
    agent = create_agent(client, admin_headers)
    post(client, payload("text_message", timestamp=int(datetime.now(UTC).timestamp())))
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    sent = reply(client, admin_headers, cid, "Да, заказ передан в доставку.", agent_id=agent["id"])
    assert delivery.send_due(database, settings=wa_settings) == 1
    path, body, auth = graph.calls[-1]
    assert path == f"/v21.0/{NUMBER_ID}/messages" and auth == f"Bearer {TOKEN}"
    assert body["to"] == "79161234567" and body["text"]["body"] == "Да, заказ передан в доставку."
    stored = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == sent["id"])
    assert stored["delivery_status"] == "sent"

    statuses = payload("statuses").replace(b"wamid.OUTBOUND1", b"wamid.OUT1")  # read, delivered, sent: out of order
    assert post(client, statuses)["statuses_applied"] == 1
    assert post(client, statuses)["statuses_applied"] == 0  # repeated: nothing moves back
    stored = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == sent["id"])
    assert stored["delivery_status"] == "read"

    with database.write() as session:  # a day later
        row = session.get(InboxConversation, cid)
        state = dict(row.channel_state)
        state["whatsapp"] = {**state["whatsapp"], "last_inbound_at": (datetime.now(UTC) - timedelta(hours=25)).isoformat()}
        row.channel_state = state
    closed = reply(client, admin_headers, cid, "Как дела?", agent_id=agent["id"], expect=409)
    assert closed["error"]["code"] == "whatsapp_window_closed" and "template" in closed["error"]["message"]
    window = client.get(f"/v1/inbox/conversations/{cid}/window", headers=admin_headers)
    assert window.status_code == 200 and "whatsapp" not in window.json()["reachable_channels"]


def test_a_permanent_api_error_fails_the_reply(client, admin_headers, database, wa_settings, graph):
    agent = create_agent(client, admin_headers)
    post(client, payload("text_message", timestamp=int(datetime.now(UTC).timestamp())))
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    graph.errors = [(400, {"error": {"message": "Recipient phone number not in allowed list", "type": "OAuthException", "code": 131030}})]
    sent = reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    delivery.send_due(database, settings=wa_settings)
    failed = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == sent["id"])
    assert failed["delivery_status"] == "failed" and "131030" in failed["error"]
