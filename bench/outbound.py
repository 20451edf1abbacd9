"""Benchmark: outbound messages on the job queue (issue 19): a campaign's backlog drains at the
channel's rate limit, and messages that matter now go before it.

For each backend (a SQLite file, the embedded default; a throwaway PostgreSQL 15 with fsync on),
one fresh migrated database, a fake Telegram Bot API on loopback (answers `sendMessage` at once
and records when each text arrived) and this one process, which enqueues and runs the worker
(`seamline.runtime.build(settings).worker(...)`: the app's own queues and tasks, the
`outbound.telegram` queue with `--concurrency` threads, periodic tasks off). `--people` people
with a Telegram id and marketing consent (written through `customers.service`, not timed).

1. **Unlimited**: `--backlog` N service messages (`inbox.outbound.send`, one per person in
   turn) enqueued in transactions of 500, the Telegram rate limit set far above what the
   machine can do; the worker drains them. Sends per second: the send path's own ceiling on
   this machine (two transactions per message around the provider's answer, plus claiming).
2. **Rate limited, with priorities**: the limit set to `--rate` per second; N marketing
   messages (priority `bulk`) enqueued the same way; the worker starts; after 2 s, `--urgent`
   service messages (priority `high`: a pickup code, an agent's reply) are enqueued one per
   transaction at random moments 0-0.3 s apart. Reported: how close the drain came to the
   limit (N / rate seconds is the ideal, less the one-second burst), the most sends the
   provider saw in any one-second window (the bucket allows the rate plus its one-second
   burst), job runs per message (claims do not repeat: a job waits unclaimed until the limit
   lets it go), and each urgent message's latency from its commit to the provider.

    .venv/bin/python bench/outbound.py --backend both
    .venv/bin/python bench/outbound.py --backend sqlite --backlog 1000 --rate 50

Prints a markdown table for bench/README.md on stdout, details on stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database  # noqa: E402

from seamline.core.config import Settings  # noqa: E402
from seamline.customers import service as customers_service  # noqa: E402
from seamline.customers.schemas import ConsentIn, CustomerUpsert, IdentifierIn  # noqa: E402
from seamline.inbox import outbound  # noqa: E402
from seamline.runtime import Runtime, build  # noqa: E402

TOKEN, QUEUE = "123456:bench-token", "outbound.telegram"


class FakeBotApi:
    """Telegram's sendMessage on loopback: answers at once, records (monotonic time, text)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real API
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

            def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with api.lock:
                    api.arrivals.append((time.monotonic(), body["text"]))
                    n = len(api.arrivals)
                data = json.dumps({"ok": True, "result": {"message_id": n, "chat": {"id": body["chat_id"]},
                                                          "date": int(time.time()), "text": body["text"]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def people(runtime: Runtime, count: int) -> list[int]:
    consent = [ConsentIn(channel="telegram", purpose="marketing", granted=True)]
    ids = []
    with runtime.database.write() as session:
        for n in range(count):
            data = CustomerUpsert(identifiers=[IdentifierIn(type="telegram_id", value=str(700000000 + n))], consents=consent)
            ids.append(customers_service.upsert_customer(session, rules=runtime.identifier_rules, data=data).resolution.profile_id)
    return ids


def enqueue(runtime: Runtime, customers: list[int], count: int, *, purpose: str, label: str) -> float:
    started = time.perf_counter()
    for start in range(0, count, 500):
        with runtime.database.write() as session:
            for n in range(start, min(count, start + 500)):
                outbound.send(session, settings=runtime.settings, customer_id=customers[n % len(customers)],
                              text=f"{label} {n}", channel="telegram", purpose=purpose)
    return count / (time.perf_counter() - started)


def wait_for(api: FakeBotApi, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while api.count() < total and time.monotonic() < deadline:
        time.sleep(0.05)
    if api.count() < total:
        raise SystemExit(f"only {api.count()} of {total} messages arrived in {timeout:.0f} s")


def busiest_second(times: list[float]) -> int:
    times, most, left = sorted(times), 0, 0
    for right, at in enumerate(times):
        while at - times[left] >= 1.0:
            left += 1
        most = max(most, right - left + 1)
    return most


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    say = lambda text: print(f"[{backend}] {text}", file=sys.stderr)  # noqa: E731
    api = FakeBotApi()
    try:
        with throwaway_database(backend, "seamline-bench-outbound") as (url, _workdir):
            for step, rate in (("unlimited", 1_000_000.0), ("limited", args.rate)):
                settings = Settings(_env_file=None, database_url=url, log_level="WARNING", inbox_telegram_bot_token=TOKEN,
                                    inbox_telegram_api_base=api.url, inbox_rate_limits={"telegram": rate},
                                    worker_concurrency=args.concurrency)
                runtime = build(settings)
                runs: Counter[str] = Counter()
                runtime.job_observer = lambda queue, _task, outcome, _seconds: runs.update([outcome]) if queue == QUEUE else None
                customers = out.get("customers") or people(runtime, args.people)
                out["customers"] = customers
                before = api.count()
                purpose, label = ("service", "Заказ") if step == "unlimited" else ("marketing", "Скидки")
                out[f"{step}_enqueue"] = enqueue(runtime, customers, args.backlog, purpose=purpose, label=label)
                worker = runtime.worker(queues={QUEUE: args.concurrency}, periodic=False).start()
                started = time.monotonic()
                urgent_at: dict[str, float] = {}
                if step == "limited":
                    time.sleep(2.0)
                    rng = random.Random(19)
                    for n in range(args.urgent):
                        text = f"Код выдачи {n}"
                        with runtime.database.write() as session:
                            outbound.send(session, settings=settings, customer_id=customers[n], text=text, channel="telegram")
                        urgent_at[text] = time.monotonic()
                        time.sleep(rng.uniform(0, 0.3))
                total = before + args.backlog + len(urgent_at)
                wait_for(api, total, timeout=args.backlog / min(rate, 50) + 120)
                worker.stop()
                runtime.close()
                arrivals = api.arrivals[before:]
                wall = max(at for at, _ in arrivals) - started
                out[step] = {"wall": wall, "per_s": len(arrivals) / wall, "busiest": busiest_second([at for at, _ in arrivals]),
                             "runs": dict(runs), "latency": [at - urgent_at[text] for at, text in arrivals if text in urgent_at]}
                say(f"{step}: {len(arrivals):,} messages in {wall:.1f} s = {len(arrivals) / wall:,.1f}/s "
                    f"(limit {rate:g}/s); busiest second {out[step]['busiest']}; job outcomes {dict(runs)}; "
                    f"enqueue {out[f'{step}_enqueue']:,.0f} messages/s")
                if urgent_at:
                    lat = out[step]["latency"]
                    say(f"urgent messages behind the backlog: n {len(lat)}, p50 {pct(lat, 0.5) * 1000:.0f} ms, "
                        f"max {max(lat) * 1000:.0f} ms")
    finally:
        api.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--urgent", type=int, default=20)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    results = [run_backend(b, args) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])]
    print(f"\n{args.backlog:,} messages, {args.concurrency} send threads, limit {args.rate:g}/s in step 2\n")
    print("| backend | unlimited: sends/s | limited: sends/s (ideal) | busiest second | job runs per message | urgent latency p50 / max |")
    print("|---|---|---|---|---|---|")
    ideal = args.rate * (args.backlog + args.urgent) / (args.backlog + args.urgent - args.rate)
    for r in results:
        limited = r["limited"]
        runs = sum(limited["runs"].values()) / (args.backlog + args.urgent)
        print(f"| {r['backend']} | {r['unlimited']['per_s']:,.0f} | {limited['per_s']:,.1f} ({ideal:,.1f}) | {limited['busiest']} "
              f"| {runs:.2f} | {pct(limited['latency'], 0.5) * 1000:,.0f} / {max(limited['latency']) * 1000:,.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
