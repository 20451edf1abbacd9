"""A loopback HTTP server standing in for a provider's JSON API (the Telegram Bot API, the
WhatsApp Graph API): each POST is recorded and answered by the test's `answer(body, n)`, or by
a queued error first."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeJsonApi:
    def __init__(self, answer: Callable[[dict, int], dict], *, path_prefix: str = "") -> None:
        self.calls: list[tuple[str, dict, str]] = []  # (path, JSON body, Authorization header)
        self.errors: list[tuple[int, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.calls.append((self.path, body, self.headers.get("Authorization", "")))
                status, reply = api.errors.pop(0) if api.errors else (200, answer(body, len(api.calls)))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path_prefix}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
