"""A loopback push service (RFC 8030) for the web push tests, checking what a real one checks.

Each `subscribe()` makes a browser's side of a subscription: a P-256 key pair and a 16-byte
auth secret (as the browser generates them) and an endpoint URL on this server. A push POSTed
to an endpoint is checked as a push service and the browser would: the VAPID `Authorization:
vapid t=<JWT>,k=<key>` header (RFC 8292: an ES256 JWT verified here with `cryptography` against
`k`, the key the subscription was made with; `aud` this server's origin, `exp` in the future and
within 24 hours, `sub` a mailto: or https: URL), `Content-Encoding: aes128gcm`, a `TTL`; then the
body is decrypted with the subscriber's private key and auth secret (RFC 8291, `http_ece`).
What arrived is kept in `received`; what was wrong in `problems` (answered 400 or 401). Queued
`answers` (status, headers) are given instead of 201, one per push, for the error paths.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscriber:
    """The browser's half of a subscription."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> str:
        return b64url(self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                                 serialization.PublicFormat.UncompressedPoint))

    def as_json(self) -> dict:
        """What `PushSubscription.toJSON()` gives."""
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}


@dataclass
class Push:
    endpoint: str
    payload: dict
    headers: dict[str, str]
    claims: dict
    vapid_key: str
    #: The decrypted bytes, as the browser's push event gets them
    plaintext: bytes = b""


def verify_vapid(header: str, origin: str) -> tuple[dict, str]:
    """(claims, public key) of a valid `vapid t=...,k=...` header; raises ValueError otherwise."""
    match = re.fullmatch(r"vapid t=([A-Za-z0-9_\-.]+),\s*k=([A-Za-z0-9_\-]+)", header or "")
    if not match:
        raise ValueError(f"not a VAPID Authorization header: {header!r}")
    token, key = match.groups()
    head_b64, claims_b64, signature_b64 = token.split(".")
    head = json.loads(unb64url(head_b64))
    if head.get("alg") != "ES256":
        raise ValueError(f"JWT alg is {head.get('alg')!r}, not ES256")
    signature = unb64url(signature_b64)
    if len(signature) != 64:
        raise ValueError("an ES256 signature is 64 bytes (r || s)")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise ValueError("the VAPID JWT's signature does not verify with k") from exc
    claims = json.loads(unb64url(claims_b64))
    now = time.time()
    if claims.get("aud") != origin:
        raise ValueError(f"aud is {claims.get('aud')!r}, not the endpoint's origin {origin!r}")
    if not now < claims.get("exp", 0) <= now + 24 * 3600:
        raise ValueError(f"exp {claims.get('exp')} is not within the next 24 hours")
    if not re.match(r"^(mailto:\S+@\S+|https://\S+)$", claims.get("sub", "")):
        raise ValueError(f"sub {claims.get('sub')!r} is not a mailto: or https: contact")
    return claims, key


class PushService:
    def __init__(self) -> None:
        self.subscribers: dict[str, Subscriber] = {}
        self.received: list[Push] = []
        self.problems: list[str] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        #: Per endpoint: an answer given to every push there (a browser that unsubscribed: 410)
        self.fixed: dict[str, tuple[int, dict[str, str]]] = {}
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers = service.handle(self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in {"Content-Length": "0", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(f"{self.origin}/push/{b64url(os.urandom(12))}", ec.generate_private_key(ec.SECP256R1()),
                                os.urandom(16))
        self.subscribers[subscriber.endpoint] = subscriber
        return subscriber

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        endpoint = self.origin + path
        headers = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            subscriber = self.subscribers.get(endpoint)
            if subscriber is None:
                return 404, {}
            if endpoint in self.fixed:
                return self.fixed[endpoint]
            try:
                claims, key = verify_vapid(headers.get("authorization", ""), self.origin)
            except (ValueError, KeyError) as exc:
                self.problems.append(f"VAPID: {exc}")
                return 401, {}
            try:
                if headers.get("content-encoding") != "aes128gcm":
                    raise ValueError(f"Content-Encoding is {headers.get('content-encoding')!r}")
                if not headers.get("ttl", "").isdigit():
                    raise ValueError("no TTL header")
                plain = http_ece.decrypt(body, private_key=subscriber.private_key, auth_secret=subscriber.auth,
                                         version="aes128gcm")
                payload = json.loads(plain)
            except Exception as exc:  # noqa: BLE001 - whatever is wrong is the test's finding
                self.problems.append(f"{type(exc).__name__}: {exc}")
                return 400, {}
            if self.answers:
                return self.answers.pop(0)
            self.received.append(Push(endpoint, payload, headers, claims, key, plain))
            return 201, {"Location": f"{self.origin}/m/{len(self.received)}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
