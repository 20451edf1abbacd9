"""Benchmark: the agent's single window, `GET /v1/inbox/conversations/{id}/window`.

Target (issue 6): p99 under 50 ms. One call returns the conversation with its messages and SLA
clocks, the customer 360 (profile, identities, consents, events summary, cart, orders, loyalty,
conversations), the other conversations, the first timeline page and the reachable channels.

Setup (not timed), through the API of an in-process app on a throwaway database: a small shop
(one product, one store); `--customers` customers, each with an email and a phone, 20 events
(page views and tracks through the collection API), 2 click & collect orders, a loyalty
account with a welcome bonus, a web chat conversation of 10 messages and an email conversation
of 2 (a new one: the chat was resolved; `inbox_reopen_hours=0` while populating); `--background` other web chat visitors with a 3-message conversation each, so the tables
are not tiny.

Measured on a real `seamline serve --workers 2` with an agent key, one request at a time
(keep-alive): `--requests` windows of random customers' conversations, after 50 warm-up
requests; and `/healthz` through the same server and client, the HTTP stack's own floor.

    .venv/bin/python bench/inbox_window.py --backend both
    .venv/bin/python bench/inbox_window.py --backend postgresql --customers 300 --requests 2000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database

from seamline.app import create_app
from seamline.core import migrations
from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.devtools.serve import ServerProcess
from seamline.events import service as events_service

HOURS = {d: ["10:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def ok(response: httpx.Response) -> dict:
    assert response.status_code < 300, response.text
    return response.json() if response.content else {}


def populate(url: str, customers: int, background: int) -> tuple[list[int], str]:
    settings = Settings(_env_file=None, database_url=url, log_level="WARNING", delivery_worker=False,
                        inbox_job_interval_seconds=0, loyalty_job_interval_seconds=0,
                        commerce_expire_interval_seconds=0, commerce_refund_retry_seconds=0, inbox_reopen_hours=0)
    migrations.upgrade(url)
    database = Database(settings)
    with database.write() as session:
        _key, admin = auth_service.create_api_key(session, name="bench", scopes=[Scope.admin])
        _source, write_key = events_service.create_source(session, name="Website", channel="web")
        _agent_key, agent_raw = auth_service.create_api_key(session, name="agent", scopes=[Scope.agent])
    h = {"Authorization": f"Bearer {admin}"}
    conversations = []
    with TestClient(create_app(settings, database=database)) as c:
        ok(c.put("/v1/catalog/categories/face", json={"name_ru": "Лицо", "name_en": "Face"}, headers=h))
        ok(c.put("/v1/catalog/products/cream", json={"name_ru": "Крем", "name_en": "Cream", "category": "face", "variants": [
            {"sku": "CREAM-50", "price": {"amount": 199000, "currency": "RUB"}}]}, headers=h))
        ok(c.put("/v1/locations/store-1", json={"kind": "store", "name_ru": "Тверская", "name_en": "Tverskaya", "address": "Тверская, 1",
                                                 "latitude": 55.76, "longitude": 37.61, "opening_hours": HOURS, "pickup_enabled": True},
                 headers=h))
        ok(c.post("/v1/stock/movements", json={"sku": "CREAM-50", "location": "store-1", "kind": "receipt",
                                                "quantity": 10 * customers + 10, "reference": "bench"}, headers=h))
        ok(c.patch("/v1/loyalty/program", json={"welcome_points": 100}, headers=h))
        agent = ok(c.post("/v1/inbox/agents", json={"name": "Мария", "email": "maria@shop.example", "capacity": 1000}, headers=h))
        ok(c.post(f"/v1/inbox/agents/{agent['id']}/status", json={"status": "online"}, headers=h))
        for n in range(background):
            token = ok(c.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": f"bg-{n}"}))["token"]
            for m in range(3):
                ok(c.post("/v1/webchat/messages", json={"text": f"фон {n}.{m}"}, headers={"Authorization": f"Bearer {token}"}))
        for n in range(customers):
            email, phone, anon = f"c{n}@example.com", f"+7916{n:07d}", str(uuid.uuid4())
            customer = ok(c.post("/v1/customers", json={"identifiers": [{"type": "email", "value": email}, {"type": "phone", "value": phone},
                                                                         {"type": "anonymous_id", "value": anon}],
                                                         "traits": {"first_name": f"Покупатель {n}"}}, headers=h))["customer"]["id"]
            ok(c.post(f"/v1/loyalty/accounts", json={"customer_id": customer}, headers=h))
            batch = [{"type": "page", "anonymousId": anon, "name": f"p{i}", "messageId": str(uuid.uuid4())} for i in range(15)]
            batch += [{"type": "track", "anonymousId": anon, "event": "Product Viewed", "properties": {"sku": "CREAM-50"},
                       "messageId": str(uuid.uuid4())} for _ in range(5)]
            ok(c.post("/v1/batch", json={"batch": batch}, headers={"Authorization": f"Bearer {write_key}"}))
            for _ in range(2):
                ok(c.post("/v1/orders", json={"channel": "web", "customer_id": customer, "lines": [{"sku": "CREAM-50", "quantity": 1}],
                                              "fulfilment": {"kind": "click_and_collect", "location": "store-1"}}, headers=h))
            token = ok(c.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": anon}))["token"]
            chat = {"Authorization": f"Bearer {token}"}
            for m in range(5):
                ok(c.post("/v1/webchat/messages", json={"text": f"Вопрос {m} про заказ"}, headers=chat))
            cid = ok(c.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": anon}))["conversation"]["id"]
            for m in range(5):
                ok(c.post(f"/v1/inbox/conversations/{cid}/messages", json={"text": f"Ответ {m}", "agent_id": agent["id"]}, headers=h))
            ok(c.post(f"/v1/inbox/conversations/{cid}/status", json={"status": "resolved", "agent_id": agent["id"]}, headers=h))
            mail = EmailMessage()
            mail["From"], mail["To"], mail["Subject"] = email, "support@shop.example", "Возврат"
            mail["Message-ID"] = f"<{uuid.uuid4()}@example.com>"
            mail.set_content("Можно вернуть крем?")
            ok(c.post("/v1/channels/email/messages", content=mail.as_bytes(), headers={**h, "Content-Type": "message/rfc822"}))
            latest = ok(c.get("/v1/inbox/conversations", params={"customer_id": customer, "limit": 1}, headers=h))["items"][0]["id"]
            ok(c.post(f"/v1/inbox/conversations/{latest}/notes", json={"text": "проверить", "agent_id": agent["id"]}, headers=h))
            conversations.append(latest)
    database.dispose()
    return conversations, agent_raw


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(backend: str, args: argparse.Namespace) -> None:
    with throwaway_database(backend, "inbox-window") as (url, workdir):
        started = time.perf_counter()
        conversations, agent_key = populate(url, args.customers, args.background)
        print(f"{backend}: populated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        server = ServerProcess(url, workers=2, log_path=workdir / "server.log").start()
        try:
            headers = {"Authorization": f"Bearer {agent_key}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                sizes = []
                for _ in range(50):
                    ok(http.get(f"/v1/inbox/conversations/{random.choice(conversations)}/window"))
                window = []
                for _ in range(args.requests):
                    cid = random.choice(conversations)
                    t = time.perf_counter()
                    response = http.get(f"/v1/inbox/conversations/{cid}/window")
                    window.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200, response.text
                    sizes.append(len(response.content))
                body = response.json()
                assert body["customer"]["sections"]["orders"] and body["customer"]["sections"]["loyalty"]
                assert body["other_conversations"] and body["customer"]["sections"]["timeline"]
                health = []
                for _ in range(args.requests):
                    t = time.perf_counter()
                    http.get("/healthz")
                    health.append((time.perf_counter() - t) * 1000)
        finally:
            server.stop()
        print(f"| {backend} | {args.customers} + {args.background} | {pct(window, .5):.1f} / {pct(window, .95):.1f} / "
              f"**{pct(window, .99):.1f}** / {max(window):.1f} ms | {sum(sizes) / len(sizes) / 1024:.0f} KB | "
              f"{pct(health, .5):.1f} / {pct(health, .99):.1f} ms |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--background", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print("| backend | customers + background visitors | window p50 / p95 / p99 / max | body | /healthz p50 / p99 |")
    print("|---|---|---|---|---|")
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        run(backend, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
