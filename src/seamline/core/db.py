"""Database engines and sessions.

SQLite is the embedded default (WAL, busy timeout, foreign keys on); PostgreSQL is chosen by
`SEAMLINE_DATABASE_URL`. Services never commit: `Database.write()` (or the request dependency)
commits at the boundary, so several service calls share one transaction.

On SQLite, write transactions start with `BEGIN IMMEDIATE`: the write lock is taken up front,
so two writers queue on the busy timeout instead of failing on a lock upgrade. Within one
process, writers first queue on a Python lock: SQLite admits one writer at a time anyway, and
threads waiting on a lock are woken at once, where the busy handler polls with growing sleeps
(seen here: 16 concurrent upserts fell to ~50/s with p99 over 3 s without it). Reads use a
second engine with plain `BEGIN` and run beside a writer thanks to WAL.

SQLite checkpoints (copying the WAL back into the database file, with its fsyncs) run on a
background thread of their own instead of inside whichever commit crosses the WAL's size
threshold: measured here, automatic checkpoints made commits five times slower in a stream of
inserts (1.18 s of 1.63 s for 120,000 rows).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from seamline.core.config import Settings
from seamline.core.errors import TransactionConflict

T = TypeVar("T")
log = structlog.get_logger("seamline.db")

#: PostgreSQL SQLSTATEs after which running the transaction again is the right answer.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalize_url(url: str) -> str:
    """Let users write postgresql:// and still get the psycopg 3 driver we ship."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_file(url: str) -> str | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" or database.startswith("file:") else database


