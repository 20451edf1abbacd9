"""The composition root (`seamline.runtime`): a command run as cron runs it, in a new process
that never imported the web app, has the app's wiring. These tests run the real `seamline`
program in a subprocess on the test's database and check the effects that were missing when
registrations were import side effects: a queued Telegram reply sent by `inbox run-jobs` (it
failed as `unknown_channel` and paused the channel), and the points spent on an order given back
when `commerce expire` cancels it (the loyalty subscriber never ran)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update

from seamline.app import create_app
from seamline.commerce.models import CommerceOrder
from seamline.core.config import Settings
from seamline.core.time import utcnow
from tests.channels.fakes import FakeJsonApi
from tests.channels.telegram.test_adapter import TOKEN, bot_api_answer, deliver, fixture, only_conversation
from tests.commerce.test_orders import click_and_collect, order
from tests.inbox.conftest import create_agent, reply
from tests.loyalty.conftest import ANNA, adjust, balance, customer_id, shop, staff_headers  # noqa: F401 - fixtures


def seamline(settings: Settings, *args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """The `seamline` program on the test's database, with no SEAMLINE_* setting but these."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEAMLINE_")}
    env |= {"SEAMLINE_DATABASE_URL": settings.database_url, "SEAMLINE_LOG_LEVEL": "WARNING", **environment}
    if settings.secret_key.get_secret_value():
        env["SEAMLINE_SECRET_KEY"] = settings.secret_key.get_secret_value()
    script = Path(sys.executable).with_name("seamline")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "seamline.cli"]
    result = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def test_a_new_process_has_the_apps_wiring():
    """What `wire` registers, read in a process that imports nothing else first."""
    probe = (
        "import json; from seamline import runtime; runtime.wire(); "
        "from seamline.inbox.adapters import ADAPTERS; from seamline.commerce import events, payment_providers, promotions, redemption; "
        "from seamline.inbox import canned, routing; from seamline.customers import imports, login_codes, resolution; "
        "print(json.dumps({'channels': sorted(ADAPTERS), 'cancelled': len(events._cancelled), 'handed_over': len(events._handed_over), "
        "'returned': len(events._returned), 'providers': sorted(payment_providers.PROVIDERS), 'redeemers': len(redemption._redeemer), "
        "'conditions': sorted(promotions._checkers), 'signals': len(routing.PRIORITY_SIGNALS), 'variables': len(canned.PROVIDERS), "
        "'senders': len(login_codes._SENDERS), 'merged': len(resolution._merged_listeners), "
        "'opening_balances': len(imports._opening_balances), 'placed': len(events._placed), 'carts': len(events._cart_changed), "
        "'customer_changes': len(__import__('seamline.customers.changes').customers.changes._listeners), "
        "'events_stored': len(__import__('seamline.events.service').events.service._stored_listeners)}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == {
        "channels": ["email", "mobilepush", "phone", "sms", "telegram", "viber", "vk", "webchat", "webpush", "whatsapp"],
        "cancelled": 3, "handed_over": 3, "returned": 2,  # payments, loyalty and marketing; loyalty and marketing
        "providers": ["on_pickup", "test", "wallet", "webhook"], "redeemers": 1, "conditions": ["tiers", "traits"],
        "signals": 2, "variables": 1, "senders": 1, "merged": 1, "opening_balances": 1,
        "placed": 1, "carts": 1, "customer_changes": 1, "events_stored": 1,  # marketing's reactor
    }


def test_wiring_twice_changes_nothing():
    from seamline import runtime
    from seamline.commerce import events

    runtime.wire()
    before = (len(events._cancelled), len(events._handed_over), len(events._returned))
    runtime.wire()
    assert (len(events._cancelled), len(events._handed_over), len(events._returned)) == before


def test_inbox_run_jobs_sends_a_queued_telegram_reply(settings, database, admin_headers):
    bot = FakeJsonApi(bot_api_answer)
    try:
        telegram = {"inbox_telegram_bot_token": SecretStr(TOKEN), "inbox_telegram_webhook_secret": SecretStr("webhook-secret-1"),
                    "inbox_telegram_api_base": bot.url}
        with TestClient(create_app(settings.model_copy(update=telegram), database=database)) as client:
            agent = create_agent(client, admin_headers)
            deliver(client, fixture("text_message"))
            cid = only_conversation(client, admin_headers)["id"]
            sent = reply(client, admin_headers, cid, "Да, в любом магазине.", agent_id=agent["id"])
            assert sent["delivery_status"] == "queued"

        done = json.loads(seamline(settings, "inbox", "run-jobs", SEAMLINE_INBOX_TELEGRAM_BOT_TOKEN=TOKEN,
                                   SEAMLINE_INBOX_TELEGRAM_API_BASE=bot.url).stdout)
        assert bot.calls and bot.calls[-1][0] == f"/bot{TOKEN}/sendMessage", (done, bot.calls)
        with TestClient(create_app(settings, database=database)) as client:
            message = next(m for m in client.get(f"/v1/inbox/conversations/{cid}", headers=admin_headers).json()["messages"]
                           if m["id"] == sent["id"])
            assert message["delivery_status"] == "sent", message
            channel = next(c for c in client.get("/v1/inbox/channels", headers=admin_headers).json()["items"]
                           if c["channel"] == "telegram")
            assert channel["paused_until"] is None  # not paused by an unknown_channel failure
    finally:
        bot.close()


def test_inbox_run_jobs_processes_what_a_webhook_stored(settings, database, admin_headers):
    """Without workers (cron), the command turns the provider messages webhooks answered into
    conversation messages."""
    telegram = {"inbox_telegram_webhook_secret": SecretStr("webhook-secret-1")}
    with TestClient(create_app(settings.model_copy(update=telegram), database=database)) as client:
        answered = client.post("/v1/channels/telegram/webhook", json=fixture("text_message"),
                               headers={"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-1"})
        assert answered.status_code == 200 and answered.json()["stored"][0]["status"] == "received", answered.text
        assert client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"] == []

    done = json.loads(seamline(settings, "inbox", "run-jobs").stdout)
    assert done["inbound_processed"] == 1, done
    with TestClient(create_app(settings, database=database)) as client:
        assert only_conversation(client, admin_headers)["messages"][0]["text"] == fixture("text_message")["message"]["text"]


def test_commerce_expire_gives_spent_points_back(client, shop, database, staff_headers):  # noqa: F811 - fixtures
    headers = shop["headers"]
    cid = customer_id(client, headers)
    adjust(client, staff_headers, cid, 300)
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=300))
    assert balance(client, headers, cid) == (0, 0)
    with database.write() as session:  # its hold ran out
        session.execute(update(CommerceOrder).where(CommerceOrder.id == placed["id"]).values(reserved_until=utcnow() - timedelta(minutes=1)))

    done = json.loads(seamline(client.app.state.settings, "commerce", "expire").stdout)
    assert done["order_ids"] == [placed["id"]]
    with database.read() as session:
        assert session.scalar(select(CommerceOrder.status).where(CommerceOrder.id == placed["id"])) == "cancelled"
    assert balance(client, headers, cid) == (300, 0)  # given back by loyalty's subscriber, in the command's process
