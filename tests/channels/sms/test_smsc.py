"""SMSC.ru through the inbox, with handler calls and answers in SMSC's documented format
(tests/fixtures/sms/smsc) and a loopback server standing in for smsc.ru: the secret in the
handler URL, incoming SMS in UTF-8 and in SMSC's default windows-1251, repeats, the phone
joining the website's profile, replies, statuses and SMSC's error codes."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
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

SECRET, LOGIN, PASSWORD = "callback-secret-2", "shop", "smsc-password"


def smsc_answer(body: dict, n: int) -> dict:
    """send.php's answer with fmt=3."""
    return fixture("smsc", "send_ok") | {"id": 144 + n}


@pytest.fixture
def gateway():
    api = FakeJsonApi(smsc_answer)
    yield api
    api.close()


@pytest.fixture
def sms_settings(settings, gateway):
    return settings.model_copy(update={
        "inbox_sms_provider": "smsc", "inbox_sms_api_url": gateway.url, "inbox_sms_login": LOGIN,
        "inbox_sms_api_key": SecretStr(PASSWORD), "inbox_sms_webhook_secret": SecretStr(SECRET)})


@pytest.fixture
def client(sms_settings, database):
    with TestClient(create_app(sms_settings, database=database)) as test_client:
        yield test_client


def callback(client, fields: dict, *, secret: str | None = SECRET, charset: str | None = "utf-8", expect: int = 200):
    """A handler call: form fields in the charset the handler URL names (windows-1251 when none)."""
    params = {k: v for k, v in (("secret", secret), ("charset", charset)) if v is not None}
    body = urlencode(fields, encoding=charset or "windows-1251")
    response = client.post(WEBHOOK, params=params, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response


def test_handler_calls_without_the_secret_are_refused_with_nothing_stored(client, admin_headers):
    incoming = fixture("smsc", "incoming")
    assert callback(client, incoming, secret=None, expect=401).json()["error"]["code"] == "invalid_signature"
    assert callback(client, incoming, secret="guess", expect=401).json()["error"]["code"] == "invalid_signature"
    assert stored_inbound(client, admin_headers) == []
    assert client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"] == []


def test_incoming_sms_join_the_website_profile_and_repeats_are_ignored(client, admin_headers, write_headers):
    web = website_customer(client, write_headers)
    ack = callback(client, fixture("smsc", "incoming"))
    assert ack.text == "OK"
    callback(client, fixture("smsc", "incoming"))  # SMSC called again
    cp1251 = fixture("smsc", "incoming") | {"sms_id": "8842102", "mes": "И ещё: можно оплатить картой?"}
    callback(client, cp1251, charset=None)  # SMSC's default encoding
    assert sorted(i["provider_message_id"] for i in stored_inbound(client, admin_headers)) == ["smsc:8842101", "smsc:8842102"]
    conversations = conversations_of(client, admin_headers, web)
    assert len(conversations) == 1
    messages = customer_messages(client, admin_headers, conversations[0]["id"])
    assert [m["text"] for m in messages] == ["Здравствуйте! Где мой заказ 1042?", "И ещё: можно оплатить картой?"]
    assert messages[0]["channel"] == "sms"
    assert messages[0]["meta"]["sms"] == {"provider": "smsc", "encoding": "UCS-2", "parts": 1, "to": "79037776655"}


def test_calls_that_are_not_smsc_callbacks(client, admin_headers):
    assert callback(client, {"mes": "no phone"}, expect=422).json()["error"]["code"] == "invalid_payload"
    assert callback(client, {"phone": "79161234567", "waitcall": "1", "ts": "1763900000"}).text == "OK"  # a call check: acknowledged
    assert stored_inbound(client, admin_headers) == []


def test_replies_statuses_and_errors(client, admin_headers, write_headers, database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    web = website_customer(client, write_headers)
    callback(client, fixture("smsc", "incoming"))
    cid = conversations_of(client, admin_headers, web)[0]["id"]
    sent = reply(client, admin_headers, cid, "Заказ 1042 приедет завтра", agent_id=agent["id"])
    assert delivery.send_due(database, settings=sms_settings) == 1
    path, body, _auth = gateway.calls[-1]
    assert path == "/sys/send.php" and body == {"login": LOGIN, "psw": PASSWORD, "phones": "+79161234567",
                                                "mes": "Заказ 1042 приедет завтра", "fmt": "3", "charset": "utf-8"}
    stored = message(client, admin_headers, cid, sent["id"])
    assert stored["delivery_status"] == "sent"
    assert stored["meta"]["sms"] == {"provider": "smsc", "encoding": "UCS-2", "parts": 1, "units": 25, "provider_parts": 2}
    assert callback(client, fixture("smsc", "status_delivered")).text == "OK"
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "delivered"

    second = reply(client, admin_headers, cid, "Вы дома?", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    callback(client, fixture("smsc", "status_undeliverable") | {"id": "146"})
    failed = message(client, admin_headers, cid, second["id"])
    assert failed["delivery_status"] == "failed" and failed["error"] == "SMSC 20: impossible to deliver (error 1)"

    gateway.errors = [(200, fixture("smsc", "send_bad_number"))]
    bad = reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    assert message(client, admin_headers, cid, bad["id"])["delivery_status"] == "failed"

    gateway.errors = [(200, fixture("smsc", "send_too_many"))]
    busy = reply(client, admin_headers, cid, "Ещё ответ", agent_id=agent["id"])
    delivery.send_due(database, settings=sms_settings)
    waiting = message(client, admin_headers, cid, busy["id"])
    assert waiting["delivery_status"] == "queued" and waiting["error"].startswith("SMSC 9")  # retried later


def test_an_smsc_api_key_replaces_login_and_password(client, admin_headers, write_headers, database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    callback(client, fixture("smsc", "incoming"))
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    reply(client, admin_headers, cid, "Ok", agent_id=agent["id"])
    keyed = sms_settings.model_copy(update={"inbox_sms_login": "", "inbox_sms_api_key": SecretStr("smsc-api-key")})
    delivery.send_due(database, settings=keyed)
    _path, body, _auth = gateway.calls[-1]
    assert body["apikey"] == "smsc-api-key" and "login" not in body and "psw" not in body
