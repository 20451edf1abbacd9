"""The Viber REST bot API adapter.

- In: Viber POSTs every callback to the webhook set with `set_webhook`, signed in
  `X-Viber-Content-Signature` (hex HMAC-SHA256 of the raw body keyed with the bot's auth
  token); a missing or wrong signature is 401 with nothing stored. The `webhook` callback
  (`set_webhook`'s check) is answered 200. A `message` is stored raw under its `message_token`
  (a repeat is ignored) and becomes an inbox message: text, pictures, files, videos (their URLs
  kept; Viber's media URLs expire), locations, and a shared contact, whose number also becomes a
  `phone` identifier so the chat joins the profile that ordered on the website with that phone.
  The sender's id is the `viber_id` identifier, their name the profile's name.
- Statuses: `delivered`, `seen` (read) and `failed` name the reply's `message_token`; they come
  out of order and a status only ever moves forward. `subscribed`, `unsubscribed`,
  `conversation_started` and unknown events are acknowledged and skipped (a reply to someone
  who unsubscribed fails with Viber's status 6).
- Out: `send_message` with `X-Viber-Auth-Token` on `inbox_viber_api_base`, as
  `inbox_viber_sender_name`. Viber answers 200 with a `status`: 0 is sent, 12 (rate limit),
  HTTP 429/5xx and network errors are temporary (retried), others permanent (5: not a Viber
  user, 6: not subscribed to the bot).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy.orm import Session

from seamline.core import http
from seamline.core.config import Settings
from seamline.core.errors import Unauthorized, Unprocessable
from seamline.inbox import service
from seamline.inbox.adapters import (
    ChannelAdapter,
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    SendError,
    SendResult,
)

CHANNEL = "viber"
SIGNATURE_HEADER = "x-viber-content-signature"
STATUSES = {"delivered": "delivered", "seen": "read", "failed": "failed"}
#: send_message's status for "too many requests"
RATE_LIMITED = 12
#: Viber's limit on a sender name
SENDER_NAME_MAX = 28


def signature(token: str, body: bytes) -> str:
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def _callback(body: bytes) -> dict[str, Any]:
    try:
        callback = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Unprocessable("Not a Viber callback", code="invalid_payload") from exc
    if not isinstance(callback, dict) or not isinstance(callback.get("event"), str):
        raise Unprocessable("Not a Viber callback (no event)", code="invalid_payload")
    return callback


def _at(callback: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(callback.get("timestamp") or 0) / 1000, UTC)


class ViberAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "viber"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.inbox_viber_auth_token.get_secret_value())

    def verify(self, headers: Mapping[str, str], body: bytes, *, settings: Settings) -> None:
        token = settings.inbox_viber_auth_token.get_secret_value()
        given = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "").strip().lower()
        if not token or not hmac.compare_digest(given.encode(), signature(token, body).encode()):
            raise Unauthorized("Missing or wrong X-Viber-Content-Signature", code="invalid_signature")

    def split(self, body: bytes) -> list[tuple[str, bytes]]:
        callback = _callback(body)
        if callback["event"] != "message":
            return []  # webhook check, statuses, subscriptions: acknowledged, not inbox messages
        if not callback.get("message_token") or not (callback.get("sender") or {}).get("id"):
            raise Unprocessable("A Viber message without message_token or sender", code="invalid_payload")
        return [(str(callback["message_token"]), body)]

    def parse(self, raw: bytes) -> InboundMessage:
        callback = _callback(raw)
        sender, message = callback["sender"], callback.get("message") or {}
        kind = message.get("type")
        identifiers = [("viber_id", str(sender["id"]))]
        claimed: list[tuple[str, str]] = []
        text = message.get("text") or ""
        files = []
        contact = message.get("contact") if kind == "contact" else None
        if kind in ("picture", "video", "file") and message.get("media"):
            files.append({"kind": kind, "url": message["media"], "filename": message.get("file_name"), "size": message.get("size"),
                          **({"thumbnail": message["thumbnail"]} if message.get("thumbnail") else {})})
        if contact and contact.get("phone_number"):
            phone = str(contact["phone_number"]).strip()
            # Any contact can be shared, and Viber does not say whose it is: a claim.
            claimed.append(("phone", phone if phone.startswith("+") else f"+{phone}"))
            identifiers.append(claimed[-1])
            text = text or f"📞 {contact['phone_number']}"
        elif kind == "location":
            location = message.get("location") or {}
            text = text or f"📍 {location.get('lat')}, {location.get('lon')}"
        if not text and files:
            text = ", ".join(f.get("filename") or f["kind"] for f in files)
        if not text:
            text = f"[{kind or 'unknown'} message]"
        return InboundMessage(
            channel=CHANNEL, provider_message_id=str(callback["message_token"]), identifiers=identifiers, claimed=claimed,
            sender_name=sender.get("name") or None, text=text, sent_at=_at(callback),
            meta={"thread": {"receiver": str(sender["id"])}, "viber": {
                "type": kind, "message_token": str(callback["message_token"]), "language": sender.get("language"),
                "country": sender.get("country"), **({"files": files} if files else {}),
                **({"contact": contact} if contact else {}),
                **({"tracking_data": message["tracking_data"]} if message.get("tracking_data") else {})}},
        )

    def parse_statuses(self, body: bytes) -> list[DeliveryStatus]:
        callback = _callback(body)
        status = STATUSES.get(callback["event"])
        if status is None or not callback.get("message_token"):
            return []
        return [DeliveryStatus(provider_message_id=str(callback["message_token"]), status=status,
                               error=callback.get("desc") if status == "failed" else None, at=_at(callback))]

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        receiver = thread.get("receiver")
        if not receiver:
            ids = service.identities_of_type(session, customer_id, "viber_id")
            receiver = ids[0] if ids else None
        if not receiver:
            raise Unprocessable("The customer has never written to the bot", code="channel_unreachable", details={"channel": CHANNEL})
        return {"receiver": receiver}

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        token = settings.inbox_viber_auth_token.get_secret_value()
        if not token:
            raise SendError("Viber is not configured (inbox_viber_auth_token)", temporary=True)
        url = f"{settings.inbox_viber_api_base.rstrip('/')}/pa/send_message"
        body = {"receiver": message.address["receiver"], "type": "text", "text": message.text,
                "sender": {"name": settings.inbox_viber_sender_name[:SENDER_NAME_MAX]}}
        try:
            response = http.client().post(url, json=body, headers={"X-Viber-Auth-Token": token}, timeout=10)
        except httpx.HTTPError as exc:
            raise SendError(f"Viber unreachable: {type(exc).__name__}", temporary=True) from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        if response.status_code == 200 and data.get("status") == 0:
            token_out = data.get("message_token")
            return SendResult(provider_message_id=str(token_out) if token_out is not None else None, status="sent")
        status = data.get("status")
        temporary = response.status_code == 429 or response.status_code >= 500 or status == RATE_LIMITED
        detail = f"{status}: {data.get('status_message')}" if status is not None else f"HTTP {response.status_code} {response.text[:200]}"
        raise SendError(f"Viber {detail}", temporary=temporary)


ADAPTER = ViberAdapter()
