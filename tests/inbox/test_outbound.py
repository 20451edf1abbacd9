"""Outbound for the rest of the system (`POST /v1/inbox/outbound`): the channel choice by
reachability and consent, idempotency, per-channel rate limits, the pause on a provider outage,
the dead-letter list, and idempotent agent replies. Telegram is the channel, through its
adapter and a loopback server standing in for the Bot API."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.inbox import delivery
from tests.channels.fakes import FakeJsonApi
from tests.inbox.conftest import conversation, create_agent, pause_over, process_inbound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telegram"
SECRET, TOKEN = "webhook-secret-1", "123456:ABC-test-token"


def bot_api_answer(body: dict, n: int) -> dict:
    return {"ok": True, "result": {"message_id": 7000 + n, "chat": {"id": body["chat_id"]}, "date": 1763900500, "text": body["text"]}}


@pytest.fixture
def bot():
    api = FakeJsonApi(bot_api_answer)
    yield api
    api.close()


@pytest.fixture
def out_settings(settings, bot):
    return settings.model_copy(update={
        "inbox_telegram_bot_token": SecretStr(TOKEN), "inbox_telegram_webhook_secret": SecretStr(SECRET),
        "inbox_telegram_api_base": bot.url, "inbox_rate_limits": {"telegram": 4.0}, "delivery_backoff_seconds": 30.0,
        "inbox_smtp_host": "127.0.0.1", "inbox_email_address": "support@shop.example"})


@pytest.fixture
def client(out_settings, database):
    with TestClient(create_app(out_settings, database=database)) as test_client:
        yield test_client


def telegram_customer(client, write_headers, *, email: str | None = "anna@example.com") -> int:
    """A person who wrote to the bot (and, from the website, has an email)."""
    update_ = json.loads((FIXTURES / "text_message.json").read_text())
    response = client.post("/v1/channels/telegram/webhook", json=update_, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert response.status_code == 200, response.text
    process_inbound(client)
    identifiers = [{"type": "telegram_id", "value": "111111111"}] + ([{"type": "email", "value": email}] if email else [])
    return client.post("/v1/customers", json={"identifiers": identifiers}, headers=write_headers).json()["customer"]["id"]


def send(client, headers, customer_id: int, text: str, *, expect: int = 201, key: str | None = None, **more) -> dict:
    response = client.post("/v1/inbox/outbound", json={"customer_id": customer_id, "text": text, **more},
                           headers={**headers, **({"Idempotency-Key": key} if key else {})})
    assert response.status_code == expect, response.text
    return response.json()


def consent(client, headers, customer_id: int, channel: str, purpose: str, granted: bool) -> None:
    response = client.post(f"/v1/customers/{customer_id}/consents", json=[{"channel": channel, "purpose": purpose, "granted": granted}],
                           headers=headers)
    assert response.status_code == 200, response.text


def test_the_channel_is_the_last_used_one_and_consent_and_reachability_decide(client, write_headers, admin_headers, database, out_settings, bot):
    anna = telegram_customer(client, write_headers)
    first = send(client, write_headers, anna, "Ваш заказ 1042 готов к выдаче.", source="orders")
    assert first["channel"] == "telegram" and first["delivery_status"] == "queued"
    assert delivery.send_due(database, settings=out_settings) == 1
    assert bot.calls[-1][1] == {"chat_id": 111111111, "text": "Ваш заказ 1042 готов к выдаче."}
    assert client.get(f"/v1/inbox/outbound/{first['id']}", headers=write_headers).json()["delivery_status"] == "sent"
    # it is in the person's history, where the agent sees it
    view = conversation(client, admin_headers, first["conversation_id"])
    assert view["messages"][-1]["text"] == "Ваш заказ 1042 готов к выдаче." and view["customer_id"] == anna

    consent(client, write_headers, anna, "telegram", "service", False)
    fallback = send(client, write_headers, anna, "Заказ 1043 отправлен.")
    assert fallback["channel"] == "email"  # Telegram ruled out by consent: the next channel that reaches her
    refused = send(client, write_headers, anna, "Заказ 1043 отправлен.", channel="telegram", expect=409)
    assert refused["error"]["code"] == "consent_withdrawn"

    promo = send(client, write_headers, anna, "Скидка 20% на кремы", purpose="marketing", expect=422)
    assert promo["error"]["code"] == "customer_unreachable"
    assert promo["error"]["details"]["reasons"] == {"telegram": "consent_withdrawn", "email": "no_marketing_consent",
                                                    **{k: v for k, v in promo["error"]["details"]["reasons"].items()
                                                       if k not in ("telegram", "email")}}
    consent(client, write_headers, anna, "email", "marketing", True)
    assert send(client, write_headers, anna, "Скидка 20% на кремы", purpose="marketing")["channel"] == "email"

    nobody = client.post("/v1/customers", json={"identifiers": [{"type": "user_id", "value": "no-contacts"}]},
                         headers=write_headers).json()["customer"]["id"]
    unreachable = send(client, write_headers, nobody, "Привет", expect=422)["error"]
    assert unreachable["code"] == "customer_unreachable" and unreachable["details"]["reasons"]["telegram"] == "channel_unreachable"
    assert unreachable["details"]["reasons"]["whatsapp"] == "channel_not_configured"  # no access token: never picked
    assert send(client, write_headers, anna, "x", channel="carrier_pigeon", expect=422)["error"]["code"] == "unknown_channel"


def test_a_notice_waits_in_no_queue_until_the_customer_answers(client, write_headers, admin_headers):
    anna = telegram_customer(client, write_headers)
    first_conversation = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    client.post(f"/v1/inbox/conversations/{first_conversation}/status", json={"status": "resolved"}, headers=admin_headers)
    notice = send(client, write_headers, anna, "Баллы начислены: 120.")
    assert notice["conversation_id"] == first_conversation  # resolved moments ago: the history continues
    assert conversation(client, admin_headers, first_conversation)["status"] == "resolved"
    assert client.get("/v1/inbox/queue", headers=admin_headers).json()["items"] == []


def test_retries_with_the_same_key_send_once(client, write_headers, admin_headers, database, out_settings, bot):
    anna = telegram_customer(client, write_headers)
    first = send(client, write_headers, anna, "Ваш код выдачи: 4821", key="order-1042-ready")
    again = send(client, write_headers, anna, "Ваш код выдачи: 4821", key="order-1042-ready", expect=200)
    assert again["id"] == first["id"]
    other = send(client, write_headers, anna, "Другой текст", key="order-1042-ready", expect=422)
    assert other["error"]["code"] == "idempotency_key_reused"

    agent = create_agent(client, admin_headers)
    cid = first["conversation_id"]
    headers = {**admin_headers, "Idempotency-Key": "reply-7f3a"}
    body = {"text": "Да, можно забрать сегодня.", "agent_id": agent["id"]}
    one = client.post(f"/v1/inbox/conversations/{cid}/messages", json=body, headers=headers)
    two = client.post(f"/v1/inbox/conversations/{cid}/messages", json=body, headers=headers)
    assert one.status_code == two.status_code == 201 and one.json()["id"] == two.json()["id"]
    assert delivery.send_due(database, settings=out_settings) == 2  # the notice and the reply, once each
    assert [c[1]["text"] for c in bot.calls] == ["Ваш код выдачи: 4821", "Да, можно забрать сегодня."]


def test_the_rate_limit_holds_across_workers(client, write_headers, database, out_settings, bot):
    anna = telegram_customer(client, write_headers)
    for n in range(10):
        send(client, write_headers, anna, f"Сообщение {n}")
    started = time.monotonic()

    def worker() -> None:  # a server process's send job
        while len(bot.calls) < 10 and time.monotonic() - started < 30:
            delivery.send_due(database, settings=out_settings)
            time.sleep(0.05)

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.monotonic() - started
    assert sorted(c[1]["text"] for c in bot.calls) == sorted(f"Сообщение {n}" for n in range(10))  # each once
    # 4/s with a burst of 4: ten messages need at least (10 - 4) / 4 s, whatever the number of workers
    assert elapsed >= 1.5, elapsed


def test_a_transactional_message_goes_before_a_waiting_campaign(client, write_headers, database, out_settings, bot):
    """A campaign's backlog waits in its channel's queue within the rate limit; a message that
    matters now (a pickup code, an agent's reply) is next, not behind the campaign (mautic#3358)."""
    anna = telegram_customer(client, write_headers)
    consent(client, write_headers, anna, "telegram", "marketing", True)
    for n in range(10):
        send(client, write_headers, anna, f"Скидки недели {n}", purpose="marketing")
    code = send(client, write_headers, anna, "Ваш код выдачи: 4821")
    assert delivery.send_due(database, settings=out_settings) == 4  # 4 per second
    assert [c[1]["text"] for c in bot.calls] == ["Ваш код выдачи: 4821", "Скидки недели 0", "Скидки недели 1", "Скидки недели 2"]
    assert client.get(f"/v1/inbox/outbound/{code['id']}", headers=write_headers).json()["delivery_status"] == "sent"


def test_an_outage_pauses_the_channel_without_spending_attempts_and_dead_letters_can_be_retried(
        client, write_headers, admin_headers, database, out_settings, bot):
    anna = telegram_customer(client, write_headers)
    ids = [send(client, write_headers, anna, f"Уведомление {n}")["id"] for n in range(3)]
    bot.errors = [(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})]
    assert delivery.send_due(database, settings=out_settings) == 1  # the first failed; the others handed back
    channel = next(c for c in client.get("/v1/inbox/channels", headers=admin_headers).json()["items"] if c["channel"] == "telegram")
    assert channel["paused_until"] is not None and channel["failures"] == 1 and channel["queued"] == 3 and "502" in channel["last_error"]
    attempts = {i: client.get(f"/v1/inbox/outbound/{i}", headers=write_headers).json()["attempts"] for i in ids}
    assert attempts == {ids[0]: 1, ids[1]: 0, ids[2]: 0}
    assert delivery.send_due(database, settings=out_settings) == 0  # paused: the provider is left alone

    pause_over(database, tokens=4)  # a while later (the bucket is full again), and the provider is back
    assert delivery.send_due(database, settings=out_settings) == 2
    channel = next(c for c in client.get("/v1/inbox/channels", headers=admin_headers).json()["items"] if c["channel"] == "telegram")
    assert channel["failures"] == 0 and channel["paused_until"] is None and channel["last_success_at"] is not None

    bot.errors = [(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})]
    blocked = send(client, write_headers, anna, "Вы здесь?")
    delivery.send_due(database, settings=out_settings)
    dead = client.get("/v1/inbox/dead-letters", headers=admin_headers).json()["items"]
    assert [d["id"] for d in dead] == [blocked["id"]] and "blocked" in dead[0]["error"]
    assert client.get("/v1/inbox/dead-letters", headers=write_headers).status_code == 403
    retried = client.post(f"/v1/inbox/dead-letters/{blocked['id']}/retry", headers=admin_headers).json()
    assert retried["delivery_status"] == "queued" and retried["attempts"] == 0
    assert delivery.send_due(database, settings=out_settings) == 1
    assert client.get(f"/v1/inbox/outbound/{blocked['id']}", headers=write_headers).json()["delivery_status"] == "sent"
    assert client.get("/v1/inbox/dead-letters", headers=admin_headers).json()["items"] == []
    assert client.post(f"/v1/inbox/dead-letters/{blocked['id']}/retry", headers=admin_headers).status_code == 404
