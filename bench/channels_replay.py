"""Benchmark: replaying recorded inbound webhooks of the messaging providers into the inbox.

Setup (not timed), against a real `seamline serve` on a throwaway database (SQLite: `--workers 1`,
the in-process writer; PostgreSQL, fsync on: `--workers 2`, the machine's two cores), each
server process with its job worker (`SEAMLINE_SERVE_WORKER=true`), which processes what the
webhooks stored (`inbox.inbound` jobs): every
provider's webhook secret set through the server's environment (`SEAMLINE_INBOX_TELEGRAM_WEBHOOK_SECRET`,
`..._WHATSAPP_APP_SECRET`, `..._VK_SECRET` and `..._VK_GROUP_ID`, `..._VIBER_AUTH_TOKEN`,
`..._SMS_PROVIDER=generic` and `..._SMS_WEBHOOK_SECRET`); `--agents` (20) agents created and set
online through the API (capacity 1,000, no skills), so new conversations are routed as in
production. Then each provider is probed: `2 × workers` webhooks from probe senders must answer
200 and leave their `inbox_inbound` rows `processed`. A provider whose adapter cannot be
imported, whose route is missing or whose probe fails is skipped with the reason (the mix is
renormalized over the others); `--providers` picks them by hand.

The "recorded" webhooks: `--count` (10,000) request bodies built from the fixture payloads in
tests/fixtures/<provider>/ (Telegram text_message: an `Update`; WhatsApp text_message: a Cloud
API notification; VK message_new_text: a Callback API event; Viber text_message: a callback;
SMS generic/incoming.json: the generic gateway's JSON), with unique provider ids (update_id,
wamid, event_id, message_token, the gateway's id) and per-chat message ids, from `--senders`
(default a fifth of --count: 2,000) distinct people split by the mix (`--mix`, default
telegram 35, whatsapp 30, vk 15, viber 10, sms 10 %; one channel per person, WhatsApp and SMS
numbers from different ranges): each person writes at least once and the rest of the messages
go to people with weights drawn from an exponential distribution (some write a lot), so ~20 %
of messages start a conversation and the rest continue one. The order is a random interleaving
of the people's own sequences (a person's messages stay in order; ids and timestamps grow in
sending order). Each is signed as its provider signs: Telegram's X-Telegram-Bot-Api-Secret-Token,
WhatsApp's X-Hub-Signature-256 (`whatsapp.adapter.signature`), VK's `secret` in the body,
Viber's X-Viber-Content-Signature (`viber.adapter.signature`), the generic SMS gateway's
X-Seamline-Signature (`t=<unix time>,v1=<HMAC>`, as `events.destinations.sign`). All bodies and
headers exist before the clock starts (the SMS signatures are good for 5 minutes: a replay
longer than that would see its late SMS refused with 401, counted as errors).

Timed: all of them over `--connections` (32) raw keep-alive HTTP/1.1 connections as fast as the
server answers (closed loop, `_load.drive`): the HTTP acceptance rate (requests / wall time of
the replay), p50/p99/max latency and the statuses. And end to end: a thread of this process
polls the database directly (SQLAlchemy, every 0.2 s) for the statuses of the run's
`inbox_inbound` rows; when the processed ones equal the webhooks sent, messages/s = sent /
(the latest `processed_at` − the wall clock just before the first request). A message that
failed to process stays `failed` and is retried by the server's inbox job (after 30 s), so the
wait goes on until all are processed, `--timeout` (600 s, counted from the first request; the
replay itself stops sending then) or 75 s without any change after the last answer; what was
processed by then is reported. Checked afterwards: failed (and never-processed) rows, which must
be 0, and the inbox messages: `inbox_message` rows with direction 'in' created by the run must
equal the webhooks sent, with no provider id twice. CPU seconds of the server (and its
workers) and of PostgreSQL's processes over the same span, from /proc, per message.
`processed_at − received_at` per channel and overall (the first stamped when the webhook's
parts are stored, just before the answer; the second when the `inbox.inbound` batch that made
the message processes it, inside that transaction) is how long after
the provider's acknowledgement the message was in its conversation and routed.

`--replay-twice`: the same requests (same bodies, same signatures) are sent again: every one
must be acknowledged (200) and nothing may be created (no `inbox_inbound`, `inbox_message` or
`inbox_conversation` rows); its rate is reported too.

The machine's own limit, after the server stopped: the same payloads (as each adapter's `split`
stores them) inserted into `inbox_inbound` under other channel names, `executemany` in
transactions of 500 on one connection, `ON CONFLICT DO NOTHING` as the server's insert.

Every non-200 answer is an error and is printed; any server log line (warnings and errors: a
message that failed to process is logged) is printed and fails the run, as a failed row or a
duplicate does. stdout gets a markdown table per backend and a JSON line with every figure.

    .venv/bin/python bench/channels_replay.py --backend both
    .venv/bin/python bench/channels_replay.py --backend sqlite --count 2000
    .venv/bin/python bench/channels_replay.py --backend postgresql --replay-twice --mix telegram=50,whatsapp=50
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import importlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import Request, Stats, drive, throwaway_database, tree_cpu
from loyalty_balance import postgres_pid

from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.devtools.serve import ServerProcess
from seamline.inbox.models import InboxInbound

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_MIX = {"telegram": 35, "whatsapp": 30, "vk": 15, "viber": 10, "sms": 10}
SECRETS = {"telegram": "bench-telegram-secret-7f3a", "whatsapp": "bench-meta-app-secret-19c2", "vk": "bench-vk-secret-aaQ13",
           "viber": "bench-viber-auth-token-4e1d-9b0c", "sms": "bench-sms-gateway-secret-5d2e"}
PROBE_BASE = 10_000_000  # sequence numbers of the probes: far from the replay's 0..count-1
PROBE_PEOPLE = 90_000  # person numbers of the probe senders
STALL = 75.0  # seconds without any change after the last answer: the retry job (30 s + 10 s) had its chance
RAW_BATCH = 500

TEXTS = ["Здравствуйте! Где мой заказ {order}?", "Подскажите, курьер сегодня приедет?", "А можно поменять адрес доставки?",
         "Не начислились баллы за покупку {order}", "Хочу вернуть крем, он не подошёл", "Спасибо!", "Да, номер заказа {order}",
         "Какой срок годности у этой сыворотки?", "Есть ли оттенок 02 в магазине на Тверской?", "Ок, жду",
         "Добрый день! Можно перенести доставку на завтра?", "Промокод не применяется к корзине", "Hello! Is order {order} on its way?",
         "Когда будет поступление тонального крема 01?", "Мне пришёл не тот товар, что делать?", "Можно оплатить при получении?"]
FIRST = ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Ирина", "Дмитрий", "Алексей", "Сергей", "Иван", "Екатерина", "Татьяна"]
LAST = ["Петрова", "Иванова", "Смирнова", "Кузнецова", "Попова", "Соколова", "Лебедева", "Козлов", "Новиков", "Морозов"]


# --- the providers: fixtures, bodies, signatures ----------------------------------------------------


@dataclass
class Person:
    provider: str
    number: int
    first: str
    last: str
    sent: int = 0  # messages so far: the per-chat message ids


@dataclass
class Provider:
    name: str
    path: str
    fixture: str
    #: the adapter module (imported to sign and to split; a failure skips the provider)
    module: str
    env: dict[str, str]
    build: Callable[[dict, int, Person, str, int], dict]
    sign: Callable[[Any, bytes], dict[str, str]]
    adapter: Any = None
    template: dict = field(default_factory=dict)


def telegram_body(tpl: dict, n: int, p: Person, message: str, at: int) -> dict:
    body = copy.deepcopy(tpl)
    user_id = 700_000_000 + p.number
    names = {"first_name": p.first, "last_name": p.last, "username": f"user{user_id}"}
    body["update_id"] = 300_000_000 + n
    m = body["message"]
    m["message_id"], m["date"], m["text"] = p.sent + 1, at, message
    m["from"].update(id=user_id, **names)
    m["chat"].update(id=user_id, **names)
    return body


def whatsapp_body(tpl: dict, n: int, p: Person, message: str, at: int) -> dict:
    body = copy.deepcopy(tpl)
    value = body["entry"][0]["changes"][0]["value"]
    number = f"7916{p.number:07d}"
    value["contacts"][0].update(wa_id=number, profile={"name": f"{p.first} {p.last}"})
    wamid = "wamid." + base64.b64encode(f"\x0b{number}\x15\x02\x00\x12\x18\x14BENCH{n:015d}\x00".encode()).decode()
    value["messages"][0].update({"from": number, "id": wamid, "timestamp": str(at), "text": {"body": message}})
    return body


def vk_body(tpl: dict, n: int, p: Person, message: str, at: int) -> dict:
    body = copy.deepcopy(tpl)
    user_id = 400_000_000 + p.number
    body["event_id"] = hashlib.sha1(f"bench-vk-{n}".encode()).hexdigest()
    body["secret"] = SECRETS["vk"]
    m = body["object"]["message"]
    m.update(date=at, from_id=user_id, peer_id=user_id, id=100_000 + n, conversation_message_id=p.sent + 1,
             version=10_000_000 + n, text=message)
    return body


def viber_body(tpl: dict, n: int, p: Person, message: str, at: int) -> dict:
    body = copy.deepcopy(tpl)
    body["message_token"] = 5_946_281_728_843_000_000 + n
    body["timestamp"] = at * 1000 + n % 1000
    body["sender"].update(id=base64.b64encode(hashlib.sha256(f"viber-{p.number}".encode()).digest()[:16]).decode(),
                          name=f"{p.first} {p.last}")
    body["message"]["text"] = message
    return body


def sms_body(tpl: dict, n: int, p: Person, message: str, at: int) -> dict:
    body = copy.deepcopy(tpl)
    body.update({"id": f"gw-in-{n:08d}", "from": f"+7903{p.number:07d}", "text": message,
                 "received_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")})
    return body


def sms_signature(providers: Any, body: bytes) -> str:
    """The generic gateway's X-Seamline-Signature: as Seamline signs its own webhooks (`t=<unix
    time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, at most 5 minutes old: made when the replay is
    prepared, and again before `--replay-twice`), or a plain `sha256=<hex HMAC>` in the adapter's
    earlier version (`providers.signature`)."""
    if hasattr(providers, "signature"):
        return providers.signature(SECRETS["sms"], body)
    from seamline.events import destinations

    return destinations.sign(SECRETS["sms"], int(time.time()), body)


def header_signer(header: str, secret_of: Callable[[Any, bytes], str]) -> Callable[[Any, bytes], dict[str, str]]:
    return lambda module, body: {header: secret_of(module, body)}


PROVIDERS = {p.name: p for p in [
    Provider("telegram", "/v1/channels/telegram/webhook", "telegram/text_message.json", "seamline.channels.telegram.adapter",
             {"SEAMLINE_INBOX_TELEGRAM_WEBHOOK_SECRET": SECRETS["telegram"]}, telegram_body,
             header_signer("X-Telegram-Bot-Api-Secret-Token", lambda _m, _b: SECRETS["telegram"])),
    Provider("whatsapp", "/v1/channels/whatsapp/webhook", "whatsapp/text_message.json", "seamline.channels.whatsapp.adapter",
             {"SEAMLINE_INBOX_WHATSAPP_APP_SECRET": SECRETS["whatsapp"]}, whatsapp_body,
             header_signer("X-Hub-Signature-256", lambda m, b: m.signature(SECRETS["whatsapp"], b))),
    Provider("vk", "/v1/channels/vk/webhook", "vk/message_new_text.json", "seamline.channels.vk.adapter",
             {"SEAMLINE_INBOX_VK_SECRET": SECRETS["vk"]}, vk_body, lambda _m, _b: {}),  # the secret is in the body
    Provider("viber", "/v1/channels/viber/webhook", "viber/text_message.json", "seamline.channels.viber.adapter",
             {"SEAMLINE_INBOX_VIBER_AUTH_TOKEN": SECRETS["viber"]}, viber_body,
             header_signer("X-Viber-Content-Signature", lambda m, b: m.signature(SECRETS["viber"], b))),
    Provider("sms", "/v1/channels/sms/webhook", "sms/generic/incoming.json", "seamline.channels.sms.providers",
             {"SEAMLINE_INBOX_SMS_PROVIDER": "generic", "SEAMLINE_INBOX_SMS_WEBHOOK_SECRET": SECRETS["sms"]}, sms_body,
             header_signer("X-Seamline-Signature", lambda m, b: sms_signature(m, b))),
]}


def load_providers(names: list[str]) -> tuple[list[Provider], dict[str, str]]:
    """The providers whose adapter imports and whose fixture exists; the others with the reason."""
    ready, skipped = [], {}
    for name in names:
        provider = PROVIDERS[name]
        try:
            provider.adapter = importlib.import_module(provider.module)
            provider.template = orjson.loads((FIXTURES / provider.fixture).read_bytes())
            if name == "vk":  # events for another community are refused: the fixture's community is ours
                provider.env = {**provider.env, "SEAMLINE_INBOX_VK_GROUP_ID": str(provider.template["group_id"])}
            provider.build(provider.template, 0, Person(name, 0, "А", "Б"), "x", 0)  # the fixture has the fields we fill
        except Exception as exc:  # noqa: BLE001 - adapters are being written: say why and go on
            skipped[name] = f"{type(exc).__name__}: {exc}"
            continue
        ready.append(provider)
    return ready, skipped


def parse_mix(value: str) -> dict[str, float]:
    mix = {}
    for part in value.split(","):
        name, _, share = part.partition("=")
        if name.strip() not in PROVIDERS:
            raise argparse.ArgumentTypeError(f"unknown provider {name!r} (one of {', '.join(PROVIDERS)})")
        mix[name.strip()] = float(share)
    return mix


# --- the recorded webhooks ------------------------------------------------------------------------------


@dataclass
class Replay:
    requests: list[Request]
    channels: list[str]  # each request's provider
    people: dict[str, int]  # distinct people by provider


def split_counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    """`total` split by the shares, largest remainders first (the parts add up to `total`)."""
    whole = sum(shares.values())
    exact = {k: total * v / whole for k, v in shares.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def make_people(providers: list[Provider], shares: dict[str, float], count: int, senders: int, rng: random.Random,
                first_number: int = 0) -> list[Person]:
    """Who writes each message, in sending order: every person at least once, the rest by
    exponential weights; a random interleaving of the people's sequences."""
    messages = split_counts(count, shares)
    people_of = split_counts(min(senders, count), shares)
    order: list[Person] = []
    number = first_number
    for provider in providers:
        n_people = max(1, min(people_of[provider.name], messages[provider.name])) if messages[provider.name] else 0
        people = []
        for _ in range(n_people):
            people.append(Person(provider.name, number, rng.choice(FIRST), rng.choice(LAST)))
            number += 1
        order += people
        if people:
            weights = [rng.expovariate(1.0) for _ in people]
            order += rng.choices(people, weights=weights, k=messages[provider.name] - len(people))
    rng.shuffle(order)
    return order


