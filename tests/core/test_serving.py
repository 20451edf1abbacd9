"""`seamline serve --workers N`: one SO_REUSEPORT socket per worker, a supervisor that restarts a
worker that dies, and a port already taken is an error, not a silent share."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from seamline.core.serving import START_GRACE_SECONDS
from seamline.devtools.serve import SEAMLINE, ServerProcess


def workers_of(pid: int) -> set[int]:
    """The worker processes of a supervisor (not multiprocessing's resource tracker)."""
    children = {int(child) for task in Path(f"/proc/{pid}/task").glob("*/children") for child in task.read_text().split()}
    found = set()
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except FileNotFoundError:
            continue
    return found


def test_two_workers_a_dead_one_is_replaced_and_a_taken_port_is_refused(database_url, tmp_path):
    server = ServerProcess(database_url, workers=2, log_path=tmp_path / "server.log").start()
    try:
        second = subprocess.run(
            [SEAMLINE, "serve", "--no-migrate", "--port", str(server.port), "--workers", "2"],
            env=server.env, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode != 0 and f"cannot listen on 127.0.0.1:{server.port}" in second.stderr

        deadline = time.monotonic() + 30
        while len(workers := workers_of(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2
        time.sleep(START_GRACE_SECONDS + 0.5)  # a worker that dies later is replaced, not fatal
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (victim in (now := workers_of(server.process.pid)) or len(now) < 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert victim not in now and len(now) == 2
        assert all(httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200 for _ in range(20))
    finally:
        server.stop()
    assert server.process.returncode == 0
