"""Benchmark: the inbox's routing decision with 10,000 open conversations and 100 agents.

Setup (not timed; SQLAlchemy core inserts): 100 agents with mixed skills (1-3 topics among
orders / returns / loyalty / technical, and lang:ru and/or lang:en), capacities 5-10; 85 online,
5 away, 10 offline. Online agents are loaded near capacity (75 % full, 20 % one slot free, 5 %
two), and each agent's load is exactly the weight of the open conversations assigned to them.
Since an agent's load is 5-10, the 10,000 unresolved conversations are, as in a real inbox,
mostly waiting on the customer: `--open` (10,000) conversations = ~600 open and assigned (the
loads) + `--waiting` (3,000) open in the queue (`queue_rank_at` set over the last two hours,
priorities 0/10/20, assignee NULL) + the rest pending or snoozed on an agent; plus `--resolved`
(40,000) resolved ones of the past. Required skills: orders 35 %, returns 20 %, none 15 %,
loyalty 10 %, technical 10 %, lang:en 10 %; six topic rules (`InboxRoutingRule`). Then every
online agent with room takes from the queue once (`fill_agent`), so the state is one the
product could be in: no free agent fits a waiting conversation. PostgreSQL gets `VACUUM ANALYZE`
after the load (what autovacuum does on a live system); SQLite nothing.

Timed, in-process on the one database (no HTTP):

(a) the routing decision for a new conversation: `--decisions` times (after 50 warm-ups), in
    one write transaction each, a conversation is created and queued as `service.receive` does
    (its skill from the topic rules on a realistic first message, not timed), then
    `routing.route(...)` + `routing.queue_position(...)` are timed, then the transaction
    commits (the commit is timed apart). Every `--free-every`-th decision, one open
    conversation of a random online agent is first resolved through `service.set_status`
    (its own transaction, not timed), so both outcomes occur: assigned (the freed slot) or
    queued. The queue grows by the queued ones.
(b) `routing.fill_agent` when an offline agent comes online with free capacity: the agent is
    set online in a write transaction, `fill_agent` timed, then the transaction is rolled back
    (so every repetition sees the same queue); and the whole `agents.set_status(online)` the
    same way (fill + the assignment notices and webhooks).

    .venv/bin/python bench/inbox_routing.py --backend both
    .venv/bin/python bench/inbox_routing.py --backend postgresql --decisions 5000
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database

from seamline import runtime

runtime.wire()  # the same wiring as the server (priority signals, channel adapters)
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.time import utcnow
from seamline.customers.models import CustomerProfile
from seamline.inbox import agents, routing, service
from seamline.inbox.models import InboxAgent, InboxConversation, InboxRoutingRule

TOPICS = ["orders", "returns", "loyalty", "technical"]
#: required_skill of a conversation, with its share
SKILL_MIX = [("orders", 35), ("returns", 20), (None, 15), ("loyalty", 10), ("technical", 10), ("lang:en", 10)]
RULES = [
    ("Returns", r"возвр|вернуть|обмен|refund|return", "returns"),
    ("Orders", r"заказ|доставк|курьер|трек|order|delivery", "orders"),
    ("Loyalty", r"балл|бонус|кешбэк|карт[аы] лояльн|points|loyalty", "loyalty"),
    ("Technical", r"не работает|ошибк|приложени|не могу войти|error|crash|app", "technical"),
    ("English", r"^[\x00-\x7f]*[a-z]{3}[\x00-\x7f]*$", "lang:en"),
    ("Wholesale", r"опт|юрлиц|счёт на оплату", "wholesale"),
]
#: first messages of new conversations, by the skill the rules give them
FIRST_MESSAGES = {
    "orders": ["Где мой заказ 10234?", "Курьер не приехал, заказ 55120", "Можно изменить адрес доставки?"],
    "returns": ["Хочу вернуть крем, не подошёл", "Как оформить возврат?", "Можно обменять тональный на другой оттенок?"],
    "loyalty": ["Не начислились баллы за покупку", "Сколько бонусов у меня на карте?", "Как потратить кешбэк?"],
    "technical": ["Приложение не работает после обновления", "Ошибка при оплате картой", "Не могу войти в личный кабинет"],
    "lang:en": ["Hello, I have a question about my purchase", "Do you ship to Kazakhstan?", "Hi, is the shop open on Sunday?"],
    None: ["Здравствуйте!", "Подскажите, пожалуйста, часы работы магазина на Тверской", "Есть ли в наличии духи Chanel №5?"],
}


class GcClock:
    """Seconds the garbage collector ran (to tell its pauses from the database's)."""

    def __init__(self) -> None:
        self.seconds, self._start = 0.0, 0.0
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


GC = GcClock()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else float("nan")


def pick_skill(rng: random.Random) -> str | None:
    return rng.choices([s for s, _ in SKILL_MIX], weights=[w for _, w in SKILL_MIX])[0]


def build(database: Database, settings: Settings, rng: random.Random, args: argparse.Namespace) -> dict:
    """Agents, conversations and rules straight into the tables (not timed)."""
    t = time.perf_counter()
    now = utcnow()
    agent_rows = []
    for i in range(1, args.agents + 1):
        topics = rng.sample(TOPICS, rng.choices([1, 2, 3], weights=[3, 5, 2])[0])
        if "orders" not in topics and rng.random() < 0.4:
            topics.append("orders")
        langs = ["lang:ru"] if rng.random() < 0.75 else (["lang:en"] if rng.random() < 0.3 else ["lang:ru", "lang:en"])
        capacity = rng.randint(5, 10)
        status = "online" if i <= args.agents * 85 // 100 else ("away" if i <= args.agents * 90 // 100 else "offline")
        if status == "offline":
            load = 0
        else:
            load = capacity - rng.choices([0, 1, 2], weights=[75, 20, 5])[0]
        agent_rows.append({"id": i, "name": f"Агент {i}", "email": f"agent{i}@shop.example", "skills": sorted(topics + langs),
                           "status": status, "capacity": capacity, "load": load,
                           "last_assigned_at": now - timedelta(seconds=rng.randint(0, 3600)),
                           "created_at": now - timedelta(days=90), "status_changed_at": now - timedelta(hours=3)})

    def conversation(cid: int, customer: int, **values) -> dict:
        channel = rng.choices(["webchat", "email"], weights=[7, 3])[0]
        created = values.pop("created_at", now - timedelta(minutes=rng.randint(1, 600)))
        return {"id": cid, "customer_id": customer, "channel": channel, "reply_channel": channel, "status": "open",
                "subject": None, "assignee_id": None, "team_id": None, "required_skill": None, "priority": 0, "weight": 1,
                "queue_rank_at": None, "queued_at": created, "labels": [], "channel_state": {}, "sla_breaches": [],
                "awaiting_reply_since": None, "last_message_at": created, "created_at": created, **values}

    def skill_for(agent: dict) -> str | None:
        choices = [s for s in agent["skills"] if s != "lang:ru"] + [None]
        return rng.choice(choices)

    rows: list[dict] = []
    cid = 0
    for agent in agent_rows:  # open and assigned: exactly the agents' loads
        for _ in range(agent["load"]):
            cid += 1
            rows.append(conversation(cid, cid, assignee_id=agent["id"], required_skill=skill_for(agent),
                                     awaiting_reply_since=now - timedelta(minutes=rng.randint(0, 30))))
    assigned_open = cid
    for _ in range(args.waiting):  # the queue
        cid += 1
        queued = now - timedelta(seconds=rng.randint(0, 7200))
        priority = rng.choices([0, 10, 20], weights=[85, 12, 3])[0]
        rows.append(conversation(cid, cid, required_skill=pick_skill(rng), priority=priority, queued_at=queued, created_at=queued,
                                 queue_rank_at=queued - timedelta(seconds=priority * settings.inbox_priority_seconds),
                                 awaiting_reply_since=queued))
    while cid < args.open:  # waiting on the customer, still an agent's
        cid += 1
        agent = rng.choice(agent_rows)
        snoozed = rng.random() < 0.2
        rows.append(conversation(cid, cid, assignee_id=agent["id"], required_skill=skill_for(agent),
                                 status="snoozed" if snoozed else "pending",
                                 snoozed_until=now + timedelta(hours=rng.randint(1, 48)) if snoozed else None))
    for _ in range(args.resolved):
        cid += 1
        agent = rng.choice(agent_rows)
        created = now - timedelta(days=rng.uniform(1, 365))
        rows.append(conversation(cid, cid, assignee_id=agent["id"], required_skill=skill_for(agent), status="resolved",
                                 created_at=created, resolved_at=created + timedelta(hours=rng.uniform(0.1, 30))))
    customers = cid + args.decisions + 1000  # and the new conversations' customers
    with database.bulk_write() as session:
        session.execute(insert(CustomerProfile), [{"id": i, "status": "active", "created_at": now, "updated_at": now}
                                                  for i in range(1, customers + 1)])
        session.execute(insert(InboxAgent), agent_rows)
        keys = sorted({k for row in rows for k in row})
        for start in range(0, len(rows), 5000):
            session.execute(insert(InboxConversation), [{k: row.get(k) for k in keys} for row in rows[start:start + 5000]])
        session.execute(insert(InboxRoutingRule), [{"name": n, "pattern": p, "skill": s, "position": i, "enabled": True}
                                                   for i, (n, p, s) in enumerate(RULES)])
        if database.dialect == "postgresql":
            for table, column in (("customer_profile", "id"), ("inbox_agent", "id"), ("inbox_conversation", "id")):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max({column}) FROM {table}))"))
    filled = 0
    with database.write() as session:  # a consistent start: free agents take what fits them
        for agent in session.scalars(select(InboxAgent).where(InboxAgent.status == "online", InboxAgent.load < InboxAgent.capacity)):
            filled += len(routing.fill_agent(session, agent, settings))
    if database.dialect == "postgresql":
        with database.write_engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    state = counts(database)
    print(f"setup: {args.agents} agents, {len(rows):,} conversations ({assigned_open} open assigned, {args.waiting:,} queued, "
          f"{filled} taken by free agents at start), {customers:,} profiles; {state}; {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return {"customers_from": cid + 1, **state}


def counts(database: Database) -> dict:
    with database.read() as session:
        by_status = dict(session.execute(select(InboxConversation.status, func.count()).group_by(InboxConversation.status)).all())
        waiting = session.scalar(select(func.count()).select_from(routing.waiting(session).subquery()))
        full = session.scalar(select(func.count()).where(InboxAgent.status == "online", InboxAgent.load >= InboxAgent.capacity))
        online = session.scalar(select(func.count()).where(InboxAgent.status == "online"))
    unresolved = sum(v for k, v in by_status.items() if k != "resolved")
    return {"unresolved": unresolved, "open": by_status.get("open", 0), "waiting": waiting, "online": online, "full": full}


def free_one(database: Database, settings: Settings, rng: random.Random) -> None:
    """An agent resolves one of their open conversations (through the service, as the API does)."""
    with database.write() as session:
        rows = session.execute(select(InboxConversation.id).join(InboxAgent, InboxAgent.id == InboxConversation.assignee_id).where(
            InboxConversation.status == "open", InboxAgent.status == "online")).scalars().all()
        service.set_status(session, settings=settings, conversation_id=rng.choice(rows), status="resolved")


def decisions(database: Database, settings: Settings, rng: random.Random, args: argparse.Namespace, first_customer: int) -> dict:
    timed, commits, outcomes, jumps = [], [], {"assigned": 0, "queued": 0}, []
    routes_assigned, routes_queued, positions, slow = [], [], [], []
    customer = first_customer
    for n in range(-50, args.decisions):
        if n % args.free_every == 0:
            free_one(database, settings, rng)
        skill = pick_skill(rng)
        first = rng.choice(FIRST_MESSAGES[skill])
        now = utcnow()
        with database.write() as session:
            conversation = InboxConversation(
                customer_id=customer, channel="webchat", reply_channel="webchat", status="open", subject=None,
                priority=rng.choices([0, 10, 20], weights=[85, 12, 3])[0], labels=[], channel_state={},
                required_skill=routing.detect_skill(session, first), weight=routing.weight_of("webchat", settings),
                created_at=now, last_message_at=now, awaiting_reply_since=now, sla_breaches=[],
            )
            session.add(conversation)
            session.flush()
            routing.enqueue(conversation, settings, at=now)
            session.flush()
            rank = conversation.queue_rank_at
            gc_before = GC.seconds
            start = time.perf_counter()
            agent = routing.route(session, conversation, settings)
            middle = time.perf_counter()
            position = routing.queue_position(session, conversation)
            elapsed = time.perf_counter() - start
            in_gc = GC.seconds - gc_before
            if agent is not None:  # did it pass conversations waiting for the same skill? (not timed)
                ahead = session.scalar(select(func.count()).select_from(routing.waiting(session).where(
                    InboxConversation.queue_rank_at < rank,
                    InboxConversation.required_skill.is_(None) if conversation.required_skill is None
                    else InboxConversation.required_skill == conversation.required_skill).subquery()))
            commit_start = time.perf_counter()
        commit = time.perf_counter() - commit_start
        customer += 1
        if n < 0:
            continue
        timed.append(elapsed)
        if elapsed > 0.02:
            slow.append((n, round(elapsed * 1000, 1), round(in_gc * 1000, 1), agent is not None))
        (routes_assigned if agent is not None else routes_queued).append(middle - start)
        if position is not None:
            positions.append(elapsed - (middle - start))
        commits.append(commit)
        outcomes["assigned" if agent is not None else "queued"] += 1
        if agent is not None:
            jumps.append(ahead)
        elif position is None:
            raise RuntimeError("a queued conversation without a queue position")
    return {"timed": timed, "commits": commits, "outcomes": outcomes, "jumps": jumps, "routes_assigned": routes_assigned,
            "routes_queued": routes_queued, "positions": positions, "slow": slow}


def fills(database: Database, settings: Settings, args: argparse.Namespace) -> dict:
    with database.read() as session:
        offline = [(a.id, a.capacity, a.skills) for a in session.scalars(select(InboxAgent).where(InboxAgent.status == "offline"))]
    out = {"fill": [], "status": [], "taken": []}
    for n in range(-10, args.fills):
        agent_id, _, _ = offline[n % len(offline)]
        for kind in ("fill", "status"):
            with database.write() as session:
                if kind == "fill":
                    agent = agents.get_agent(session, agent_id, lock=True)
                    agent.status = "online"
                    session.flush()
                    start = time.perf_counter()
                    taken = routing.fill_agent(session, agent, settings)
                    elapsed = time.perf_counter() - start
                else:
                    start = time.perf_counter()
                    agents.set_status(session, settings=settings, agent_id=agent_id, status="online")
                    elapsed = time.perf_counter() - start
                session.rollback()  # the same queue for every repetition
            if n >= 0:
                out[kind].append(elapsed)
                if kind == "fill":
                    out["taken"].append(len(taken))
    out["agents"] = offline
    return out


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    with throwaway_database(backend, "seamline-inbox-routing") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING")
        database = Database(settings)
        rng = random.Random(6)
        built = build(database, settings, rng, args)
        t = time.perf_counter()
        decided = decisions(database, settings, rng, args, built["customers_from"])
        after = counts(database)
        print(f"[{backend}] {args.decisions} decisions in {time.perf_counter() - t:.1f} s: {decided['outcomes']}; "
              f"route+position p50 {pct(decided['timed'], 0.5):.2f} p99 {pct(decided['timed'], 0.99):.2f} ms; "
              f"commit p50 {pct(decided['commits'], 0.5):.2f} p99 {pct(decided['commits'], 0.99):.2f} ms; after: {after}",
              file=sys.stderr)
        print(f"[{backend}]   decisions over 20 ms (n, ms, of which garbage collection ms, assigned): {decided['slow']}",
              file=sys.stderr)
        for name in ("routes_assigned", "routes_queued", "positions"):
            print(f"[{backend}]   {name}: n {len(decided[name])}, p50 {pct(decided[name], 0.5):.2f} p95 {pct(decided[name], 0.95):.2f} "
                  f"p99 {pct(decided[name], 0.99):.2f} max {pct(decided[name], 1.0):.2f} ms", file=sys.stderr)
        filled = fills(database, settings, args)
        print(f"[{backend}] fill_agent on {len(filled['agents'])} offline agents: p50 {pct(filled['fill'], 0.5):.2f} "
              f"p99 {pct(filled['fill'], 0.99):.2f} ms, taken {sum(filled['taken']) / len(filled['taken']):.1f} on average; "
              f"set_status(online) p99 {pct(filled['status'], 0.99):.2f} ms", file=sys.stderr)
        database.dispose()
    return {"backend": backend, "built": built, "after": after, "decided": decided, "filled": filled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--open", type=int, default=10_000, help="unresolved conversations (open, queued, pending, snoozed)")
    parser.add_argument("--waiting", type=int, default=3_000, help="of them waiting in the queue")
    parser.add_argument("--resolved", type=int, default=40_000, help="resolved conversations of the past")
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--free-every", type=int, default=8, help="resolve one open conversation every N decisions")
    parser.add_argument("--fills", type=int, default=200)
    args = parser.parse_args()
    results = [run_backend(b, args) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])]

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parent).stdout.strip()
    command = ".venv/bin/python bench/inbox_routing.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, commit {commit}: `{command.strip()}`\n")
    print("| backend | unresolved (queued) at start → end | online agents (full) | decisions | assigned / queued "
          "| route + queue_position p50 ms | p95 | p99 | max | commit p99 ms | assigned past older waiting (same skill) "
          "| `fill_agent` p50 ms | p95 | p99 | max | taken per fill | `set_status(online)` p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for res in results:
        b, a, d, f = res["built"], res["after"], res["decided"], res["filled"]
        n = len(d["timed"])
        jumped = sum(1 for j in d["jumps"] if j > 0)
        print(f"| {res['backend']} | {b['unresolved']:,} ({b['waiting']:,}) → {a['unresolved']:,} ({a['waiting']:,}) "
              f"| {b['online']} ({b['full']}) | {n:,} | {d['outcomes']['assigned'] / n:.0%} / {d['outcomes']['queued'] / n:.0%} "
              f"| {pct(d['timed'], 0.5):.2f} | {pct(d['timed'], 0.95):.2f} | {pct(d['timed'], 0.99):.2f} | {pct(d['timed'], 1.0):.1f} "
              f"| {pct(d['commits'], 0.99):.2f} | {jumped} of {len(d['jumps'])} (median {sorted(d['jumps'])[len(d['jumps']) // 2] if d['jumps'] else 0} ahead) "
              f"| {pct(f['fill'], 0.5):.2f} | {pct(f['fill'], 0.95):.2f} | {pct(f['fill'], 0.99):.2f} | {pct(f['fill'], 1.0):.1f} "
              f"| {sum(f['taken']) / len(f['taken']):.1f} | {pct(f['status'], 0.99):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
