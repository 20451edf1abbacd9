"""Benchmark: profile upserts through the HTTP API, with identifiers that trigger merges.

For each backend (SQLite file in a temp dir, the embedded default; a throwaway PostgreSQL 15 with
fsync on) and each worker count, a fresh database is migrated with `seamline db upgrade`, a
write key made with `seamline apikey create`, and a real `seamline serve --no-migrate` process
started (log level WARNING). This process is the load generator: httpx, async (uvloop), N
concurrent keep-alive connections.

Workload: simulated people, each walking this journey in order (one person's requests are
sequential, many people run at once):

    1. anonymous visit            anonymous_id A1                      new profile
    2. newsletter sign-up         email E                              new profile
    3. logs in on the web         email E + anonymous_id A1            MERGE (A1's profile into E's)
    4. buys in a store            phone P                              new profile
    5. cashier asks for email     phone P + email E                    MERGE
    6. installs the app           anonymous_id A2                      new profile
    7. logs in in the app         email E + anonymous_id A2            MERGE
    8. updates loyalty tier       email E + phone P (already linked)   no merge

so 3 requests in 8 (37.5 %) merge two existing profiles; the share actually seen (response
field `merged_customer_ids` non-empty) is reported, and the database is checked afterwards:
exactly one active profile per person.

For comparison, in the same run: `/healthz` through the same server and client (the HTTP
stack's own cost), and raw SQL on the same backend and schema: one profile + one identity row
per committed transaction, on one connection (the durable-commit rate of the machine).

    .venv/bin/python bench/upsert_http.py --backend both
    .venv/bin/python bench/upsert_http.py --backend postgresql --workers 2 --concurrency 16

Every non-2xx response or transport error is counted and the first ones printed; the server's
log (WARNING and above) is scanned too. Prints markdown tables for bench/README.md on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import text

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.devtools.postgres import PostgresServer

try:
    import uvloop  # installed with uvicorn[standard]; keeps the client's share of the CPU down
except ImportError:  # pragma: no cover
    uvloop = None

SEAMLINE = str(Path(sys.executable).with_name("seamline"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
CITIES = ["Москва", "Санкт-Петербург", "Казань", "London", "Новосибирск", "Manchester"]
NAMES = ["Анна", "Дмитрий", "Olga", "James", "Мария", "Sophie", "Иван", "Oliver"]


# --- the workload ------------------------------------------------------------------------------


def journey(run: str, k: int) -> list[dict]:
    """One person's requests, in order. Values are unique per (run, person)."""
    a1 = {"type": "anonymous_id", "value": f"web-{run}-{k}"}
    a2 = {"type": "anonymous_id", "value": f"app-{run}-{k}"}
    email = {"type": "email", "value": f"Person.{run}.{k}@Example.com"}  # normalized by the server
    phone = {"type": "phone", "value": f"8 (916) {k // 10000 % 1000:03d}-{k // 100 % 100:02d}-{k % 100:02d}"}
    name, city = NAMES[k % len(NAMES)], CITIES[k % len(CITIES)]
    return [
        {"identifiers": [a1], "traits": {"last_page": "/catalog/shoes", "utm_source": "ads"}, "source": "web"},
        {"identifiers": [email], "traits": {"first_name": name, "newsletter": True}, "source": "email"},
        {"identifiers": [email, a1], "traits": {"last_page": "/checkout", "locale": "ru-RU"}, "source": "web"},
        {"identifiers": [phone], "traits": {"city": city, "store": f"store-{k % 7}"}, "source": "pos"},
        {"identifiers": [phone, email], "traits": {"first_name": name, "city": city}, "source": "pos"},
        {"identifiers": [a2], "traits": {"app_version": "3.14.1", "os": "android"}, "source": "app"},
        {"identifiers": [email, a2], "traits": {"push_enabled": True}, "source": "app"},
        {"identifiers": [email, phone], "traits": {"loyalty_tier": "silver"}, "source": "crm"},
    ]


MERGES_PER_JOURNEY = 3
JOURNEY_LENGTH = len(journey("x", 0))


# --- load generator ----------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    merged: int = 0
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    db_cpu: float = 0.0
    machine_cpu: float = 0.0  # every process on the machine, ours included (from /proc/stat)

    @property
    def count(self) -> int:
        return len(self.latencies)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    @property
    def rate(self) -> float:
        return self.count / self.wall


