"""Benchmark: balance reads through `GET /v1/customers/{id}/loyalty/balance`.

Setup (not timed): `--customers` active profiles, each with a loyalty account, and the ledger
of `--orders` orders among them made by the generator of `loyalty_rebuild.py` (earnings,
releases, redemptions, returns, restores, expiries over two years; a handful of entries per
customer, skewed), bulk-loaded; then `seamline loyalty rebuild` derives lots and totals, tiers
are marked evaluated now and the loyalty jobs are run once (nothing is left due, as on a live
system whose jobs run every 5 minutes). `--other-profiles` adds profiles without an account
(visitors who never joined): the profile table a customer's lookup searches grows.

Measured on a real `seamline serve --workers 2` (the machine's two cores, shared with this load
generator) with a read-scope key: `--requests` balance reads of random customers with 1, 8 and
32 connections (keep-alive, closed loop, after a warm-up: with 1 a request's own latency, with
more the server is saturated and latency is mostly queueing), and `/healthz` the same way: the
HTTP stack's own floor through the same server and client. Server CPU per request (server and workers, from
/proc; plus PostgreSQL's processes) is steadier than the rate on this shared machine.

Afterwards a sample of customers is read again one by one and compared with the database: the
account, its customer, points = `points_available` (+ earnings whose hold ran out, none here),
pending, wallet, tier and tier spend.

    .venv/bin/python bench/loyalty_balance.py --backend both
    .venv/bin/python bench/loyalty_balance.py --backend postgresql --customers 100000 --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import Stats, throwaway_database, tree_cpu
from loyalty_rebuild import generate, load, settle

from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from seamline.core.db import Database, DriverSQL
from seamline.core.time import utcnow
from seamline.devtools.serve import ServerProcess
from seamline.loyalty import ledger, tasks
from seamline.loyalty.rebuild import rebuild_accounts

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


async def _get(url: str, headers: dict[str, str], paths: list[str], connections: int) -> Stats:
    """`_load.drive` for GET requests: N raw keep-alive HTTP/1.1 connections, requests prepared
    before the clock starts, answers read by Content-Length."""
    stats = Stats()
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    common = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
    prepared = [f"GET {path} HTTP/1.1\r\n{common}\r\n".encode() for path in paths]
    queue = iter(prepared)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for data in queue:
                start = time.perf_counter()
                try:
                    writer.write(data)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head[9:12])
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    body = await reader.readexactly(length)
                    stats.statuses[status] = stats.statuses.get(status, 0) + 1
                    if status != 200:
                        stats.errors.append(f"{status}: {body[:300].decode(errors='replace')}")
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    stats.errors.append(f"{type(exc).__name__}: {exc}")
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                stats.latencies.append(time.perf_counter() - start)
        finally:
            writer.close()

    start, cpu = time.perf_counter(), time.process_time()
    try:
        await asyncio.gather(*(worker() for _ in range(connections)))
    finally:
        stats.wall, stats.client_cpu = time.perf_counter() - start, time.process_time() - cpu
    return stats


def drive_get(url: str, headers: dict[str, str], paths: list[str], connections: int) -> Stats:
    return (uvloop.run if uvloop else asyncio.run)(_get(url, headers, paths, connections))


def postgres_pid(url: str) -> int | None:
    """The postmaster of the throwaway PostgreSQL serving `url` (for its CPU), if any."""
    port = urlsplit(url.replace("postgresql+psycopg", "postgresql")).port
    if port is None:
        return None
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/postgres") and b"-p" in argv[1:] and f"-p {port} ".encode() in b" ".join(argv) + b" ":
            return int(proc.name)
    return None


def build(database: Database, customers: int, orders: int, other_profiles: int) -> dict:
    """Profiles, accounts and their ledger; lots and totals derived by the rebuild (not timed)."""
    t = time.perf_counter()
    led = generate(orders, customers, now=datetime.now(UTC))
    load(database, led, profiles=True)
    if other_profiles:
        now = utcnow()
        with database.bulk_write() as session:
            cursor = session.connection().connection.dbapi_connection.cursor()
            stamp = now if database.dialect == "postgresql" else now.strftime("%Y-%m-%d %H:%M:%S.%f")
            rows = [(customers + i, "active", stamp, stamp) for i in range(1, other_profiles + 1)]
            if database.dialect == "postgresql":
                with cursor.copy("COPY customer_profile (id, status, created_at, updated_at) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute("SELECT setval(pg_get_serial_sequence('customer_profile', 'id'), (SELECT max(id) FROM customer_profile))")
            else:
                cursor.executemany("INSERT INTO customer_profile (id, status, created_at, updated_at) VALUES (?, ?, ?, ?)", rows)
    settle(database)
    report = rebuild_accounts(database)
    with database.write() as session:  # tiers as the daily job leaves them
        sql = DriverSQL(session)
        sql.execute("UPDATE loyalty_account SET tier_evaluated_at = ?", (sql.time(utcnow()),))
    jobs = tasks.run_due(database)
    settle(database)
    with database.read() as session:
        problems = ledger.check(session)
    if problems:
        raise RuntimeError(f"ledger check after setup: {problems[:3]}")
    counts = led.counts()
    print(f"setup: {len(led):,} entries {counts}, {report.lots:,} lots, rebuild {report.seconds}, jobs {jobs}, "
          f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
    return {"entries": len(led), "lots": report.lots}


def verify(database: Database, base_url: str, key: str, sample: list[int]) -> list[str]:
    """Each sampled customer's balance through HTTP against the account row and its due lots."""
    wrong = []
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        answers = {c: client.get(f"/v1/customers/{c}/loyalty/balance") for c in sample}
    with database.read() as session:
        sql = DriverSQL(session)
        now = sql.time(utcnow())
        for customer, response in answers.items():
            if response.status_code != 200:
                wrong.append(f"{customer}: {response.status_code} {response.text[:200]}")
                continue
            got = response.json()
            row = sql.execute("SELECT id, profile_id, points_available, points_pending, wallet_balance, tier, tier_spend "
                              "FROM loyalty_account WHERE profile_id = ?", (customer,)).fetchone()
            due = sql.execute("SELECT COALESCE(SUM(remaining), 0) FROM loyalty_lot WHERE account_id = ? AND state = 'pending' "
                              "AND available_at <= ?", (row[0], now)).fetchone()[0]
            expected = {"account_id": row[0], "customer_id": row[1], "points": row[2] + int(due), "pending": row[3] - int(due),
                        "points_value": max(row[2] + int(due), 0) * 100, "currency": "RUB", "wallet": row[4],
                        "tier": row[5], "tier_spend": row[6]}
            if got != expected:
                wrong.append(f"{customer}: got {got}, expected {expected}")
    return wrong


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    with throwaway_database(backend, "seamline-loyalty-balance") as (url, workdir):
        database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
        built = build(database, args.customers, args.orders, args.other_profiles)
        with database.write() as session:
            _, key = auth_service.create_api_key(session, name="bench", scopes=[Scope.read])
        rng = random.Random(11)
        log_path = workdir / "server.log"
        server = ServerProcess(url, workers=args.workers, log_path=log_path).start()
        pg = postgres_pid(url)
        headers = {"Authorization": f"Bearer {key}"}
        runs = {}
        try:
            warm = drive_get(server.base_url, headers,
                             [f"/v1/customers/{rng.randint(1, args.customers)}/loyalty/balance" for _ in range(2000)], 8)
            for connections in args.connections:
                for name in ("healthz", "balance"):
                    paths = (["/healthz"] * args.requests if name == "healthz" else
                             [f"/v1/customers/{rng.randint(1, args.customers)}/loyalty/balance" for _ in range(args.requests)])
                    before, pg_before = tree_cpu(server.process.pid), (tree_cpu(pg) if pg else 0.0)
                    stats = drive_get(server.base_url, headers, paths, connections)
                    stats.server_cpu = tree_cpu(server.process.pid) - before
                    db_cpu = (tree_cpu(pg) - pg_before) if pg else 0.0
                    runs[(name, connections)] = (stats, db_cpu)
                    print(f"[{backend}] {name}, {connections} connections: {len(stats.latencies) / stats.wall:,.0f} req/s, "
                          f"p50 {stats.pct(0.5):.2f} ms, p99 {stats.pct(0.99):.2f} ms, errors {len(stats.errors)}", file=sys.stderr)
            wrong = verify(database, server.base_url, key, rng.sample(range(1, args.customers + 1), args.verify))
        finally:
            server.stop()
        database.dispose()
        log = [line for line in log_path.read_text().splitlines() if line.strip()]
    return {"backend": backend, "built": built, "runs": runs, "warm": warm, "wrong": wrong, "log": log}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=500_000)
    parser.add_argument("--other-profiles", type=int, default=0)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verify", type=int, default=300, help="customers read again and compared with the database")
    args = parser.parse_args()
    results = [run_backend(b, args) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])]

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parent).stdout.strip()
    command = ".venv/bin/python bench/loyalty_balance.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, commit {commit}: `{command.strip()}`\n")
    print("| backend | customers (+ other profiles) | entries | lots | connections | balance req/s | p50 ms | p99 ms | max ms "
          "| errors | server CPU ms/req (+ postgres) | `/healthz` req/s | `/healthz` p50 / p99 ms | `/healthz` CPU ms/req "
          "| sample checked |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for res in results:
        for connections in args.connections:
            s, db = res["runs"][("balance", connections)]
            h, _ = res["runs"][("healthz", connections)]
            n, hn = len(s.latencies), len(h.latencies)
            cpu = f"{s.server_cpu / n * 1000:.2f}" + (f" + {db / n * 1000:.2f}" if res["backend"] == "postgresql" else "")
            print(f"| {res['backend']} | {args.customers:,} (+ {args.other_profiles:,}) | {res['built']['entries']:,} "
                  f"| {res['built']['lots']:,} | {connections} | {n / s.wall:,.0f} | {s.pct(0.5):.2f} | {s.pct(0.99):.2f} "
                  f"| {s.pct(1.0):.1f} | {len(s.errors)} | {cpu} | {hn / h.wall:,.0f} | {h.pct(0.5):.2f} / {h.pct(0.99):.2f} "
                  f"| {h.server_cpu / hn * 1000:.2f} | {args.verify - len(res['wrong'])}/{args.verify} ok |")
        errors = [e for (stats, _) in res["runs"].values() for e in stats.errors] + res["warm"].errors
        if errors or res["wrong"] or res["log"]:
            failed = True
            print(f"problems ({res['backend']}): {errors[:3]} {res['wrong'][:3]} log={res['log'][:5]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
