"""The HTTP load generator shared by the benchmarks: asyncio, N raw keep-alive connections,
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
from urllib.parse import urlsplit

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
    #: CPU seconds the load generator itself used (it shares the machine with the server).
    client_cpu: float = 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else float("nan")


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def _drive(url: str, headers: dict[str, str], requests: list[Request], connections: int, ok: set[int]) -> Stats:
    """Each connection a raw HTTP/1.1 keep-alive stream: requests written as prepared bytes,
    answers read by Content-Length. The load generator shares the machine's cores with the
    server, so it must cost little: httpx took ~5 ms of CPU per request, this ~0.2 ms."""
    stats = Stats()
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    common = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", "Content-Type": "application/json", **headers}.items())
    queue = iter(requests)

    def prepared(request: Request) -> bytes:
        extra = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        return (f"POST {request.path} HTTP/1.1\r\n{common}{extra}Content-Length: {len(request.body)}\r\n\r\n").encode() + request.body

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for request in queue:
                data = prepared(request)
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
                    if status not in ok:
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


def insert_catalog(sql, at, *, products: int, variants: list[tuple[int, str, int]], prices: list[int]) -> None:  # noqa: ANN001
    """Products 1..`products`, the variants (id, SKU, product id) and their list prices, straight
    into the tables through `DriverSQL` (a benchmark's setup, not what it measures)."""
    sql.insert_rows("commerce_product", ("id", "code", "name_ru", "name_en", "description_ru", "description_en",
                                         "attributes", "image_urls", "active", "created_at", "updated_at"),
                    [(p, f"p-{p:06d}", f"Товар {p}", f"Product {p}", "", "", "{}", "[]", True, at, at)
                     for p in range(1, products + 1)])
    sql.insert_rows("commerce_variant", ("id", "sku", "product_id", "name_ru", "name_en", "attributes", "active"),
                    [(i, sku, p, "", "", "{}", True) for i, sku, p in variants])
    sql.insert_rows("commerce_price", ("variant_id", "channel", "amount", "currency", "updated_at"),
                    [(i, "", amount, "RUB", at) for (i, _, _), amount in zip(variants, prices, strict=True)])
