"""Benchmark: inbound messages (web chat and email) delivered to the agents' consoles over WebSocket.

Setup (not timed), against a real `seamline serve` on a throwaway database: an event source and
its write key (`events.service.create_source`, what the web chat widget holds), an admin key;
`--agents` (20) agents created through `POST /v1/inbox/agents` with `create_key: true`
(capacity 1,000, no skills: any agent may take any conversation), each set online through the
API with its own key and its console connected to `ws://.../v1/inbox/ws?key=<agent key>` (the
`websockets` client, permessage-deflate on, as browsers do). For every load level, fresh web
chat visitors (one per `--messages-per-visitor` of its chat messages) open their sessions
through `POST /v1/webchat/sessions`, and `--email-senders` (30) fresh addresses will write.

Timed: an open-loop generator at a fixed rate (`--rates`, default 50, 100, 200 and 300 messages/s,
evenly spaced) for `--seconds` (30) each: `--chat-share` (70 %) web chat messages (`POST
/v1/webchat/messages` with the visitor's token) and the rest raw emails (RFC 822 bytes, `POST
/v1/channels/email/messages`, `Content-Type: message/rfc822`, admin key; 30 % of them
reply to an earlier message of the same sender with In-Reply-To/References). Each message's text
carries a unique token. A message's first one from a visitor or sender starts a conversation,
which is routed to an agent; later ones continue it. Requests go over `--connections` (32)
raw keep-alive HTTP/1.1 connections (httpx's AsyncClient cost 1.8-3.3 ms of CPU per request
here, half a core at 300/s on a 2-core machine shared with the server; raw writes cost ~0.2 ms).

Before each level the generator waits until the server and PostgreSQL are idle (the previous
level's backlog, the sessions' identity work). Measured per message: the HTTP latency (in an
overloaded level it includes the wait for one of the 32 connections: the load is open-loop),
and the delivery latency: from just before the request is written to the receipt of the `{"type": "message", ...}` frame carrying its token on the
socket of the agent the conversation is assigned to (a conversation's first message, published
before it is routed, reaches every console through the `inbox` topic; later ones only its
agent's and its watchers' sockets). Not delivered: accepted (201/202) but not on the assignee's
socket within 10 s; never: not there at all, 10 s after the last answer. Server CPU (the server
and its workers, plus PostgreSQL's processes) and the generator's own CPU per message, from
/proc; stderr also gives the cores each used and what other processes took meanwhile. The
server logs key=value (`SEAMLINE_LOG_JSON=false`): the JSON formatter drops the traceback of
uvicorn's own error records; any server log line fails the run. `--dump PREFIX` writes each
message's timings to a CSV per level.

On PostgreSQL the server runs `--workers 2` (the machine's two cores): the workers share
real-time notices through LISTEN/NOTIFY, so a socket on one worker gets what the other wrote.
On SQLite notices reach only the sockets of the worker that wrote them (the in-process hub), so
SQLite runs `--workers 1`.

    .venv/bin/python bench/inbox_realtime.py --backend both
    .venv/bin/python bench/inbox_realtime.py --backend postgresql --rates 200 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database, tree_cpu
from loyalty_balance import postgres_pid

from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.devtools.serve import ServerProcess
from seamline.events import service as events_service

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

TOKEN = re.compile(r"tk\d{7}")
LOST_AFTER = 10.0
CHAT_TEXTS = ["Здравствуйте! Где мой заказ?", "Подскажите, курьер сегодня приедет?", "А можно поменять адрес доставки?",
              "Не начислились баллы за покупку", "Хочу вернуть крем, он не подошёл", "Спасибо!", "Да, номер заказа 10234",
              "Какой срок годности у этой сыворотки?", "Есть ли оттенок 02 в магазине на Тверской?", "Ок, жду"]
EMAIL_TEXTS = ["Добрый день!\n\nЗаказ 55120 пришёл неполным: нет туши.\nПрошу разобраться.",
               "Здравствуйте,\n\nкак вернуть товар, купленный в интернет-магазине, через розничный магазин?",
               "Hello,\n\nI was charged twice for order 77812. Could you check please?",
               "Добрый вечер.\n\nПодскажите, когда будет поступление тонального крема 01?"]
SUBJECTS = ["Заказ 55120", "Возврат", "Double charge", "Поступление товара", "Вопрос"]



#: Every simulated visitor comes from 127.0.0.1: the web chat's per-address limit (600 a minute,
#: for real visitors each on their own address) would refuse most of them, so it is lifted.
UNLIMITED = {"SEAMLINE_RATE_LIMITS": orjson.dumps({"webchat": {"ip": 0, "key": 0}}).decode()}

def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else float("nan")


# --- the load generator: raw keep-alive HTTP/1.1 ----------------------------------------------------


class Pool:
    """N keep-alive HTTP/1.1 connections; a request waits for a free one."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.Queue = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        reader, writer = await self.idle.get()
        try:
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            return int(head[9:12]), await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            raise
        finally:
            self.idle.put_nowait((reader, writer))

    async def close(self) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()