def _sqlite_engine(url: str, settings: Settings, *, immediate: bool, own_checkpoints: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000, "check_same_thread": False},
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={settings.sqlite_busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA journal_size_limit=67108864")  # a WAL left over 64 MiB is cut back
        if own_checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def _committed(session: Session) -> Iterator[Session]:
    """Commit when the block ends, roll back on any error, close either way."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class DriverSQL:
    """Statements straight through the DB-API driver, inside the session's transaction, for
    the few hot paths where SQLAlchemy's per-statement work costs more than the statement
    (collection, first logins). Write placeholders as `?`; timestamps go through `time()`."""

    def __init__(self, session: Session):
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.cursor = session.connection().connection.dbapi_connection.cursor()

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def time(self, value: datetime) -> Any:
        """A UTC timestamp as `UTCDateTime` stores it (SQLite: naive ISO text)."""
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else value

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.cursor.execute(self._sql(sql), params)
        return self.cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cursor.executemany(self._sql(sql), rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], suffix: str = "") -> None:
        """`INSERT INTO table (columns) VALUES ... suffix` for many rows.

        On SQLite as multi-row VALUES statements (up to `SQLITE_ROWS_PER_STATEMENT` rows each,
        so the driver's statement cache keeps them): Python's sqlite3 releases the GIL around
        every row of an `executemany`, and in a busy server each release costs a wait to get it
        back (a `json_each` insert avoids that too, but re-parses the JSON for every column).
        PostgreSQL: `executemany` (pipelined by psycopg)."""
        if not rows:
            return
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        if not self.sqlite:
            self.cursor.executemany(f"{head}({', '.join(['%s'] * len(columns))}) {suffix}", rows)
            return
        one = f"({', '.join('?' * len(columns))})"
        step = max(1, min(SQLITE_ROWS_PER_STATEMENT, 30_000 // len(columns)))
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            self.cursor.execute(
                head + ", ".join([one] * len(chunk)) + f" {suffix}", [value for row in chunk for value in row]
            )


#: Rows per multi-row INSERT on SQLite (under its 32,766 bound variables per statement).
SQLITE_ROWS_PER_STATEMENT = 100


class _Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection after writes (at most every
    `interval` seconds). Passive checkpoints never block writers or readers; when one finishes
    the whole WAL, the next writer starts it again from the beginning."""

    def __init__(self, path: str, interval: float = 0.05):
        self.path, self.interval = path, interval
        self._wake, self._stopping = threading.Event(), False
        self._thread = threading.Thread(target=self._run, name="seamline-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping:
                self._wake.wait()
                self._wake.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # e.g. the file was removed under us; try next time
                    log.warning("sqlite checkpoint failed", error=str(exc))
                time.sleep(self.interval)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)


class _WriterQueue:
    """The in-process queue of SQLite writers. A plain lock, not an RLock: FastAPI may enter and
    leave a request's write session on different threads. Waiting longer than the busy timeout
    is the same error SQLite would give."""

    def __init__(self, timeout: float):
        self._lock, self._timeout = threading.Lock(), timeout

    def acquire(self) -> None:
        if not self._lock.acquire(timeout=self._timeout):
            raise OperationalError("waiting for the write lock", None, Exception("database is locked"))

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class Database:
    """The engines and session factories of one database."""

    def __init__(self, settings: Settings):
        self.url = normalize_url(settings.database_url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = _sqlite_file(self.url)
            self._checkpointer = _Checkpointer(path) if path else None
            self.write_engine = _sqlite_engine(self.url, settings, immediate=True, own_checkpoints=path is not None)
            self.read_engine = _sqlite_engine(self.url, settings, immediate=False)
        else:
            self.write_engine = create_engine(
                self.url,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_pool_size,
                pool_pre_ping=True,
            )
            self.read_engine = self.write_engine
            self._checkpointer = None
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        self._write_lock = _WriterQueue(settings.sqlite_busy_timeout_ms / 1000) if self.is_sqlite else nullcontext()
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back on any error."""
        with self._write_lock, _committed(self._write_sessions()) as session:
            yield session
        if self._checkpointer is not None:
            self._checkpointer.poke()

    @contextmanager
    def bulk_write(self, *, check_tables: tuple[str, ...] = ()) -> Iterator[Session]:
        """A write transaction for a batch job that rewrites many rows under the write lock.

        On SQLite, foreign keys are not checked row by row during it (the pragma can only change
        outside a transaction); instead `PRAGMA foreign_key_check` proves `check_tables` once
        before the commit, and a violation rolls everything back. PostgreSQL: same as `write()`.
        """
        if not self.is_sqlite:
            with self.write() as session:
                yield session
            return
        self._write_lock.acquire()
        connection = self.write_engine.connect()
        dbapi = connection.connection.dbapi_connection
        dbapi.execute("PRAGMA foreign_keys=OFF")
        try:
            with _committed(Session(bind=connection, expire_on_commit=False)) as session:
                yield session
                for table in check_tables:
                    broken = session.connection().exec_driver_sql(f"PRAGMA foreign_key_check({table})").fetchall()
                    if broken:
                        raise RuntimeError(f"bulk write left dangling references in {table}: {broken[:5]}")
        finally:
            dbapi.execute("PRAGMA foreign_keys=ON")
            connection.close()
            self._write_lock.release()
            if self._checkpointer is not None:
                self._checkpointer.poke()

    def run_write(self, work: Callable[[Session], T], *, attempts: int = 8) -> T:
        """Run `work` in a write transaction, again from the start if it hit a concurrent change."""
        for attempt in range(1, attempts + 1):
            try:
                with self.write() as session:
                    return work(session)
            except (TransactionConflict, OperationalError) as exc:
                if isinstance(exc, OperationalError) and getattr(exc.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                    raise
                if attempt == attempts:
                    raise
                time.sleep(random.uniform(0, 0.005 * attempt))
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session; `session.info["read_only"]` lets helpers memoize what cannot
        change within it (e.g. which profiles were merged into which)."""
        session = self._read_sessions()
        session.info["read_only"] = True
        try:
            yield session
        finally:
            session.close()  # ends the transaction; loaded objects stay readable

    def ping(self) -> None:
        with self.read_engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