def build_requests(providers: list[Provider], order: list[Person], rng: random.Random, first_n: int = 0) -> Replay:
    by_name = {p.name: p for p in providers}
    now = int(time.time())
    requests, channels = [], []
    for i, person in enumerate(order):
        provider = by_name[person.provider]
        n = first_n + i
        message = rng.choice(TEXTS).format(order=rng.randrange(10_000, 99_999))
        body = orjson.dumps(provider.build(provider.template, n, person, message, now - len(order) + i))
        person.sent += 1
        requests.append(Request(provider.path, body, provider.sign(provider.adapter, body)))
        channels.append(provider.name)
    return Replay(requests, channels, dict(Counter(p.provider for p in {id(p): p for p in order}.values())))


class Until:
    """The requests, handed out until a deadline (the replay stops sending at `--timeout`)."""

    def __init__(self, requests: list[Request], deadline: float):
        self.requests, self.deadline, self.given = requests, deadline, 0

    def __iter__(self) -> Iterator[Request]:
        for request in self.requests:
            if time.perf_counter() > self.deadline:
                return
            self.given += 1
            yield request


# --- reading the database -------------------------------------------------------------------------------


def scalar(database: Database, sql: str, **params: Any) -> Any:
    with database.read() as session:
        return session.execute(text(sql), params).scalar_one()


