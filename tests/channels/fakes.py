"""A loopback HTTP server standing in for a provider's JSON API (the Telegram Bot API, the
WhatsApp Graph API, the VK API, Viber's REST API): each POST is recorded and answered by the
test's `answer(body, n)`, or by a queued error first. A form-encoded body (VK) is recorded as a
dict of its fields, like a JSON one, and a multipart upload (Telegram's files) too."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


class FakeJsonApi:
    def __init__(self, answer: Callable[[dict, int], dict], *, path_prefix: str = "") -> None:
        self.calls: list[tuple[str, dict, str]] = []  # (path, JSON body, Authorization header)
        self.headers: list[dict[str, str]] = []  # every call's headers, in the order of calls
        self.errors: list[tuple[int, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("application/x-www-form-urlencoded"):
                    body = dict(parse_qsl(raw.decode(), keep_blank_values=True))
                elif content_type.startswith("multipart/form-data"):
                    body = _multipart(content_type, raw)
                else:
                    body = json.loads(raw)
                api.headers.append(dict(self.headers))
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


def _multipart(content_type: str, raw: bytes) -> dict:
    """A multipart upload (Telegram's sendPhoto): text fields as strings, files as (filename, bytes, type)."""
    message = BytesParser(policy=default).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        filename = part.get_filename()
        fields[name] = (filename, data, part.get_content_type()) if filename else data.decode()
    return fields
