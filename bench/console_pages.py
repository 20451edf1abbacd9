"""Benchmark: the first run and the staff console's pages (issue 8).

1. The first run: `fill_demo` (what `seamline demo` does before serving: 200 customers, the
   catalog, stock, loyalty, 161 orders, 25 conversations, staff) on a fresh database; the issue
   asks for a populated console within a minute on a fresh machine.
2. Console pages on that database, through a real `seamline serve --workers 2`, signed in as the
   demo's agent (the store screen as its clerk), one request at a time (keep-alive), after warm-up:
   the inbox with a conversation and the customer 360 beside it, the queue list, a customer's
   360 page, a search by a phone typed in part, an order, the clerk's store screen, the
   dashboard; and `/healthz` through the same server and client, the HTTP stack's own floor.

    .venv/bin/python bench/console_pages.py --backend both
    .venv/bin/python bench/console_pages.py --backend sqlite --requests 300
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.demo import STORES, fill_demo
from seamline.devtools.serve import ServerProcess


def sign_in(base: str, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/console/login", data={"email": email, "password": password, "csrf": token})
    assert answer.status_code in (200, 303), answer.text[:300]
    return client


def timed(client: httpx.Client, paths: list[str], requests: int) -> list[float]:
    for path in paths[:20]:  # warm-up
        client.get(path)
    out = []
    for i in range(requests):
        path = paths[i % len(paths)]
        start = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return out


def row(backend: str, name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"| {backend} | {name} | {statistics.median(ms):.1f} | {p(0.95):.1f} | {p(0.99):.1f} |"


def run(backend: str, requests: int) -> list[str]:
    rows = []
    with throwaway_database(backend, "console-bench") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING",
                            blocked_extra_values=[s.phone for s in STORES if s.phone])
        database = Database(settings)
        start = time.perf_counter()
        summary = fill_demo(settings, customers=200, database=database)
        fill = time.perf_counter() - start
        database.dispose()
        print(f"{backend}: fill_demo {fill:.1f} s: {summary['customers']} customers, {sum(summary['orders_by_status'].values())} "
              f"orders, {summary['conversations']} conversations", file=sys.stderr)
        rows.append(f"| {backend} | first run: `fill_demo` (200 customers, 161 orders, 25 conversations) | {fill:.1f} s | | |")
        server = ServerProcess(url, workers=2).start()
        try:
            base = server.base_url
            agent = sign_in(base, "agent@demo.seamline", "agent-demo")
            clerk = sign_in(base, "clerk@demo.seamline", "clerk-demo")
            queue = agent.get("/console/inbox?view=open").text
            conversations = sorted({int(x) for x in re.findall(r'data-test="conversation-(\d+)"', queue)})
            customers = re.findall(r'href="/console/customers/(\d+)"', agent.get("/console/customers?q=%2B7").text)
            orders = re.findall(r'href="/console/orders/(\d+)"', agent.get("/console/orders").text)
            random.seed(8)
            floor = timed(agent, ["/healthz"], requests)
            rows.append(row(backend, "`/healthz` (the HTTP floor)", floor))
            pages = {
                "inbox: a conversation with the customer 360": [f"/console/inbox/{c}" for c in conversations],
                "inbox: the open conversations list": ["/console/inbox/list?view=open"],
                "customer 360 page": [f"/console/customers/{c}" for c in customers[:50]],
                "search: a phone typed in part (`8 916`)": ["/console/customers?q=8%20916"],
                "order page": [f"/console/orders/{o}" for o in orders[:50]],
                "dashboard": ["/console/dashboard"],
            }
            for name, paths in pages.items():
                random.shuffle(paths)
                rows.append(row(backend, name, timed(agent, paths, requests)))
            rows.append(row(backend, "store screen (clerk)", timed(clerk, ["/console/store"], requests)))
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print("| backend | what | p50 ms (or time) | p95 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        for line in run(backend, args.requests):
            print(line, flush=True)


if __name__ == "__main__":
    main()
