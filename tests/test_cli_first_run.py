"""The `seamline` command as a new user meets it: run as a program in an empty folder (its own
HOME, no SEAMLINE_* settings), where the database is missing, empty or at another migration,
or the demo's port is taken. One line saying what to run, exit 1, no traceback, nothing made."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

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


def test_demo_says_what_to_open_once_it_listens(tmp_path):
    """`seamline demo` as the README runs it: after uvicorn's start-up lines, the banner (the page
    at /, the console, the shop, the app, the docs, the logins), then one short line per request,
    no JSON; Ctrl+C ends it cleanly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEAMLINE_")}
    env |= {"HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    script = Path(sys.executable).with_name("seamline")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "seamline.cli"]
    process = subprocess.Popen([*command, "demo", "--customers", "0", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in process.stdout], daemon=True)
    reader.start()

    def until(pattern: str, timeout: float = 120) -> list[str]:
        seen, deadline = [], time.monotonic() + timeout
        while True:
            try:
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(seen)) from None
            if re.search(pattern, seen[-1]):
                return seen

    try:
        before = until(f"Uvicorn running on http://127.0.0.1:{port}")
        assert before[0].startswith("filling the demo database") and "admin API key: sl_" in "\n".join(before)
        banner = until(r"^={20,}$")  # the opening rule
        banner += until(r"^={20,}$")  # the closing one
        text = "\n".join(banner)
        assert f"Seamline demo is running: open http://127.0.0.1:{port}/" in text
        for shown in (f"http://127.0.0.1:{port}/console/", f"http://127.0.0.1:{port}/shop/",
                      f"http://localhost:{port}/app/", f"http://127.0.0.1:{port}/docs"):
            assert shown in text, shown
        assert re.search(r"admin@demo\.seamline +admin-demo +admin", text) and "clerk@demo.seamline" in text
        page = httpx.get(f"http://127.0.0.1:{port}/?lang=en", timeout=30)
        assert page.status_code == 200 and "admin@demo.seamline" in page.text and "admin-demo" in page.text
        logged = until(r" GET /")
        assert re.fullmatch(r"\d\d:\d\d:\d\d GET / 200 [\d.]+ ms", logged[-1]), logged
        assert not any(line.lstrip().startswith("{") for line in before + banner + logged)  # no JSON lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    reader.join(10)
    rest = list(lines.queue)
    assert "Traceback" not in "\n".join(rest) and "Finished server process" in rest[-1], rest
    assert process.returncode in (0, 130), rest  # 130: uvicorn passes Ctrl+C on, as a shell expects
