"""SMS.ru through the inbox, with callbacks and answers in SMS.ru's documented format
(tests/fixtures/sms/smsru) and a loopback server standing in for sms.ru: the secret in the
callback URL, a reply to a web chat customer by SMS, status records moving it forward, and
SMS.ru's error codes, temporary or not. (SMS.ru's callback carries no incoming SMS.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.inbox import delivery
from tests.channels.fakes import FakeJsonApi
from tests.channels.sms.conftest import (
    WEBHOOK,
    WEBSITE_PHONE,
    fixture,
    message,
    stored_inbound,
)
from tests.inbox.conftest import Visitor, create_agent, process_inbound, reply

SECRET, API_ID = "callback-secret-1", "A1B2C3D4-0000-1111-2222-333344445555"


def sms_ru_answer(body: dict, n: int) -> dict:
    """/sms/send's answer, as SMS.ru gives it with json=1."""
    answer = fixture("smsru", "send_ok")
    answer["sms"]["79161234567"]["sms_id"] = f"000000-1000000{n - 1}"
    return answer


@pytest.fixture
def gateway():
    api = FakeJsonApi(sms_ru_answer)
    yield api
    api.close()


@pytest.fixture
def sms_settings(settings, gateway):
    return settings.model_copy(update={
        "inbox_sms_provider": "smsru", "inbox_sms_api_url": gateway.url, "inbox_sms_api_key": SecretStr(API_ID),
        "inbox_sms_webhook_secret": SecretStr(SECRET), "inbox_sms_sender": "SHOP"})


@pytest.fixture
def client(sms_settings, database):
    with TestClient(create_app(sms_settings, database=database)) as test_client:
        yield test_client


def callback(client, fields: dict, *, secret: str | None = SECRET, expect: int = 200):
    response = client.post(WEBHOOK, params={"secret": secret} if secret is not None else {}, data=fields)
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response


def sms_conversation(client, admin_headers, write_headers, write_key) -> int:
    """A web chat customer who also gave the website their phone: the agent answers by SMS."""
    anna = Visitor(client, write_key)
    anna.say("Здравствуйте! Перезвоните мне, пожалуйста")
    merged = client.post("/v1/customers", json={"identifiers": [
        {"type": "anonymous_id", "value": anna.anonymous_id}, {"type": "phone", "value": WEBSITE_PHONE}]}, headers=write_headers)
    assert merged.status_code == 200, merged.text
    return client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]


def test_callbacks_without_the_secret_are_refused_and_change_nothing(client, admin_headers, write_headers, write_key, database,
                                                                     sms_settings):
    agent = create_agent(client, admin_headers)
    cid = sms_conversation(client, admin_headers, write_headers, write_key)
    sent = reply(client, admin_headers, cid, "Hello", agent_id=agent["id"], channel="sms")
    delivery.send_due(database, settings=sms_settings)
    statuses = fixture("smsru", "callback_statuses")
    assert callback(client, statuses, secret=None, expect=401).json()["error"]["code"] == "invalid_signature"
    assert callback(client, statuses, secret="guess", expect=401).json()["error"]["code"] == "invalid_signature"
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "sent"
    assert [i for i in stored_inbound(client, admin_headers) if i["channel"] == "sms"] == []


def test_a_reply_by_sms_is_counted_sent_and_moved_forward_by_status_records(client, admin_headers, write_headers, write_key,
                                                                           database, sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    cid = sms_conversation(client, admin_headers, write_headers, write_key)
    text = "Анна, здравствуйте! Ваш заказ 1042 передан в доставку, курьер позвонит за час."  # 78 units: 2 SMS
    sent = reply(client, admin_headers, cid, text, agent_id=agent["id"], channel="sms")
    assert sent["delivery_status"] == "queued" and sent["meta"]["address"] == {"phone": "+79161234567"}
    assert delivery.send_due(database, settings=sms_settings) == 1
    path, body, _auth = gateway.calls[-1]
    assert path == "/sms/send" and body == {"api_id": API_ID, "to": "79161234567", "msg": text, "json": "1", "from": "SHOP"}
    stored = message(client, admin_headers, cid, sent["id"])
    assert stored["delivery_status"] == "sent"
    assert stored["meta"]["sms"] == {"provider": "smsru", "encoding": "UCS-2", "parts": 2, "units": 78}

    ack = callback(client, fixture("smsru", "callback_statuses"))  # in transit, delivered, and a test record
    assert ack.text == "100" and ack.headers["content-type"].startswith("text/plain")
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "delivered"
    assert callback(client, fixture("smsru", "callback_statuses")).text == "100"  # repeated: nothing moves back
    assert callback(client, fixture("smsru", "callback_callcheck")).text == "100"  # another record kind: acknowledged
    assert message(client, admin_headers, cid, sent["id"])["delivery_status"] == "delivered"
    assert [i for i in stored_inbound(client, admin_headers) if i["channel"] == "sms"] == []

    second = reply(client, admin_headers, cid, "Курьер не дозвонился", agent_id=agent["id"], channel="sms")
    delivery.send_due(database, settings=sms_settings)
    callback(client, fixture("smsru", "callback_undelivered") | {"data[0]": "sms_status\n000000-10000001\n104\n1763986600"})
    failed = message(client, admin_headers, cid, second["id"])
    assert failed["delivery_status"] == "failed" and "SMS.ru 104" in failed["error"]


def test_a_request_without_records_is_not_a_callback(client):
    assert callback(client, {"hash": "x"}, expect=422).json()["error"]["code"] == "invalid_payload"


def test_no_money_fails_the_reply_and_a_per_number_limit_is_retried(client, admin_headers, write_headers, write_key, database,
                                                                    sms_settings, gateway):
    agent = create_agent(client, admin_headers)
    cid = sms_conversation(client, admin_headers, write_headers, write_key)
    gateway.errors = [(200, fixture("smsru", "send_no_money"))]
    broke = reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"], channel="sms")
    delivery.send_due(database, settings=sms_settings)
    failed = message(client, admin_headers, cid, broke["id"])
    assert failed["delivery_status"] == "failed" and failed["error"].startswith("SMS.ru 201")

    gateway.errors = [(200, fixture("smsru", "send_number_limit"))]
    limited = reply(client, admin_headers, cid, "Ещё ответ", agent_id=agent["id"], channel="sms")
    delivery.send_due(database, settings=sms_settings)
    waiting = message(client, admin_headers, cid, limited["id"])
    assert waiting["delivery_status"] == "queued" and waiting["error"].startswith("SMS.ru 230")  # retried later