async def drive(base_url: str, key: str, jobs: list[list[tuple[str, str, dict | None]]], concurrency: int) -> Stats:
    """Run `jobs` (each a list of requests done in order) on `concurrency` connections."""
    stats = Stats()
    queue = iter(jobs)
    headers = {"Authorization": f"Bearer {key}"}
    # One client (one keep-alive connection) per simulated connection: a shared httpx pool of 32
    # connections costs the client about twice the CPU per request, CPU the server then lacks.
    clients = [
        httpx.AsyncClient(base_url=base_url, headers=headers, limits=httpx.Limits(max_connections=1), timeout=120)
        for _ in range(concurrency)
    ]
    try:

        async def worker(client: httpx.AsyncClient) -> None:
            for job in queue:
                for method, path, body in job:
                    start = time.perf_counter()
                    try:
                        response = await client.request(method, path, json=body)
                    except httpx.HTTPError as exc:
                        stats.latencies.append(time.perf_counter() - start)
                        stats.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                        continue
                    stats.latencies.append(time.perf_counter() - start)
                    if not 200 <= response.status_code < 300:
                        stats.errors.append(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
                    elif path == "/v1/customers" and response.json()["merged_customer_ids"]:
                        stats.merged += 1

        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(client) for client in clients))
        stats.wall, stats.client_cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        for client in clients:
            await client.aclose()
    return stats


def run_load(base_url: str, key: str, jobs: list, concurrency: int, server_pid: int, db_pid: int | None) -> Stats:
    server0, db0, machine0 = tree_cpu(server_pid), tree_cpu(db_pid) if db_pid else 0.0, machine_cpu()
    stats = (uvloop.run if uvloop else asyncio.run)(drive(base_url, key, jobs, concurrency))
    stats.server_cpu = tree_cpu(server_pid) - server0
    stats.db_cpu = (tree_cpu(db_pid) - db0) if db_pid else 0.0
    stats.machine_cpu = machine_cpu() - machine0
    return stats