def statuses_after(database: Database, inbound_id: int) -> dict[str, int]:
    with database.read() as session:
        return dict(session.execute(text("SELECT status, count(*) FROM inbox_inbound WHERE id > :id GROUP BY status"),
                                    {"id": inbound_id}).all())


def marks(database: Database) -> dict[str, int]:
    """Where the tables end now (the rows a run creates come after)."""
    return {"inbound": scalar(database, "SELECT coalesce(max(id), 0) FROM inbox_inbound"),
            "message": scalar(database, "SELECT coalesce(max(id), 0) FROM inbox_message"),
            "conversation": scalar(database, "SELECT coalesce(max(id), 0) FROM inbox_conversation"),
            "inbound_rows": scalar(database, "SELECT count(*) FROM inbox_inbound"),
            "message_rows": scalar(database, "SELECT count(*) FROM inbox_message"),
            "conversation_rows": scalar(database, "SELECT count(*) FROM inbox_conversation")}


class Poller(threading.Thread):
    """Counts the run's `inbox_inbound` rows by status every 0.2 s until the processed ones reach
    `target` (set when the replay has ended), the deadline, or `STALL` seconds without change
    after the replay."""

    def __init__(self, database: Database, after_id: int, deadline: float, label: str):
        super().__init__(daemon=True)
        self.database, self.after_id, self.deadline, self.label = database, after_id, deadline, label
        self.target: int | None = None
        self.replay_ended: float | None = None
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.reached_at: float | None = None
        self.stop_reason = ""

    def run(self) -> None:
        start = last_change = time.perf_counter()
        next_report, previous = start + 10, None
        while True:
            now = time.perf_counter()
            counts = statuses_after(self.database, self.after_id)
            self.samples.append((now, counts))
            if counts != previous:
                previous, last_change = counts, now
            if self.target is not None and counts.get("processed", 0) >= self.target:
                self.reached_at, self.stop_reason = now, "all processed"
                return
            if now > self.deadline and self.replay_ended is not None:  # answers still coming count
                self.stop_reason = "--timeout"
                return
            if self.replay_ended is not None and now - max(last_change, self.replay_ended) > STALL:
                self.stop_reason = f"no change for {STALL:.0f} s"
                return
            if now >= next_report:
                print(f"[{self.label}]   {now - start:.0f} s: {counts}", file=sys.stderr)
                next_report += 10
            time.sleep(max(0.0, 0.2 - (time.perf_counter() - now)))


