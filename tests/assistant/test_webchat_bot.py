"""The bot in the web chat, on both databases: a visitor whose page vouches for its user id
(`userHash`) reads their order at once; one who only claims a user id gets public answers and a
one-time code to their phone, never the order; the bot's answer is in the widget's history."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from seamline.customers.signing import user_hash
from tests.inbox.conftest import Visitor

SECRET = "site-identity-secret"


@pytest.fixture
def settings(settings_for, database):
    return settings_for(database.url, assistant_enabled=True, inbox_webchat_identity_secret=SECRET, inbox_language="en",
                        inbox_sms_provider="generic", inbox_sms_api_url="http://127.0.0.1:9/sms", inbox_sms_api_key=SecretStr("k"))


def anna_with_an_order(client, headers) -> dict:
    created = client.post("/v1/customers", headers=headers, json={
        "identifiers": [{"type": "user_id", "value": "anna-1"}, {"type": "phone", "value": "+79161234567"}], "source": "shop"})
    assert created.status_code in (200, 201), created.text
    placed = client.post("/v1/orders", headers=headers, json={
        "channel": "web", "identifiers": [{"type": "user_id", "value": "anna-1"}],
        "lines": [{"sku": "CREAM-50", "quantity": 1}], "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}})
    assert placed.status_code == 201, placed.text
    return placed.json()


def bot_lines(visitor: Visitor) -> list[str]:
    """The bot's messages as the widget shows them (`bot`: true)."""
    items = visitor.client.get("/v1/webchat/messages", headers=visitor.headers).json()["items"]
    return [m["text"] for m in items if m["direction"] == "out" and m["bot"]]


def test_a_verified_visitor_reads_their_order_at_once(client, shop, write_key):
    placed = anna_with_an_order(client, shop["headers"])
    anna = Visitor(client, write_key, anonymous_id=str(uuid.uuid4()), user_id="anna-1", user_hash=user_hash(SECRET, "anna-1"))
    anna.say("where is my order?")
    answer = bot_lines(anna)[-1]
    assert f"#{placed['id']}" in answer and "confirmed" in answer and placed["pickup_code"] in answer


def test_a_visitor_who_only_claims_a_user_id_gets_public_answers_and_a_code(client, shop, write_key):
    placed = anna_with_an_order(client, shop["headers"])
    mallory = Visitor(client, write_key, anonymous_id=str(uuid.uuid4()), user_id="anna-1")
    mallory.say("where is my order?")
    answer = bot_lines(mallory)[-1]
    assert placed["pickup_code"] not in answer and "phone or email" in answer
    mallory.say("when do your stores open?")
    assert "Arbat" in bot_lines(mallory)[-1]


def test_a_file_goes_to_a_person(client, shop, write_key):
    visitor = Visitor(client, write_key)
    uploaded = client.post("/v1/webchat/attachments", files={"file": ("чек.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")},
                           headers=visitor.headers)
    assert uploaded.status_code == 201, uploaded.text
    visitor.say("", attachmentIds=[uploaded.json()["id"]])
    assert "person" in bot_lines(visitor)[-1]
    queue = client.get("/v1/inbox/queue", headers=shop["headers"]).json()["items"]
    assert len(queue) == 1 and not queue[0]["handled_by_bot"]
