"""A loopback stand-in for Google's OAuth2 token endpoint and FCM's HTTP v1 `messages:send`,
answering with the documented bodies of tests/fixtures/fcm.

- `POST /token`: the service account's JWT-bearer grant (RFC 7523): the assertion's RS256
  signature is verified with the account's public key and its claims checked (`iss` the
  account's email, `aud` Google's token endpoint, `scope` FCM's, a short `exp`); answered with a
  new access token.
- `POST /v1/projects/{project}/messages:send`: the bearer token must be one this server issued
  and has not revoked (else 401 UNAUTHENTICATED, as FCM answers an expired token); the body is
  checked against the v1 `Message` shape (`check_message`) and recorded; answered with a message
  name, or with what the test queued for that device token (`answers[token]`).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fcm"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The assertion's audience Google documents for token requests, wherever the request is sent.
AUDIENCE = "https://oauth2.googleapis.com/token"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_message(body: dict) -> list[str]:
    """What is wrong with a `messages:send` body, by the v1 API's `Message` resource."""
    problems = []
    message = body.get("message")
    if set(body) != {"message"} or not isinstance(message, dict):
        return ["the body is not {\"message\": {...}}"]
    allowed = {"name", "data", "notification", "android", "webpush", "apns", "fcm_options", "token", "topic", "condition"}
    problems += [f"unknown field message.{k}" for k in set(message) - allowed]
    if sum(k in message for k in ("token", "topic", "condition")) != 1:
        problems.append("exactly one of token, topic, condition")
    if not all(isinstance(v, str) for v in (message.get("data") or {}).values()):
        problems.append("data values must be strings")
    notification = message.get("notification") or {}
    problems += [f"unknown field notification.{k}" for k in set(notification) - {"title", "body", "image"}]
    android = message.get("android") or {}
    problems += [f"unknown field android.{k}" for k in set(android) - {
        "collapse_key", "priority", "ttl", "restricted_package_name", "data", "notification", "fcm_options", "direct_boot_ok"}]
    if "priority" in android and android["priority"] not in ("normal", "high"):
        problems.append("android.priority is normal or high")
    if "ttl" in android and not re.fullmatch(r"\d+(\.\d{1,9})?s", android["ttl"]):
        problems.append("android.ttl is a duration like 3.5s")
    apns = message.get("apns") or {}
    problems += [f"unknown field apns.{k}" for k in set(apns) - {"headers", "payload", "fcm_options"}]
    if not all(isinstance(v, str) for v in (apns.get("headers") or {}).values()):
        problems.append("apns.headers values must be strings")
    return problems


class FakeFcm:
    def __init__(self, *, project: str = "seamline-test") -> None:
        self.project = project
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tokens_issued: list[str] = []
        self.revoked: set[str] = set()
        self.sent: list[dict] = []  # the messages FCM accepted
        self.problems: list[str] = []
        self.answers: dict[str, list[tuple[int, str, dict[str, str]]]] = {}  # device token -> (status, fixture, headers)
        self.token_refusal: tuple[int, dict] | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, body, headers = fake.handle(self.path, dict(self.headers), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json; charset=UTF-8", "Content-Length": str(len(data)),
                                    **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.token_uri = f"{self.url}/token"
        self.lock = threading.Lock()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def service_account(self) -> dict:
        """The JSON key file Firebase gives for a service account, pointing at this server."""
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return {"type": "service_account", "project_id": self.project, "private_key_id": f"kid-{self.server.server_port}",
                "private_key": pem.decode(), "client_email": f"fcm-sender@{self.project}.iam.gserviceaccount.com",
                "client_id": "1234567890", "token_uri": self.token_uri}

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict[str, str]]:
        headers = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            if path == "/token":
                return self._token(raw)
            if path != f"/v1/projects/{self.project}/messages:send":
                return 404, {"error": {"code": 404, "message": f"no {path}", "status": "NOT_FOUND"}}, {}
            bearer = headers.get("authorization", "").removeprefix("Bearer ")
            if bearer not in self.tokens_issued or bearer in self.revoked:
                return 401, fixture("error_unauthenticated"), {}
            body = json.loads(raw)
            problems = check_message(body)
            if problems:
                self.problems += problems
                return 400, {"error": {"code": 400, "message": "; ".join(problems), "status": "INVALID_ARGUMENT"}}, {}
            token = body["message"].get("token")
            queued = self.answers.get(token) or []
            if queued:
                status, name, extra = queued.pop(0)
                return status, fixture(name), extra
            self.sent.append(body["message"])
            return 200, {"name": f"projects/{self.project}/messages/0:{len(self.sent)}%31bd1c9631bd1c96"}, {}

    def _token(self, raw: bytes) -> tuple[int, dict, dict[str, str]]:
        if self.token_refusal is not None:
            return self.token_refusal[0], self.token_refusal[1], {}
        form = dict(parse_qsl(raw.decode()))
        try:
            if form.get("grant_type") != GRANT:
                raise ValueError(f"grant_type {form.get('grant_type')!r}")
            head_b64, claims_b64, signature_b64 = form["assertion"].split(".")
            if json.loads(unb64url(head_b64)).get("alg") != "RS256":
                raise ValueError("the assertion is not RS256")
            self.key.public_key().verify(unb64url(signature_b64), f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(),
                                         hashes.SHA256())
            claims = json.loads(unb64url(claims_b64))
            account = self.service_account()
            now = time.time()
            if claims.get("iss") != account["client_email"] or claims.get("aud") != AUDIENCE:
                raise ValueError(f"iss/aud {claims.get('iss')!r}/{claims.get('aud')!r}")
            if SCOPE not in claims.get("scope", "").split():
                raise ValueError(f"scope {claims.get('scope')!r}")
            if not now - 60 <= claims.get("iat", 0) <= now + 60 or not now < claims.get("exp", 0) <= now + 3700:
                raise ValueError("iat/exp")
        except Exception as exc:  # noqa: BLE001 - whatever is wrong is the test's finding
            self.problems.append(f"token request: {exc}")
            return 400, {"error": "invalid_grant", "error_description": str(exc)}, {}
        answer = fixture("token_response")
        answer["access_token"] = f"ya29.test-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(answer["access_token"])
        return 200, answer, {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