def processing_times(database: Database, after_id: int) -> dict[str, dict[str, float]]:
    """Per channel: p50 and p99 of processed_at - received_at (ms), the count."""
    with database.read() as session:
        rows = session.execute(select(InboxInbound.channel, InboxInbound.received_at, InboxInbound.processed_at)
                               .where(InboxInbound.id > after_id, InboxInbound.status == "processed")).all()
    by_channel: dict[str, list[float]] = {}
    for channel, received, processed in rows:
        by_channel.setdefault(channel, []).append((processed - received).total_seconds())
    by_channel["all"] = [t for times in list(by_channel.values()) for t in times]
    return {c: {"count": len(v), "p50_ms": round(pct(v, 0.5), 1), "p99_ms": round(pct(v, 0.99), 1)} for c, v in sorted(by_channel.items())}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else float("nan")


# --- the server -----------------------------------------------------------------------------------------


def create_agents(server: ServerProcess, admin_key: str, count: int) -> None:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as client:
        for n in range(count):
            response = client.post("/v1/inbox/agents", json={"name": f"Агент {n + 1}", "email": f"agent{n + 1}@shop.example",
                                                             "skills": [], "capacity": 1000, "create_key": True})
            response.raise_for_status()
            agent = response.json()
            client.post(f"/v1/inbox/agents/{agent['id']}/status", json={"status": "online"},
                        headers={"Authorization": f"Bearer {agent['api_key']}"}).raise_for_status()


