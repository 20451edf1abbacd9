"""The generic JSON gateway (docs/inbox.md) through the inbox, and what every preset shares:
X-Seamline-Signature (timestamped HMAC of the body), incoming SMS and repeats, the phone joining the website's
profile, JSON answers, statuses out of order, the gateway's errors and outages, replies too
long or with files refused, and SMS switched off."""

from __future__ import annotations

import json
import socket
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.events.destinations import sign
from seamline.inbox import delivery
from tests.channels.fakes import FakeJsonApi
from tests.channels.sms.conftest import (
    WEBHOOK,
    conversations_of,
    customer_messages,
    fixture,
    message,
    stored_inbound,
    website_customer,
)
from tests.inbox.conftest import create_agent, process_inbound, reply

SECRET, TOKEN = "gateway-secret-1", "gateway-token"


def gateway_answer(body: dict, n: int) -> dict:
    return {"id": f"gw-out-{n}", "parts": 1}


@pytest.fixture
def gateway():
    api = FakeJsonApi(gateway_answer, path_prefix="/api/sms")
    yield api
    api.close()


@pytest.fixture
def sms_settings(settings, gateway):
    return settings.model_copy(update={
        "inbox_sms_provider": "generic", "inbox_sms_api_url": gateway.url, "inbox_sms_api_key": SecretStr(TOKEN),
        "inbox_sms_webhook_secret": SecretStr(SECRET), "inbox_sms_max_parts": 3})


@pytest.fixture
def client(sms_settings, database):
    with TestClient(create_app(sms_settings, database=database)) as test_client:
        yield test_client


def post(client, payload, *, secret: str | None = SECRET, signed_at: float | None = None, expect: int = 200) -> dict:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    stamp = int(signed_at or time.time())
    headers = {"Content-Type": "application/json", **({"X-Seamline-Signature": sign(secret, stamp, body)} if secret else {})}
    response = client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response.json()


def started(client, admin_headers) -> int:
    post(client, fixture("generic", "incoming"))
    return client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]


def test_unsigned_or_forged_callbacks_are_refused_with_nothing_stored(client, admin_headers):
    incoming = fixture("generic", "incoming")
    assert post(client, incoming, secret=None, expect=401)["error"]["code"] == "invalid_signature"
    assert post(client, incoming, secret="guess", expect=401)["error"]["code"] == "invalid_signature"
    assert post(client, incoming, signed_at=time.time() - 3600, expect=401)["error"]["code"] == "invalid_signature"  # replayed
    body = json.dumps(incoming, ensure_ascii=False).encode()
    forged = client.post(WEBHOOK, content=body.replace("завтра".encode(), "никогда".encode()),
                         headers={"X-Seamline-Signature": sign(SECRET, int(time.time()), body), "Content-Type": "application/json"})
    assert forged.status_code == 401
    assert stored_inbound(client, admin_headers) == []


def test_incoming_sms_join_the_website_profile_and_repeats_are_ignored(client, admin_headers, write_headers):
    web = website_customer(client, write_headers)
    first = post(client, fixture("generic", "incoming"))
    assert first["messages"][0]["duplicate"] is False and first["messages"][0]["error"] is None
    assert post(client, fixture("generic", "incoming"))["messages"][0]["duplicate"] is True
    conversations = conversations_of(client, admin_headers, web)
    assert len(conversations) == 1
    [sms] = customer_messages(client, admin_headers, conversations[0]["id"])
    assert sms["text"] == "Добрый день! Можно перенести доставку на завтра?" and sms["channel"] == "sms"
    assert [i["provider_message_id"] for i in stored_inbound(client, admin_headers)] == ["generic:gw-in-5521"]


@pytest.mark.parametrize("payload", [b"not json", {"from": "+79161234567", "text": "no id"}, {"id": "x1", "from": "+7916"},
                                     [{"id": "x2", "status": 3}]])
