"""Benchmark: `seamline identity rebuild` on a large identifier graph.

Builds a graph of N identifiers in people-sized clusters (2-6 identifiers each: user ids,
emails, phones, anonymous ids) joined by L links in random arrival order, plus a small share of
links between two people that both have a user_id (which the default rule, at most one user_id
per profile, must refuse). Every identifier starts in a profile of its own, as after a bulk
import of the links, so the rebuild has to merge everything: all reads and writes are real.

Then, in the same run, the time scipy's connected_components takes on the same graph (the
machine's limit for the graph part), a second rebuild on the now consistent graph (nothing to
change: the cost of proving it), and a third after a batch of new links arrived by bulk import
(`--new-links`, default 1% of the links, between random identifiers: the everyday case, where
the graph is resolved and a rebuild settles what the batch changed).

    .venv/bin/python bench/identity_rebuild.py --backend sqlite
    .venv/bin/python bench/identity_rebuild.py --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from seamline.core import migrations
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.rebuild import rebuild_profiles
from seamline.devtools.postgres import PostgresServer


def make_graph(identifiers: int, links: int, seed: int = 7) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Types of each identifier, and link endpoints (0-based), in arrival order."""
    rng = np.random.default_rng(seed)
    sizes = []
    total = 0
    while total < identifiers:
        size = min(int(rng.integers(2, 7)), identifiers - total)
        sizes.append(size)
        total += size
    sizes = np.array(sizes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    types = []
    for size in sizes.tolist():
        person = ["user_id" if rng.random() < 0.7 else "anonymous_id", "email", "phone"][:size]
        person += ["anonymous_id"] * (size - len(person))
        types.extend(person)
    # A spanning chain inside every cluster, then random extra pairs inside clusters.
    owner = np.repeat(np.arange(len(sizes)), sizes)
    chain_a = np.arange(identifiers - 1)
    chain_keep = owner[chain_a] == owner[chain_a + 1]
    a_parts, b_parts = [chain_a[chain_keep]], [chain_a[chain_keep] + 1]
    remaining = links - len(a_parts[0])
    cross = remaining // 100  # 1% of links join two different people
    extra = remaining - cross
    cluster = rng.integers(0, len(sizes), extra)
    a = starts[cluster] + (rng.random(extra) * sizes[cluster]).astype(np.int64)
    b = starts[cluster] + (rng.random(extra) * sizes[cluster]).astype(np.int64)
    b = np.where(a == b, starts[cluster] + (b - starts[cluster] + 1) % sizes[cluster], b)
    a_parts.append(a)
    b_parts.append(b)
    first = starts[rng.integers(0, len(sizes), cross)]  # the first identifier of a person
    second = starts[rng.integers(0, len(sizes), cross)]
    ok = first != second
    a_parts.append(first[ok])
    b_parts.append(second[ok])
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = rng.permutation(len(lo))
    return types, lo[order], hi[order]


def load(database: Database, types: list[str], a: np.ndarray, b: np.ndarray) -> None:
    """Bulk-load the graph straight into the tables (the benchmark's setup, not timed)."""
    now = datetime.now(timezone.utc)
    n = len(types)
    with database.write() as session:
        dbapi = session.connection().connection.dbapi_connection
        cursor = dbapi.cursor()
        if database.dialect == "postgresql":
            with cursor.copy("COPY customer_profile (id, status, created_at, updated_at) FROM STDIN") as copy:
                for i in range(1, n + 1):
                    copy.write_row((i, "active", now, now))
            with cursor.copy("COPY customer_identity (id, type, value, profile_id, source, created_at) FROM STDIN") as copy:
                for i, t in enumerate(types, start=1):
                    copy.write_row((i, t, f"{t}-{i}", i, "bench", now))
            with cursor.copy("COPY customer_link (identity_a_id, identity_b_id, source, forced, revoked, created_at) FROM STDIN") as copy:
                for x, y in zip((a + 1).tolist(), (b + 1).tolist()):
                    copy.write_row((x, y, "bench", False, False, now))
            for table in ("customer_profile", "customer_identity"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})")
        else:
            stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
            cursor.executemany(
                "INSERT INTO customer_profile (id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)",
                ((i, stamp, stamp) for i in range(1, n + 1)),
            )
            cursor.executemany(
                "INSERT INTO customer_identity (id, type, value, profile_id, source, created_at) VALUES (?, ?, ?, ?, 'bench', ?)",
                ((i, t, f"{t}-{i}", i, stamp) for i, t in enumerate(types, start=1)),
            )
            cursor.executemany(
                "INSERT INTO customer_link (identity_a_id, identity_b_id, source, forced, revoked, created_at) "
                "VALUES (?, ?, 'bench', 0, 0, ?)",
                ((x, y, stamp) for x, y in zip((a + 1).tolist(), (b + 1).tolist())),
            )