def probe(server: ServerProcess, database: Database, providers: list[Provider], workers: int, rng: random.Random,
          label: str) -> tuple[list[Provider], dict[str, str]]:
    """A few webhooks per provider (2 per worker: each worker's first request is slow), not
    timed: the provider is kept if every one answers 200 and is processed."""
    ready, skipped = [], {}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for number, provider in enumerate(providers):
            mark = scalar(database, "SELECT coalesce(max(id), 0) FROM inbox_inbound")
            people = [Person(provider.name, PROBE_PEOPLE + number * 100 + i, "Проба", "Пробная") for i in range(2 * workers)]
            replay = build_requests([provider], people, rng, first_n=PROBE_BASE + number * 100)
            problem = ""
            for request in replay.requests:
                try:
                    response = client.post(request.path, content=request.body,
                                           headers={"Content-Type": "application/json", **request.headers})
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    break
                if response.status_code != 200:
                    problem = f"HTTP {response.status_code}: {response.text[:300]}"
                    break
            deadline = time.monotonic() + 30  # answered once stored: the server's worker processes them
            while not problem:
                with database.read() as session:
                    rows = session.execute(text("SELECT status, error FROM inbox_inbound WHERE id > :id AND channel = :c"),
                                           {"id": mark, "c": provider.name}).all()
                bad = [f"{status}: {error}" for status, error in rows if status != "processed"]
                if not bad or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if not problem:
                if len(rows) != len(replay.requests) or bad:
                    problem = f"{len(rows)} of {len(replay.requests)} stored, not processed: {bad[:2]}"
            if problem:
                skipped[provider.name] = f"probe failed: {problem}"
                print(f"[{label}] skipping {provider.name}: {problem}", file=sys.stderr)
            else:
                ready.append(provider)
    return ready, skipped


def replay_once(server: ServerProcess, database: Database, replay: Replay, args: argparse.Namespace, pg: int | None,
                label: str) -> dict:
    before = marks(database)
    start_wall = time.perf_counter()
    deadline = start_wall + args.timeout
    poller = Poller(database, before["inbound"], deadline, label)
    cpu, pg_cpu = tree_cpu(server.process.pid), (tree_cpu(pg) if pg else 0.0)
    requests = Until(replay.requests, deadline)
    t0 = datetime.now(UTC)
    poller.start()
    stats = drive(server.base_url, {}, requests, args.connections)  # type: ignore[arg-type] - any iterable will do
    answered = time.perf_counter()
    poller.target, poller.replay_ended = requests.given, answered
    poller.join()
    server_cpu = tree_cpu(server.process.pid) - cpu
    db_cpu = (tree_cpu(pg) - pg_cpu) if pg else 0.0
    counts = statuses_after(database, before["inbound"])
    with database.read() as session:
        last = session.scalar(select(func.max(InboxInbound.processed_at)).where(InboxInbound.id > before["inbound"]))
        messages_in, distinct_in = session.execute(text(
            "SELECT count(*), count(DISTINCT channel || ':' || coalesce(provider_message_id, '')) FROM inbox_message "
            "WHERE id > :id AND direction = 'in'"), {"id": before["message"]}).one()
        conversations = session.execute(text("SELECT count(*) FROM inbox_conversation WHERE id > :id"),
                                        {"id": before["conversation"]}).scalar_one()
    processed = counts.get("processed", 0)
    e2e = (last - t0).total_seconds() if last is not None else math.nan
    return {"planned": len(replay.requests), "sent": requests.given, "stats": stats, "http_wall": answered - start_wall, "statuses": counts, "processed": processed,
            "failed": counts.get("failed", 0), "unprocessed": requests.given - processed, "e2e_s": e2e,
            "e2e_rate": processed / e2e if processed and e2e > 0 else 0.0,
            "poll_reached_s": (poller.reached_at - start_wall) if poller.reached_at else None, "stop_reason": poller.stop_reason,
            "messages_in": messages_in, "duplicate_messages": messages_in - distinct_in, "conversations": conversations,
            "server_cpu": server_cpu, "db_cpu": db_cpu, "after": marks(database), "before": before,
            "processing": processing_times(database, before["inbound"])}


def replay_again(server: ServerProcess, database: Database, replay: Replay, args: argparse.Namespace, pg: int | None) -> dict:
    before = marks(database)
    cpu, pg_cpu = tree_cpu(server.process.pid), (tree_cpu(pg) if pg else 0.0)
    requests = Until(replay.requests, time.perf_counter() + args.timeout)
    stats = drive(server.base_url, {}, requests, args.connections)  # type: ignore[arg-type]
    server_cpu, db_cpu = tree_cpu(server.process.pid) - cpu, (tree_cpu(pg) - pg_cpu) if pg else 0.0
    time.sleep(1.0)  # anything created late would show
    after = marks(database)
    new = {k: after[f"{k}_rows"] - before[f"{k}_rows"] for k in ("inbound", "message", "conversation")}
    return {"planned": len(replay.requests), "sent": requests.given, "stats": stats, "new_rows": new, "server_cpu": server_cpu, "db_cpu": db_cpu}


