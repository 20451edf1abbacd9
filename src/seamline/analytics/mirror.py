"""The analytics mirror: an incremental copy of the operational tables in one DuckDB file.

Every metric reads the *logical tables* of `schema.LOGICAL` (people, events, orders, ...). On the
embedded default they live here, copied from the operational database by `sync`, which the job
queue runs every `analytics_sync_seconds` (and `seamline analytics sync` by hand). A sync never
reloads a big table:

- **append-only tables** (events, order lines, statuses, cart changes, returns, messages) are
  read past the highest id copied so far. An id below it that was not there yet (a transaction
  still open when its neighbours were copied, on PostgreSQL) is remembered as a *hole* and looked
  for again at each sync for `HOLE_TTL` (a rolled-back id never comes);
- **mutable tables** (profiles, orders, carts, conversations, surveys) are read by their change
  stamp (`updated_at`): the rows stamped since the previous sync began, less `STAMP_MARGIN` (a
  transaction commits a little after it stamps; servers' clocks differ a little), replace their
  older copies;
- **identities** are re-read for the profiles whose stamp moved (a merge, an unmerge, an
  erasure and the batch rebuild stamp every profile whose identifiers they move), plus new ones;
- **small dimension tables** (stores, agents) are copied whole: they hold a few thousand rows;
- an **erased** person's events and carts are deleted from the mirror and their returns lose the
  person, as in the operational database (conversations, orders and surveys stay there as counted
  facts; the mirror never holds a message's text or any email or phone).

Then the identity graph as it is now is materialised: `people` maps every profile to the person
it belongs to (the end of its merge chain), `event_people` maps every event's person key
(`u:<userId>` / `a:<anonymousId>`) to that person.

Only `sync` writes the file, holding an exclusive lock (`fcntl.flock` on `<file>.lock`); readers
hold a shared one for the length of a query, so a dashboard waits at most for one chunk of a
sync. A backfill (`full=True`) goes in chunks of `CHUNK` rows, each committed with its
watermark, so it can be interrupted and resumed.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from seamline.analytics.schema import LOGICAL, MIRRORED, Mirrored
from seamline.core.db import Database

CHUNK = 100_000
HOLE_TTL = timedelta(minutes=10)
MAX_HOLES = 100_000
STAMP_MARGIN = timedelta(minutes=2)
EPOCH = datetime(1970, 1, 1)


@dataclass
class SyncReport:
    rows: dict[str, int] = field(default_factory=dict)
    erased_people: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@contextmanager
def locked(path: str, *, exclusive: bool) -> Iterator[None]:
    """The mirror's cross-process lock: one writer, or any number of readers."""
    with open(path + ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def reading(path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the mirror, under the shared lock."""
    with locked(path, exclusive=False):
        connection = duckdb.connect(path, read_only=True)
        try:
            yield connection
        finally:
            connection.close()


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _create_schema(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(
        "CREATE TABLE IF NOT EXISTS _sync_state (name VARCHAR PRIMARY KEY, last_id BIGINT, last_stamp TIMESTAMP,"
        " holes VARCHAR)"
    )
    present: dict[str, set[str]] = {}
    for table, column in connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'").fetchall():
        present.setdefault(table, set()).add(column)
    for name in [spec.name for spec in MIRRORED] + ["people", "event_people"]:
        if name not in present:
            columns = ", ".join(f"{column} {kind}" for column, kind in LOGICAL[name].items())
            connection.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
            continue
        # A mirror made by an older version: the columns added since come in empty (null in the
        # rows it holds; the rows copied from now on have them). `seamline analytics sync --full`
        # re-derives them for the old rows too.
        for column, kind in LOGICAL[name].items():
            if column not in present[name]:
                connection.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {column} {kind}")


class _State:
    def __init__(self, connection: duckdb.DuckDBPyConnection, name: str):
        self.connection, self.name = connection, name
        rows = connection.execute("SELECT last_id, last_stamp, holes FROM _sync_state WHERE name = ?", [name]).fetchall()
        row = rows[0] if rows else None
        self.last_id: int = row[0] if row and row[0] is not None else 0
        self.last_stamp: datetime | None = row[1] if row else None
        self.holes: dict[int, float] = {int(k): v for k, v in json.loads(row[2]).items()} if row and row[2] else {}

    def save(self) -> None:
        if len(self.holes) > MAX_HOLES:  # keep the newest
            self.holes = dict(sorted(self.holes.items())[-MAX_HOLES:])
        self.connection.execute(
            "INSERT OR REPLACE INTO _sync_state VALUES (?, ?, ?, ?)",
            [self.name, self.last_id, self.last_stamp, json.dumps(self.holes)],
        )


class Mirror:
    """Syncs one DuckDB file from one operational database."""

    def __init__(self, database: Database, path: str):
        self.database, self.path = database, path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    # --- the source side ----------------------------------------------------------------------

    def _read(self, query: sa.Select) -> list[tuple]:
        with self.database.read_engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def _arrow(self, spec: Mirrored, rows: list[tuple]) -> pa.Table:
        names = list(spec.columns)
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        arrays = []
        for name, values in zip(names, columns):
            kind = spec.source.c[name].type
            if isinstance(kind, sa.DateTime) or getattr(kind, "impl", None) is not None and isinstance(kind.impl, sa.DateTime):
                arrays.append(pa.array([_naive_utc(v) for v in values], type=pa.timestamp("us")))
            elif name in spec.json_columns:
                arrays.append(pa.array([None if v is None else json.dumps(v) for v in values], type=pa.string()))
            else:
                arrays.append(pa.array(values))
        return pa.Table.from_arrays(arrays, names=names)

    # --- the mirror side ----------------------------------------------------------------------

    def _load(self, connection: duckdb.DuckDBPyConnection, spec: Mirrored, rows: list[tuple], *, replace: bool) -> int:
        """Insert `rows` (replacing the copies with the same ids when `replace`)."""
        if not rows:
            return 0
        staged = self._arrow(spec, rows)
        connection.register("staged", staged)
        try:
            if replace:
                connection.execute(f"DELETE FROM {spec.name} WHERE id IN (SELECT id FROM staged)")
            target = list(LOGICAL[spec.name])
            select = ", ".join(spec.derived.get(column, column) for column in target)
            connection.execute(f"INSERT INTO {spec.name} ({', '.join(target)}) SELECT {select} FROM staged")
        finally:
            connection.unregister("staged")
        return len(rows)

    @contextmanager
    def _writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with locked(self.path, exclusive=True):
            connection = duckdb.connect(self.path)
            try:
                _create_schema(connection)
                connection.execute("BEGIN")
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            finally:
                connection.close()

    # --- one table at a time --------------------------------------------------------------------

    def _sync_appended(self, spec: Mirrored, report: SyncReport) -> None:
        table, key = spec.source, spec.source.c.id
        columns = [table.c[name] for name in spec.columns]
        now = time.time()
        while True:
            with self._writing() as connection:
                state = _State(connection, spec.name)
                live = [hole for hole, seen in state.holes.items() if now - seen < HOLE_TTL.total_seconds()]
            found: list[tuple] = []
            for start in range(0, len(live), 1000):
                found += self._read(sa.select(*columns).where(key.in_(live[start:start + 1000])))
            rows = self._read(sa.select(*columns).where(key > state.last_id).order_by(key).limit(CHUNK))
            with self._writing() as connection:
                state = _State(connection, spec.name)
                state.holes = {hole: state.holes[hole] for hole in live if hole in state.holes}
                loaded = self._load(connection, spec, found, replace=True) + self._load(connection, spec, rows, replace=False)
                for row in found:
                    state.holes.pop(row[0], None)
                if rows:
                    ids = [row[0] for row in rows]
                    present = set(ids)
                    state.holes.update({i: now for i in range(state.last_id + 1, ids[-1]) if i not in present}
                                       if ids[-1] - state.last_id < 10 * len(ids) + 1000 else {})
                    state.last_id = ids[-1]
                state.save()
            report.rows[spec.name] = report.rows.get(spec.name, 0) + loaded
            if len(rows) < CHUNK:
                return

    def _sync_stamped(self, spec: Mirrored, report: SyncReport) -> list[int]:
        """Returns the ids of the rows re-read (for profiles: the profiles whose identities to re-read)."""
        table, key = spec.source, spec.source.c.id
        columns = [table.c[name] for name in spec.columns]
        stamp = spec.stamp_expression()
        with self._writing() as connection:
            state = _State(connection, spec.name)
        # Everything committed before the previous sync began was read by it, except a transaction
        # that stamped its rows before that and committed after: the margin covers those.
        since = None if state.last_stamp is None else (state.last_stamp - STAMP_MARGIN).replace(tzinfo=timezone.utc)
        began = _naive_utc(datetime.now(timezone.utc))
        touched: list[int] = []
        after = 0
        while True:
            query = sa.select(*columns).where(key > after)
            if since is not None:
                query = query.where(stamp >= since)
            rows = self._read(query.order_by(key).limit(CHUNK))
            with self._writing() as connection:
                state = _State(connection, spec.name)
                report.rows[spec.name] = report.rows.get(spec.name, 0) + self._load(connection, spec, rows, replace=True)
                if len(rows) < CHUNK:
                    state.last_stamp = began
                state.save()
            touched += [row[0] for row in rows]
            if len(rows) < CHUNK:
                return touched
            after = rows[-1][0]

    def _sync_whole(self, spec: Mirrored, report: SyncReport) -> None:
        rows = self._read(sa.select(*[spec.source.c[name] for name in spec.columns]))
        with self._writing() as connection:
            connection.execute(f"DELETE FROM {spec.name}")
            report.rows[spec.name] = self._load(connection, spec, rows, replace=False)

    def _sync_identities(self, spec: Mirrored, touched: list[int], report: SyncReport) -> None:
        """New identities, and every identity of a touched profile (its set may have changed)."""
        table = spec.source
        columns = [table.c[name] for name in spec.columns]
        with self._writing() as connection:
            state = _State(connection, spec.name)
        if state.last_id == 0:
            touched = []  # a first copy: every identity is new
        rows = []
        for start in range(0, len(touched), 1000):
            rows += self._read(sa.select(*columns).where(table.c.profile_id.in_(touched[start:start + 1000]), spec.where))
        after = state.last_id
        while True:
            fresh = self._read(sa.select(*columns).where(table.c.id > after, spec.where).order_by(table.c.id).limit(CHUNK))
            rows += fresh
            if len(fresh) < CHUNK:
                break
            after = fresh[-1][0]
        with self._writing() as connection:
            state = _State(connection, spec.name)
            if touched:
                connection.register("touched", pa.table({"id": pa.array(touched, type=pa.int64())}))
                connection.execute(f"DELETE FROM {spec.name} WHERE profile_id IN (SELECT id FROM touched)")
                connection.unregister("touched")
            unique = list({row[0]: row for row in rows}.values())
            report.rows[spec.name] = self._load(connection, spec, unique, replace=True)
            state.last_id = max([state.last_id, *(row[0] for row in rows)])
            state.save()

    def _forget_erased(self, touched: list[int], report: SyncReport) -> None:
        """Delete what the operational database deleted when these profiles' people were erased."""
        if not touched:
            return
        with self._writing() as connection:
            connection.register("touched", pa.table({"id": pa.array(touched, type=pa.int64())}))
            erased = [row[0] for row in connection.execute(
                "SELECT id FROM profiles WHERE status = 'erased' AND id IN (SELECT id FROM touched)").fetchall()]
            connection.unregister("touched")
            if not erased:
                return
            connection.register("erased", pa.table({"id": pa.array(erased, type=pa.int64())}))
            connection.execute("DELETE FROM events WHERE person_key IN"
                               " (SELECT person_key FROM event_people WHERE person_id IN (SELECT id FROM erased))")
            # Carts go with their history; orders and returns stay as the shop's books, without the
            # person (orders come back through their stamp already so).
            connection.execute("DELETE FROM cart_changes WHERE cart_id IN (SELECT id FROM carts WHERE profile_id IN"
                               " (SELECT profile_id FROM people WHERE person_id IN (SELECT id FROM erased)))")
            connection.execute("DELETE FROM carts WHERE profile_id IN"
                               " (SELECT profile_id FROM people WHERE person_id IN (SELECT id FROM erased))")
            connection.execute("UPDATE returns SET profile_id = NULL WHERE profile_id IN"
                               " (SELECT profile_id FROM people WHERE person_id IN (SELECT id FROM erased))")
            connection.unregister("erased")
            report.erased_people += len(erased)

    def _materialise_people(self) -> None:
        with self._writing() as connection:
            connection.execute("DELETE FROM people")
            connection.execute(
                """
                INSERT INTO people
                WITH RECURSIVE walk(profile_id, person_id, depth) AS (
                    SELECT id, id, 0 FROM profiles WHERE merged_into_id IS NULL
                    UNION ALL
                    SELECT p.id, w.person_id, w.depth + 1 FROM profiles p JOIN walk w ON p.merged_into_id = w.profile_id
                    WHERE w.depth < 64
                )
                SELECT w.profile_id, w.person_id, r.status FROM walk w JOIN profiles r ON r.id = w.person_id
                """
            )
            connection.execute("DELETE FROM event_people")
            connection.execute(
                """
                INSERT INTO event_people
                SELECT DISTINCT CASE WHEN i.type = 'user_id' THEN 'u:' ELSE 'a:' END || i.value, p.person_id
                FROM identities i JOIN people p ON p.profile_id = i.profile_id
                WHERE i.type IN ('user_id', 'anonymous_id')
                """
            )

    # --- the whole sync -----------------------------------------------------------------------

    def sync(self, *, full: bool = False) -> SyncReport:
        """Copy what changed since the last sync (everything, with `full`)."""
        started = time.perf_counter()
        report = SyncReport()
        if full:
            with locked(self.path, exclusive=True):
                for suffix in ("", ".wal"):
                    if os.path.exists(self.path + suffix):
                        os.remove(self.path + suffix)
        touched: list[int] = []
        for spec in MIRRORED:
            if spec.mode == "stamped":
                ids = self._sync_stamped(spec, report)
                if spec.name == "profiles":
                    touched = ids
            elif spec.mode == "appended":
                self._sync_appended(spec, report)
            elif spec.mode == "whole":
                self._sync_whole(spec, report)
        self._forget_erased(touched, report)
        identities = next(spec for spec in MIRRORED if spec.mode == "identities")
        self._sync_identities(identities, touched, report)
        self._materialise_people()
        report.seconds = round(time.perf_counter() - started, 3)
        return report


    def export_parquet(self, directory: str) -> None:
        """Every logical table as `<directory>/<name>.parquet` (what the Spark backend reads)."""
        os.makedirs(directory, exist_ok=True)
        with reading(self.path) as connection:
            for name in LOGICAL:
                target = os.path.join(directory, f"{name}.parquet").replace("'", "''")
                connection.execute(f"COPY (SELECT * FROM {name}) TO '{target}' (FORMAT parquet)")


def lag_seconds(path: str) -> dict[str, Any]:
    """How fresh the mirror is: the newest event it holds and when it was synced."""
    if not os.path.exists(path):
        return {"synced": False}
    with reading(path) as connection:
        newest = connection.execute("SELECT max(ts) FROM events").fetchall()[0][0]
    return {"synced": True, "newest_event": newest.isoformat() + "Z" if newest else None}
