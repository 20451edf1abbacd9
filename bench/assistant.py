"""The chat bot, measured two ways.

1. Intent accuracy (no database): the model trained on the phrases that ship with Seamline
   (`src/seamline/assistant/phrases/train.json`), tested on the held-out labelled phrases
   (`bench/data/assistant_heldout.json`, written separately: typos, transliteration, informal
   Russian and English), per intent and per language; then what the bot does with them at the
   default thresholds (answers, hands over as unsure, says it did not understand).

2. Answer latency on SQLite and a throwaway PostgreSQL: a shop with `--people` customers, each
   with a Telegram account, a phone, an app order (ready for pickup or received) and points.
   Messages (held-out phrases of every intent, from random customers, at `--rate` a second)
   arrive as Telegram updates through the webhook's storage (`delivery.accept`); the real job
   worker (`seamline worker`'s, in a thread, woken after commit) processes them. Timed per
   message: from the update stored (`inbox_inbound.received_at`) to the bot's reply written
   (`inbox_message.created_at`, queued for the send worker in the same transaction), and the
   bot's own part (`assistant_turn.millis`).

    .venv/bin/python bench/assistant.py accuracy [--heldout bench/data/assistant_heldout_2.json]
    .venv/bin/python bench/assistant.py latency --backend both --people 2000 --messages 1000 --rate 20
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from sqlalchemy import select

from seamline import runtime as seamline_runtime
from seamline.assistant import nlu
from seamline.assistant.models import AssistantTurn
from seamline.core import migrations
from seamline.core.config import Settings
from seamline.core.time import utcnow

HELDOUT = Path(__file__).resolve().parent / "data" / "assistant_heldout.json"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered))) - 1))] if ordered else float("nan")


# --- accuracy ---------------------------------------------------------------------------------------


def accuracy(args: argparse.Namespace) -> None:
    path = Path(args.heldout)
    heldout = json.loads(path.read_text(encoding="utf-8"))
    print(f"held-out set: {path.name}, {len(heldout)} phrases")
    started = time.perf_counter()
    model = nlu.IntentModel.fit(nlu.shipped_phrases())
    fit = time.perf_counter() - started
    settings = Settings(_env_file=None)
    right: Counter = Counter()
    total: Counter = Counter()
    confusions: Counter = Counter()
    decisions: Counter = Counter()
    lang_right = 0
    timings = []
    for row in heldout:
        started = time.perf_counter()
        prediction = model.predict(row["text"])
        timings.append((time.perf_counter() - started) * 1000)
        key = (row["intent"], row["lang"])
        total[key] += 1
        ok = prediction.intent == row["intent"]
        right[key] += ok
        lang_right += prediction.lang == row["lang"]
        if not ok:
            confusions[(row["intent"], prediction.intent)] += 1
        if prediction.intent == nlu.OUT_OF_SCOPE or prediction.confidence < settings.assistant_unsure_confidence:
            decision = "not understood"
        elif prediction.confidence < settings.assistant_confidence:
            decision = "hands over (unsure)"
        else:
            decision = "answers"
        expected_out = row["intent"] == nlu.OUT_OF_SCOPE
        decisions[(decision, "right" if ok else "wrong", "out of scope" if expected_out else "in scope")] += 1
    intents = sorted({intent for intent, _ in total}, key=lambda i: (i == nlu.OUT_OF_SCOPE, i))
    print(f"model: {model.examples} training phrases, trained in {fit:.2f} s; predict p50 {pct(timings, 50):.2f} ms, "
          f"p99 {pct(timings, 99):.2f} ms\n")
    print("| intent | ru | en | both |")
    print("|---|---|---|---|")
    for intent in intents:
        cells = []
        for lang in ("ru", "en"):
            n = total[(intent, lang)]
            cells.append(f"{right[(intent, lang)] / n:.1%} ({right[(intent, lang)]}/{n})" if n else "—")
        both_n = total[(intent, "ru")] + total[(intent, "en")]
        both = right[(intent, "ru")] + right[(intent, "en")]
        print(f"| {intent} | {cells[0]} | {cells[1]} | {both / both_n:.1%} |")
    for lang in ("ru", "en"):
        n = sum(v for (i, lg), v in total.items() if lg == lang)
        r = sum(v for (i, lg), v in right.items() if lg == lang)
        print(f"| **all {lang}** | | | {r / n:.1%} ({r}/{n}) |")
    n, r = sum(total.values()), sum(right.values())
    print(f"| **all** | | | **{r / n:.1%}** ({r}/{n}) |")
    print(f"\nlanguage told right: {lang_right / n:.1%}")
    print("\nmost frequent confusions (expected → predicted):", ", ".join(f"{a} → {b} ({c})" for (a, b), c in confusions.most_common(8)))
    print(f"\nwhat the bot does at the default thresholds (answers at ≥ {settings.assistant_confidence}, "
          f"unsure at ≥ {settings.assistant_unsure_confidence}):")
    print("| decision | intent right | phrase | share |")
    print("|---|---|---|---|")
    for (decision, ok, scope), count in sorted(decisions.items(), key=lambda kv: -kv[1]):
        print(f"| {decision} | {ok} | {scope} | {count / n:.1%} ({count}) |")


# --- latency ----------------------------------------------------------------------------------------


def fill(client, headers, people: int, seed: int) -> list[dict]:
    """A shop with 5 stores and 50 products; `people` customers, each with a Telegram account
    their profile holds, a phone, an app order and points."""
    rng = random.Random(seed)
    hours = {d: ["10:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    stores = [f"store-{i}" for i in range(1, 6)]
    for i, code in enumerate(stores, 1):
        client.put(f"/v1/locations/{code}", json={"kind": "store", "name_ru": f"Магазин {i}", "name_en": f"Store {i}", "address": f"ул. {i}",
                                                  "opening_hours": hours, "pickup_enabled": True}, headers=headers)
    names = ["Кроссовки", "Куртка", "Футболка", "Наушники", "Кофе", "Крем", "Рюкзак", "Шарф", "Кепка", "Носки"]
    for i in range(50):
        name = f"{names[i % 10]} {i // 10 + 1}"
        client.put(f"/v1/catalog/products/p{i}", json={"name_ru": name, "name_en": f"Item {i}", "variants": [
            {"sku": f"SKU-{i}", "price": {"amount": 100000 + i * 100, "currency": "RUB"}}]}, headers=headers)
        for code in stores:
            client.post("/v1/stock/movements", json={"sku": f"SKU-{i}", "location": code, "kind": "receipt", "quantity": 10_000,
                                                      "reference": "bench"}, headers=headers)
    client.put("/v1/loyalty/program", json={"earn_percent": 5}, headers=headers)
    customers = []
    for n in range(people):
        phone = f"+7916{1000000 + n:07d}"
        telegram_id = 300_000_000 + n
        response = client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": phone},
                                                                     {"type": "telegram_id", "value": str(telegram_id)}],
                                                     "traits": {"name": f"Покупатель {n}"}, "source": "app"}, headers=headers)
        assert response.status_code in (200, 201), response.text
        order = client.post("/v1/orders", json={
            "channel": "app", "identifiers": [{"type": "phone", "value": phone}],
            "lines": [{"sku": f"SKU-{rng.randrange(50)}", "quantity": 1}],
            "fulfilment": {"kind": "click_and_collect", "location": rng.choice(stores)}}, headers=headers).json()
        client.post(f"/v1/orders/{order['id']}/ready", json={"channel": "store"}, headers=headers)
        if rng.random() < 0.5:
            client.post(f"/v1/orders/{order['id']}/pickup", json={"code": order["pickup_code"], "channel": "store"}, headers=headers)
        customers.append({"telegram_id": telegram_id})
        if n % 500 == 499:
            log(f"  {n + 1} customers")
    return customers


def latency_run(backend: str, args: argparse.Namespace) -> None:
    from fastapi.testclient import TestClient

    from seamline.app import create_app
    from seamline.channels.telegram.adapter import ADAPTER, SECRET_HEADER
    from seamline.core.auth import service as auth_service
    from seamline.core.auth.schemas import Scope
    from seamline.core.db import Database
    from seamline.inbox import delivery
    from seamline.inbox.models import InboxInbound, InboxMessage

    server = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/assistant.db"
    else:
        from seamline.devtools.postgres import PostgresServer

        server = PostgresServer().start()
        url = server.url()
    try:
        migrations.upgrade(url)
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING", serve_worker=False,
                            secret_key="bench-secret-key-0123456789abcdef0123456789", assistant_enabled=True,
                            inbox_telegram_bot_token="bench", inbox_telegram_webhook_secret="bench-secret",
                            inbox_telegram_api_base="http://127.0.0.1:9", inbox_job_interval_seconds=0,
                            commerce_expire_interval_seconds=0, loyalty_job_interval_seconds=0, analytics_sync_seconds=0,
                            marketing_segment_refresh_seconds=0, marketing_advance_seconds=0, recommendations_retrain_minutes=0)
        database = Database(settings)
        with database.write() as session:
            _, key = auth_service.create_api_key(session, name="bench", scopes=[Scope.admin])
        headers = {"Authorization": f"Bearer {key}"}
        started = time.perf_counter()
        with TestClient(create_app(settings, database=database)) as client:
            customers = fill(client, headers, args.people, args.seed)
        log(f"{backend}: filled in {time.perf_counter() - started:.1f} s")
        heldout = [row for row in json.loads(HELDOUT.read_text(encoding="utf-8"))]
        rng = random.Random(args.seed)
        runtime = seamline_runtime.build(settings, database=database)
        worker = runtime.worker(queues={"inbound": 2}, periodic=False).start()
        time.sleep(1.0)
        with database.read() as session:  # the model, trained before the clock starts (as the server does at start)
            from seamline.assistant import service as bot

            bot.model(session)
        sent = 0
        begin = time.perf_counter()
        for n in range(args.messages):
            person = customers[rng.randrange(len(customers))]
            row = heldout[rng.randrange(len(heldout))]
            update = {"update_id": 10_000 + n, "message": {
                "message_id": 10_000 + n, "date": int(time.time()), "text": row["text"],
                "from": {"id": person["telegram_id"], "is_bot": False, "first_name": "Bench"},
                "chat": {"id": person["telegram_id"], "type": "private"}}}
            delivery.accept(database, settings=settings, adapter=ADAPTER, headers={SECRET_HEADER: "bench-secret"},
                            body=json.dumps(update).encode())
            sent += 1
            wait = begin + sent / args.rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with database.read() as session:
                left = session.scalar(select(InboxInbound.id).where(InboxInbound.status == "received").limit(1))
            if left is None:
                break
            time.sleep(0.2)
        worker.stop()
        with database.read() as session:
            rows = session.execute(select(InboxInbound.received_at, InboxInbound.message_id).where(InboxInbound.channel == "telegram")).all()
            replies: dict[int, object] = {}
            for conversation_id, created_at, message_id in session.execute(
                    select(InboxMessage.conversation_id, InboxMessage.created_at, InboxMessage.id)
                    .where(InboxMessage.direction == "out").order_by(InboxMessage.id)):
                replies.setdefault(conversation_id, []).append((message_id, created_at))
            inbound = {m.id: m for m in session.scalars(select(InboxMessage).where(InboxMessage.direction == "in"))}
            turns = [t.millis for t in session.scalars(select(AssistantTurn))]
            outcomes = Counter(t.outcome for t in session.scalars(select(AssistantTurn)))
        end_to_end = []
        for received_at, message_id in rows:
            message = inbound.get(message_id)
            if message is None:
                continue
            after = [created for mid, created in replies.get(message.conversation_id, []) if mid > message_id]
            if after:
                end_to_end.append((after[0] - received_at).total_seconds() * 1000)
        print(f"| {backend} | {args.people:,} | {len(rows)} at {args.rate}/s | {len(end_to_end)} | "
              f"{pct(end_to_end, 50):.1f} | {pct(end_to_end, 99):.1f} | {max(end_to_end):.1f} | "
              f"{pct(turns, 50):.1f} | {pct(turns, 99):.1f} |", flush=True)
        log(f"{backend}: turn outcomes {dict(outcomes)}")
        runtime.close()
    finally:
        if server is not None:
            server.stop()


def latency(args: argparse.Namespace) -> None:
    print("| backend | customers | messages | answered | stored → reply queued p50 ms | p99 ms | max ms | bot's own p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        latency_run(backend, args)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    acc = sub.add_parser("accuracy")
    acc.add_argument("--heldout", default=str(HELDOUT), help="a labelled set: [{text, intent, lang}]")
    lat = sub.add_parser("latency")
    lat.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    lat.add_argument("--people", type=int, default=2000)
    lat.add_argument("--messages", type=int, default=1000)
    lat.add_argument("--rate", type=float, default=20.0)
    lat.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    accuracy(args) if args.what == "accuracy" else latency(args)


if __name__ == "__main__":
    main()
