"""SLA clocks in business hours, breaches flagged once by the job, and signed webhooks through
the outbox (to a real HTTP receiver on loopback)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from seamline.customers.identifiers import IdentifierRules
from seamline.events.destinations import verify
from seamline.inbox import sla, tasks, webhooks
from tests.events.test_destinations import Receiver
from tests.inbox.conftest import conversation, create_agent, reply

MOSCOW_WEEK = {"timezone": "Europe/Moscow", "hours": {d: ["09:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
               "holidays": ["2026-12-31"]}


def test_business_minutes_skip_nights_weekends_and_holidays():
    friday_evening = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)  # 17:30 in Moscow
    due = sla.add_business_minutes(friday_evening, 60, MOSCOW_WEEK)
    assert due == datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # Monday 09:30 Moscow
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert sla.add_business_minutes(saturday, 30, MOSCOW_WEEK) == datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    before_holiday = datetime(2026, 12, 30, 14, 0, tzinfo=UTC)  # Wed 17:00; Thursday 31st is a holiday
    assert sla.add_business_minutes(before_holiday, 120, MOSCOW_WEEK) == datetime(2027, 1, 1, 7, 0, tzinfo=UTC)
    assert sla.add_business_minutes(saturday, 30, None) == saturday + timedelta(minutes=30)


def test_invalid_calendars_are_refused(client, admin_headers):
    for calendar in ({"timezone": "Mars/Olympus", "hours": {"mon": ["09:00", "18:00"]}}, {"hours": {"funday": ["09:00", "10:00"]}},
                     {"hours": {"mon": ["18:00", "09:00"]}}, {"hours": {}}):
        response = client.post("/v1/inbox/sla-policies", json={"name": "x", "first_response_minutes": 5, "calendar": calendar},
                               headers=admin_headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_calendar", calendar


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_breach_is_flagged_once_notified_and_sent_as_a_signed_webhook(client, admin_headers, visitor, database, settings, receiver):
    hook = client.post("/v1/inbox/webhooks", json={"url": receiver.url, "types": ["conversation.sla_breached", "message.created"]},
                       headers=admin_headers).json()
    policy = client.post("/v1/inbox/sla-policies", json={"name": "Chat", "first_response_minutes": 60, "next_response_minutes": 10,
                                                          "resolution_minutes": 600, "is_default": True}, headers=admin_headers)
    assert policy.status_code == 201
    anna = visitor()
    anna.say("Ответьте, пожалуйста")
    cid = anna.open()["conversation"]["id"]
    view = conversation(client, admin_headers, cid)
    assert view["sla"]["first_response"]["state"] == "running" and view["sla"]["policy_id"] == policy.json()["id"]

    rules = IdentifierRules(settings)
    later = datetime.now(UTC) + timedelta(minutes=61)
    assert tasks.run_due(database, settings=settings, rules=rules, now=later)["sla_breaches"] == 1
    assert tasks.run_due(database, settings=settings, rules=rules, now=later + timedelta(minutes=1))["sla_breaches"] == 0
    view = conversation(client, admin_headers, cid)
    assert view["sla"]["breaches"] == ["first_response"] and view["sla"]["first_response"]["state"] == "breached"
    assert any(m["text"] == "SLA breached: first response" for m in view["messages"])

    with httpx.Client() as http:
        assert webhooks.deliver_due(database, settings=settings, client=http) == 2
    kinds = [json.loads(r["body"])["type"] for r in receiver.received]
    assert sorted(kinds) == ["conversation.sla_breached", "message.created"]
    for request in receiver.received:
        assert verify(hook["secret"], request["headers"]["X-Seamline-Signature"], request["body"])
        assert request["headers"]["X-Seamline-Delivery"].startswith("inbox-")
    breached = next(json.loads(r["body"]) for r in receiver.received if b"sla_breached" in r["body"])
    assert breached["data"]["id"] == cid and breached["data"]["clocks"] == ["first_response"]


def test_failed_webhooks_retry_then_dead_letter(client, admin_headers, visitor, database, settings, receiver):
    hook = client.post("/v1/inbox/webhooks", json={"url": receiver.url, "types": ["message.created"]}, headers=admin_headers).json()
    receiver.statuses = [500] * 20
    visitor().say("Раз")
    quick = settings.model_copy(update={"delivery_max_attempts": 2, "delivery_backoff_seconds": 0.001})
    with httpx.Client() as http:
        assert webhooks.deliver_due(database, settings=quick, client=http) == 1
        time.sleep(0.05)
        assert webhooks.deliver_due(database, settings=quick, client=http) == 1
    dead = client.get(f"/v1/inbox/webhooks/{hook['id']}/dead-letters", headers=admin_headers).json()["items"]
    assert len(dead) == 1 and dead[0]["last_error"].startswith("HTTP 500")
    retried = client.post(f"/v1/inbox/webhooks/{hook['id']}/dead-letters/{dead[0]['id']}/retry", headers=admin_headers)
    assert retried.json()["status"] == "pending"
    receiver.statuses = []
    with httpx.Client() as http:
        assert webhooks.deliver_due(database, settings=quick, client=http) == 1
    assert client.get(f"/v1/inbox/webhooks/{hook['id']}/dead-letters", headers=admin_headers).json()["items"] == []


def test_reply_clears_the_next_response_clock(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers)
    client.post("/v1/inbox/sla-policies", json={"name": "Chat", "first_response_minutes": 5, "next_response_minutes": 10,
                                                "is_default": True}, headers=admin_headers)
    anna = visitor()
    anna.say("Вопрос")
    cid = anna.open()["conversation"]["id"]
    reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    view = conversation(client, admin_headers, cid)
    assert view["sla"]["first_response"]["state"] == "met" and view["sla"]["next_response"]["due_at"] is None
    anna.say("Ещё вопрос")
    view = conversation(client, admin_headers, cid)
    assert view["sla"]["next_response"]["state"] in ("running", "at_risk")
    reply(client, admin_headers, cid, "Ещё ответ", agent_id=agent["id"])
    assert conversation(client, admin_headers, cid)["sla"]["next_response"]["due_at"] is None


def test_snoozed_conversation_wakes_up(client, admin_headers, visitor, database, settings):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    anna.say("Напомните через час")
    cid = anna.open()["conversation"]["id"]
    until = datetime.now(UTC) + timedelta(hours=1)
    client.post(f"/v1/inbox/conversations/{cid}/status", json={"status": "snoozed", "snoozed_until": until.isoformat(),
                                                               "agent_id": agent["id"]}, headers=admin_headers)
    rules = IdentifierRules(settings)
    assert tasks.run_due(database, settings=settings, rules=rules, now=until - timedelta(minutes=1))["woken"] == 0
    assert tasks.run_due(database, settings=settings, rules=rules, now=until + timedelta(seconds=1))["woken"] == 1
    view = conversation(client, admin_headers, cid)
    assert view["status"] == "open" and view["assignee_id"] == agent["id"]