def machine_cpu() -> float:
    """CPU seconds spent by the whole machine so far (all CPUs, everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system, own and reaped children's) of a process and its descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(x) for x in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        total += times.get(pid, 0.0)
        frontier.extend(child for child, parent in parents.items() if parent == pid)
    return total


# --- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`seamline serve` in a subprocess, on a migrated database, with a write key."""

    def __init__(self, url: str, workdir: Path, workers: int, log_path: Path):
        self.env = {
            **os.environ,
            "SEAMLINE_DATABASE_URL": url,
            "SEAMLINE_LOG_LEVEL": "WARNING",
            "SEAMLINE_HOST": "127.0.0.1",
        }
        self.workdir, self.workers = workdir, workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        subprocess.run([SEAMLINE, "db", "upgrade"], env=self.env, cwd=workdir, check=True, capture_output=True)
        made = subprocess.run(
            [SEAMLINE, "apikey", "create", "--scope", "write", "--name", "bench"],
            env=self.env, cwd=workdir, check=True, capture_output=True, text=True,
        )
        self.key = made.stdout.splitlines()[0].strip()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [SEAMLINE, "serve", "--no-migrate", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server not ready after 60 s")
        if self.workers > 1:
            time.sleep(3)  # let every worker finish importing before the clock starts

    def stop(self) -> list[str]:
        """Stop the server; return its log lines (WARNING and above: the level it runs at)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return [line for line in self.log_path.read_text().splitlines() if line.strip()]


# --- raw SQL: the machine's durable-commit rate ----------------------------------------------------


def raw_inserts(url: str, rows: int) -> float:
    """Rows/s: one profile + one identity row per committed transaction, one connection, through
    the same engine settings as the service (SQLite: WAL, synchronous=NORMAL)."""
    database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
    connection = database.write_engine.raw_connection()
    try:
        cursor = connection.cursor()
        sqlite = database.is_sqlite
        p = "?" if sqlite else "%s"
        start = time.perf_counter()
        for i in range(rows):
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(
                f"INSERT INTO customer_profile (status, created_at, updated_at) VALUES ('active', {p}, {p}) RETURNING id",
                ("2026-01-01 00:00:00", "2026-01-01 00:00:00"),
            )
            (profile_id,) = cursor.fetchone()
            cursor.execute(
                f"INSERT INTO customer_identity (type, value, profile_id, source, created_at) VALUES ('email', {p}, {p}, 'raw', {p})",
                (f"raw.{i}@example.com", profile_id, "2026-01-01 00:00:00"),
            )
            if sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        return rows / (time.perf_counter() - start)
    finally:
        connection.close()
        database.dispose()


def check_profiles(url: str, people: int) -> str:
    """After the run: every person must have ended up in exactly one active profile."""
    database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
    with database.read() as session:
        active = session.execute(text("SELECT count(*) FROM customer_profile WHERE status = 'active'")).scalar_one()
        holders = session.execute(text("SELECT count(DISTINCT profile_id) FROM customer_identity")).scalar_one()
        identities = session.execute(text("SELECT count(*) FROM customer_identity")).scalar_one()
    database.dispose()
    ok = active == holders == people and identities == 4 * people
    return ("ok" if ok else "MISMATCH") + f" ({active} active profiles, {identities} identities, {people} people)"


# --- one configuration -------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    workers: int
    concurrency: int
    upsert: Stats
    health: Stats
    people: int
    check: str
    log_lines: list[str]
    log_path: Path


def run_config(
    backend: str, url: str, workdir: Path, workers: int, concurrency: int, args: argparse.Namespace, db_pid: int | None
) -> Result:
    log_path = args.log_dir / f"server-{backend}-w{workers}-c{concurrency}.log"
    server = Server(url, workdir, workers, log_path)
    people = math.ceil(args.requests / JOURNEY_LENGTH)
    warm_people = math.ceil(args.warmup / JOURNEY_LENGTH)
    run = f"w{workers}c{concurrency}"
    warm_jobs = [[("POST", "/v1/customers", body) for body in journey(run, k)] for k in range(warm_people)]
    jobs = [
        [("POST", "/v1/customers", body) for body in journey(run, k)]
        for k in range(warm_people, warm_people + people)
    ]
    health_jobs = [[("GET", "/healthz", None)] for _ in range(args.requests)]
    server.start()
    pid = server.process.pid
    try:
        label = f"{backend}, {workers} worker(s), {concurrency} connections"
        print(f"[{label}] warm-up: {len(warm_jobs) * JOURNEY_LENGTH} upserts", file=sys.stderr)
        warm = run_load(server.base_url, server.key, warm_jobs, concurrency, pid, db_pid)
        health = run_load(server.base_url, server.key, health_jobs, concurrency, pid, db_pid)
        print(f"[{label}] /healthz: {health.rate:.0f} req/s, errors {len(health.errors)}", file=sys.stderr)
        print(f"[{label}] measuring: {len(jobs) * JOURNEY_LENGTH} upserts", file=sys.stderr)
        upsert = run_load(server.base_url, server.key, jobs, concurrency, pid, db_pid)
        upsert.errors = warm.errors + upsert.errors  # an error in the warm-up is still an error
        print(
            f"[{label}] upserts: {upsert.rate:.0f} req/s, p99 {upsert.pct(0.99):.1f} ms, errors {len(upsert.errors)}, "
            f"merged {upsert.merged}/{upsert.count}",
            file=sys.stderr,
        )
    finally:
        log_lines = server.stop()
    check = check_profiles(url, warm_people + people)
    print(f"[{label}] profiles: {check}; server log lines (WARNING+): {len(log_lines)}", file=sys.stderr)
    return Result(backend, workers, concurrency, upsert, health, warm_people + people, check, log_lines, log_path)


def cores(stats: Stats) -> str:
    """Cores kept busy on average by the server (all workers), PostgreSQL and the client."""
    parts = [f"server {stats.server_cpu / stats.wall:.2f}"]
    if stats.db_cpu:
        parts.append(f"postgres {stats.db_cpu / stats.wall:.2f}")
    parts.append(f"client {stats.client_cpu / stats.wall:.2f}")
    other = stats.machine_cpu - stats.server_cpu - stats.db_cpu - stats.client_cpu
    parts.append(f"other {max(other, 0) / stats.wall:.2f}")
    return ", ".join(parts)


def cost(stats: Stats) -> str:
    """CPU milliseconds per request: server (all workers) and PostgreSQL."""
    text_ = f"{stats.server_cpu / stats.count * 1000:.1f}"
    if stats.db_cpu:
        text_ += f" + {stats.db_cpu / stats.count * 1000:.1f}"
    return text_


def source_version() -> str:
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" (src/ has uncommitted changes)" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=8_000, help="measured upserts (rounded up to whole journeys)")
    parser.add_argument("--warmup", type=int, default=800, help="upserts before the clock starts")
    parser.add_argument(
        "--concurrency", default="16,32", help="concurrent connections of the load generator, comma-separated list"
    )
    parser.add_argument(
        "--workers", default="1,2", help="server worker processes, comma-separated list (default: 1,2)"
    )
    parser.add_argument("--raw-rows", type=int, default=None, help="rows for the raw SQL baseline (default: --requests)")
    args = parser.parse_args()
    args.log_dir = Path(tempfile.mkdtemp(prefix="seamline-bench-logs-"))
    worker_counts = [int(w) for w in args.workers.split(",")]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    configs = [(w, c) for w in worker_counts for c in concurrencies]
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]

    results: list[Result] = []
    raw: dict[str, float] = {}
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix=f"seamline-bench-{backend}-"))
        server = None
        db_pid = None
        try:
            if backend == "sqlite":
                urls = {(w, c): f"sqlite:///{workdir / f'bench-w{w}-c{c}.db'}" for w, c in configs}
                raw_url = f"sqlite:///{workdir / 'raw.db'}"
            else:
                server = PostgresServer(fsync=True).start()
                db_pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
                urls = {(w, c): server.create_database(f"bench_w{w}_c{c}") for w, c in configs}
                raw_url = server.create_database("raw")
            subprocess.run(
                [SEAMLINE, "db", "upgrade"], env={**os.environ, "SEAMLINE_DATABASE_URL": raw_url},
                cwd=workdir, check=True, capture_output=True,
            )
            rows = args.raw_rows or args.requests
            raw[backend] = raw_inserts(raw_url, rows)
            print(f"[{backend}] raw SQL: {raw[backend]:.0f} committed rows/s ({rows} rows)", file=sys.stderr)
            for workers, concurrency in configs:
                results.append(run_config(backend, urls[workers, concurrency], workdir, workers, concurrency, args, db_pid))
        finally:
            if server:
                server.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    command = ".venv/bin/python bench/upsert_http.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, {os.cpu_count()} CPUs, commit {source_version()}: `{command.strip()}`\n")
    print(
        "| backend | workers | connections | upserts | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | merged "
        "| profiles | CPU ms/req (server + postgres) | cores busy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r.upsert
        print(
            f"| {r.backend} | {r.workers} | {r.concurrency} | {s.count:,} | {s.rate:,.0f} | {s.pct(0.50):.1f} | "
            f"{s.pct(0.95):.1f} | {s.pct(0.99):.1f} | {s.pct(1.0):.0f} | {len(s.errors)} | {s.merged / s.count:.1%} | "
            f"{r.check.split()[0]} | {cost(s)} | {cores(s)} |"
        )
    print("\n| backend | workers | connections | `/healthz` requests | req/s | p50 ms | p99 ms | errors | CPU ms/req (server) | cores busy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r.health
        print(
            f"| {r.backend} | {r.workers} | {r.concurrency} | {s.count:,} | {s.rate:,.0f} | {s.pct(0.50):.1f} | "
            f"{s.pct(0.99):.1f} | {len(s.errors)} | {s.server_cpu / s.count * 1000:.2f} | {cores(s)} |"
        )
    print("\n| backend | raw SQL: 1 profile + 1 identity per commit, 1 connection |")
    print("|---|---|")
    for backend, rate in raw.items():
        print(f"| {backend} | {rate:,.0f} rows/s |")

    failed = False
    for r in results:
        errors = r.upsert.errors + r.health.errors
        if errors or r.log_lines or not r.check.startswith("ok"):
            failed = True
            print(f"\n## problems: {r.backend}, {r.workers} worker(s), {r.concurrency} connections", file=sys.stderr)
            print(f"profiles: {r.check}", file=sys.stderr)
            print(f"{len(errors)} errors; first ones:", file=sys.stderr)
            for line in errors[:10]:
                print("  " + line, file=sys.stderr)
            print(f"{len(r.log_lines)} server log lines (all in {r.log_path}); first ones:", file=sys.stderr)
            for line in r.log_lines[:10]:
                print("  " + line[:1000], file=sys.stderr)
    if not failed:
        shutil.rmtree(args.log_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
