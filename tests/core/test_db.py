"""Database plumbing: SQLite checkpoints off the commit path, driver-level bulk inserts."""

from __future__ import annotations

import sqlite3
import time

from sqlalchemy import text

from seamline.core.config import Settings
from seamline.core.db import Database, DriverSQL


def test_sqlite_checkpoints_run_beside_the_writers(tmp_path):
    path = tmp_path / "c.db"
    database = Database(Settings(_env_file=None, database_url=f"sqlite:///{path}", log_level="WARNING"))
    try:
        with database.write() as session:
            assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0  # not inside commits
            session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
        for n in range(20):
            with database.write() as session:
                DriverSQL(session).insert_rows("t", ("body",), [("x" * 2000,)] * 200)
        deadline = time.monotonic() + 10
        while True:  # the checkpointer has copied every frame of the WAL into the database
            probe = sqlite3.connect(path)
            busy, frames, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            probe.close()
            if frames == copied and frames > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert busy == 0 and frames == copied
        with database.read() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar() == 4000
    finally:
        database.dispose()


def test_insert_rows_keeps_values_and_conflicts(database):
    with database.write() as session:
        session.execute(text("DROP TABLE IF EXISTS driver_probe"))
        session.execute(text("CREATE TABLE driver_probe (k VARCHAR(20) PRIMARY KEY, n INTEGER, t TEXT)"))
    rows = [("a", 1, "Анна \"quoted\" \\ back"), ("b", None, None), ("a", 3, "dup")]
    with database.write() as session:
        DriverSQL(session).insert_rows("driver_probe", ("k", "n", "t"), rows, "ON CONFLICT (k) DO NOTHING")
    with database.read() as session:
        found = session.execute(text("SELECT k, n, t FROM driver_probe ORDER BY k")).all()
    assert [tuple(r) for r in found] == [("a", 1, "Анна \"quoted\" \\ back"), ("b", None, None)]