def raw_insert_rate(database: Database, replay: Replay, base_url: str) -> float:
    """Rows/s: the payloads each adapter's `split` stores, `executemany` in transactions of 500
    on one connection, into the same table (under channel names of their own)."""
    stored = []
    callback = None
    for request, channel in zip(replay.requests, replay.channels, strict=True):
        body = request.body
        adapter = importlib.import_module(f"seamline.channels.{channel}.adapter").ADAPTER
        if channel == "sms":  # the webhook wraps the gateway's request before `accept` (sms/api.py)
            callback = callback or importlib.import_module("seamline.channels.sms.providers").Callback
            body = callback(provider="generic", url=base_url + request.path, query={}, content_type="application/json",
                            body=body).encode()
        stored += [(f"raw-{channel}", provider_id, raw) for provider_id, raw in adapter.split(body)]
    sqlite = database.is_sqlite
    mark = "?" if sqlite else "%s"
    sql = (f"INSERT INTO inbox_inbound (channel, provider_message_id, payload, status, attempts, received_at) VALUES "
           f"({mark}, {mark}, {mark}, {mark}, {mark}, {mark}) ON CONFLICT (channel, provider_message_id) DO NOTHING")
    now = datetime.now(UTC)
    stamp = now.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else now
    rows = [(channel, provider_id, raw, "received", 0, stamp) for channel, provider_id, raw in stored]
    connection = database.write_engine.raw_connection()
    try:
        cursor = connection.cursor()
        start = time.perf_counter()
        for at in range(0, len(rows), RAW_BATCH):
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, rows[at : at + RAW_BATCH])
            if sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
    return len(rows) / elapsed


