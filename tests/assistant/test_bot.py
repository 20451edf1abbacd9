"""The bot as a participant of the inbox, on both databases: Telegram updates in the Bot API's
format (tests/fixtures/telegram) reach it through the real webhook and inbound processing, its
replies go out through the real adapter to a loopback Bot API; the order placed in the app is
found after a one-time code; handovers reach the queue with the summary; every intent answers in
both languages; nobody reads another person's data."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update

from seamline.app import create_app
from seamline.assistant import service as bot
from seamline.assistant.models import AssistantState, AssistantStockWatch, AssistantTurn
from seamline.commerce.models import CommerceOrder, CommerceOrderStatus
from seamline.core.time import utcnow
from seamline.inbox import delivery
from seamline.inbox.models import InboxConversation, InboxMessage
from tests.channels.fakes import FakeJsonApi
from tests.commerce.conftest import receive, shop  # noqa: F401 - the fixture
from tests.inbox.conftest import create_agent, process_inbound, reply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telegram"
SECRET, TOKEN = "webhook-secret-1", "123456:ABC-test-token"
PHONE = "+79161234567"


def bot_api_answer(body: dict, n: int) -> dict:
    return {"ok": True, "result": {"message_id": 7000 + n, "chat": {"id": int(body["chat_id"])}, "date": 1763900500,
                                   "text": body.get("text", "")}}


@pytest.fixture
def telegram_api():
    api = FakeJsonApi(bot_api_answer)
    yield api
    api.close()


@pytest.fixture
def bot_settings(settings, telegram_api):
    bot.forget_catalog()
    return settings.model_copy(update={
        "assistant_enabled": True, "inbox_language": "ru",
        "inbox_telegram_bot_token": SecretStr(TOKEN), "inbox_telegram_webhook_secret": SecretStr(SECRET),
        "inbox_telegram_api_base": telegram_api.url,
        # Codes go by SMS through a gateway nobody calls here: the test reads the queued SMS.
        "inbox_sms_provider": "generic", "inbox_sms_api_url": "http://127.0.0.1:9/sms", "inbox_sms_api_key": SecretStr("k")})


@pytest.fixture
def client(bot_settings, database):
    with TestClient(create_app(bot_settings, database=database)) as test_client:
        yield test_client


class Telegram:
    """One Telegram user writing to the shop's bot."""

    def __init__(self, client, user_id: int = 111111111, first_name: str = "Анна") -> None:
        self.client, self.user_id, self.first_name = client, user_id, first_name
        self.update_id = 100000000 + user_id % 1000 * 1000
        self.template = json.loads((FIXTURES / "text_message.json").read_text())

    def say(self, text: str) -> None:
        self.update_id += 1
        update = copy.deepcopy(self.template)
        update["update_id"] = self.update_id
        update["message"]["message_id"] = self.update_id
        update["message"]["from"].update(id=self.user_id, first_name=self.first_name, username=f"u{self.user_id}")
        update["message"]["chat"].update(id=self.user_id, first_name=self.first_name, username=f"u{self.user_id}")
        update["message"]["text"] = text
        response = self.client.post("/v1/channels/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status_code == 200, response.text
        process_inbound(self.client)

    def answers(self) -> list[InboxMessage]:
        with self.client.app.state.database.read() as session:
            return list(session.scalars(select(InboxMessage).join(InboxConversation).where(
                InboxMessage.direction == "out", InboxMessage.channel == "telegram",
                InboxMessage.meta["address"]["chat_id"].as_string() == str(self.user_id)).order_by(InboxMessage.id)))

    def last(self) -> str:
        answers = self.answers()
        assert answers, "the bot did not answer"
        assert answers[-1].meta.get("bot") is True
        return answers[-1].text

    def conversation(self) -> InboxConversation:
        with self.client.app.state.database.read() as session:
            return session.scalars(select(InboxConversation).join(InboxMessage).where(
                InboxMessage.channel == "telegram", InboxMessage.direction == "in",
                InboxMessage.meta["address"]["chat_id"].as_string() == str(self.user_id))
                .order_by(InboxConversation.id.desc())).first() or self._by_answer()

    def _by_answer(self) -> InboxConversation:
        with self.client.app.state.database.read() as session:
            return session.get(InboxConversation, self.answers()[-1].conversation_id)


def place_app_order(client, headers, *, phone: str = PHONE, ready: bool = True, store: str = "store-tverskaya") -> dict:
    response = client.post("/v1/orders", json={
        "channel": "app", "identifiers": [{"type": "phone", "value": phone}],
        "lines": [{"sku": "CREAM-50", "quantity": 1}], "fulfilment": {"kind": "click_and_collect", "location": store}}, headers=headers)
    assert response.status_code == 201, response.text
    placed = response.json()
    if ready:
        assert client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=headers).status_code == 200
    return placed


def sent_code(client, phone: str) -> str:
    """The one-time code the bot had sent by SMS (queued to the gateway)."""
    with client.app.state.database.read() as session:
        texts = [m.text for m in session.scalars(select(InboxMessage).where(InboxMessage.channel == "sms", InboxMessage.direction == "out")
                                                 .order_by(InboxMessage.id.desc()))]
    assert texts, "no code was sent"
    return re.search(r"\d{6}", texts[0]).group(0)


def test_order_placed_in_the_app_is_found_in_telegram_after_a_one_time_code(client, shop, telegram_api):
    headers = shop["headers"]
    placed = place_app_order(client, headers)
    anna = Telegram(client)
    anna.say("где мой заказ?")
    asked = anna.last()
    assert "телефон или email" in asked and placed["pickup_code"] not in asked  # nothing of the order before the proof
    conversation = anna.conversation()
    assert conversation.handled_by_bot and conversation.queue_rank_at is None
    assert client.get("/v1/inbox/queue", headers=headers).json()["items"] == []

    anna.say("8 (916) 123-45-67")
    assert "+7***67" in anna.last()
    code = sent_code(client, PHONE)
    anna.say(f"мой код {code}")
    answer = anna.last()
    assert f"№{placed['id']}" in answer and "готов к выдаче" in answer
    assert f"Код получения: {placed['pickup_code']}" in answer and "Тверская" in answer

    # The Telegram account now belongs to the person: the next question is answered at once,
    # and the replies went out through the Bot API.
    anna.say("какой код получения?")
    assert placed["pickup_code"] in anna.last()
    delivery.send_due(client.app.state.database, settings=client.app.state.settings)
    sent = [body.get("text", "") for _path, body, _auth in telegram_api.calls]
    assert sum(placed["pickup_code"] in text for text in sent) == 2
