"""Benchmark: event ingestion through `POST /v1/batch`, against the machine's own limits.

For each backend (SQLite file, the embedded default; a throwaway PostgreSQL 15, fsync on), a
fresh migrated database, a tracking source, and one `seamline serve` process (one worker).
This process is the load generator: asyncio + httpx, `--connections` keep-alive connections,
bodies serialized before the clock starts.

Workload: batches of 100 realistic events (~0.8 KB each, with context.page / userAgent /
campaign / library), from a mix of people: 60 % from `--known` logged-in people (userId +
anonymousId, identified during the warm-up; page 45 %, track 35 %, screen 12 %, identify 8 %
repeating their traits), 40 % from `--anonymous` visitors (page, track, screen; 1 % of their
events are a first login: an identify with a new userId and email, which creates a profile
and merges the visitor's anonymous id into it).

In the same run, the limits of this machine for the same work:
- raw insert: the same rows (same columns, same JSON text) inserted with `executemany` in
  transactions of 100 on one connection, into the same schema: the database's limit;
- null server: a minimal ASGI app under the same uvicorn that reads each batch, parses its
  JSON and answers `{"success": true}` without storing: the HTTP stack's limit.

    .venv/bin/python bench/ingest_http.py --backend both
    .venv/bin/python bench/ingest_http.py --backend sqlite --batches 600 --connections 8

Every non-2xx answer is an error and is printed; the stored count is checked afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text

from seamline.core import migrations
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.devtools.postgres import PostgresServer
from seamline.devtools.serve import ServerProcess, free_port
from seamline.events import service as events_service
from seamline.events.ingest import person_key

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

PAGES = ["/", "/catalog/face", "/catalog/face/creams", "/p/cream-50", "/p/serum-30", "/cart", "/checkout", "/stores"]
EVENTS = ["Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Order Completed", "Store Selected"]
UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"


def make_event(rng: random.Random, now: datetime, known: int, anonymous: int, run: str, seq: int) -> dict:
    if rng.random() < 0.6:
        k = rng.randrange(known)
        ids = {"userId": f"user-{k}", "anonymousId": f"anon-known-{k}"}
    else:
        k = rng.randrange(anonymous)
        ids = {"anonymousId": f"anon-{run}-{k}"}
    path = rng.choice(PAGES)
    context = {
        "library": {"name": "seamline.js", "version": "1.0.0"},
        "page": {"path": path, "url": f"https://shop.example{path}", "referrer": "https://www.google.com/",
                 "title": "Крем для лица — Shop", "search": "?utm_source=newsletter"},
        "userAgent": UA,
        "locale": "ru-RU",
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "campaign": {"source": "newsletter", "medium": "email", "name": "winter-sale"},
    }
    if "userId" in ids:  # logged in: identify now and then, repeating what is known
        kind = rng.choices(["page", "track", "screen", "identify"], weights=[45, 35, 12, 8])[0]
    else:  # anonymous: browsing; 1 % of their events are a first login, which merges
        kind = rng.choices(["page", "track", "screen", "identify"], weights=[45, 40, 14, 1])[0]
        if kind == "identify":
            ids["userId"] = f"new-{ids['anonymousId']}-{seq}"
    event = {"type": kind, "messageId": f"{run}-{seq}", "timestamp": (now - timedelta(seconds=rng.random() * 5)).isoformat(),
             "context": context, **ids}
    if kind == "page":
        event.update(name="Product", properties={"path": path, "url": context["page"]["url"], "title": "Крем"})
    elif kind == "screen":
        event.update(name="Cart", properties={"items": rng.randrange(1, 5)})
    elif kind == "track":
        event.update(event=rng.choice(EVENTS), properties={
            "sku": f"SKU-{rng.randrange(5000)}", "price": rng.randrange(199, 9999), "currency": "RUB",
            "quantity": rng.randrange(1, 3), "category": "face/creams"})
    else:
        person = ids.get("userId") or ids["anonymousId"]
        event["traits"] = {"email": f"{person}@example.com", "first_name": "Анна", "city": "Москва"}
    return event


def make_batches(count: int, size: int, known: int, anonymous: int, run: str, seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    return [[make_event(rng, now, known, anonymous, run, b * size + i) for i in range(size)] for b in range(count)]


# --- load generator ----------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else float("nan")


async def _drive(url: str, key: str, bodies: list[bytes], connections: int) -> Stats:
    stats = Stats()
    queue = iter(bodies)
    clients = [
        httpx.AsyncClient(base_url=url, auth=(key, ""), limits=httpx.Limits(max_connections=1), timeout=120,
                          headers={"Content-Type": "application/json"})
        for _ in range(connections)
    ]

    async def worker(client: httpx.AsyncClient) -> None:
        for body in queue:
            start = time.perf_counter()
            try:
                response = await client.post("/v1/batch", content=body)
                if response.status_code != 200:
                    stats.errors.append(f"{response.status_code}: {response.text[:300]}")
            except httpx.HTTPError as exc:
                stats.errors.append(f"{type(exc).__name__}: {exc}")
            stats.latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        stats.wall = time.perf_counter() - start
        for client in clients:
            await client.aclose()
    return stats


def drive(url: str, key: str, bodies: list[bytes], connections: int) -> Stats:
    return (uvloop.run if uvloop else asyncio.run)(_drive(url, key, bodies, connections))


# --- the machine's limits ------------------------------------------------------------------------


NULL_APP = '''
import orjson
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if body:
        orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"success":true}'})
'''


def null_server_rate(bodies: list[bytes], connections: int, workdir: Path) -> Stats:
    (workdir / "null_app.py").write_text(NULL_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "null_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=workdir, start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        before = process_cpu(process.pid)
        stats = drive(f"http://127.0.0.1:{port}", "x", bodies, connections)
        stats.server_cpu = process_cpu(process.pid) - before
        return stats
    finally:
        process.terminate()
        process.wait()


def raw_insert_rate(url: str, batches: list[list[dict]]) -> float:
    """Events/s: the same rows, executemany in transactions of one batch, one connection."""
    database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
    with database.write() as session:
        source, _ = events_service.create_source(session, name="raw", channel="web")
        source_id = source.id
    sqlite = database.is_sqlite
    mark = "?" if sqlite else "%s"
    sql = (
        "INSERT INTO event_record (source_id, message_id, type, name, anonymous_id, user_id, person, channel, timestamp, "
        f"received_at, payload) VALUES ({', '.join([mark] * 11)}) ON CONFLICT (source_id, message_id) DO NOTHING"
    )
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    prepared = [
        [(source_id, e["messageId"], e["type"], e.get("event") or e.get("name"), e.get("anonymousId"), e.get("userId"),
          person_key(user_id=e.get("userId"), anonymous_id=e.get("anonymousId")), "web", stamp, stamp,
          orjson.dumps(e).decode()) for e in batch]
        for batch in batches
    ]
    connection = database.write_engine.raw_connection()
    try:
        cursor = connection.cursor()
        start = time.perf_counter()
        for rows in prepared:
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, rows)
            if sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
        database.dispose()
    return sum(len(b) for b in batches) / elapsed


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used: steadier than a rate on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backlog_of(database: Database) -> int:
    with database.read() as session:
        return events_service.identity_work_backlog(session)


def wait_for_identity_work(database: Database, timeout: float = 600) -> float:
    """Seconds until the server has applied all queued identity work."""
    start = time.perf_counter()
    while backlog_of(database) and time.perf_counter() - start < timeout:
        time.sleep(0.05)
    return time.perf_counter() - start


# --- one backend ---------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, null: Stats | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"seamline-ingest-{backend}-"))
    pg = None
    try:
        if backend == "sqlite":
            url, raw_url = f"sqlite:///{workdir / 'bench.db'}", f"sqlite:///{workdir / 'raw.db'}"
        else:
            pg = PostgresServer(fsync=True).start()
            url, raw_url = pg.create_database("bench"), pg.create_database("raw")
        migrations.upgrade(url)
        migrations.upgrade(raw_url)
        database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
        with database.write() as session:
            _, key = events_service.create_source(session, name="Website", channel="web")

        run = backend[:2]
        # Warm-up: every known person identifies once (userId + anonymousId + email), then load.
        warm = [[{"type": "identify", "messageId": f"warm-{k}", "userId": f"user-{k}", "anonymousId": f"anon-known-{k}",
                  "traits": {"email": f"user-{k}@example.com"}} for k in range(start, min(start + 100, args.known))]
                for start in range(0, args.known, 100)]
        batches = make_batches(args.batches, args.batch_size, args.known, args.anonymous, run, seed=1)
        bodies = [orjson.dumps({"batch": b, "sentAt": datetime.now(timezone.utc).isoformat()}) for b in batches]
        warm_bodies = [orjson.dumps({"batch": b}) for b in warm]
        avg_event = sum(len(b) for b in bodies) / (args.batches * args.batch_size)

        server = ServerProcess(url, workers=1, log_path=workdir / "server.log").start()
        try:
            warm_stats = drive(server.base_url, key, warm_bodies, args.connections)
            wait_for_identity_work(database)
            cpu_before = process_cpu(server.process.pid)
            stats = drive(server.base_url, key, bodies, args.connections)
            backlog = backlog_of(database)
            drain = wait_for_identity_work(database)
            server_cpu = process_cpu(server.process.pid) - cpu_before
        finally:
            server.stop()
        with database.read() as session:
            stored = session.execute(text("SELECT count(*) FROM event_record")).scalar_one()
            profiles = session.execute(text("SELECT count(*) FROM customer_profile WHERE status = 'active'")).scalar_one()
        database.dispose()
        raw = raw_insert_rate(raw_url, batches)
        log_lines = [line for line in (workdir / "server.log").read_text().splitlines() if line.strip()]
        events = args.batches * args.batch_size
        return {
            "backend": backend, "stats": stats, "errors": warm_stats.errors + stats.errors, "events": events,
            "stored_ok": stored == events + len(sum(warm, [])), "stored": stored, "profiles": profiles,
            "raw": raw, "null": null, "avg_event": avg_event, "log": log_lines, "backlog": backlog, "drain": drain, "server_cpu": server_cpu,
        }
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def source_version() -> str:
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=repo, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return commit + (" (src/ has uncommitted changes)" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--batches", type=int, default=1000, help="measured batches")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--known", type=int, default=2000, help="logged-in people (identified in the warm-up)")
    parser.add_argument("--anonymous", type=int, default=20000, help="anonymous visitors")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="seamline-ingest-null-"))
    try:
        sample = make_batches(args.batches, args.batch_size, args.known, args.anonymous, "null", seed=1)
        null = null_server_rate([orjson.dumps({"batch": b}) for b in sample], args.connections, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    null_rate = args.batches * args.batch_size / null.wall
    null_cpu = null.server_cpu / (args.batches * args.batch_size) * 1e6
    print(f"null server: {null_rate:,.0f} events/s, {null_cpu:.0f} µs CPU/event", file=sys.stderr)

    results = []
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        result = run_backend(backend, args, null)
        rate = result["events"] / result["stats"].wall
        print(f"[{backend}] {rate:,.0f} events/s, p99 {result['stats'].pct(0.99):.1f} ms, raw {result['raw']:,.0f}/s, "
              f"errors {len(result['errors'])}, stored ok {result['stored_ok']}", file=sys.stderr)
        results.append(result)

    command = ".venv/bin/python bench/ingest_http.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, {os.cpu_count()} CPUs, commit {source_version()}: `{command.strip()}`\n")
    print("| backend | events | avg event | events/s | batch p50 ms | p99 ms | max ms | errors | stored | identity backlog at end (batches) | caught up after s | server CPU µs/event | raw executemany, events/s | null server, events/s | null server CPU µs/event | ingestion / raw | ingestion / null server |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["stats"]
        rate = r["events"] / s.wall
        print(
            f"| {r['backend']} | {r['events']:,} | {r['avg_event']:.0f} B | {rate:,.0f} | {s.pct(0.5):.1f} | {s.pct(0.99):.1f} "
            f"| {s.pct(1.0):.0f} | {len(r['errors'])} | {'ok' if r['stored_ok'] else 'MISMATCH'} ({r['stored']:,}) "
            f"| {r['backlog']} | {r['drain']:.1f} | {r['server_cpu'] / r['events'] * 1e6:.0f} "
            f"| {r['raw']:,.0f} | {null_rate:,.0f} | {null_cpu:.0f} | {rate / r['raw']:.0%} | {rate / null_rate:.0%} |"
        )
    failed = False
    for r in results:
        if r["errors"] or not r["stored_ok"] or r["log"]:
            failed = True
            print(f"\n## problems ({r['backend']}): {len(r['errors'])} errors; log lines {len(r['log'])}", file=sys.stderr)
            for line in (r["errors"][:5] + r["log"][:10]):
                print("  " + line[:500], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
