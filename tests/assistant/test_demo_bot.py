"""The issue's "done when", in the demo: Anna, who ordered in the app, asks the demo's bot in
Telegram "где мой заказ?" and gets the order's status and pickup code through the real webhook,
inbound processing, adapter and send worker (to the demo's sink); she asks for a person, and
the agent's window shows the conversation with the bot's summary."""

from __future__ import annotations

import socket

import httpx
import pytest
from sqlalchemy import select

from seamline.app import create_app
from seamline.commerce.models import CommerceOrder
from seamline.customers.models import CustomerIdentity
from seamline.demo import fill_demo
from seamline.inbox import delivery
from seamline.web import demo_sink
from tests.browser import live_server
from tests.inbox.conftest import process_inbound


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(database, settings_for):
    if not database.is_sqlite:
        pytest.skip("the demo runs on SQLite (`seamline demo`); the bot's PostgreSQL tests are test_bot.py")
    settings = settings_for(database.url, demo=True, assistant_enabled=True)
    world = fill_demo(settings, customers=30)
    app = create_app(settings, database=database)
    with live_server(app) as url:
        for name, value in demo_sink.channel_settings(url, _free_port()).items():
            field = name.removeprefix("SEAMLINE_").lower()
            setattr(settings, field, type(getattr(settings, field))(value))
        yield app, settings, url, world


def test_anna_asks_the_demo_bot_in_telegram_about_her_app_order_then_for_a_person(database, demo):
    app, settings, url, world = demo
    headers = {"Authorization": f"Bearer {world['admin_key']}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        anna = client.get("/v1/customers/lookup", params={"phone": "+79161234567"}, headers=headers).json()
        with database.read() as session:
            telegram_id = session.scalar(select(CustomerIdentity.value).where(
                CustomerIdentity.type == "telegram_id", CustomerIdentity.profile_id == anna["id"]))
            waiting = session.scalars(select(CommerceOrder).where(
                CommerceOrder.profile_id == anna["id"], CommerceOrder.channel == "app",
                CommerceOrder.status == "ready_for_pickup")).one()
        assert telegram_id

        def write(text: str) -> str:
            response = client.post("/demo/sink/telegram/write", json={"telegram_id": int(telegram_id), "first_name": "Анна", "text": text})
            assert response.status_code == 200, response.text
            process_inbound(_Client(app))
            delivery.send_due(database, settings=settings)
            sent = [item for item in client.get("/demo/sink/outbox").json()["items"] if item["to"] == telegram_id]
            assert sent, "the bot sent nothing"
            return sent[0]["text"]

        answer = write("где мой заказ?")
        assert f"№{waiting.id}" in answer and "готов к выдаче" in answer and f"Код получения: {waiting.pickup_code}" in answer

        answer = write("позовите человека, пожалуйста")
        assert "сотрудник" in answer
        queue = client.get("/v1/inbox/queue", headers=headers).json()["items"]
        mine = [c for c in queue if c["customer_id"] == anna["id"]]
        assert len(mine) == 1
        window = client.get(f"/v1/inbox/conversations/{mine[0]['id']}/window", headers=headers).json()
        messages = window["conversation"]["messages"]
        assert [m["text"] for m in messages if m["direction"] == "in"][-2:] == ["где мой заказ?", "позовите человека, пожалуйста"]
        assert sum(1 for m in messages if m["direction"] == "out" and m["meta"].get("bot")) == 2
        [summary] = [m for m in messages if m["kind"] == "note" and m["meta"].get("summary")]
        assert "клиент попросил человека" in summary["text"] and "Статус заказа" in summary["text"]
        assert str(waiting.id) in summary["text"]


class _Client:
    """What `process_inbound` reads: the app's state."""

    def __init__(self, app) -> None:
        self.app = app
