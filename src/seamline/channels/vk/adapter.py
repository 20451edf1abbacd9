"""The VK (VKontakte) community Callback API adapter.

- Confirming: when the server is added in the community's Callback API settings, VK POSTs
  `{"type": "confirmation", "group_id": ...}`; the answer is the plain-text confirmation code
  (`inbox_vk_confirmation_code`), given only to a request with the right secret and, when
  `inbox_vk_group_id` is set, for that community.
- In: every event carries the community's secret key in its `secret` field; an event without
  the one set as `inbox_vk_secret` is 401 with nothing stored, one for another community (when
  `inbox_vk_group_id` is set) 403. Events are stored raw under their `event_id` (VK resends an
  event until it gets `ok`: a repeat is ignored). `message_new` and `message_edit` of a private
  dialog become inbox messages: text, photos and documents (their ids and URLs kept); the
  sender's VK id is the `vk_id` identifier. VK gives no name with a message (it would take a
  `users.get` call): the profile's name comes from elsewhere. Everything else — group chats,
  the community's own messages (`message_reply`, its edits), `message_allow`/`message_deny`,
  typing, wall and other events — is acknowledged with `ok` and skipped; a person who denied
  the community's messages makes replies fail with VK's error 901.
- Out: `messages.send` with the community's access token on `inbox_vk_api_base`. `random_id`
  is the reply's id, so VK itself drops a resent copy of a retried reply. VK answers 200 with
  either `response` or `error`: errors 1, 6, 9 and 10 (unknown, too many requests, flood
  control, internal), 5xx and network errors are temporary (retried), others permanent (901:
  the person does not allow messages from the community; 7, 15: no access).
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
from seamline.core.errors import Forbidden, Unauthorized, Unprocessable
from seamline.inbox import service
from seamline.inbox.adapters import (
    ChannelAdapter,
    InboundMessage,
    OutboundMessage,
    SendError,
    SendResult,
)

CHANNEL = "vk"
API_VERSION = "5.199"
MESSAGE_TYPES = ("message_new", "message_edit")
#: peer_id of a group chat: 2000000000 + the chat's number
CHAT_PEER_BASE = 2_000_000_000
#: Unknown error, too many requests per second, flood control, internal server error
TEMPORARY_ERRORS = frozenset({1, 6, 9, 10})


def event_of(body: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Unprocessable("Not a VK Callback API event", code="invalid_payload") from exc
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise Unprocessable("Not a VK Callback API event (no type)", code="invalid_payload")
    return event


def _message(event: dict[str, Any]) -> dict[str, Any] | None:
    """The message of a `message_new` (wrapped with `client_info`) or `message_edit` event."""
    obj = event.get("object")
    if not isinstance(obj, dict):
        return None
    message = obj.get("message") if event.get("type") == "message_new" else obj
    return message if isinstance(message, dict) else None


class VkAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "vk"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.inbox_vk_access_token.get_secret_value())

    def verify(self, headers: Mapping[str, str], body: bytes, *, settings: Settings) -> None:
        secret = settings.inbox_vk_secret.get_secret_value()
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = None
        given = event.get("secret") if isinstance(event, dict) else None
        if not secret or not isinstance(given, str) or not hmac.compare_digest(given.encode(), secret.encode()):
            raise Unauthorized("Missing or wrong Callback API secret", code="invalid_signature")
        group = settings.inbox_vk_group_id.strip()
        if group and str(event.get("group_id")) != group:
            raise Forbidden("The event is for another community", code="wrong_vk_group",
                            details={"group_id": event.get("group_id")})

    def split(self, body: bytes) -> list[tuple[str, bytes]]:
        event = event_of(body)
        if event["type"] not in MESSAGE_TYPES:
            return []  # confirmation is answered by the route; other events: acknowledged, not messages
        message = _message(event)
        if message is None or "peer_id" not in message or "from_id" not in message:
            raise Unprocessable(f"A {event['type']} event without a message", code="invalid_payload")
        if message.get("out") or int(message["peer_id"]) >= CHAT_PEER_BASE or int(message["from_id"]) <= 0:
            return []  # the community's own message, a group chat, or a message from a community
        if event.get("event_id"):
            return [(f"event:{event['event_id']}", body)]
        # API versions before 5.103 had no event_id: the message itself is the key
        edit = f":edit:{message.get('update_time')}" if event["type"] == "message_edit" else ""
        return [(f"message:{message['peer_id']}:{message.get('id')}{edit}", body)]

    def parse(self, raw: bytes) -> InboundMessage:
        event = event_of(raw)
        message = _message(event)
        peer_id, from_id = int(message["peer_id"]), int(message["from_id"])
        edited = event["type"] == "message_edit"
        files = []
        for attachment in message.get("attachments") or []:
            kind = attachment.get("type")
            item = attachment.get(kind) if isinstance(attachment.get(kind), dict) else {}
            if kind == "photo":
                sizes = item.get("sizes") or []
                largest = max(sizes, key=lambda s: (s.get("width") or 0) * (s.get("height") or 0), default={})
                files.append({"kind": "photo", "id": f"photo{item.get('owner_id')}_{item.get('id')}", "url": largest.get("url")})
            elif kind == "doc":
                files.append({"kind": "doc", "id": f"doc{item.get('owner_id')}_{item.get('id')}", "url": item.get("url"),
                              "filename": item.get("title"), "ext": item.get("ext"), "size": item.get("size")})
            elif kind:
                files.append({"kind": kind})
        text = message.get("text") or ""
        if not text and files:
            text = ", ".join(f.get("filename") or f["kind"] for f in files)
        edit = f":edit:{message.get('update_time')}" if edited else ""
        return InboundMessage(
            channel=CHANNEL, provider_message_id=f"{peer_id}:{message.get('id')}{edit}",
            identifiers=[("vk_id", str(from_id))], text=text,
            sent_at=datetime.fromtimestamp(int(message.get("update_time") or message.get("date") or 0), UTC),
            meta={"thread": {"peer_id": peer_id}, "vk": {
                "event_id": event.get("event_id"), "group_id": event.get("group_id"), "message_id": message.get("id"),
                "conversation_message_id": message.get("conversation_message_id"),
                **({"files": files} if files else {}), **({"edited": True} if edited else {})}},
        )

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        peer_id = thread.get("peer_id")
        if peer_id is None:
            ids = service.identities_of_type(session, customer_id, "vk_id")
            peer_id = int(ids[0]) if ids and ids[0].isdigit() else None
        if peer_id is None:
            raise Unprocessable("The customer has never written to the community", code="channel_unreachable",
                                details={"channel": CHANNEL})
        return {"peer_id": peer_id}

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        token = settings.inbox_vk_access_token.get_secret_value()
        if not token:
            raise SendError("VK is not configured (inbox_vk_access_token)", temporary=True)
        url = f"{settings.inbox_vk_api_base.rstrip('/')}/method/messages.send"
        form = {"peer_id": str(message.address["peer_id"]), "message": message.text, "random_id": str(message.message_id),
                "access_token": token, "v": API_VERSION}
        try:
            response = http.client().post(url, data=form, timeout=10)
        except httpx.HTTPError as exc:
            raise SendError(f"VK unreachable: {type(exc).__name__}", temporary=True) from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code == 200 and isinstance(data, dict) and "response" in data:
            return SendResult(provider_message_id=f"{message.address['peer_id']}:{data['response']}", status="sent")
        error = (data.get("error") if isinstance(data, dict) else None) or {}
        code = error.get("error_code")
        temporary = response.status_code == 429 or response.status_code >= 500 or code in TEMPORARY_ERRORS
        detail = f"{code}: {error.get('error_msg')}" if code is not None else f"HTTP {response.status_code} {response.text[:200]}"
        raise SendError(f"VK {detail}", temporary=temporary)


ADAPTER = VkAdapter()