# --- one backend ----------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, providers: list[Provider], skipped: dict[str, str]) -> dict:
    label = backend
    rng = random.Random(11)
    with throwaway_database(backend, "seamline-channels-replay") as (url, workdir):
        database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
        with database.write() as session:
            _, admin_key = auth_service.create_api_key(session, name="bench admin", scopes=[Scope.admin])
        workers = args.workers or (1 if backend == "sqlite" else 2)
        # key=value logs: the JSON formatter drops tracebacks of uvicorn's records. Each server
        # process runs a job worker (on PostgreSQL too): webhooks are answered once stored, and
        # the `inbox.inbound` jobs process them.
        env = {"SEAMLINE_LOG_JSON": "false", "SEAMLINE_SERVE_WORKER": "true"}
        for provider in providers:
            env.update(provider.env)
        log_path = workdir / "server.log"
        server = ServerProcess(url, workers=workers, log_path=log_path, env=env).start()
        pg = postgres_pid(url)
        print(f"[{label}] server pid {server.process.pid}, {workers} worker(s), postgres pid {pg}, "
              f"load average {os.getloadavg()}", file=sys.stderr)
        skipped = dict(skipped)
        try:
            create_agents(server, admin_key, args.agents)
            ready, failed = probe(server, database, providers, workers, random.Random(5), label)
            skipped.update(failed)
            if not ready:
                raise SystemExit(f"[{label}] no provider left: {skipped}")
            shares = {p.name: args.mix.get(p.name, 0.0) for p in ready}
            ready = [p for p in ready if shares[p.name] > 0]
            shares = {p.name: shares[p.name] for p in ready}
            senders = args.senders or max(1, args.count // 5)
            t = time.perf_counter()
            order = make_people(ready, shares, args.count, senders, rng)
            replay = build_requests(ready, order, rng)
            size = sum(len(r.body) for r in replay.requests) / len(replay.requests)
            mix = dict(Counter(replay.channels))
            print(f"[{label}] {len(replay.requests):,} webhooks ({mix}), {sum(replay.people.values()):,} people "
                  f"({replay.people}), avg body {size:.0f} B, prepared in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            if args.py_spy:
                spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--idle",
                                        "--gil" if args.py_spy_gil else "--nonblocking", "-r", "50", "-f", "raw",
                                        "-o", f"{args.py_spy}-{backend}.txt", "-p", str(server.process.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            first = replay_once(server, database, replay, args, pg, label)
            if args.py_spy:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
                spy.wait(60)
            f = first
            s: Stats = f["stats"]
            print(f"[{label}] sent {f['sent']:,} in {f['http_wall']:.1f} s ({f['sent'] / f['http_wall']:.0f} req/s, "
                  f"p50 {s.pct(0.5):.1f} p99 {s.pct(0.99):.1f} max {s.pct(1.0):.0f} ms, statuses {s.statuses}); "
                  f"processed {f['processed']:,} ({f['statuses']}) by {f['e2e_s']:.1f} s: {f['e2e_rate']:.0f} msg/s end to end "
                  f"(poll saw it at {f['poll_reached_s'] or math.nan:.1f} s; stopped: {f['stop_reason']}); inbox messages in "
                  f"{f['messages_in']:,} (duplicates {f['duplicate_messages']}), conversations {f['conversations']:,}; server CPU "
                  f"{f['server_cpu']:.1f} s ({f['server_cpu'] / max(f['sent'], 1) * 1000:.2f} ms/msg), postgres {f['db_cpu']:.1f} s, "
                  f"generator {s.client_cpu:.1f} s; processing ms by channel {f['processing']}", file=sys.stderr)
            for error in s.errors[:5]:
                print(f"[{label}]   error: {error}", file=sys.stderr)
            again = None
            if args.replay_twice:
                by_name = {p.name: p for p in ready}  # signed anew (not timed): a signature may carry its time
                resigned = Replay([Request(r.path, r.body, by_name[c].sign(by_name[c].adapter, r.body))
                                   for r, c in zip(replay.requests, replay.channels, strict=True)], replay.channels, replay.people)
                again = replay_again(server, database, resigned, args, pg)
                a = again
                print(f"[{label}] replayed again: {a['sent']:,} in {a['stats'].wall:.1f} s ({a['sent'] / a['stats'].wall:.0f} req/s, "
                      f"p50 {a['stats'].pct(0.5):.1f} p99 {a['stats'].pct(0.99):.1f} ms, statuses {a['stats'].statuses}); "
                      f"new rows {a['new_rows']}; server CPU {a['server_cpu'] / max(a['sent'], 1) * 1000:.2f} ms/req",
                      file=sys.stderr)
                for error in a["stats"].errors[:5]:
                    print(f"[{label}]   error (again): {error}", file=sys.stderr)
        finally:
            server.stop()
        raw = raw_insert_rate(database, replay, server.base_url)
        print(f"[{label}] raw executemany into inbox_inbound: {raw:,.0f} rows/s", file=sys.stderr)
        database.dispose()
        log = [line for line in log_path.read_text().splitlines() if line.strip()]
    for line in log[:20]:
        print(f"[{label}] server log: {line[:400]}", file=sys.stderr)
    return {"backend": backend, "workers": workers, "mix": mix, "people": replay.people, "skipped": skipped, "size": size,
            "first": first, "again": again, "raw": raw, "log": log}


# --- report ---------------------------------------------------------------------------------------------


def source_version() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"
    return commit + (" (src/ has uncommitted changes)" if dirty else "")


def figures(r: dict) -> dict:
    f, s = r["first"], r["first"]["stats"]
    sent = max(f["sent"], 1)
    out = {
        "backend": r["backend"], "workers": r["workers"], "planned": f["planned"], "sent": f["sent"], "planned_mix": r["mix"], "people": r["people"],
        "skipped": r["skipped"], "avg_body_bytes": round(r["size"]),
        "http": {"rate": round(f["sent"] / f["http_wall"], 1), "wall_s": round(f["http_wall"], 2), "p50_ms": round(s.pct(0.5), 1),
                 "p99_ms": round(s.pct(0.99), 1), "max_ms": round(s.pct(1.0), 1), "statuses": s.statuses, "errors": len(s.errors)},
        "end_to_end": {"rate": round(f["e2e_rate"], 1), "to_last_processed_s": round(f["e2e_s"], 2), "processed": f["processed"],
                       "failed": f["failed"], "not_processed": f["unprocessed"], "stopped": f["stop_reason"]},
        "inbox": {"messages_in": f["messages_in"], "duplicate_messages": f["duplicate_messages"],
                  "conversations_started": f["conversations"]},
        "cpu_ms_per_msg": {"server": round(f["server_cpu"] / sent * 1000, 2), "postgres": round(f["db_cpu"] / sent * 1000, 2),
                           "generator": round(s.client_cpu / sent * 1000, 2)},
        "processing_ms_by_channel": f["processing"],
        "raw_insert_rows_per_s": round(r["raw"]),
    }
    if r["again"]:
        a = r["again"]
        out["replay_twice"] = {"sent": a["sent"], "rate": round(a["sent"] / a["stats"].wall, 1), "p50_ms": round(a["stats"].pct(0.5), 1),
                               "p99_ms": round(a["stats"].pct(0.99), 1), "statuses": a["stats"].statuses, "new_rows": a["new_rows"],
                               "server_cpu_ms_per_req": round(a["server_cpu"] / max(a["sent"], 1) * 1000, 2),
                               "postgres_cpu_ms_per_req": round(a["db_cpu"] / max(a["sent"], 1) * 1000, 2)}
    return out


def problems(r: dict) -> list[str]:
    f = r["first"]
    found = [f"{len(f['stats'].errors)} HTTP errors"] if f["stats"].errors else []
    if f["failed"] or f["unprocessed"]:
        found.append(f"{f['failed']} failed, {f['unprocessed']} not processed ({f['statuses']}, stopped: {f['stop_reason']})")
    if f["messages_in"] != f["processed"] or f["duplicate_messages"]:
        found.append(f"{f['messages_in']} inbox messages for {f['processed']} processed webhooks, {f['duplicate_messages']} duplicates")
    if r["again"]:
        a = r["again"]
        if a["stats"].errors or any(a["new_rows"].values()):
            found.append(f"replay twice: {len(a['stats'].errors)} errors, new rows {a['new_rows']}")
    if r["log"]:
        found.append(f"{len(r['log'])} server log lines")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--count", type=int, default=10_000, help="webhooks replayed (one message each)")
    parser.add_argument("--senders", type=int, default=0, help="distinct people (default: a fifth of --count)")
    parser.add_argument("--mix", type=parse_mix, default=dict(DEFAULT_MIX),
                        help="shares by provider, e.g. telegram=35,whatsapp=30,vk=15,viber=10,sms=10")
    parser.add_argument("--providers", default=",".join(PROVIDERS), help="providers to replay (comma-separated)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--agents", type=int, default=20, help="agents online (new conversations are routed to them)")
    parser.add_argument("--workers", type=int, default=0, help="default: 1 on SQLite, 2 on PostgreSQL")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds from the first request: stop sending and waiting")
    parser.add_argument("--replay-twice", action="store_true", help="send the same webhooks again: nothing may be created")
    parser.add_argument("--py-spy", default="", metavar="PREFIX",
                        help="record the server's stacks during the replay with py-spy (all threads, idle too) into PREFIX-<backend>.txt "
                             "(collapsed stacks, each line's last number its samples)")
    parser.add_argument("--py-spy-gil", action="store_true", help="with --py-spy: only the threads holding the GIL")
    args = parser.parse_args()
    names = [n.strip() for n in args.providers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        parser.error(f"unknown providers {unknown} (one of {', '.join(PROVIDERS)})")
    providers, skipped = load_providers([n for n in names if args.mix.get(n, 0) > 0])
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}", file=sys.stderr)
    if not providers:
        parser.error("no provider to replay")

    results = []
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        results.append(run_backend(backend, args, providers, skipped))

    command = ".venv/bin/python bench/channels_replay.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, {os.cpu_count()} CPUs, commit {source_version()}: `{command.strip()}`\n")
    failed = False
    for r in results:
        g = figures(r)
        h, e, i, c = g["http"], g["end_to_end"], g["inbox"], g["cpu_ms_per_msg"]
        mix = ", ".join(f"{k} {v:,}" for k, v in g["planned_mix"].items())
        cut = f" — only {g['sent']:,} sent before --timeout" if g["sent"] < g["planned"] else ""
        rows = [("webhooks (mix)", f"{g['planned']:,} ({mix}){cut}; avg body {g['avg_body_bytes']} B"),
                ("people / conversations started", (f"{sum(g['people'].values()):,} / {i['conversations_started']:,} "
                                                   f"({i['conversations_started'] / max(g['sent'], 1):.0%} of messages)")),
                ("HTTP accepted", (f"**{h['rate']:,.0f} req/s** ({h['wall_s']:.1f} s), p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, "
                                  f"max {h['max_ms']:.0f} ms; statuses {h['statuses']}, errors {h['errors']}")),
                ("end to end into the inbox", (f"**{e['rate']:,.0f} msg/s** ({e['processed']:,} processed {e['to_last_processed_s']:.1f} s "
                                              f"after the first request; stopped: {e['stopped']})")),
                ("failed / not processed", f"{e['failed']} / {e['not_processed']}"),
                ("inbox messages in (duplicates)", f"{i['messages_in']:,} ({i['duplicate_messages']})"),
                ("CPU per message", f"server {c['server']:.2f} ms" + (f" + postgres {c['postgres']:.2f} ms" if r["backend"] == "postgresql" else "")
                 + f", load generator {c['generator']:.2f} ms"),
                ("processing (received → processed) p50 / p99", ", ".join(f"{k} {v['p50_ms']:.1f} / {v['p99_ms']:.1f} ms"
                                                                          for k, v in g["processing_ms_by_channel"].items())),
                ("raw executemany into inbox_inbound (machine's limit)", f"{g['raw_insert_rows_per_s']:,} rows/s")]
        if "replay_twice" in g:
            t = g["replay_twice"]
            rows.append(("replayed twice (all duplicates)", (f"{t['rate']:,.0f} req/s, p50 {t['p50_ms']:.1f} ms, p99 {t['p99_ms']:.1f} ms, "
                                                            f"statuses {t['statuses']}; new rows {t['new_rows']}")))
        if g["skipped"]:
            rows.append(("skipped providers", "; ".join(f"{k}: {v[:200]}" for k, v in g["skipped"].items())))
        print(f"**{r['backend']}** ({r['workers']} worker{'s' if r['workers'] > 1 else ''})\n")
        print("| | |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
        print()
        found = problems(r)
        if found:
            failed = True
            print(f"## problems ({r['backend']}): {'; '.join(found)}", file=sys.stderr)
            for line in r["first"]["stats"].errors[:5] + r["log"][:10]:
                print("  " + line[:500], file=sys.stderr)
    print(json.dumps({"bench": "channels_replay", "date": date.today().isoformat(), "commit": source_version(), "cpus": os.cpu_count(),
                      "command": command.strip(), "results": [figures(r) for r in results]}, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
