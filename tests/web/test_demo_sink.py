"""The demo's channels send for real, to the local sink (web/demo_sink.py): an agent's reply in
Telegram, WhatsApp, VK and email goes through the real adapter and send worker, over HTTP and
SMTP, and is sent; the sink shows it. Without the demo flag the sink does not exist."""

from __future__ import annotations

import socket
import time
from email.message import EmailMessage

import httpx
import orjson
import pytest

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.customers.identifiers import IdentifierRules
from seamline.inbox import delivery
from seamline.inbox.adapters import adapter_for
from seamline.web import demo_sink
from tests.browser import live_server
from tests.conftest import make_key
from tests.inbox.conftest import create_agent, reply


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _inbound(database, settings, channel: str, body: bytes) -> int:
    adapter = adapter_for(channel)
    accepted = [delivery.store_and_process(database, rules=IdentifierRules(settings), settings=settings, channel=channel,
                                           provider_message_id=pid, raw=raw) for pid, raw in adapter.split(body)]
    assert accepted and accepted[0].message_id, accepted
    return accepted[0].message_id


def _mail() -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "anna@example.com", "support@demo.seamline", "Вопрос"
    mail["Message-ID"] = "<sink-1@example.com>"
    mail.set_content("Где мой заказ?")
    return mail.as_bytes()


INBOUND = {
    "telegram": lambda: orjson.dumps({"update_id": 1, "message": {"message_id": 1, "date": 1764900000, "text": "Привет",
                                                                   "chat": {"id": 4242, "type": "private"},
                                                                   "from": {"id": 4242, "is_bot": False, "first_name": "Анна"}}}),
    "whatsapp": lambda: orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "demo", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "demo"},
                                       "contacts": [{"wa_id": "79161234567", "profile": {"name": "Анна"}}],
                                       "messages": [{"id": "wamid.in1", "from": "79161234567", "timestamp": str(int(time.time())),
                                                     "type": "text", "text": {"body": "Привет"}}]}}]}]}),
    "vk": lambda: orjson.dumps({"type": "message_new", "event_id": "e1", "group_id": 1, "v": "5.199", "object": {
        "message": {"id": 10, "date": 1764900000, "peer_id": 777, "from_id": 777, "text": "Привет",
                    "conversation_message_id": 1}, "client_info": {}}}),
    "email": _mail,
}


@pytest.fixture
def demo(database, settings_for):
    smtp_port = _free_port()
    settings = settings_for(database.url, demo=True)
    app = create_app(settings, database=database)
    with live_server(app) as url:
        # The demo's settings name its own address; here the port is known only once it listens.
        for name, value in demo_sink.channel_settings(url, smtp_port).items():
            field = name.removeprefix("SEAMLINE_").lower()
            setattr(settings, field, type(getattr(settings, field))(value))
        sink = demo_sink.MailSink(smtp_port).start()
        try:
            yield app, settings, url
        finally:
            sink.stop()


@pytest.mark.parametrize("channel", ["telegram", "whatsapp", "vk", "email"])
def test_a_reply_in_the_demo_is_really_sent_to_the_sink(database, demo, channel):
    app, settings, url = demo
    headers = {"Authorization": f"Bearer {make_key(database, Scope.admin)}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        agent = create_agent(client, headers, "Мария")
        message_id = _inbound(database, settings, channel, INBOUND[channel]())
        conversation_id = _conversation_of(client, headers, message_id)
        text = f"Ответ в {channel}"
        sent = reply(client, headers, conversation_id, text, agent_id=agent["id"])
        assert sent["delivery_status"] == "queued"
        assert delivery.send_due(database, settings=settings) >= 1
        after = client.get(f"/v1/inbox/conversations/{conversation_id}", headers=headers).json()
        mine = [m for m in after["messages"] if m["text"] == text]
        assert [m["delivery_status"] for m in mine] == ["sent"], mine
        outbox = client.get("/demo/sink/outbox").json()["items"]
        assert outbox[0]["channel"] == channel and outbox[0]["text"] == text


def _conversation_of(client, headers, message_id: int) -> int:
    for item in client.get("/v1/inbox/conversations", params={"limit": 200}, headers=headers).json()["items"]:
        view = client.get(f"/v1/inbox/conversations/{item['id']}", headers=headers).json()
        if any(m["id"] == message_id for m in view["messages"]):
            return item["id"]
    raise AssertionError(f"no conversation holds message {message_id}")


def test_the_sink_exists_only_in_the_demo(client):
    assert client.get("/demo/sink/outbox").status_code == 404
    assert client.post("/demo/sink/telegram/botx/sendMessage", json={"chat_id": 1, "text": "x"}).status_code == 404
