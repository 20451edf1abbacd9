"""Telephony (CTI) through the inbox: signed call events from the PBX (tests/fixtures/telephony),
the screen pop on the agent's socket, calls on the timeline and in the conversation history,
missed calls and website requests as callback tasks in the queue, and calling back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.events.destinations import sign
from tests.inbox.conftest import conversation, create_agent

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "telephony"
SECRET = "pbx-shared-secret"


def events(name: str) -> list[dict] | dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def client(settings, database):
    configured = settings.model_copy(update={"inbox_telephony_secret": SecretStr(SECRET), "inbox_callback_max_per_phone_per_day": 2})
    with TestClient(create_app(configured, database=database)) as test_client:
        yield test_client


def post(client, payload, *, secret: str | None = SECRET, at: int | None = None, expect: int = 200) -> dict:
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Seamline-Signature"] = sign(secret, at or int(time.time()), body)
    response = client.post("/v1/channels/telephony/events", content=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def agent_at(client, headers, extension: str, **kwargs) -> dict:
    agent = create_agent(client, headers, key=True, **kwargs)
    response = client.patch(f"/v1/inbox/agents/{agent['id']}", json={"extension": extension}, headers=headers)
    assert response.status_code == 200 and response.json()["extension"] == extension, response.text
    return agent


def frames_until(ws, wanted: str, limit: int = 20) -> dict:
    for _ in range(limit):
        frame = ws.receive_json()
        if frame["type"] == wanted:
            return frame
    raise AssertionError(f"no {wanted} frame")


def test_unsigned_forged_or_stale_events_are_refused_with_nothing_stored(client, admin_headers):
    payload = events("missed_call")
    assert post(client, payload, secret=None, expect=401)["error"]["code"] == "invalid_signature"
    assert post(client, payload, secret="guess", expect=401)["error"]["code"] == "invalid_signature"
    assert post(client, payload, at=int(time.time()) - 3600, expect=401)["error"]["code"] == "invalid_signature"  # a replay
    assert client.get("/v1/inbox/inbound", headers=admin_headers).json()["items"] == []
    assert client.get("/v1/channels/telephony/calls", headers=admin_headers).json()["items"] == []
    bad = post(client, {"event": "transferred", "call_id": "x", "from": "1", "to": "2"}, expect=422)
    assert bad["error"]["code"] == "invalid_payload"


def test_a_known_caller_pops_up_at_the_ringing_extension_and_the_call_is_logged(client, admin_headers, write_headers):
    anna = client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": "+7 916 123 45 67"}],
                                              "traits": {"first_name": "Анна"}}, headers=write_headers).json()["customer"]["id"]
    agent = agent_at(client, admin_headers, "101")
    ringing, answered, ended = events("known_caller")
    with client.websocket_connect(f"/v1/inbox/ws?key={agent['api_key']}") as ws:
        assert ws.receive_json()["type"] == "ready"
        post(client, ringing)
        pop = frames_until(ws, "call.ringing")
        assert pop["customer"]["id"] == anna and pop["customer"]["first_name"] == "Анна"
        assert pop["call"]["phone"] == "+79161234567" and pop["call"]["agent_id"] == agent["id"]
        post(client, answered)
        assert frames_until(ws, "call.answered")["call"]["status"] == "answered"
    done = post(client, ended)["events"][0]
    assert done["status"] == "ended" and done["applied"] is True
    assert post(client, ended)["events"][0]["applied"] is False  # the PBX retried

    call = client.get("/v1/channels/telephony/calls", params={"customer_id": anna}, headers=admin_headers).json()["items"][0]
    assert call["duration_seconds"] == 192 and call["recording_url"].endswith("1700000001.42.mp3")
    view = conversation(client, admin_headers, call["conversation_id"])
    logged = [m for m in view["messages"] if m["kind"] == "call"]
    assert [m["text"] for m in logged] == ["Входящий звонок, 3:12"] and logged[0]["author"]["agent_id"] == agent["id"]
    assert view["status"] == "resolved"  # answered: nobody's task
    assert client.get("/v1/inbox/queue", headers=admin_headers).json()["items"] == []
    timeline = client.get(f"/v1/customers/{anna}/timeline", params={"type": "inbox"}, headers=admin_headers).json()["items"]
    assert [(t["type"], t["channel"]) for t in timeline] == [("inbox.call_in", "phone")]


def test_a_missed_call_from_a_new_number_becomes_a_callback_task_done_by_calling_back(client, admin_headers):
    agent_at(client, admin_headers, "102", online=False)
    ringing, ended = events("missed_call")
    with client.websocket_connect(f"/v1/inbox/ws?key={create_agent(client, admin_headers, 'Олег', key=True)['api_key']}") as ws:
        assert ws.receive_json()["type"] == "ready"
        post(client, ringing)
        pop = frames_until(ws, "call.ringing")  # no extension named: every console
        assert pop["customer"] is None and pop["new_customer"] == {"phone": "+79035550011"}
    assert post(client, ended)["events"][0]["status"] == "missed"

    missed = client.get("/v1/channels/telephony/calls", params={"status": "missed"}, headers=admin_headers).json()["items"]
    assert len(missed) == 1 and missed[0]["customer_id"] is not None
    task = conversation(client, admin_headers, missed[0]["conversation_id"])
    assert "callback" in task["labels"] and task["status"] == "open"
    assert task["messages"][0]["text"] == "Пропущенный звонок: +79035550011"
    customer = client.get(f"/v1/customers/{missed[0]['customer_id']}", headers=admin_headers).json()
    assert {"type": "phone", "value": "+79035550011"} in [{"type": i["type"], "value": i["value"]} for i in customer["sections"]["identities"]]

    for event in events("call_back"):
        post(client, event)
    after = conversation(client, admin_headers, task["id"])
    assert "callback" not in after["labels"]
    assert after["messages"][-1]["text"] == "Перезвонили клиенту"
    assert [m["text"] for m in after["messages"] if m["kind"] == "call"] == ["Пропущенный звонок: +79035550011", "Исходящий звонок, 2:00"]
    assert client.get("/v1/channels/telephony/calls", params={"status": "missed"}, headers=admin_headers).json()["items"] == []


def test_a_hidden_number_is_logged_without_a_customer(client, admin_headers):
    assert post(client, events("hidden_caller"))["events"][0]["status"] == "missed"
    call = client.get("/v1/channels/telephony/calls", headers=admin_headers).json()["items"][0]
    assert call["customer_id"] is None and call["phone"] == "anonymous" and call["conversation_id"] is None


def test_website_call_me_back_requests_join_the_same_queue(client, admin_headers, write_key):
    form = {"writeKey": write_key, "phone": "8 916 765-43-21", "name": "Пётр", "comment": "Про возврат заказа 1042",
            "preferredTime": "после 18:00", "anonymousId": "anon-5", "page": "https://shop.example/returns", "requestId": "form-1"}
    created = client.post("/v1/channels/telephony/callback-requests", json=form)
    assert created.status_code == 201, created.text
    again = client.post("/v1/channels/telephony/callback-requests", json=form)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    resent = client.post("/v1/channels/telephony/callback-requests", json={**form, "requestId": "form-2"})
    assert resent.status_code == 200 and resent.json()["id"] == created.json()["id"]  # one waiting request per number

    queue = client.get("/v1/inbox/queue", headers=admin_headers).json()["items"]
    assert [q["id"] for q in queue] == [created.json()["conversation_id"]]
    task = conversation(client, admin_headers, created.json()["conversation_id"])
    assert task["messages"][0]["text"] == "Просьба перезвонить: Про возврат заказа 1042 (удобное время: после 18:00)"
    assert "callback" in task["labels"]

    bad = client.post("/v1/channels/telephony/callback-requests", json={**form, "phone": "12", "requestId": "form-3"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_phone"
    assert client.post("/v1/channels/telephony/callback-requests", json={**form, "writeKey": "nope"}).status_code == 401
