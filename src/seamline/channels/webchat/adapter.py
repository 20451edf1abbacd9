"""The web chat adapter: messages come from the widget's session API (already authenticated by
its session token), replies go out live over the widget's WebSocket."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.channels.webchat.service import prune_sessions
from seamline.core.errors import Unprocessable
from seamline.core.queue import Periodic
from seamline.inbox import service
from seamline.inbox.adapters import ChannelAdapter, InboundMessage
from seamline.inbox.models import InboxChatSession

CHANNEL = "webchat"


class WebChatAdapter(ChannelAdapter):
    name = CHANNEL
    realtime = True

    def parse(self, raw: bytes) -> InboundMessage:
        data = orjson.loads(raw)
        return InboundMessage(
            channel=CHANNEL, provider_message_id=data["provider_message_id"], identifiers=[("anonymous_id", data["anonymous_id"])],
            text=data.get("text") or "", attachment_ids=list(data.get("attachment_ids") or []), customer_id=data["customer_id"],
            continue_within=data.get("continue_within"),
            meta={"client_message_id": data.get("client_message_id"), "page": data.get("page")},
        )

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        found = session.scalar(select(InboxChatSession.id).where(
            InboxChatSession.customer_id.in_(service.person_ids(session, customer_id))).limit(1))
        if found is None:
            raise Unprocessable("The customer has never opened the web chat", code="channel_unreachable",
                                details={"channel": CHANNEL})
        return {"webchat": True}

    def jobs(self, database: Any, settings: Any, rules: Any) -> list[Periodic]:
        """Remove old chat sessions (hourly, with the inbox's other jobs)."""
        if not settings.inbox_job_interval_seconds:
            return []
        def prune() -> None:
            with database.write() as session:
                prune_sessions(session, settings=settings)

        return [Periodic("webchat-sessions", 3600.0, prune)]


ADAPTER = WebChatAdapter()
