"""Web chat sessions: who the visitor is, what the widget shows, and its messages in and out.

A session is opened with the site's event write key (public, as the tracker's) and the
visitor's anonymous id, shared with the tracker; with the user id once the tracker knows it.
Both go through the identity graph, so a chat started before login joins the profile at login.
The widget then holds a random session token (stored as its SHA-256).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import Unauthorized
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.schemas import ConsentIn, CustomerUpsert, IdentifierIn
from seamline.events import service as events_service
from seamline.inbox import delivery, routing, service
from seamline.inbox.models import (
    InboxAgent,
    InboxChatSession,
    InboxConversation,
    InboxInbound,
    InboxMessage,
)

CHANNEL = "webchat"
HISTORY = 100


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, *, rules: IdentifierRules, write_key: str, anonymous_id: str,
                 user_id: str | None) -> tuple[InboxChatSession, str]:
    source = events_service.source_of_key(session, write_key)
    identifiers = [IdentifierIn(type="anonymous_id", value=anonymous_id)]
    if user_id:
        identifiers.insert(0, IdentifierIn(type="user_id", value=user_id))
    outcome = customers_service.upsert_customer(session, rules=rules, data=CustomerUpsert(identifiers=identifiers, source=CHANNEL))
    token = "wc_" + secrets.token_urlsafe(32)
    chat = InboxChatSession(token_hash=_hash(token), source_id=source.id, anonymous_id=anonymous_id, user_id=user_id,
                            customer_id=outcome.resolution.profile_id)
    session.add(chat)
    session.flush()
    return chat, token


def session_of_token(session: Session, token: str | None) -> InboxChatSession:
    chat = session.scalar(select(InboxChatSession).where(InboxChatSession.token_hash == _hash(token or "")))
    if chat is None:
        raise Unauthorized("Unknown or expired chat session: open a new one", code="invalid_chat_token")
    return chat


def widget_message(view: dict[str, Any], *, base: str = "") -> dict[str, Any]:
    author = view.get("author")
    return {
        "id": view["id"],
        "direction": view["direction"],
        "kind": "event" if view["kind"] == "event" else "message",
        "text": view["text"],
        "author": {"name": author["name"]} if author else None,
        "attachments": [{"id": a["id"], "filename": a["filename"], "contentType": a["content_type"], "size": a["size"],
                         "url": f"{base}/v1/webchat/attachments/{a['id']}"} for a in view.get("attachments") or []],
        "createdAt": view["created_at"],
    }


def _visible(session: Session, person: list[int], *, after_id: int | None = None, limit: int = HISTORY) -> list[InboxMessage]:
    query = (select(InboxMessage).join(InboxConversation, InboxConversation.id == InboxMessage.conversation_id)
             .where(InboxConversation.customer_id.in_(person), InboxMessage.direction != "internal"))
    if after_id is not None:
        return list(session.scalars(query.where(InboxMessage.id > after_id).order_by(InboxMessage.id).limit(limit)))
    return list(reversed(session.scalars(query.order_by(InboxMessage.id.desc()).limit(limit)).all()))


def history(session: Session, chat: InboxChatSession, *, after_id: int | None, base: str) -> list[dict[str, Any]]:
    person = service.person_ids(session, chat.customer_id)
    return [widget_message(v, base=base) for v in service.messages_view(session, _visible(session, person, after_id=after_id))]


def latest_conversation(session: Session, person: list[int]) -> InboxConversation | None:
    return session.scalar(select(InboxConversation).where(
        InboxConversation.customer_id.in_(person), InboxConversation.merged_into_id.is_(None))
        .order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc()).limit(1))


def agents_online(session: Session) -> bool:
    return session.scalar(select(InboxAgent.id).where(InboxAgent.status == "online").limit(1)) is not None


def presence(session: Session, chat: InboxChatSession) -> dict[str, Any]:
    """Queue position and whether anyone is online: what the widget shows above the input."""
    person = service.person_ids(session, chat.customer_id)
    conversation = latest_conversation(session, person)
    position = routing.queue_position(session, conversation) if conversation is not None else None
    return {"position": position, "agentsOnline": agents_online(session)}


def state(session: Session, chat: InboxChatSession, *, base: str) -> dict[str, Any]:
    person = service.person_ids(session, chat.customer_id)
    conversation = latest_conversation(session, person)
    emails = service.identities_of_type(session, chat.customer_id, "email")
    return {
        "conversation": {"id": conversation.id, "status": conversation.status} if conversation else None,
        "messages": history(session, chat, after_id=None, base=base),
        "agentsOnline": agents_online(session),
        "queuePosition": routing.queue_position(session, conversation) if conversation else None,
        "email": emails[0] if emails else None,
    }


def send(database: Database, *, rules: IdentifierRules, settings: Settings, chat: InboxChatSession, text: str,
         client_message_id: str, attachment_ids: list[int], page: str | None) -> int:
    """Store the visitor's message like any inbound one (raw first, unique per client message
    id, so a retry returns the same message) and process it; the stored message's id."""
    provider_id = f"{chat.anonymous_id}:{client_message_id}"
    raw = orjson.dumps({"provider_message_id": provider_id, "anonymous_id": chat.anonymous_id, "customer_id": chat.customer_id,
                        "text": text, "attachment_ids": attachment_ids, "client_message_id": client_message_id, "page": page})
    with database.write() as session:
        inbound_id = delivery.store_raw(session, channel=CHANNEL, provider_message_id=provider_id, raw=raw)
    if inbound_id is None:  # a retry: the first one's message
        with database.read() as session:
            row = session.scalar(select(InboxInbound).where(InboxInbound.channel == CHANNEL,
                                                            InboxInbound.provider_message_id == provider_id))
            inbound_id = row.id
            if row.message_id is not None:
                return row.message_id
    message_id, error = delivery.process(database, rules=rules, settings=settings, inbound_id=inbound_id)
    if message_id is None:
        raise _ProcessingFailed(error or "unknown error")
    return message_id


class _ProcessingFailed(Exception):
    pass


def set_email(session: Session, *, rules: IdentifierRules, chat: InboxChatSession, email: str) -> str:
    """The visitor leaves an email (nobody online): it joins their profile, with consent to be
    answered by email, and the open conversation continues there."""
    customers_service.upsert_customer(session, rules=rules, data=CustomerUpsert(
        identifiers=[IdentifierIn(type="anonymous_id", value=chat.anonymous_id), IdentifierIn(type="email", value=email)],
        consents=[ConsentIn(channel="email", purpose="service", granted=True)], source=CHANNEL))
    normalized = rules.normalize("email", email).value
    conversation = latest_conversation(session, service.person_ids(session, chat.customer_id))
    if conversation is not None and conversation.status != "resolved":
        conversation.reply_channel = "email"
        state_ = dict(conversation.channel_state or {})
        state_["email"] = {**(state_.get("email") or {}), "address": normalized}
        conversation.channel_state = state_
        service.system_event(session, conversation, f"The customer left {normalized}: replies go by email",
                             data={"reply_channel": "email"})
    return normalized
