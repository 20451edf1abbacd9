"""Benchmark: what FastAPI's routing costs per request, before any endpoint code runs.

Builds the real application (SQLite settings, nothing served) and times, for the hot paths, the
walk FastAPI's router does for a request: every top-level route's `matches` in order until one
matches fully, then the chosen router's own match again (what `_IncludedRouter.handle` does). The
same walk a request pays on a live server, without the network and the endpoint.

    .venv/bin/python bench/route_matching.py
"""

from __future__ import annotations

import argparse
import tempfile
import time

from starlette.routing import Match

from seamline.app import create_app
from seamline.core.config import Settings

HOT_PATHS = [
    ("POST", "/v1/batch"),
    ("POST", "/v1/track"),
    ("POST", "/v1/channels/telegram/webhook"),
    ("POST", "/v1/channels/whatsapp/webhook"),
    ("GET", "/v1/customers/123/loyalty/balance"),
    ("POST", "/v1/customers"),
    ("POST", "/v1/orders"),
    ("GET", "/healthz"),
]


def walk(routes: list, method: str, path: str) -> int:
    """FastAPI's selection for one request; returns how many top-level routes were tried."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}
    for tried, route in enumerate(routes, 1):
        match, child = route.matches(scope)
        if match == Match.FULL:
            if hasattr(route, "_match"):  # the router that answers matches its routes again
                route._match(scope)
            return tried
    raise SystemExit(f"nothing matches {method} {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings(database_url=f"sqlite:///{folder}/bench.db"))
        routes = app.router.routes
        print("| request | top-level routes tried | µs per request |")
        print("|---|---|---|")
        for method, path in HOT_PATHS:
            tried = walk(routes, method, path)
            start = time.perf_counter()
            for _ in range(args.repeat):
                walk(routes, method, path)
            micros = (time.perf_counter() - start) / args.repeat * 1e6
            print(f"| `{method} {path}` | {tried} of {len(routes)} | {micros:.0f} |")


if __name__ == "__main__":
    main()
