"""The web push adapter: notifications to the browsers a customer subscribed (the Push API).

- Addresses: the customer's live subscriptions (`webpush_subscription`, across merged
  profiles), read again when the message is sent (`prepare`): a browser subscribed after the
  message was queued gets it, one revoked meanwhile does not.
- Send: to each subscription, the notification `{title, body, url, icon, tag}` as JSON,
  encrypted for that browser (aes128gcm, RFC 8291, by pywebpush) and POSTed to its endpoint
  with a VAPID signature (RFC 8292, py-vapid: `Authorization: vapid t=<JWT>,k=<public key>`, the
  JWT's `aud` the endpoint's origin, `sub` = `inbox_webpush_vapid_subject`), `TTL`, `Urgency`
  and, for a tag, `Topic` (a newer one replaces it while undelivered).
- Answers: 2xx the push service took it; 404 or 410 the browser unsubscribed: the
  subscription is revoked; 429 and 5xx temporary (Retry-After honoured); other 4xx (413 too
  large, 400, 401/403 the VAPID signature refused) fail that subscription. The message is sent
  when one browser's push service took it (the others' failures are kept in `meta.webpush`: a
  retry would notify the first one twice); otherwise it is retried if one failure was
  temporary, else it fails (no subscription left).
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException
from sqlalchemy.orm import Session

from seamline.channels import push
from seamline.channels.webpush.models import WebPushSubscription
from seamline.core import http
from seamline.core.config import Settings
from seamline.core.errors import Unprocessable
from seamline.inbox.adapters import ChannelAdapter, OutboundMessage, SendError, SendResult

CHANNEL = "webpush"
#: The largest body push services take is 4096 bytes; aes128gcm adds an 86-byte header, a
#: padding delimiter and a 16-byte tag.
MAX_PLAINTEXT = 4096 - 86 - 1 - 16
#: How long a VAPID signature is valid (RFC 8292: at most 24 hours).
VAPID_SECONDS = 12 * 3600
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class VapidKeyError(ValueError):
    pass


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    text = private_key.strip().replace("\\n", "\n")
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Vapid.from_string(text).private_key
    except (ValueError, TypeError) as exc:
        raise VapidKeyError("inbox_webpush_vapid_private_key is neither a PEM key nor a base64url P-256 key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VapidKeyError("inbox_webpush_vapid_private_key must be a P-256 (prime256v1) key")
    return Vapid(key)


def vapid(settings: Settings) -> Vapid | None:
    """The VAPID signer of the settings' key; None when none is set. A malformed key raises `VapidKeyError`."""
    key = settings.inbox_webpush_vapid_private_key.get_secret_value()
    return _vapid(key) if key.strip() else None


