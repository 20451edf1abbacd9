"""`seamline serve` in a subprocess, for tests and benchmarks that need a real server process
(the official SDKs, SIGKILL durability, load generators)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SEAMLINE = str(Path(sys.executable).with_name("seamline"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A `seamline serve --no-migrate` process on a migrated database, on a free loopback port."""

    def __init__(self, database_url: str, *, workers: int = 1, log_path: Path | None = None, env: dict | None = None):
        self.env = {
            **os.environ,
            "SEAMLINE_DATABASE_URL": database_url,
            "SEAMLINE_LOG_LEVEL": "WARNING",
            "SEAMLINE_HOST": "127.0.0.1",
            **(env or {}),
        }
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ServerProcess":
        output = self.log_path.open("a") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [SEAMLINE, "serve", "--no-migrate", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log_path.read_text()[-2000:] if self.log_path else ""
                raise RuntimeError(f"server exited with {self.process.returncode}: {log}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout} s")

    def stop(self) -> None:
        """A graceful stop (SIGINT), then SIGKILL if it hangs."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL to the server and its workers: no cleanup, no flush, as a crash."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