def add_links(database: Database, identifiers: int, count: int, seed: int = 11) -> None:
    """A bulk import of `count` links between random identifiers (not timed)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, identifiers + 1, count)
    b = rng.integers(1, identifiers + 1, count)
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    now = datetime.now(timezone.utc)
    with database.write() as session:
        cursor = session.connection().connection.dbapi_connection.cursor()
        if database.dialect == "postgresql":
            with cursor.copy("COPY customer_link (identity_a_id, identity_b_id, source, forced, revoked, created_at) FROM STDIN") as copy:
                for x, y in zip(lo.tolist(), hi.tolist()):
                    copy.write_row((x, y, "bench-batch", False, False, now))
        else:
            stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
            cursor.executemany(
                "INSERT INTO customer_link (identity_a_id, identity_b_id, source, forced, revoked, created_at) "
                "VALUES (?, ?, 'bench-batch', 0, 0, ?)",
                ((x, y, stamp) for x, y in zip(lo.tolist(), hi.tolist())),
            )


def settle(database: Database) -> None:
    """PostgreSQL: what autovacuum does between big writes on a live system (not timed).

    Without it, the first pass over a million rows that were just written sets their hint bits
    and doubles the read time: a cost of the benchmark's compressed schedule, not of a rebuild."""
    if database.dialect != "postgresql":
        return
    with database.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE customer_profile, customer_identity, customer_link")


def summary(report) -> str:  # noqa: ANN001
    s = report.seconds
    return (
        f"{s['total']:.2f} s (read {s['read']:.2f}, resolve {s['resolve']:.2f}, write {s['write']:.2f}) "
        f"| {report.identities_moved:,} moved, {report.profiles_retired:,} retired, "
        f"{report.conflicts_recorded:,} new conflicts"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--identifiers", type=int, default=1_000_000)
    parser.add_argument("--links", type=int, default=2_000_000)
    parser.add_argument("--new-links", type=int, default=None, help="links in the imported batch (default: 1%% of --links)")
    args = parser.parse_args()

    print(f"generating {args.identifiers:,} identifiers, {args.links:,} links ...", file=sys.stderr)
    types, a, b = make_graph(args.identifiers, args.links)

    server = None
    workdir = Path(tempfile.mkdtemp(prefix="seamline-bench-"))
    if args.backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        server = PostgresServer(fsync=True).start()
        url = server.create_database("bench")
    try:
        migrations.upgrade(url)
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING")
        database = Database(settings)
        t = time.perf_counter()
        load(database, types, a, b)
        settle(database)
        print(f"loaded in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        t = time.perf_counter()
        graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(len(types), len(types)))
        ncomp, _ = connected_components(graph, directed=False)
        scipy_seconds = time.perf_counter() - t

        rules = IdentifierRules(settings)
        first = rebuild_profiles(database, rules=rules)
        settle(database)
        second = rebuild_profiles(database, rules=rules)
        new_links = args.links // 100 if args.new_links is None else args.new_links
        add_links(database, args.identifiers, new_links)
        settle(database)
        third = rebuild_profiles(database, rules=rules)
        database.dispose()
    finally:
        if server:
            server.stop()

    print(json.dumps({"first": first.as_dict(), "second": second.as_dict(), "third": third.as_dict()}, indent=2), file=sys.stderr)
    print("| backend | identifiers | links | scipy components (graph only) | cold: every identifier in its own profile | resolved: no change | after a batch of new links |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.backend} | {args.identifiers:,} | {len(a):,} | {scipy_seconds:.2f} s ({ncomp:,} components) "
        f"| {summary(first)} | {second.seconds['total']:.2f} s (changed: {second.changed}) "
        f"| +{new_links:,} links: {summary(third)} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
