"""Helpers of the SMS tests: the providers' documented payloads (tests/fixtures/sms/<provider>),
and the inbox views every preset's tests look at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.inbox.conftest import conversation

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sms"
WEBHOOK = "/v1/channels/sms/webhook"
#: How the website wrote the customer's phone; gateways send +79161234567 or 79161234567
WEBSITE_PHONE = "8 (916) 123-45-67"


def fixture(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / f"{name}.json").read_text())


def website_customer(client, write_headers, **extra_identifiers: str) -> int:
    """A profile the website created: a user id and the phone, written its own way."""
    identifiers = [{"type": "user_id", "value": "site-77"}, {"type": "phone", "value": WEBSITE_PHONE}]
    identifiers += [{"type": t, "value": v} for t, v in extra_identifiers.items()]
    response = client.post("/v1/customers", json={"identifiers": identifiers}, headers=write_headers)
    assert response.status_code == 200, response.text
    return response.json()["customer"]["id"]


def stored_inbound(client, admin_headers) -> list[dict]:
    response = client.get("/v1/inbox/inbound", headers=admin_headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def conversations_of(client, admin_headers, customer_id: int) -> list[dict]:
    return client.get("/v1/inbox/conversations", params={"customer_id": customer_id}, headers=admin_headers).json()["items"]


def customer_messages(client, admin_headers, conversation_id: int) -> list[dict]:
    return [m for m in conversation(client, admin_headers, conversation_id)["messages"] if m["kind"] == "message"]


def message(client, admin_headers, conversation_id: int, message_id: int) -> dict:
    return next(m for m in conversation(client, admin_headers, conversation_id)["messages"] if m["id"] == message_id)