def prepared(host: str, port: int, path: str, content_type: str, authorization: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Authorization: Bearer {authorization}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


class Consoles:
    """The agents' sockets: when each token's message frame arrived on which agent's socket, and
    who each conversation is assigned to."""

    def __init__(self) -> None:
        self.arrivals: dict[str, dict[int, float]] = {}
        self.conversation_of: dict[str, int] = {}
        self.assignee: dict[int, int] = {}
        self.frames = 0
        self.tasks: list[asyncio.Task] = []
        self.sockets: list = []
        self.closed: list[str] = []

    async def connect(self, ws_base: str, agents: list[dict]) -> None:
        for agent in agents:
            # no client pings (a browser sends none; the server pings every 20 s and is answered)
            ws = await connect(f"{ws_base}/v1/inbox/ws?key={agent['api_key']}", max_size=2**22, max_queue=None, ping_interval=None)
            ready = orjson.loads(await ws.recv())
            if ready.get("type") != "ready" or ready.get("agent_id") != agent["id"]:
                raise RuntimeError(f"unexpected first frame {ready}")
            self.sockets.append(ws)
            self.tasks.append(asyncio.create_task(self._read(agent["id"], ws)))

    async def _read(self, agent_id: int, ws) -> None:
        try:
            await self._frames(agent_id, ws)
        except ConnectionClosed as exc:
            self.closed.append(f"agent {agent_id}: {exc}")
        else:
            self.closed.append(f"agent {agent_id}: closed {ws.close_code} {ws.close_reason}")

    async def _frames(self, agent_id: int, ws) -> None:
        arrivals, conversation_of, assignee = self.arrivals, self.conversation_of, self.assignee
        async for raw in ws:
            now = time.perf_counter()
            self.frames += 1
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "message":
                found = TOKEN.search(frame["message"].get("text") or "")
                if found:
                    token = found.group()
                    arrivals.setdefault(token, {}).setdefault(agent_id, now)
                    conversation_of[token] = frame["conversation_id"]
            elif kind == "assignment":
                conversation = frame["conversation"]
                if conversation.get("assignee_id"):
                    assignee[conversation["id"]] = conversation["assignee_id"]

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# --- setup through the API ------------------------------------------------------------------------


def email_bytes(token: str, sender: tuple[str, str], message_id: str, reply_to: str | None, rng: random.Random) -> bytes:
    mail = EmailMessage()
    mail["Message-ID"] = message_id
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["From"] = f"{sender[0]} <{sender[1]}>"
    mail["To"] = "Поддержка <support@shop.example>"
    mail["Subject"] = ("Re: " if reply_to else "") + rng.choice(SUBJECTS)
    if reply_to:
        mail["In-Reply-To"] = reply_to
        mail["References"] = reply_to
    mail.set_content(f"{rng.choice(EMAIL_TEXTS)} [{token}]\n\n-- \nС уважением,\n{sender[0]}\n")
    return mail.as_bytes()


async def open_sessions(client: httpx.AsyncClient, write_key: str, count: int) -> list[str]:
    tokens: list[str] = []
    semaphore = asyncio.Semaphore(8)

    async def one() -> None:
        async with semaphore:
            response = await client.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": str(uuid.uuid4())})
            response.raise_for_status()
            tokens.append(response.json()["token"])

    await asyncio.gather(*(one() for _ in range(count)))
    return tokens


# --- one load level -------------------------------------------------------------------------------


async def phase(pool: Pool, consoles: Consoles, requests: list[tuple[str, str, bytes]], rate: float) -> dict:
    """Send `requests` (token, kind, bytes) evenly at `rate`/s without waiting for answers."""
    sent: dict[str, tuple[float, str]] = {}
    http: dict[str, float] = {}
    errors: list[str] = []
    lags: list[float] = []

    async def send(token: str, kind: str, data: bytes) -> None:
        start = time.perf_counter()
        sent[token] = (start, kind)
        try:
            status, body = await pool.request(data)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(f"{kind} {token}: {type(exc).__name__}: {exc}")
            sent.pop(token, None)
            return
        http[token] = time.perf_counter() - start
        if status not in (201, 202) or (kind == "email" and orjson.loads(body).get("error")):
            errors.append(f"{kind} {token}: {status} {body[:300].decode(errors='replace')}")
            sent.pop(token, None)

    loop = asyncio.get_running_loop()
    cpu = time.process_time()
    tasks = []
    begin = loop.time()
    for i, (token, kind, data) in enumerate(requests):
        due = begin + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(loop.time() - due)
        tasks.append(asyncio.create_task(send(token, kind, data)))
    sending = loop.time() - begin
    await asyncio.gather(*tasks)
    answered = loop.time() - begin
    deadline = time.perf_counter() + LOST_AFTER  # a notice goes out at commit, before the answer: 10 s more is plenty
    while time.perf_counter() < deadline and any(t not in consoles.arrivals for t in sent):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    client_cpu = time.process_time() - cpu

    delivery, first, by_kind, lost, late, unassigned = [], [], {"chat": [], "email": []}, [], [], 0
    for token, (start, kind) in sent.items():
        seen = consoles.arrivals.get(token)
        conversation = consoles.conversation_of.get(token)
        agent = consoles.assignee.get(conversation)
        if seen and agent is None:
            unassigned += 1
        at = (seen.get(agent) if agent is not None else min(seen.values())) if seen else None
        if at is None:  # never on the assignee's socket: lost, counted as infinitely late
            lost.append(token)
            delivery.append(math.inf)
            by_kind[kind].append(math.inf)
            continue
        if at - start > LOST_AFTER:
            late.append(token)
        delivery.append(at - start)
        by_kind[kind].append(at - start)
        first.append(min(seen.values()) - start)
    rows = [(round(start - t0, 4), kind, token, round(http.get(token, math.nan) * 1000, 1),
             round(((consoles.arrivals.get(token) or {}).get(consoles.assignee.get(consoles.conversation_of.get(token)), math.inf) - start) * 1000, 1),
             consoles.conversation_of.get(token)) for token, (start, kind) in sent.items()
            for t0 in [min(v[0] for v in sent.values())]]
    return {"rows": rows, "requests": len(requests), "accepted": len(sent), "sending_s": sending, "answered_s": answered, "http": list(http.values()),
            "delivery": delivery, "first": first, "by_kind": by_kind, "lost": lost, "late": late, "unassigned": unassigned,
            "errors": errors, "max_lag": max(lags), "client_cpu": client_cpu}


def build_requests(host: str, port: int, rng: random.Random, *, count: int, chat_share: float, chat_tokens: list[str],
                   admin_key: str, senders: list[tuple[str, str]], first_token: int, run: str) -> list[tuple[str, str, bytes]]:
    requests = []
    sender_ids: dict[str, list[str]] = {}
    for n in range(count):
        token = f"tk{first_token + n:07d}"
        if rng.random() < chat_share:
            visitor = rng.choice(chat_tokens)
            body = orjson.dumps({"text": f"{rng.choice(CHAT_TEXTS)} {token}", "clientMessageId": f"cm-{run}-{token}"})
            requests.append((token, "chat", prepared(host, port, "/v1/webchat/messages", "application/json", visitor, body)))
        else:
            sender = rng.choice(senders)
            earlier = sender_ids.setdefault(sender[1], [])
            reply_to = rng.choice(earlier) if earlier and rng.random() < 0.3 else None
            message_id = f"<{token}.{run}@mail.example>"
            earlier.append(message_id)
            body = email_bytes(token, sender, message_id, reply_to, rng)
            requests.append((token, "email", prepared(host, port, "/v1/channels/email/messages", "message/rfc822", admin_key, body)))
    return requests


async def settle(*pids: int | None, limit: float = 60.0) -> None:
    """Wait until the server (and PostgreSQL) use under 5 % of a core over a second."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        before = sum(tree_cpu(p) for p in pids if p)
        await asyncio.sleep(1.0)
        if sum(tree_cpu(p) for p in pids if p) - before < 0.05:
            return
    print(f"(server still busy after {limit:.0f} s)", file=sys.stderr)


async def drive(server: ServerProcess, admin_key: str, write_key: str, args: argparse.Namespace, backend: str, pg: int | None) -> dict:
    rng = random.Random(6)
    host, port = "127.0.0.1", server.port
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as client:
        agents = []
        for n in range(args.agents):
            response = await client.post("/v1/inbox/agents", json={
                "name": f"Агент {n + 1}", "email": f"agent{n + 1}@shop.example", "skills": [], "capacity": 1000, "create_key": True})
            response.raise_for_status()
            agents.append(response.json())
        consoles = Consoles()
        await consoles.connect(f"ws://{host}:{port}", agents)
        for agent in agents:
            response = await client.post(f"/v1/inbox/agents/{agent['id']}/status", json={"status": "online"},
                                         headers={"Authorization": f"Bearer {agent['api_key']}"})
            response.raise_for_status()
        plans = []
        first_token = 0
        for level, rate in enumerate(args.rates):
            count = int(rate * args.seconds)
            chats = int(count * args.chat_share)
            t = time.perf_counter()
            chat_tokens = await open_sessions(client, write_key, max(1, chats // args.messages_per_visitor))
            senders = [(f"Покупатель {level}-{i}", f"buyer{level}-{i}@mail.example") for i in range(args.email_senders)]
            plans.append((rate, build_requests(host, port, rng, count=count, chat_share=args.chat_share, chat_tokens=chat_tokens,
                                               admin_key=admin_key, senders=senders, first_token=first_token, run=f"r{level}")))
            first_token += count
            print(f"[{backend}] {rate}/s: {len(chat_tokens)} chat sessions opened in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    results = []
    try:
        for rate, requests in plans:
            await settle(server.process.pid, pg)  # the previous level's (or the setup's) work done
            pool = Pool(host, port, args.connections)  # fresh: uvicorn closes keep-alive connections idle for 5 s
            await pool.open()
            before, pg_before, frames = tree_cpu(server.process.pid), (tree_cpu(pg) if pg else 0.0), consoles.frames
            busy, wall = machine_busy(), time.perf_counter()
            result = await phase(pool, consoles, requests, rate)
            await pool.close()
            result.update(rate=rate, plan=requests, server_cpu=tree_cpu(server.process.pid) - before,
                          db_cpu=(tree_cpu(pg) - pg_before) if pg else 0.0, frames=consoles.frames - frames)
            wall = time.perf_counter() - wall
            others = machine_busy() - busy - result["server_cpu"] - result["db_cpu"] - result["client_cpu"]
            results.append(result)
            r = result
            if args.dump:
                Path(f"{args.dump}-{backend}-{rate:g}.csv").write_text(
                    "sent_s,kind,token,http_ms,delivery_ms,conversation\n" + "".join(",".join(map(str, row)) + "\n" for row in sorted(r["rows"])))
            print(f"[{backend}] {rate}/s: sent {r['requests']} in {r['sending_s']:.1f} s (answered by {r['answered_s']:.1f} s, "
                  f"generator lag max {r['max_lag'] * 1000:.0f} ms), accepted {r['accepted']}, errors {len(r['errors'])}; "
                  f"HTTP p50 {pct(r['http'], 0.5):.1f} p99 {pct(r['http'], 0.99):.1f} ms; delivery p50 {pct(r['delivery'], 0.5):.1f} "
                  f"p95 {pct(r['delivery'], 0.95):.1f} p99 {pct(r['delivery'], 0.99):.1f} max {pct(r['delivery'], 1.0):.0f} ms "
                  f"(chat p99 {pct(r['by_kind']['chat'], 0.99):.1f}, email p99 {pct(r['by_kind']['email'], 0.99):.1f}; "
                  f"first socket p99 {pct(r['first'], 0.99):.1f}); lost {len(r['lost'])}, late {len(r['late'])}, "
                  f"assignee unknown {r['unassigned']}; frames received {r['frames']:,}; server CPU "
                  f"{r['server_cpu'] / max(r['accepted'], 1) * 1000:.2f} ms/msg + db {r['db_cpu'] / max(r['accepted'], 1) * 1000:.2f}; "
                  f"generator CPU {r['client_cpu'] / max(r['accepted'], 1) * 1000:.2f} ms/msg; over {wall:.0f} s the server used "
                  f"{r['server_cpu'] / wall:.2f} cores, postgres {r['db_cpu'] / wall:.2f}, the generator {r['client_cpu'] / wall:.2f}, "
                  f"other processes {others / wall:.2f}; load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
            if consoles.closed:
                print(f"[{backend}]   sockets closed during the run: {consoles.closed}", file=sys.stderr)
            for error in r["errors"][:5]:
                print(f"[{backend}]   error: {error}", file=sys.stderr)
            if r["lost"]:
                print(f"[{backend}]   lost: {r['lost'][:10]}", file=sys.stderr)
    finally:
        await consoles.close()
    return {"results": results, "sockets": len(agents)}


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    with throwaway_database(backend, "seamline-inbox-realtime") as (url, workdir):
        database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
        with database.write() as session:
            _, admin_key = auth_service.create_api_key(session, name="bench admin", scopes=[Scope.admin])
            _source, write_key = events_service.create_source(session, name="Website", channel="web")
        database.dispose()
        workers = args.workers or (1 if backend == "sqlite" else 2)
        log_path = workdir / "server.log"
        # key=value logs: the JSON formatter drops the tracebacks of uvicorn's own error records
        server = ServerProcess(url, workers=workers, log_path=log_path, env={"SEAMLINE_LOG_JSON": "false", **UNLIMITED}).start()
        print(f"[{backend}] server pid {server.process.pid}, {workers} worker(s), load average {os.getloadavg()}", file=sys.stderr)
        try:
            out = (uvloop.run if uvloop else asyncio.run)(drive(server, admin_key, write_key, args, backend, postgres_pid(url)))
        finally:
            server.stop()
        log = [line for line in log_path.read_text().splitlines() if line.strip()]
    for line in log[:40]:
        print(f"[{backend}] server log: {line[:400]}", file=sys.stderr)
    return {"backend": backend, "workers": workers, "log": log, **out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 300])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--chat-share", type=float, default=0.7)
    parser.add_argument("--messages-per-visitor", type=int, default=7)
    parser.add_argument("--email-senders", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--dump", default="", help="write each message's timings to DUMP-<backend>-<rate>.csv")
    parser.add_argument("--workers", type=int, default=0, help="default: 1 on SQLite, 2 on PostgreSQL")
    args = parser.parse_args()
    results = [run_backend(b, args) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])]

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parent).stdout.strip()
    command = ".venv/bin/python bench/inbox_realtime.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, commit {commit}: `{command.strip()}`\n")
    print("| backend | workers | target msg/s | achieved msg/s | messages (chat / email) | HTTP p50 ms | HTTP p99 ms "
          "| delivery p50 ms | p95 | p99 | max | not delivered within 10 s (never) | errors | server CPU ms/msg (+ postgres) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for res in results:
        for r in res["results"]:
            chats = sum(1 for _, kind, _ in r["plan"] if kind == "chat")
            emails = len(r["plan"]) - chats
            cpu = f"{r['server_cpu'] / max(r['accepted'], 1) * 1000:.1f}" + (
                f" + {r['db_cpu'] / max(r['accepted'], 1) * 1000:.1f}" if res["backend"] == "postgresql" else "")
            print(f"| {res['backend']} | {res['workers']} | {r['rate']:.0f} | {r['requests'] / r['answered_s']:.0f} "
                  f"| {r['requests']:,} ({chats:,} / {emails:,}) | {pct(r['http'], 0.5):.1f} | {pct(r['http'], 0.99):.1f} "
                  f"| {pct(r['delivery'], 0.5):.1f} | {pct(r['delivery'], 0.95):.1f} | {pct(r['delivery'], 0.99):.1f} "
                  f"| {pct(r['delivery'], 1.0):.0f} | {len(r['lost']) + len(r['late'])} ({len(r['lost'])}) | {len(r['errors'])} | {cpu} |")
            failed = failed or bool(r["lost"] or r["late"] or r["errors"])
        failed = failed or bool(res["log"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
