"""The demo's local sink: where the demo's channels really send (issue 18, item 9).

`seamline demo` has no Telegram bot, WhatsApp number, VK community or mail server. Rather than
let an agent's reply wait in a queue for a provider that does not exist (or claim it was sent),
the demo points each channel at this sink: provider-shaped endpoints in the same server under
`/demo/sink/` (the Telegram Bot API's sendMessage, sendPhoto and sendDocument, the WhatsApp
Cloud API's messages, VK's messages.send) and an SMTP server on loopback (aiosmtpd). Replies go
through the real adapters and the real send worker, over HTTP and SMTP, and come back with
provider ids and a "sent" state; `GET /demo/sink/outbox` shows what arrived. Mounted only when
`SEAMLINE_DEMO` is true (the demo's settings file sets it), never in a real install.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import threading
from collections import deque
from email import message_from_bytes
from email.policy import default
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from seamline.core.time import utcnow

log = logging.getLogger(__name__)

router = APIRouter(prefix="/demo/sink", include_in_schema=False)

#: The base URLs the demo's settings give each channel, relative to the demo server's address.
TELEGRAM_PATH, WHATSAPP_PATH, VK_PATH = "/demo/sink/telegram", "/demo/sink/whatsapp", "/demo/sink/vk"


class Outbox:
    """What the sink received, newest last (the last 500, in this process's memory)."""

    def __init__(self, size: int = 500) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, channel: str, to: str, text: str, **extra: Any) -> int:
        with self._lock:
            number = next(self._ids)
            self._items.append({"id": number, "channel": channel, "to": to, "text": text,
                                "received_at": utcnow().isoformat(), **extra})
            return number

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)


OUTBOX = Outbox()


async def _fields(request: Request) -> dict[str, Any]:
    """A provider request's fields, whether JSON, a form or a multipart upload."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        return body if isinstance(body, dict) else {}
    form = await request.form()
    return {k: (v if isinstance(v, str) else f"[{getattr(v, 'filename', 'file')}]") for k, v in form.items()}


@router.post("/telegram/bot{token}/{method}")
async def telegram(token: str, method: str, request: Request) -> dict[str, Any]:
    fields = await _fields(request)
    chat_id = fields.get("chat_id")
    text = fields.get("text") or fields.get("caption") or fields.get("photo") or fields.get("document") or ""
    number = OUTBOX.add("telegram", str(chat_id), str(text), method=method)
    return {"ok": True, "result": {"message_id": number, "date": int(utcnow().timestamp()),
                                   "chat": {"id": int(chat_id) if str(chat_id).lstrip("-").isdigit() else chat_id}}}


@router.post("/whatsapp/{number_id}/messages")
async def whatsapp(number_id: str, request: Request) -> dict[str, Any]:
    fields = await _fields(request)
    to = str(fields.get("to", ""))
    number = OUTBOX.add("whatsapp", to, str((fields.get("text") or {}).get("body", "")))
    return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.demo-sink-{number}"}]}


@router.post("/vk/method/{method}")
async def vk(method: str, request: Request) -> dict[str, Any]:
    fields = await _fields(request)
    return {"response": OUTBOX.add("vk", str(fields.get("peer_id", "")), str(fields.get("message", "")), method=method)}


class TelegramWrite(BaseModel):
    telegram_id: int = Field(gt=0, lt=10**13, description="The Telegram user id of the person writing")
    first_name: str = Field(default="", max_length=64)
    text: str = Field(min_length=1, max_length=4096)


@router.post("/telegram/write")
def telegram_write(request: Request, data: TelegramWrite) -> dict[str, Any]:
    """A person writes to the demo's bot in Telegram: the update Telegram would POST (the Bot API's
    `Update` with a text `message`) goes through the real webhook's verification and storage, and
    the demo's worker processes it; the bot's answer arrives in the outbox (`to` = the chat id)."""
    from seamline.channels.telegram.adapter import ADAPTER, SECRET_HEADER
    from seamline.inbox import delivery

    state = request.app.state
    now = utcnow()
    update_id = int(now.timestamp() * 1000) % 2_000_000_000
    sender = {"id": data.telegram_id, "is_bot": False, "first_name": data.first_name or "Demo", "language_code": "ru"}
    update = {"update_id": update_id, "message": {"message_id": update_id, "from": sender, "chat": {**sender, "type": "private"},
                                                  "date": int(now.timestamp()), "text": data.text}}
    secret = state.settings.inbox_telegram_webhook_secret.get_secret_value()
    accepted = delivery.accept(state.database, settings=state.settings, adapter=ADAPTER, headers={SECRET_HEADER: secret},
                               body=json.dumps(update).encode())
    return {"update_id": update_id, "stored": [a.inbound_id for a in accepted]}


@router.get("/outbox")
def outbox() -> dict[str, Any]:
    """What the demo's channels sent, newest first."""
    return {"items": OUTBOX.items()[::-1]}


class _MailHandler:
    """aiosmtpd's handler: every message accepted into the outbox."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        mail = message_from_bytes(envelope.original_content or envelope.content, policy=default)
        body = mail.get_body(preferencelist=("plain", "html"))
        OUTBOX.add("email", ", ".join(envelope.rcpt_tos), body.get_content().strip() if body is not None else "",
                   subject=str(mail.get("Subject", "")))
        return "250 Accepted by the Seamline demo sink"


class MailSink:
    """The SMTP half of the sink, on loopback; `start` logs and carries on when the port is taken
    (a second demo server on the same database): replies then fail visibly, with the reason."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.controller: Any = None

    def start(self) -> MailSink:
        from aiosmtpd.controller import Controller

        try:
            self.controller = Controller(_MailHandler(), hostname="127.0.0.1", port=self.port,
                                         loop=asyncio.new_event_loop())
            self.controller.start()
        except (OSError, RuntimeError) as exc:
            log.warning("the demo's mail sink could not listen on 127.0.0.1:%s (%s): email replies will fail", self.port, exc)
            self.controller = None
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def channel_settings(base_url: str, smtp_port: int) -> dict[str, str]:
    """The demo's settings (as environment variables) pointing every channel at the sink served at
    `base_url` (the demo server's own address) and at an SMTP sink on `smtp_port`."""
    base = base_url.rstrip("/")
    return {
        "SEAMLINE_INBOX_TELEGRAM_BOT_TOKEN": "demo-sink",
        "SEAMLINE_INBOX_TELEGRAM_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "SEAMLINE_INBOX_TELEGRAM_API_BASE": base + TELEGRAM_PATH,
        "SEAMLINE_INBOX_WHATSAPP_ACCESS_TOKEN": "demo-sink",
        "SEAMLINE_INBOX_WHATSAPP_PHONE_NUMBER_ID": "demo",
        "SEAMLINE_INBOX_WHATSAPP_API_BASE": base + WHATSAPP_PATH,
        "SEAMLINE_INBOX_VK_ACCESS_TOKEN": "demo-sink",
        "SEAMLINE_INBOX_VK_API_BASE": base + VK_PATH,
        "SEAMLINE_INBOX_SMTP_HOST": "127.0.0.1",
        "SEAMLINE_INBOX_SMTP_PORT": str(smtp_port),
        "SEAMLINE_INBOX_SMTP_SECURITY": "none",
        "SEAMLINE_INBOX_EMAIL_ADDRESS": "support@demo.seamline",
    }