def public_key(settings: Settings) -> str | None:
    """The VAPID public key as the browser's `applicationServerKey` wants it: the uncompressed
    P-256 point, base64url without padding."""
    signer = vapid(settings)
    if signer is None:
        return None
    raw = signer.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def endpoint_allowed(endpoint: str, hosts: list[str]) -> bool:
    """Whether an endpoint is HTTPS to one of `hosts` (`inbox_webpush_endpoint_hosts`: a host,
    `*.` a domain's subdomains, `http://host` plain HTTP to that host)."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if not host or parts.username or parts.password:
        return False
    for allowed in hosts:
        allowed = allowed.lower().strip()
        scheme = "https"
        if allowed.startswith(("http://", "https://")):
            scheme, allowed = allowed.split("://", 1)
        if parts.scheme != scheme:
            continue
        if allowed.startswith("*.") and host.endswith(allowed[1:]) or host == allowed:
            return True
    return False


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def check_keys(p256dh: str, auth: str) -> None:
    """422 `invalid_subscription_keys` unless p256dh is a P-256 public key and auth 16 bytes."""
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64(p256dh))
        valid = len(_b64(auth)) == 16
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise Unprocessable("keys.p256dh must be a P-256 public key and keys.auth 16 bytes, both base64url",
                            code="invalid_subscription_keys")


def payload(message: OutboundMessage, settings: Settings) -> bytes:
    """The notification JSON, its body cut (with "…") so the whole fits in one push."""
    shown = push.notification(message, settings)
    data = orjson.dumps(shown)
    body = shown["body"] or ""
    while len(data) > MAX_PLAINTEXT and body:
        body = body[: max(0, len(body) - max(1, (len(data) - MAX_PLAINTEXT) // 2))].rstrip()
        shown["body"] = body + "…"
        data = orjson.dumps(shown)
    if len(data) > MAX_PLAINTEXT:
        raise SendError(f"The notification is {len(data)} bytes without its text; a push carries at most {MAX_PLAINTEXT}",
                        temporary=False)
    return data


@dataclass
class _Outcome:
    ok: bool = False
    gone: bool = False
    temporary: bool = False
    retry_after: float | None = None
    error: str = ""


class WebPushAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "web_push"

    def configured(self, settings: Settings) -> bool:
        try:
            return vapid(settings) is not None
        except VapidKeyError:
            return False

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        rows = push.live(session, WebPushSubscription, customer_id)
        if not rows:
            raise Unprocessable("The customer has no browser subscribed to notifications", code="channel_unreachable",
                                details={"channel": CHANNEL})
        return {"customer_id": customer_id, "subscriptions": [row.id for row in rows]}

    def prepare(self, session: Session, message: OutboundMessage) -> OutboundMessage:
        customer_id = message.address.get("customer_id")
        rows = push.live(session, WebPushSubscription, customer_id) if customer_id else []
        message.address = {**message.address, "subscriptions": [
            {"id": row.id, "endpoint": row.endpoint, "p256dh": row.p256dh, "auth": row.auth} for row in rows]}
        return message

    def settle(self, session: Session, message: OutboundMessage, meta: dict[str, Any]) -> None:
        gone = (meta.get(CHANNEL) or {}).get("revoked") or {}
        push.revoke(session, WebPushSubscription, {int(k): v for k, v in gone.items()})

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        try:
            signer = vapid(settings)
        except VapidKeyError as exc:
            raise SendError(str(exc), temporary=True) from exc
        if signer is None:
            raise SendError("Web push is not configured (inbox_webpush_vapid_private_key)", temporary=True)
        subscriptions = [s for s in message.address.get("subscriptions") or [] if isinstance(s, dict)]
        if not subscriptions:
            raise SendError("The customer has no browser subscribed to notifications any more", temporary=False)
        data = payload(message, settings)
        urgency = message.data.get("urgency") or settings.inbox_push_urgency
        tag = message.data.get("tag") or ""
        headers = {"TTL": str(settings.inbox_webpush_ttl_seconds), "Urgency": urgency,
                   **({"Topic": tag} if _TOPIC.match(tag) else {})}
        outcomes = {s["id"]: _post(s, data, headers, signer, settings) for s in subscriptions}
        delivered = [i for i, o in outcomes.items() if o.ok]
        revoked = {str(i): o.error for i, o in outcomes.items() if o.gone}
        failed = {str(i): o.error for i, o in outcomes.items() if not o.ok and not o.gone}
        meta = {CHANNEL: {"subscriptions": len(outcomes), "delivered": len(delivered),
                          **({"revoked": revoked} if revoked else {}), **({"failed": failed} if failed else {})}}
        if delivered:
            return SendResult(provider_message_id=None, status="sent", meta=meta)
        temporary = [o for o in outcomes.values() if o.temporary]
        summary = "; ".join(o.error for o in outcomes.values())[:1000]
        if temporary:
            waits = [o.retry_after for o in temporary if o.retry_after is not None]
            raise SendError(f"Web push: {summary}", temporary=True, retry_after=max(waits) if waits else None, meta=meta)
        raise SendError(f"Web push: no subscription took it ({summary})", temporary=False, meta=meta)


def _post(subscription: dict[str, Any], data: bytes, headers: dict[str, str], signer: Vapid, settings: Settings) -> _Outcome:
    endpoint = subscription["endpoint"]
    if not endpoint_allowed(endpoint, settings.inbox_webpush_endpoint_hosts):
        return _Outcome(error=f"endpoint host not allowed (inbox_webpush_endpoint_hosts): {urlsplit(endpoint).hostname}")
    try:
        body = WebPusher({"endpoint": endpoint, "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}}
                         ).encode(data, "aes128gcm")["body"]
    except (WebPushException, ValueError, TypeError) as exc:
        return _Outcome(gone=True, error=f"unusable subscription keys ({type(exc).__name__})")
    parts = urlsplit(endpoint)
    claims = {"aud": f"{parts.scheme}://{parts.netloc}", "exp": int(time.time()) + VAPID_SECONDS,
              "sub": settings.inbox_webpush_vapid_subject}
    request_headers = {**headers, **signer.sign(claims), "Content-Encoding": "aes128gcm",
                       "Content-Type": "application/octet-stream"}
    try:
        response = http.client().post(endpoint, content=body, headers=request_headers, timeout=15)
    except httpx.HTTPError as exc:
        return _Outcome(temporary=True, error=f"push service unreachable: {type(exc).__name__}")
    status = response.status_code
    if 200 <= status < 300:
        return _Outcome(ok=True)
    text = f"{status} {response.text[:200].strip()}".strip()
    if status in (404, 410):
        return _Outcome(gone=True, error=f"{status}: the browser unsubscribed")
    if status == 429 or status >= 500:
        return _Outcome(temporary=True, retry_after=push.retry_after(response.headers.get("retry-after")), error=text)
    return _Outcome(error=text)


ADAPTER = WebPushAdapter()
