"""The `seamline` command as a new user meets it: run as a program in an empty folder (its own
HOME, no SEAMLINE_* settings), where the database is missing, empty or at another migration,
or the demo's port is taken. One line saying what to run, exit 1, no traceback, nothing made."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from seamline.core.migrations import head_revision, schema_problem


def _run(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEAMLINE_")}
    env |= {"HOME": str(cwd), "PYTHONDONTWRITEBYTECODE": "1"}
    script = Path(sys.executable).with_name("seamline")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "seamline.cli"]
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_command_before_any_database_says_what_to_run(tmp_path):
    line = _one_line_error(_run(tmp_path, "apikey", "create", "--scope", "admin"))
    assert f"no database at {tmp_path.resolve() / 'seamline.db'}" in line
    assert "`seamline db upgrade`" in line and "`seamline demo`" in line
    assert list(tmp_path.iterdir()) == []  # no empty seamline.db left behind


def test_a_command_on_an_empty_database_says_what_to_run(tmp_path):
    (tmp_path / "seamline.db").touch()  # what an earlier version's failed command left
    line = _one_line_error(_run(tmp_path, "loyalty", "check"))
    assert "has no tables" in line and "`seamline db upgrade`" in line and "`seamline demo`" in line


def test_schema_behind_or_ahead(tmp_path):
    """The same check, on an older and a newer schema (only `alembic_version` is read)."""
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('20261123_commerce_catalog')")
    assert "needs" in schema_problem(url) and "run `seamline db upgrade`" in schema_problem(url)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
    assert "does not know" in schema_problem(url)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (head_revision(),))
    assert schema_problem(url) is None
    assert "cannot open" in schema_problem("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in schema_problem("postgresql://nobody:secret@127.0.0.1:1/none")


def test_demo_checks_its_port_before_filling(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = _run(tmp_path, "demo", "--port", str(port), timeout=30)
        took = time.monotonic() - started
    line = _one_line_error(result)
    assert f"127.0.0.1:{port}" in line and "--port" in line
    assert list(tmp_path.iterdir()) == []  # nothing filled
    assert took < 20  # the CLI starting up, not a fill (10 s and more)


def test_demo_leaves_a_database_with_other_data_alone(tmp_path):
    database = tmp_path / "seamline.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('mine')")
    line = _one_line_error(_run(tmp_path, "demo", "--no-serve", "--customers", "1"))
    assert "holds data the demo did not make" in line and "--database" in line
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT body FROM notes").fetchall() == [("mine",)]
