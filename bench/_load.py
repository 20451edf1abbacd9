"""The HTTP load generator shared by the benchmarks: asyncio + httpx, N keep-alive connections,
bodies serialized before the clock starts, per-request latency, server CPU from /proc."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else float("nan")


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def _drive(url: str, headers: dict[str, str], requests: list[Request], connections: int, ok: set[int]) -> Stats:
    stats = Stats()
    queue = iter(requests)
    clients = [
        httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1), timeout=120,
                          headers={"Content-Type": "application/json", **headers})
        for _ in range(connections)
    ]

    async def worker(client: httpx.AsyncClient) -> None:
        for request in queue:
            start = time.perf_counter()
            try:
                response = await client.post(request.path, content=request.body, headers=request.headers)
                stats.statuses[response.status_code] = stats.statuses.get(response.status_code, 0) + 1
                if response.status_code not in ok:
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


def drive(url: str, headers: dict[str, str], requests: list[Request], connections: int, ok: set[int] = frozenset({200})) -> Stats:
    return (uvloop.run if uvloop else asyncio.run)(_drive(url, headers, requests, connections, set(ok)))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process and its reaped children have used: steadier than a
    rate on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live children (uvicorn workers)."""
    total = process_cpu(pid)
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for child_pid in child.read_text().split():
            try:
                total += tree_cpu(int(child_pid))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return total


@contextmanager
def throwaway_database(backend: str, prefix: str) -> Iterator[tuple[str, Path]]:
    """(database URL, work folder) of a new, migrated database: a SQLite file, or a database on a
    throwaway PostgreSQL (fsync on); everything is removed afterwards."""
    from seamline.core import migrations
    from seamline.devtools.postgres import PostgresServer

    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-{backend}-"))
    pg = None
    try:
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            pg = PostgresServer(fsync=True).start()
            url = pg.create_database("bench")
        migrations.upgrade(url)
        yield url, workdir
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
