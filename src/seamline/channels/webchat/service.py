"""Web chat sessions: who the visitor is, what the widget shows, and its messages in and out.

A session is opened with the site's event write key (public, as the tracker's) and the
visitor's anonymous id, shared with the tracker; with the user id once the tracker knows it.
Both go through the identity graph, so a chat started before login joins the profile at login.
The widget then holds a random session token (stored as its SHA-256).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import Unauthorized
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.schemas import ConsentIn, CustomerUpsert, IdentifierIn
from seamline.customers.signing import valid_user_hash
from seamline.events import service as events_service
from seamline.inbox import delivery, routing, service
from seamline.inbox.models import (
    InboxAgent,
    InboxChatSession,
    InboxConversation,
    InboxMessage,
    InboxSurvey,
)

CHANNEL = "webchat"
HISTORY = 100


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, *, rules: IdentifierRules, settings: Settings, write_key: str, anonymous_id: str,
                 user_id: str | None, user_hash_given: str | None, resume_token: str | None) -> tuple[InboxChatSession, str]:
    """A session for the visitor; the same one again when the widget presents its token for the
    same visitor (a page load), so sessions do not pile up.

    A user id is linked to the browser in the identity graph as the tracker's identify() does
    (the agent sees one person), but without the site's signature (`userHash`) it does not open
    that person's history to this browser: anyone can send any user id with a public write key."""
    source = events_service.source_of_key(session, write_key)
    secret = settings.inbox_webchat_identity_secret.get_secret_value()
    verified = False
    if user_id and user_hash_given is not None:
        if not valid_user_hash(secret, user_id, user_hash_given):
            raise Unauthorized("The userHash does not match the user id", code="invalid_user_hash")
        verified = True
    if resume_token:
        chat = session.scalar(select(InboxChatSession).where(InboxChatSession.token_hash == _hash(resume_token)))
        if chat is not None and chat.source_id == source.id and chat.anonymous_id == anonymous_id and chat.user_id == user_id \
                and chat.verified == verified:
            chat.customer_id = service.canonical_customer_id(session, chat.customer_id)
            return chat, resume_token
    identifiers = [IdentifierIn(type="anonymous_id", value=anonymous_id)]
    if user_id and (verified or not secret):
        # Signed by the site: vouched for. Unsigned (no identity secret set): only a claim, which
        # joins nobody who exists. With a secret set, an unsigned user id is not bound at all.
        identifiers.insert(0, IdentifierIn(type="user_id", value=user_id))
    outcome = customers_service.upsert_customer(
        session, rules=rules, data=CustomerUpsert(identifiers=identifiers, source=CHANNEL), claimed=not verified)
    token = "wc_" + secrets.token_urlsafe(32)
    chat = InboxChatSession(token_hash=_hash(token), source_id=source.id, anonymous_id=anonymous_id, user_id=user_id,
                            verified=verified, customer_id=outcome.resolution.profile_id)
    session.add(chat)
    session.flush()
    return chat, token


def session_of_token(session: Session, token: str | None) -> InboxChatSession:
    chat = session.scalar(select(InboxChatSession).where(InboxChatSession.token_hash == _hash(token or "")))
    if chat is None:
        raise Unauthorized("Unknown or expired chat session: open a new one", code="invalid_chat_token")
    return chat


def visible_conversations(session: Session, chat: InboxChatSession) -> set[int] | None:
    """The conversations this session may read: all of the person's when verified (None), else
    those this browser (its anonymous id) wrote in."""
    if chat.verified:
        return None
    prefix = chat.anonymous_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    found = session.scalars(select(InboxMessage.conversation_id).where(
        InboxMessage.channel == CHANNEL, InboxMessage.direction == "in",
        InboxMessage.provider_message_id.like(prefix, escape="\\")).distinct())
    ids = set(found)
    # Merged conversations are read through the one they went into.
    return ids | {service.get_conversation(session, i).id for i in ids}


def prune_sessions(session: Session, *, settings: Settings) -> int:
    cutoff = utcnow() - timedelta(days=settings.inbox_webchat_session_days)
    return session.execute(delete(InboxChatSession).where(InboxChatSession.created_at < cutoff)).rowcount


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
        "clientMessageId": (view.get("meta") or {}).get("client_message_id"),
        "bot": bool((view.get("meta") or {}).get("bot")),
    }


def _visible(session: Session, person: list[int], allowed: set[int] | None, *, after_id: int | None = None,
             limit: int = HISTORY) -> list[InboxMessage]:
    query = (select(InboxMessage).join(InboxConversation, InboxConversation.id == InboxMessage.conversation_id)
             .where(InboxConversation.customer_id.in_(person), InboxMessage.direction != "internal", InboxMessage.kind != "call"))
    if allowed is not None:
        query = query.where(InboxMessage.conversation_id.in_(allowed))
    if after_id is not None:
        return list(session.scalars(query.where(InboxMessage.id > after_id).order_by(InboxMessage.id).limit(limit)))
    return list(reversed(session.scalars(query.order_by(InboxMessage.id.desc()).limit(limit)).all()))


def history(session: Session, chat: InboxChatSession, *, after_id: int | None, base: str) -> list[dict[str, Any]]:
    person = service.person_ids(session, chat.customer_id)
    allowed = visible_conversations(session, chat)
    return [widget_message(v, base=base) for v in service.messages_view(session, _visible(session, person, allowed, after_id=after_id))]


