"""The Telegram Bot API adapter.

- In: Telegram POSTs each `Update` to the webhook set with `setWebhook(url, secret_token)`;
  a request without the matching `X-Telegram-Bot-Api-Secret-Token` is refused with no side
  effect. An update is stored raw under its `update_id` (Telegram resends until it gets a 2xx:
  a repeat is ignored). Private-chat messages and edits become inbox messages: text, photos and
  documents (their file ids kept; the caption is the text), and a shared contact — the person's
  own phone number joins their profile through the identity graph, so a Telegram chat meets the
  orders placed on the website with that phone. Other update kinds are acknowledged and skipped.
- Out: `sendMessage` to the chat on the API base URL (`inbox_telegram_api_base`, for a local
  Bot API server or a test); an agent's files with `sendPhoto` / `sendDocument` (multipart). 429 and 5xx are temporary (retried), other errors permanent (a
  user who blocked the bot gets 403).
"""

from __future__ import annotations

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
    InboundMessage,
    OutboundMessage,
    SendError,
    SendResult,
)

CHANNEL = "telegram"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
MESSAGE_KINDS = ("message", "edited_message")
CAPTION_MAX = 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
PHOTO_MAX_BYTES = 10 * 1024 * 1024


class TelegramAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "telegram"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.inbox_telegram_bot_token.get_secret_value())

    def verify(self, headers: Mapping[str, str], body: bytes, *, settings: Settings) -> None:
        secret = settings.inbox_telegram_webhook_secret.get_secret_value()
        given = {k.lower(): v for k, v in headers.items()}.get(SECRET_HEADER, "")
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            raise Unauthorized("Missing or wrong X-Telegram-Bot-Api-Secret-Token", code="invalid_signature")

    def split(self, body: bytes) -> list[tuple[str, bytes]]:
        try:
            update = orjson.loads(body)
            update_id = int(update["update_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise Unprocessable("Not a Telegram update (no update_id)", code="invalid_payload") from exc
        message = next((update[k] for k in MESSAGE_KINDS if isinstance(update.get(k), dict)), None)
        if message is None or (message.get("chat") or {}).get("type") != "private":
            return []  # other kinds (membership, callbacks, groups): acknowledged, not an inbox message
        return [(f"update:{update_id}", body)]

    def parse(self, raw: bytes) -> InboundMessage:
        update = orjson.loads(raw)
        kind = next(k for k in MESSAGE_KINDS if isinstance(update.get(k), dict))
        message = update[kind]
        sender = message.get("from") or {}
        chat_id = message["chat"]["id"]
        identifiers = [("telegram_id", str(sender.get("id") or chat_id))]
        contact = message.get("contact")
        if contact and contact.get("user_id") == sender.get("id") and contact.get("phone_number"):
            phone = contact["phone_number"]
            identifiers.append(("phone", phone if phone.startswith("+") else f"+{phone}"))  # Telegram sends digits only
        text = message.get("text") or message.get("caption") or ""
        files = []
        if message.get("photo"):
            largest = max(message["photo"], key=lambda p: p.get("file_size") or 0)
            files.append({"kind": "photo", "file_id": largest["file_id"], "size": largest.get("file_size")})
        if message.get("document"):
            document = message["document"]
            files.append({"kind": "document", "file_id": document["file_id"], "filename": document.get("file_name"),
                          "content_type": document.get("mime_type"), "size": document.get("file_size")})
        if contact and not text:
            text = f"📞 {contact.get('phone_number')}"
        if not text and files:
            text = ", ".join(f.get("filename") or f["kind"] for f in files)
        name = " ".join(p for p in (sender.get("first_name"), sender.get("last_name")) if p) or None
        edited = kind == "edited_message"
        return InboundMessage(
            channel=CHANNEL,
            provider_message_id=f"{chat_id}:{message['message_id']}" + (f":edit:{message.get('edit_date')}" if edited else ""),
            identifiers=identifiers, sender_name=name, text=text,
            sent_at=datetime.fromtimestamp(message.get("edit_date") or message["date"], UTC),
            meta={"thread": {"chat_id": chat_id}, "telegram": {
                "update_id": update["update_id"], "message_id": message["message_id"], "username": sender.get("username"),
                "language": sender.get("language_code"), **({"files": files} if files else {}),
                **({"edited": True} if edited else {}), **({"contact": contact} if contact else {})}},
        )

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        chat_id = thread.get("chat_id")
        if chat_id is None:
            ids = service.identities_of_type(session, customer_id, "telegram_id")
            chat_id = int(ids[0]) if ids and ids[0].lstrip("-").isdigit() else None
        if chat_id is None:
            raise Unprocessable("The customer has never written to the bot", code="channel_unreachable", details={"channel": CHANNEL})
        return {"chat_id": chat_id}

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        """Text with `sendMessage`; files with `sendPhoto` (images up to 10 MB) or `sendDocument`,
        uploaded as multipart, the text as the first file's caption when it fits (1,024
        characters), else sent first on its own."""
        token = settings.inbox_telegram_bot_token.get_secret_value()
        if not token:
            raise SendError("Telegram is not configured (inbox_telegram_bot_token)", temporary=True)
        base = f"{settings.inbox_telegram_api_base.rstrip('/')}/bot{token}"
        chat_id = message.address["chat_id"]
        files = message.attachments
        caption_fits = bool(files) and len(message.text) <= CAPTION_MAX
        ids = []
        if message.text and not caption_fits:
            ids.append(_call(f"{base}/sendMessage", json={"chat_id": chat_id, "text": message.text}))
        for n, file in enumerate(files):
            photo = file.content_type in PHOTO_TYPES and len(file.data) <= PHOTO_MAX_BYTES
            method, field = ("sendPhoto", "photo") if photo else ("sendDocument", "document")
            fields = {"chat_id": str(chat_id), **({"caption": message.text} if n == 0 and caption_fits and message.text else {})}
            ids.append(_call(f"{base}/{method}", data=fields, files={field: (file.filename, file.data, file.content_type)}))
        if not ids:
            raise SendError("Nothing to send: no text and no files", temporary=False)
        return SendResult(provider_message_id=ids[0], status="sent", meta={"telegram": {"message_ids": ids}} if len(ids) > 1 else {})


def _call(url: str, **request: Any) -> str:
    try:
        response = http.client().post(url, timeout=30, **request)
    except httpx.HTTPError as exc:
        raise SendError(f"Telegram unreachable: {type(exc).__name__}", temporary=True) from exc
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code == 200 and body.get("ok"):
        result = body["result"]
        return f"{result['chat']['id']}:{result['message_id']}"
    description = body.get("description") or response.text[:200]
    temporary = response.status_code == 429 or response.status_code >= 500
    retry_after = (body.get("parameters") or {}).get("retry_after")
    raise SendError(f"Telegram {response.status_code}: {description}", temporary=temporary,
                    retry_after=float(retry_after) if isinstance(retry_after, int | float) else None)


ADAPTER = TelegramAdapter()
