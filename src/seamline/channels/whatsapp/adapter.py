"""The WhatsApp Business Cloud API adapter.

- Subscribing: Meta calls `GET` on the webhook with `hub.mode=subscribe`, `hub.verify_token`
  and `hub.challenge`; the challenge is echoed only for the configured verify token.
- In: every POST must carry `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the
  app secret>`; a missing or wrong signature is 401 with nothing stored (peers that checked it
  late could be sent forged messages). Each message is stored raw under its `wamid` (Meta
  retries and repeats); its sender's number is both the `whatsapp` identifier and a `phone`,
  so the chat joins the profile that ordered with that phone. Statuses (sent, delivered, read,
  failed) arrive out of order and repeated: a status only ever moves forward.
- Out: free-form text only within 24 hours of the customer's last message (WhatsApp's
  customer-service window); after that the API accepts only approved templates, and a reply is
  refused up front with 409 `whatsapp_window_closed`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy.orm import Session

from seamline.core import http
from seamline.core.config import Settings
from seamline.core.errors import Conflict, Unauthorized, Unprocessable
from seamline.core.time import utcnow
from seamline.inbox.adapters import (
    ChannelAdapter,
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    SendError,
    SendResult,
)

CHANNEL = "whatsapp"
WINDOW = timedelta(hours=24)
MEDIA = ("image", "document", "audio", "video", "sticker")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _changes(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = orjson.loads(body)
        return [change.get("value") or {} for entry in payload.get("entry") or [] for change in entry.get("changes") or []]
    except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
        raise Unprocessable("Not a WhatsApp webhook payload", code="invalid_payload") from exc


class WhatsAppAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "whatsapp"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.inbox_whatsapp_access_token.get_secret_value() and settings.inbox_whatsapp_phone_number_id)

    def verify(self, headers: Mapping[str, str], body: bytes, *, settings: Settings) -> None:
        secret = settings.inbox_whatsapp_app_secret.get_secret_value()
        given = {k.lower(): v for k, v in headers.items()}.get("x-hub-signature-256", "")
        if not secret or not hmac.compare_digest(given.encode(), signature(secret, body).encode()):
            raise Unauthorized("Missing or wrong X-Hub-Signature-256", code="invalid_signature")

    def split(self, body: bytes) -> list[tuple[str, bytes]]:
        parts = []
        for value in _changes(body):
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name") for c in value.get("contacts") or []}
            for message in value.get("messages") or []:
                part = {"message": message, "name": names.get(message.get("from")), "metadata": value.get("metadata") or {}}
                parts.append((str(message["id"]), orjson.dumps(part)))
        return parts

    def parse(self, raw: bytes) -> InboundMessage:
        part = orjson.loads(raw)
        message = part["message"]
        number = "+" + str(message["from"]).lstrip("+")
        kind = message.get("type")
        text = ""
        files = []
        if kind == "text":
            text = (message.get("text") or {}).get("body") or ""
        elif kind in MEDIA:
            media = message.get(kind) or {}
            text = media.get("caption") or media.get("filename") or kind
            files.append({"kind": kind, "media_id": media.get("id"), "content_type": media.get("mime_type"),
                          "filename": media.get("filename")})
        elif kind == "location":
            location = message.get("location") or {}
            text = f"📍 {location.get('latitude')}, {location.get('longitude')} {location.get('name') or ''}".strip()
        else:
            text = f"[{kind or 'unknown'} message]"
        at = datetime.fromtimestamp(int(message.get("timestamp") or 0), UTC)
        return InboundMessage(
            channel=CHANNEL, provider_message_id=str(message["id"]), identifiers=[("whatsapp", number), ("phone", number)],
            sender_name=part.get("name"), text=text, sent_at=at,
            meta={"thread": {"wa_id": str(message["from"]), "last_inbound_at": at.isoformat()},
                  "whatsapp": {"type": kind, **({"files": files} if files else {}),
                               **({"errors": message["errors"]} if message.get("errors") else {})}},
        )

    def parse_statuses(self, body: bytes) -> list[DeliveryStatus]:
        found = []
        for value in _changes(body):
            for status in value.get("statuses") or []:
                errors = status.get("errors") or []
                found.append(DeliveryStatus(
                    provider_message_id=str(status.get("id")), status=str(status.get("status")),
                    error="; ".join(f"{e.get('code')}: {e.get('title')}" for e in errors) or None,
                    at=datetime.fromtimestamp(int(status.get("timestamp") or 0), UTC)))
        return found

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        if not thread.get("wa_id"):
            raise Unprocessable("The customer has never written on WhatsApp", code="channel_unreachable", details={"channel": CHANNEL})
        last = datetime.fromisoformat(thread["last_inbound_at"]) if thread.get("last_inbound_at") else None
        if last is None or utcnow() - last > WINDOW:
            raise Conflict(
                "WhatsApp allows free-form replies only within 24 hours of the customer's last message; "
                "after that only approved message templates may be sent", code="whatsapp_window_closed",
                details={"last_customer_message_at": last, "window_hours": 24})
        return {"wa_id": thread["wa_id"]}

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        token, number_id = settings.inbox_whatsapp_access_token.get_secret_value(), settings.inbox_whatsapp_phone_number_id
        if not token or not number_id:
            raise SendError("WhatsApp is not configured (inbox_whatsapp_access_token, inbox_whatsapp_phone_number_id)", temporary=True)
        url = f"{settings.inbox_whatsapp_api_base.rstrip('/')}/{number_id}/messages"
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": message.address["wa_id"],
                "type": "text", "text": {"preview_url": False, "body": message.text}}
        try:
            response = http.client().post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        except httpx.HTTPError as exc:
            raise SendError(f"WhatsApp unreachable: {type(exc).__name__}", temporary=True) from exc
        data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code == 200 and data.get("messages"):
            return SendResult(provider_message_id=str(data["messages"][0]["id"]), status="sent")
        error = data.get("error") or {}
        temporary = response.status_code == 429 or response.status_code >= 500 or error.get("code") in (4, 80007, 130429, 131056)
        raise SendError(f"WhatsApp {response.status_code}: {error.get('code')} {error.get('message') or response.text[:200]}",
                        temporary=temporary)


ADAPTER = WhatsAppAdapter()
