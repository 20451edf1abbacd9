"""A payment service on loopback for the `webhook` provider: a real HTTP server (in a thread)
that answers YooKassa-shaped `POST /payments` and `POST /refunds`, honours `Idempotence-Key`
(the same key gives the same answer), records every request, and can be told to fail. Tests
then send the outcome as signed webhooks, as the real service would."""

from __future__ import annotations

import base64
import copy
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from seamline.commerce.payment_providers import sign_webhook

SECRET = "whsec_test_0123456789"
ACCOUNT, API_KEY = "100500", "test_api_key"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhook"


class FakePsp:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, dict[str, Any]] = {}
        #: Answer the next N requests with 503.
        self.fail_next = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v3"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        psp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                status, answer = psp.answer(self.path, dict(self.headers), body)
                raw = orjson.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            if self.fail_next:
                self.fail_next -= 1
                return 503, {"type": "error", "code": "internal_server_error"}
            expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{API_KEY}".encode()).decode()
            if headers.get("Authorization") != expected:
                return 401, {"type": "error", "code": "invalid_credentials"}
            key = headers.get("Idempotence-Key")
            if not key:
                return 400, {"type": "error", "code": "invalid_request", "parameter": "Idempotence-Key"}
            if key in self.answers:
                return 200, self.answers[key]
            n = len(self.answers) + 1
            if path == "/v3/payments":
                answer = {"id": f"pay-{n}", "status": "pending", "paid": False, "amount": body["amount"],
                          "confirmation": {"type": "redirect", "confirmation_url": f"https://psp.example/confirm/pay-{n}"},
                          "metadata": body.get("metadata", {}), "test": True}
            elif path == "/v3/refunds":
                answer = {"id": f"rfd-{n}", "payment_id": body["payment_id"], "status": "pending", "amount": body["amount"],
                          "metadata": body.get("metadata", {})}
            else:
                return 404, {"type": "error", "code": "not_found"}
            self.answers[key] = answer
            return 200, answer

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def psp(settings):
    """The fake service, and the app configured to use it (webhook provider enabled)."""
    server = FakePsp()
    server.thread.start()
    settings.commerce_payment_methods = ["on_pickup", "test", "webhook"]
    settings.commerce_psp_url = server.url
    settings.commerce_psp_account = ACCOUNT
    settings.commerce_psp_api_key = SecretStr(API_KEY)
    settings.commerce_psp_webhook_secret = SecretStr(SECRET)
    settings.commerce_psp_return_url = "https://shop.example/thanks"
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def notification(kind: str, **changes: Any) -> dict[str, Any]:
    """A YooKassa-shaped notification from tests/fixtures/webhook, with `object` fields changed
    (`amount=(199000, "RUB")` in minor units)."""
    body = copy.deepcopy(orjson.loads((FIXTURES / f"{kind}.json").read_bytes()))
    for key, value in changes.items():
        if key == "amount":
            minor, currency = value
            body["object"]["amount"] = {"value": f"{minor // 100}.{minor % 100:02d}", "currency": currency}
        else:
            body["object"][key] = value
    return body


def send(client, body: dict[str, Any] | bytes, *, secret: str = SECRET, timestamp: int | None = None,
         header: str | None = None, provider: str = "webhook"):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    signature = header if header is not None else sign_webhook(secret, int(time.time()) if timestamp is None else timestamp, raw)
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["Webhook-Signature"] = signature
    return client.post(f"/v1/payments/webhooks/{provider}", content=raw, headers=headers)