def test_what_is_not_a_gateway_callback_is_refused(client, admin_headers, payload):
    assert post(client, payload, expect=422)["error"]["code"] == "invalid_payload"
    assert stored_inbound(client, admin_headers) == []


def test_replies_are_sent_as_json_and_statuses_only_move_forward(client, admin_headers, database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    cid = started(client, admin_headers)
    sent = reply(client, admin_headers, cid, "Да, перенесём на завтра", agent_id=agent["id"])
    assert delivery.send_due(database, settings=sms_settings) == 1
    path, body, auth = gateway.calls[-1]
    assert path == "/api/sms" and auth == f"Bearer {TOKEN}"
    assert body == {"id": f"seamline-{sent['id']}", "to": "+79161234567", "text": "Да, перенесём на завтра", "from": "+79037776655"}
    assert message(client, admin_headers, cid, sent["id"])["meta"]["sms"] == {
        "provider": "generic", "encoding": "UCS-2", "parts": 1, "units": 23}

    applied = post(client, fixture("generic", "statuses"))  # delivered, then a late "sent"
    assert applied == {"messages": [], "statuses": 2, "statuses_applied": 1}
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "delivered"
    assert post(client, [{"id": "gw-out-1", "status": "queued"}])["statuses"] == 0  # nothing to say


def test_too_long_replies_and_files_are_refused_before_the_gateway(client, admin_headers, database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    cid = started(client, admin_headers)
    long = reply(client, admin_headers, cid, "д" * 202, agent_id=agent["id"])  # 4 parts; 3 allowed here
    uploaded = client.post("/v1/inbox/attachments", files={"file": ("чек.pdf", b"%PDF-1.4", "application/pdf")}, headers=admin_headers)
    with_file = reply(client, admin_headers, cid, "Чек во вложении", agent_id=agent["id"], attachment_ids=[uploaded.json()["id"]])
    delivery.send_due(database, settings=sms_settings)
    assert gateway.calls == []
    refused = message(client, admin_headers, cid, long["id"])
    assert refused["delivery_status"] == "failed" and "4 SMS (UCS-2); at most 3" in refused["error"]
    assert message(client, admin_headers, cid, with_file["id"])["delivery_status"] == "failed"


def test_gateway_errors_fail_or_wait(client, admin_headers, database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    cid = started(client, admin_headers)
    gateway.errors = [(400, {"error": "number is blocked"})]
    blocked = reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    failed = message(client, admin_headers, cid, blocked["id"])
    assert failed["delivery_status"] == "failed" and failed["error"] == "SMS gateway 400: number is blocked"

    gateway.errors = [(503, {"error": "maintenance"})]
    later = reply(client, admin_headers, cid, "Ещё ответ", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    waiting = message(client, admin_headers, cid, later["id"])
    assert waiting["delivery_status"] == "queued" and "503" in waiting["error"]


def test_an_unreachable_gateway_is_temporary(client, admin_headers, database, sms_settings):
    agent = create_agent(client, admin_headers)
    cid = started(client, admin_headers)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api/sms"
    sent = reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings.model_copy(update={"inbox_sms_api_url": closed}))
    waiting = message(client, admin_headers, cid, sent["id"])
    assert waiting["delivery_status"] == "queued" and waiting["error"] == "SMS gateway is unreachable: ConnectError"


def test_sms_switched_off_refuses_callbacks_and_holds_replies(client, admin_headers, database, sms_settings):
    agent = create_agent(client, admin_headers)
    cid = started(client, admin_headers)
    off = sms_settings.model_copy(update={"inbox_sms_provider": ""})
    with TestClient(create_app(off, database=database)) as switched_off:
        assert post(switched_off, fixture("generic", "incoming") | {"id": "gw-in-2"}, expect=401)["error"]["code"] == "invalid_signature"
    sent = reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    delivery.send_due(database, settings=off)
    waiting = message(client, admin_headers, cid, sent["id"])
    assert waiting["delivery_status"] == "queued" and "not configured" in waiting["error"]
