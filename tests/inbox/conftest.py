"""Helpers of the inbox tests: agents, a web chat visitor, conversations through the HTTP API."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from seamline.core.queue.models import Job
from seamline.core.time import utcnow
from seamline.inbox import delivery
from seamline.inbox.models import InboxChannelThrottle


class Visitor:
    """A web chat visitor, as the widget talks to the API."""

    def __init__(self, client, write_key: str, anonymous_id: str | None = None, user_id: str | None = None,
                 user_hash: str | None = None):
        self.client, self.write_key = client, write_key
        self.anonymous_id = anonymous_id or str(uuid.uuid4())
        self.user_id, self.user_hash = user_id, user_hash
        self.open()

    def open(self) -> dict:
        body = {"writeKey": self.write_key, "anonymousId": self.anonymous_id}
        if self.user_id:
            body["userId"] = self.user_id
        if self.user_hash:
            body["userHash"] = self.user_hash
        response = self.client.post("/v1/webchat/sessions", json=body)
        assert response.status_code == 201, response.text
        self.state = response.json()
        self.headers = {"Authorization": f"Bearer {self.state['token']}"}
        return self.state

    def say(self, text: str, *, client_message_id: str | None = None, expect: int = 201, **more) -> dict:
        body = {"text": text, "clientMessageId": client_message_id or str(uuid.uuid4()), **more}
        response = self.client.post("/v1/webchat/messages", json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()


@pytest.fixture
def visitor(client, write_key):
    def make(**kwargs) -> Visitor:
        return Visitor(client, write_key, **kwargs)

    return make


def create_agent(client, headers, name: str = "Мария", *, skills=(), capacity: int = 5, online: bool = True,
                 team_ids=(), key: bool = False) -> dict:
    response = client.post("/v1/inbox/agents", json={
        "name": name, "email": f"{uuid.uuid4().hex[:8]}@shop.example", "skills": list(skills), "capacity": capacity,
        "team_ids": list(team_ids), "create_key": key,
    }, headers=headers)
    assert response.status_code == 201, response.text
    agent = response.json()
    if online:
        set_status(client, headers, agent["id"], "online")
    return agent


def set_status(client, headers, agent_id: int, status: str) -> dict:
    response = client.post(f"/v1/inbox/agents/{agent_id}/status", json={"status": status}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def conversation(client, headers, conversation_id: int) -> dict:
    response = client.get(f"/v1/inbox/conversations/{conversation_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def reply(client, headers, conversation_id: int, text: str, *, agent_id: int, expect: int = 201, **more) -> dict:
    response = client.post(f"/v1/inbox/conversations/{conversation_id}/messages", json={"text": text, "agent_id": agent_id, **more},
                           headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def conversation_of(client, headers, message_id: int) -> int:
    response = client.get("/v1/inbox/conversations", params={"limit": 200}, headers=headers)
    for item in response.json()["items"]:
        messages = conversation(client, headers, item["id"])["messages"]
        if any(m["id"] == message_id for m in messages):
            return item["id"]
    raise AssertionError(f"message {message_id} is in no conversation")


def pause_over(database, **throttle) -> None:
    """Time passes until the channels' pauses are over: the sends that waited for the end of a
    pause (no attempt spent) are due; one retried after a failure still waits for its backoff."""
    with database.write() as session:
        session.execute(update(InboxChannelThrottle).values(paused_until=None, **throttle))
        session.execute(update(Job).where(Job.task == "inbox.send", Job.attempts == 0).values(run_at=utcnow()))


def process_inbound(client) -> int:
    """Process what provider webhooks stored, as the workers would (the tests' app runs none):
    how many stored parts were taken."""
    state = client.app.state
    return delivery.process_inbound_due(state.database, rules=state.identifier_rules, settings=state.settings)
