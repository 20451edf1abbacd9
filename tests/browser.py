"""What every real-browser test shares: Debian's Chromium driven by Playwright (never
`playwright install`), and the app served by uvicorn in a thread on a loopback port.

A module calls `skip_without_chromium()` at import: skipped where Chromium is missing, except
under CI, where the `browser` fixture fails instead."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


def skip_without_chromium() -> None:
    if not os.environ.get("CI"):  # under CI a missing browser fails (in the fixture) instead
        if not os.path.exists(CHROMIUM):
            pytest.skip(f"no {CHROMIUM} here (.ci/run installs Debian's chromium)", allow_module_level=True)
        pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")


def launch_chromium() -> Iterator:
    """A headless Chromium for a module's tests (use as a module-scoped fixture's body)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"CI is set but {CHROMIUM} is missing: .ci/run must install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every run a fresh temporary profile (user-data dir) of its own.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@contextmanager
def live_server(app) -> Iterator[str]:  # noqa: ANN001 - an ASGI app
    """`app` served by uvicorn in a thread (lifespan and WebSockets included); its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