def latest_conversation(session: Session, chat: InboxChatSession) -> InboxConversation | None:
    """The person's latest conversation this session may see."""
    query = select(InboxConversation).where(
        InboxConversation.customer_id.in_(service.person_ids(session, chat.customer_id)), InboxConversation.merged_into_id.is_(None))
    allowed = visible_conversations(session, chat)
    if allowed is not None:
        query = query.where(InboxConversation.id.in_(allowed))
    return session.scalar(query.order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc()).limit(1))


def agents_online(session: Session) -> bool:
    return session.scalar(select(InboxAgent.id).where(InboxAgent.status == "online").limit(1)) is not None


def presence(session: Session, chat: InboxChatSession) -> dict[str, Any]:
    """Queue position and whether anyone is online: what the widget shows above the input."""
    conversation = latest_conversation(session, chat)
    position = routing.queue_position(session, conversation) if conversation is not None else None
    return {"position": position, "agentsOnline": agents_online(session)}


def pending_survey(session: Session, chat: InboxChatSession) -> dict[str, Any] | None:
    """The latest survey asked in this chat and not answered yet, for a client that polls instead
    of holding the socket (which also sends it as a `survey` frame): its id for
    `POST /v1/webchat/surveys/{id}`, the question as it was sent, and the scores it takes."""
    query = select(InboxSurvey).where(
        InboxSurvey.customer_id.in_(service.person_ids(session, chat.customer_id)), InboxSurvey.channel == CHANNEL,
        InboxSurvey.answered_at.is_(None))
    allowed = visible_conversations(session, chat)
    if allowed is not None:
        query = query.where(InboxSurvey.conversation_id.in_(allowed))
    survey = session.scalar(query.order_by(InboxSurvey.id.desc()).limit(1))
    if survey is None:
        return None
    # The question is the survey's own message (sent just after the row was written): its text as sent.
    asked = session.scalars(select(InboxMessage).where(
        InboxMessage.conversation_id == survey.conversation_id, InboxMessage.direction == "out",
        InboxMessage.created_at >= survey.sent_at).order_by(InboxMessage.id).limit(20))
    question = next((m.text for m in asked if ((m.meta or {}).get("survey") or {}).get("id") == survey.id), None)
    low, high = service.SURVEY_SCALES.get(survey.kind, (0, 10))
    return {"id": survey.id, "kind": survey.kind, "question": question or service.SURVEY_QUESTIONS[survey.kind]["en"],
            "scale": {"min": low, "max": high}, "conversationId": survey.conversation_id, "sentAt": survey.sent_at}


def state(session: Session, chat: InboxChatSession, *, base: str) -> dict[str, Any]:
    conversation = latest_conversation(session, chat)
    # A verified session knows the person's email; an anonymous browser only an email it left.
    emails = service.identities_of_type(session, chat.customer_id, "email") if chat.verified else [
        e for e in [(conversation.channel_state or {}).get("email", {}).get("address") if conversation else None] if e]
    return {
        "conversation": {"id": conversation.id, "status": conversation.status} if conversation else None,
        "messages": history(session, chat, after_id=None, base=base),
        "agentsOnline": agents_online(session),
        "queuePosition": routing.queue_position(session, conversation) if conversation else None,
        "email": emails[0] if emails else None,
        "pendingSurvey": pending_survey(session, chat),
    }


def send(database: Database, *, rules: IdentifierRules, settings: Settings, chat: InboxChatSession, text: str,
         client_message_id: str, attachment_ids: list[int], page: str | None, base: str) -> dict[str, Any]:
    """Store the visitor's message like any inbound one (raw first, unique per client message
    id, so a retry returns the same message) and process it, in one transaction; the stored
    message as the widget shows it."""
    provider_id = f"{chat.anonymous_id}:{client_message_id}"

    def raw(session: Session) -> bytes:
        allowed = visible_conversations(session, chat)
        return orjson.dumps({
            "provider_message_id": provider_id, "anonymous_id": chat.anonymous_id, "customer_id": chat.customer_id,
            "text": text, "attachment_ids": attachment_ids, "client_message_id": client_message_id, "page": page,
            "continue_within": sorted(allowed) if allowed is not None else None})

    def view(session: Session, message_id: int) -> dict[str, Any]:
        return widget_message(service.messages_view(session, [session.get(InboxMessage, message_id)])[0], base=base)

    accepted = delivery.store_and_process(database, rules=rules, settings=settings, channel=CHANNEL,
                                          provider_message_id=provider_id, raw=raw, view=view)
    if accepted.view is None:
        raise MessageFailed(accepted.error or "unknown error")
    return accepted.view


class MessageFailed(Exception):
    """The message was stored but could not be put in a conversation (kept as failed, retried)."""


def set_email(session: Session, *, rules: IdentifierRules, chat: InboxChatSession, email: str) -> str:
    """The visitor leaves an email (nobody online): it joins their profile, with consent to be
    answered by email, and the open conversation continues there."""
    customers_service.upsert_customer(session, rules=rules, data=CustomerUpsert(
        identifiers=[IdentifierIn(type="anonymous_id", value=chat.anonymous_id), IdentifierIn(type="email", value=email)],
        consents=[ConsentIn(channel="email", purpose="service", granted=True)], source=CHANNEL), claimed=True)
    normalized = rules.normalize("email", email).value
    conversation = latest_conversation(session, chat)
    if conversation is not None and conversation.status != "resolved":
        conversation.reply_channel = "email"
        state_ = dict(conversation.channel_state or {})
        state_["email"] = {**(state_.get("email") or {}), "address": normalized}
        conversation.channel_state = state_
        service.system_event(session, conversation, key="conversation.email_left", params={"email": normalized},
                             data={"reply_channel": "email"})
    return normalized
