"""The SMS adapter: one HTTP gateway, the provider chosen by `inbox_sms_provider` (providers.py).

- In: every callback (incoming SMS and delivery reports alike) comes to one webhook and is
  authenticated first: Twilio's signature, the generic gateway's HMAC, or for SMS.ru and SMSC
  (which sign nothing) our secret in the callback URL. Anything else is 401 with nothing stored;
  a request that is not the provider's callback at all is 422. An incoming SMS is stored under
  the provider's message id (gateways repeat callbacks: a repeat is ignored). Its sender's
  number is the `phone` identifier, so the SMS joins the profile that ordered on the website
  with that phone, however it was written there.
- Statuses (sent, delivered, read, failed) are mapped from each provider's codes and only ever
  move a reply forward.
- Out: to the number the customer last wrote from (the conversation's SMS state), else their
  newest `phone`. The text is counted into parts first (segments.py): the count goes into the
  message's `meta.sms`, and a reply longer than `inbox_sms_max_parts` fails rather than costing
  a dozen SMS. Network errors, HTTP 429/5xx and the provider's rate-limit codes are temporary
  (retried); a bad number, no balance or a rejected sender are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
import orjson
from sqlalchemy.orm import Session

from seamline.core import http
from seamline.channels.sms import segments
from seamline.channels.sms.providers import PROVIDERS, Callback, Provider
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

CHANNEL = "sms"
WEBHOOK_PATH = "/v1/channels/sms/webhook"


def configured_provider(settings: Settings) -> Provider | None:
    return PROVIDERS.get(settings.inbox_sms_provider)


def status_url(settings: Settings) -> str | None:
    """Where the provider should report a reply's statuses, when this server's public URL is known."""
    return settings.inbox_sms_public_url.rstrip("/") + WEBHOOK_PATH if settings.inbox_sms_public_url else None


class SmsAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "sms"

    def configured(self, settings: Settings) -> bool:
        return configured_provider(settings) is not None

    def verify(self, headers: Mapping[str, str], body: bytes, *, settings: Settings) -> None:
        provider = configured_provider(settings)
        callback = Callback.decode(body)
        if provider is None or callback.provider != provider.name:
            raise Unauthorized("SMS is not configured (inbox_sms_provider)", code="invalid_signature")
        provider.verify(callback, headers, settings)

    def split(self, body: bytes) -> list[tuple[str, bytes]]:
        callback = Callback.decode(body)
        return [(f"{callback.provider}:{m.id}", m.encode(callback.provider)) for m in PROVIDERS[callback.provider].messages(callback)]

    def parse(self, raw: bytes) -> InboundMessage:
        part = orjson.loads(raw)
        phone, media = part["from"], part.get("media") or []
        text = part["text"] or ", ".join(m.get("content_type") or "media" for m in media)
        counted = segments.count(part["text"])
        return InboundMessage(
            channel=CHANNEL, provider_message_id=f"{part['provider']}:{part['id']}", identifiers=[("phone", phone)], text=text,
            sent_at=datetime.fromisoformat(part["at"]) if part.get("at") else None,
            meta={"thread": {"phone": phone, **({"our_number": part["to"]} if part.get("to") else {})},
                  "sms": {"provider": part["provider"], "encoding": counted.encoding, "parts": counted.parts,
                          **({"to": part["to"]} if part.get("to") else {}), **({"media": media} if media else {})}},
        )

    def parse_statuses(self, body: bytes) -> list[DeliveryStatus]:
        callback = Callback.decode(body)
        return PROVIDERS[callback.provider].statuses(callback)

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        phone = thread.get("phone")
        if not phone:
            phones = service.identities_of_type(session, customer_id, "phone")
            phone = phones[-1] if phones else None  # the newest: an old number is the likelier to be gone
        if not phone:
            raise Unprocessable("The customer has no phone number", code="channel_unreachable", details={"channel": CHANNEL})
        return {"phone": phone, **({"sender": thread["our_number"]} if thread.get("our_number") else {})}

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        provider = configured_provider(settings)
        if provider is None:
            raise SendError("SMS is not configured (inbox_sms_provider)", temporary=True)
        if message.attachments:
            raise SendError("An SMS carries text only: send files on another channel", temporary=False)
        if not message.text.strip():
            raise SendError("An SMS needs text", temporary=False)
        counted = segments.count(message.text)
        if counted.parts > settings.inbox_sms_max_parts:
            raise SendError(f"The reply is {counted.parts} SMS ({counted.encoding}); at most {settings.inbox_sms_max_parts} "
                            "are sent (inbox_sms_max_parts)", temporary=False)
        reference = f"seamline-{message.message_id}"
        sender = settings.inbox_sms_sender or (message.address.get("sender", "") if provider.replies_from_recipient else "")
        request = provider.request(to=message.address["phone"], text=message.text, sender=sender, reference=reference,
                                   settings=settings, status_url=status_url(settings))
        try:
            response = http.client().post(request.url, data=request.form, json=request.json, headers=request.headers,
                                  auth=request.auth, timeout=15)
        except httpx.HTTPError as exc:
            raise SendError(f"{provider.title} is unreachable: {type(exc).__name__}", temporary=True) from exc
        sent = provider.sent(response, reference=reference)
        meta = {"provider": provider.name, "encoding": counted.encoding, "parts": counted.parts, "units": counted.units}
        if sent.parts and sent.parts != counted.parts:
            meta["provider_parts"] = sent.parts
        return SendResult(provider_message_id=sent.id, status="sent", meta={"sms": meta})


ADAPTER = SmsAdapter()
