"""Twilio Programmable Messaging through the inbox, with webhook parameters and API answers in
Twilio's documented format (tests/fixtures/sms/twilio) and a loopback server standing in for
api.twilio.com: X-Twilio-Signature over the public URL, incoming SMS and MMS, repeats, the phone
joining the website's profile, replies from the number the customer wrote to, status callbacks,
and Twilio's errors."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.channels.sms.providers import twilio_signature
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

ACCOUNT, TOKEN = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token"
PUBLIC = "https://crm.example.com"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def messages_answer(body: dict, n: int) -> dict:
    """Messages.json's answer to a create (201 in Twilio; the fake answers 200)."""
    return fixture("twilio", "send_created") | {"sid": f"SM{n:032d}", "to": body["To"], "from": body.get("From"), "body": body["Body"]}


@pytest.fixture
def gateway():
    api = FakeJsonApi(messages_answer)
    yield api
    api.close()


@pytest.fixture
def sms_settings(settings, gateway):
    return settings.model_copy(update={
        "inbox_sms_provider": "twilio", "inbox_sms_api_url": gateway.url, "inbox_sms_login": ACCOUNT,
        "inbox_sms_api_key": SecretStr(TOKEN), "inbox_sms_public_url": PUBLIC})


@pytest.fixture
def client(sms_settings, database):
    with TestClient(create_app(sms_settings, database=database)) as test_client:
        yield test_client


def post(client, params: dict, *, token: str | None = TOKEN, url: str = PUBLIC + WEBHOOK, expect: int = 200):
    headers = {"X-Twilio-Signature": twilio_signature(token, url, list(params.items()))} if token else {}
    response = client.post(WEBHOOK, data=params, headers=headers)
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response


def test_the_signature_is_twilios_documented_one():
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030", "To": "+18005551212"}
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", list(params.items())) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_unsigned_or_forged_webhooks_are_refused_with_nothing_stored(client, admin_headers):
    incoming = fixture("twilio", "incoming_sms")
    assert post(client, incoming, token=None, expect=401).json()["error"]["code"] == "invalid_signature"
    assert post(client, incoming, token="not-the-token", expect=401).json()["error"]["code"] == "invalid_signature"
    assert post(client, incoming, url="https://elsewhere.example.com" + WEBHOOK, expect=401).status_code == 401
    signature = twilio_signature(TOKEN, PUBLIC + WEBHOOK, list(incoming.items()))
    tampered = client.post(WEBHOOK, data=incoming | {"Body": "Refund me"}, headers={"X-Twilio-Signature": signature})
    assert tampered.status_code == 401
    assert stored_inbound(client, admin_headers) == []


def test_incoming_sms_and_mms_join_the_website_profile_and_repeats_are_ignored(client, admin_headers, write_headers):
    web = website_customer(client, write_headers)
    ack = post(client, fixture("twilio", "incoming_sms"))
    assert ack.text == EMPTY_TWIML and ack.headers["content-type"].startswith("text/xml")  # no automatic reply
    post(client, fixture("twilio", "incoming_sms"))  # Twilio retried
    post(client, fixture("twilio", "incoming_mms"), url=f"https://crm.example.com:443{WEBHOOK}")  # signed with the port
    assert len(stored_inbound(client, admin_headers)) == 2
    conversations = conversations_of(client, admin_headers, web)
    assert len(conversations) == 1
    sms, mms = customer_messages(client, admin_headers, conversations[0]["id"])
    assert sms["text"] == "Hello! Is order 1042 on its way?"
    assert sms["meta"]["sms"] == {"provider": "twilio", "encoding": "GSM-7", "parts": 1, "to": "+14155550100"}
    assert mms["text"] == "image/jpeg" and mms["meta"]["sms"]["media"][0]["url"].endswith("/Media/ME27be8a708784242c0daee207ff73db67")


def test_a_callback_without_a_message_sid_is_not_twilios(client):
    assert post(client, {"AccountSid": ACCOUNT, "Body": "hi"}, expect=422).json()["error"]["code"] == "invalid_payload"


def test_replies_go_from_the_number_written_to_and_status_callbacks_move_them(client, admin_headers, database, sms_settings,
                                                                              gateway):
    agent = create_agent(client, admin_headers)
    post(client, fixture("twilio", "incoming_sms"))
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    sent = reply(client, admin_headers, cid, "Yes, it arrives tomorrow {before noon}", agent_id=agent["id"])
    assert sent["meta"]["address"] == {"phone": "+79161234567", "sender": "+14155550100"}
    assert delivery.send_due(database, settings=sms_settings) == 1
    path, body, auth = gateway.calls[-1]
    assert path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert auth == "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert body == {"To": "+79161234567", "From": "+14155550100", "Body": "Yes, it arrives tomorrow {before noon}",
                    "StatusCallback": PUBLIC + WEBHOOK}
    stored = message(client, admin_headers, cid, sent["id"])
    assert stored["delivery_status"] == "sent" and stored["meta"]["sms"]["units"] == 40  # {} are two septets each

    delivered = fixture("twilio", "status_delivered") | {"MessageSid": "SM00000000000000000000000000000001"}
    assert post(client, delivered).text == EMPTY_TWIML
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "delivered"

    second = reply(client, admin_headers, cid, "Are you home?", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    post(client, fixture("twilio", "status_undelivered") | {"MessageSid": "SM00000000000000000000000000000002"})
    failed = message(client, admin_headers, cid, second["id"])
    assert failed["delivery_status"] == "failed" and failed["error"] == "Twilio 30003: unreachable destination handset"


def test_a_messaging_service_sends_when_configured(client, admin_headers, database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    post(client, fixture("twilio", "incoming_sms"))
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    reply(client, admin_headers, cid, "Hi", agent_id=agent["id"])
    service = sms_settings.model_copy(update={"inbox_sms_sender": "MG0123456789abcdef0123456789abcdef", "inbox_sms_public_url": ""})
    delivery.send_due(database, settings=service)
    _path, body, _auth = gateway.calls[-1]
    assert body == {"To": "+79161234567", "Body": "Hi", "MessagingServiceSid": "MG0123456789abcdef0123456789abcdef"}


def test_an_invalid_number_fails_and_too_many_requests_are_retried(client, admin_headers, database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    post(client, fixture("twilio", "incoming_sms"))
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    gateway.errors = [(400, fixture("twilio", "error_invalid_to"))]
    invalid = reply(client, admin_headers, cid, "Hello", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    failed = message(client, admin_headers, cid, invalid["id"])
    assert failed["delivery_status"] == "failed" and failed["error"].startswith("Twilio 21211: Invalid 'To' Phone Number")

    gateway.errors = [(429, fixture("twilio", "error_too_many_requests"))]
    throttled = reply(client, admin_headers, cid, "Hello again", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    waiting = message(client, admin_headers, cid, throttled["id"])
    assert waiting["delivery_status"] == "queued" and waiting["error"].startswith("Twilio 20429")
