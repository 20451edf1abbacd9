"""The inbox's business logic: conversations and messages of every channel, one history per
customer, statuses, replies on the right channel, notes, transfer, merge and split, labels,
search, surveys, and what it registers in the customer 360 and timeline.

Functions take a session and never commit. Real-time notices (`realtime.notify`) and webhooks
(`webhooks.emit`) are written in the same transaction and go out only if it commits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import (
    AppError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from seamline.core.queue import Priority, Task
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.models import CustomerIdentity
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry, titled
from seamline.inbox import realtime, routing, sla, webhooks
from seamline.inbox.adapters import ADAPTERS, InboundMessage, adapter_for
from seamline.inbox.models import (
    InboxAgent,
    InboxAttachment,
    InboxChatSession,
    InboxConversation,
    InboxMessage,
    InboxSurvey,
    InboxTeam,
)

STATUSES = ("open", "pending", "snoozed", "resolved")
_log = structlog.get_logger("seamline.inbox")
THREAD_IDS_KEPT = 50

#: A conversation's system messages (kind "event", read by agents only) by key: English templates.
#: The message keeps its key and params (`meta.text_key`, `meta.text_params`) beside the English
#: text, and the console shows it in the agent's language (web/console/labels.py). A list param
#: is a list of codes (`clocks`: first_response...).
SYSTEM_TEXTS = {
    "conversation.status.open": "Status: open",
    "conversation.status.pending": "Status: pending",
    "conversation.status.resolved": "Status: resolved",
    "conversation.status.snoozed": "Status: snoozed until %(until)s",
    "conversation.snooze_ended": "Snooze ended",
    "conversation.reopened": "Reopened by the customer",
    "conversation.transferred.agent": "Transferred to agent %(agent)s",
    "conversation.transferred.agent.note": "Transferred to agent %(agent)s: %(note)s",
    "conversation.transferred.team": "Transferred to team %(team)s",
    "conversation.transferred.team.note": "Transferred to team %(team)s: %(note)s",
    "conversation.taken": "Taken by agent %(agent)s",
    "conversation.taken.note": "Taken by agent %(agent)s: %(note)s",
    "conversation.merged": "Conversation %(merged_id)s merged into this one",
    "conversation.split_into": "Messages from %(message_id)s on split into conversation %(conversation_id)s",
    "conversation.split_from": "Split from conversation %(conversation_id)s",
    "conversation.agent_offline": "%(agent)s went offline: back in the queue",
    "conversation.not_delivered": "Message %(message_id)s could not be delivered: %(error)s",
    "conversation.sla_breached": "SLA breached: %(clocks)s",
    "conversation.email_left": "The customer left %(email)s: replies go by email",
    "conversation.called_back": "Called the customer back",
    "conversation.task": "Task: %(text)s",
    "conversation.bot_handover": "The bot handed over: %(reason)s",
    "conversation.bot_handover.topic": "The bot handed over: %(reason)s; topic: %(topic)s",
    "conversation.bot_resolved": "Resolved by the bot",
}


# --- reading --------------------------------------------------------------------------------


def get_conversation(session: Session, conversation_id: int, *, lock: bool = False) -> InboxConversation:
    """The conversation, or the one it was merged into."""
    for _ in range(20):
        query = select(InboxConversation).where(InboxConversation.id == conversation_id)
        conversation = session.scalar(query.with_for_update() if lock else query)
        if conversation is None:
            raise NotFound(f"Conversation {conversation_id} not found", code="conversation_not_found")
        if conversation.merged_into_id is None:
            return conversation
        conversation_id = conversation.merged_into_id
    raise Conflict("Conversation merge chain too long", code="merge_chain")


def messages_of(session: Session, conversation_id: int, *, limit: int = 100, after_id: int | None = None,
                before_id: int | None = None, include_internal: bool = True) -> list[InboxMessage]:
    query = select(InboxMessage).where(InboxMessage.conversation_id == conversation_id)
    if after_id is not None:
        query = query.where(InboxMessage.id > after_id)
    if before_id is not None:
        query = query.where(InboxMessage.id < before_id)
    if not include_internal:
        query = query.where(InboxMessage.direction != "internal")
    if after_id is not None:
        return list(session.scalars(query.order_by(InboxMessage.id).limit(limit)))
    return list(reversed(session.scalars(query.order_by(InboxMessage.id.desc()).limit(limit)).all()))


def attachments_of(session: Session, message_ids: list[int]) -> dict[int, list[InboxAttachment]]:
    found: dict[int, list[InboxAttachment]] = {}
    if message_ids:
        rows = session.execute(
            select(InboxAttachment.id, InboxAttachment.message_id, InboxAttachment.filename, InboxAttachment.content_type,
                   InboxAttachment.size).where(InboxAttachment.message_id.in_(message_ids)).order_by(InboxAttachment.id)
        )
        for row in rows:
            found.setdefault(row.message_id, []).append(row)
    return found


def agent_names(session: Session, agent_ids: set[int]) -> dict[int, str]:
    ids = {i for i in agent_ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(InboxAgent.id, InboxAgent.name).where(InboxAgent.id.in_(ids))).all())


def message_view(message: InboxMessage, attachments: list[Any], names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "kind": message.kind,
        "channel": message.channel,
        "author": {"agent_id": message.author_agent_id, "name": names.get(message.author_agent_id)}
        if message.author_agent_id else None,
        "text": message.text,
        "html": message.html,
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size} for a in attachments
        ],
        "delivery_status": message.delivery_status,
        "error": message.error,
        "meta": message.meta or {},
        "created_at": message.created_at,
    }


def messages_view(session: Session, messages: list[InboxMessage]) -> list[dict[str, Any]]:
    files = attachments_of(session, [m.id for m in messages])
    names = agent_names(session, {m.author_agent_id for m in messages if m.author_agent_id})
    return [message_view(m, files.get(m.id, []), names) for m in messages]


def conversation_view(session: Session, conversation: InboxConversation, settings: Settings, *,
                      messages: bool = True, now: datetime | None = None) -> dict[str, Any]:
    view = {
        "id": conversation.id,
        "customer_id": canonical_customer_id(session, conversation.customer_id),
        "channel": conversation.channel,
        "reply_channel": conversation.reply_channel,
        "status": conversation.status,
        "snoozed_until": conversation.snoozed_until,
        "subject": conversation.subject,
        "assignee_id": conversation.assignee_id,
        "team_id": conversation.team_id,
        "required_skill": conversation.required_skill,
        "priority": conversation.priority,
        "labels": list(conversation.labels or []),
        "queue_position": routing.queue_position(session, conversation),
        "queued_at": conversation.queued_at,
        "awaiting_reply_since": conversation.awaiting_reply_since,
        "first_response_at": conversation.first_response_at,
        "last_message_at": conversation.last_message_at,
        "created_at": conversation.created_at,
        "resolved_at": conversation.resolved_at,
        "handled_by_bot": bool(conversation.handled_by_bot),
        "sla": sla.clocks(conversation, now or utcnow(), at_risk_minutes=settings.inbox_sla_at_risk_minutes),
    }
    if messages:
        view["messages"] = messages_view(session, messages_of(session, conversation.id))
    return view


def summary_view(conversation: InboxConversation) -> dict[str, Any]:
    return {
        "id": conversation.id, "customer_id": conversation.customer_id, "channel": conversation.channel,
        "status": conversation.status, "subject": conversation.subject, "assignee_id": conversation.assignee_id,
        "priority": conversation.priority, "labels": list(conversation.labels or []),
        "last_message_at": conversation.last_message_at, "created_at": conversation.created_at,
        "queued_at": conversation.queued_at, "awaiting_reply_since": conversation.awaiting_reply_since,
        "sla_breaches": list(conversation.sla_breaches or []),
        "handled_by_bot": bool(conversation.handled_by_bot),
    }


#: A label filter reads conversations in windows of this many times the page size.
LABEL_SCAN_FACTOR = 20


def list_conversations(
    session: Session, *, status: str | None = None, assignee_id: int | None = None, unassigned: bool = False,
    customer_id: int | None = None, channel: str | None = None, label: str | None = None,
    limit: int = 50, before_id: int | None = None,
) -> list[InboxConversation]:
    query = select(InboxConversation).where(InboxConversation.merged_into_id.is_(None))
    if status:
        query = query.where(InboxConversation.status == status)
    if assignee_id is not None:
        query = query.where(InboxConversation.assignee_id == assignee_id)
    if unassigned:
        query = query.where(InboxConversation.assignee_id.is_(None))
    if customer_id is not None:
        ids = customers_service.merged_profile_ids(session, customers_service.get_profile(session, customer_id).id)
        query = query.where(InboxConversation.customer_id.in_(ids))
    if channel:
        query = query.where(InboxConversation.channel == channel)
    if not label:
        if before_id is not None:
            query = query.where(InboxConversation.id < before_id)
        return list(session.scalars(query.order_by(InboxConversation.id.desc()).limit(limit)))
    # Labels are a short JSON list: filtered here, on both databases alike, window after window
    # until the page is full or the conversations run out (a page is never short while more match).
    found: list[InboxConversation] = []
    window = limit * LABEL_SCAN_FACTOR
    while len(found) < limit:
        scan = query if before_id is None else query.where(InboxConversation.id < before_id)
        rows = session.scalars(scan.order_by(InboxConversation.id.desc()).limit(window)).all()
        found += [c for c in rows if label in (c.labels or [])]
        if len(rows) < window:
            break
        before_id = rows[-1].id
    return found[:limit]


def search_messages(session: Session, *, q: str, limit: int = 50, customer_id: int | None = None,
                    before_id: int | None = None) -> list[InboxMessage]:
    """Messages whose text contains `q` (case-insensitive), newest first (below `before_id`: the next page)."""
    folded = q.casefold()
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = select(InboxMessage).where(InboxMessage.search_text.like(pattern, escape="\\"), InboxMessage.kind != "event")
    if customer_id is not None:
        ids = customers_service.merged_profile_ids(session, customers_service.get_profile(session, customer_id).id)
        query = query.join(InboxConversation, InboxConversation.id == InboxMessage.conversation_id).where(
            InboxConversation.customer_id.in_(ids))
    if before_id is not None:
        query = query.where(InboxMessage.id < before_id)
    return list(session.scalars(query.order_by(InboxMessage.id.desc()).limit(limit)))


def customer_name(session: Session, customer_id: int) -> dict[str, str | None]:
    traits = customers_service.traits_of(session, customers_service.identity_ids_of(session, customer_id))
    value = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in traits.items()}
    first = value.get("first_name") or value.get("firstName")
    name = customers_service.display_name(traits)
    return {"name": name, "first_name": str(first) if first else (name.split()[0] if name else None)}


# --- notices --------------------------------------------------------------------------------


def _topics(conversation: InboxConversation, *, customer_visible: bool, message: bool = False) -> list[str]:
    """Where a notice goes: the conversation's watchers, its agent, the web chat of the person
    (what the customer may see), and `inbox` (queue views, dashboards) for changes to the
    conversation and for messages still waiting for an agent, so consoles do not each receive
    every message of the installation."""
    topics = [f"conversation:{conversation.id}"]
    if not message or conversation.assignee_id is None:
        topics.append("inbox")
    if conversation.assignee_id:
        topics.append(f"agent:{conversation.assignee_id}")
    if customer_visible:
        topics.append(f"webchat:{conversation.customer_id}")
    return topics


#: Sending one queued outbound message (`delivery.send_message`), in its channel's queue
#: (`send_queue`). The message row keeps its attempts and failure (the settings say how many);
#: the queue's limit is only a backstop.
SEND = Task("inbox.send", queue="outbound", priority=Priority.high, max_attempts=1000)


def send_queue(channel: str) -> str:
    """The queue of a channel's sends: one per channel, each with its provider's rate limit."""
    return f"{SEND.queue}.{channel}"


def queue_send(session: Session, message: InboxMessage, *, priority: Priority = Priority.high) -> None:
    """Enqueue the job that sends `message`, in the caller's transaction: agents' replies and
    transactional messages `high`, surveys `normal`, marketing `bulk` (a campaign never holds
    up a reply). A message on a live channel was delivered as it was written: no job."""
    if message.delivery_status == "queued":
        session.flush()
        SEND.enqueue(session, {"message_id": message.id}, priority=priority, queue=send_queue(message.channel))


def publish_message(session: Session, conversation: InboxConversation, message: InboxMessage, *,
                    without_files: bool = False) -> dict[str, Any]:
    """Tell the watchers and webhooks; `without_files` when the caller knows the message has none
    (saves a query on the inbound path)."""
    if without_files:
        view = message_view(message, [], agent_names(session, {message.author_agent_id} if message.author_agent_id else set()))
    else:
        view = messages_view(session, [message])[0]
    customer_visible = message.direction != "internal" and message.kind != "call"
    realtime.notify(session, _topics(conversation, customer_visible=customer_visible, message=True),
                    {"type": "message", "conversation_id": conversation.id, "message": view})
    webhooks.emit(session, "message.created", {"conversation_id": conversation.id, "customer_id": conversation.customer_id,
                                                "message": {k: v for k, v in view.items() if k != "html"}})
    return view


def publish_conversation(session: Session, conversation: InboxConversation, event: str, **extra: Any) -> None:
    data = {**summary_view(conversation), **extra}
    realtime.notify(session, _topics(conversation, customer_visible=event == "status"), {"type": event, "conversation": data})


def system_text(key: str, params: dict[str, Any]) -> str:
    """A system message's English text (SYSTEM_TEXTS)."""
    english = {k: ", ".join(str(c).replace("_", " ") for c in v) if isinstance(v, list) else v for k, v in params.items()}
    return SYSTEM_TEXTS[key] % english


def system_event(session: Session, conversation: InboxConversation, text: str | None = None, *, key: str | None = None,
                 params: dict[str, Any] | None = None, agent_id: int | None = None,
                 data: dict[str, Any] | None = None) -> InboxMessage:
    """A system message: `key` and `params` (SYSTEM_TEXTS), its text English unless `text` is
    given (a text in the inbox's language); a bare `text` is shown as it is."""
    meta = dict(data or {})
    if key is not None:
        meta |= {"text_key": key, "text_params": params or {}}
        text = text if text is not None else system_text(key, params or {})
    message = InboxMessage(conversation_id=conversation.id, direction="internal", kind="event", channel=conversation.channel,
                           author_agent_id=agent_id, text=text or "", delivery_status="received", meta=meta, created_at=utcnow())
    session.add(message)
    session.flush()
    view = messages_view(session, [message])[0]
    realtime.notify(session, _topics(conversation, customer_visible=False, message=True), {"type": "message", "conversation_id": conversation.id,
                                                                              "message": view})
    return message


# --- status and load ------------------------------------------------------------------------


def _freed(session: Session, agent_id: int | None, settings: Settings, *, skip: int | None = None) -> None:
    """An agent's load went down: if they are online they take the next waiting conversations
    in queue order (so a new arrival never jumps ahead of those already waiting)."""
    if agent_id is None:
        return
    agent = session.get(InboxAgent, agent_id)
    if agent is None or agent.status != "online":
        return
    session.refresh(agent, ["load", "last_assigned_at"])
    for taken in routing.fill_agent(session, agent, settings):
        if taken.id != skip:
            _announce_assignment(session, taken, agent_id=agent.id, by=None, note=None)


def _change_status(session: Session, conversation: InboxConversation, status: str, settings: Settings, *,
                   snoozed_until: datetime | None = None) -> None:
    """Move to `status`, keeping the assignee's load (open conversations count) and the queue."""
    before = conversation.status
    if status == before and status != "snoozed":
        return
    freed = None
    if before == "open" and status != "open" and conversation.assignee_id:
        routing.release_load(session, conversation.assignee_id, conversation.weight)
        freed = conversation.assignee_id
    conversation.status = status
    conversation.snoozed_until = snoozed_until if status == "snoozed" else None
    if status == "resolved":
        conversation.resolved_at = utcnow()
        conversation.queue_rank_at = None
    if status == "open" and before != "open":
        conversation.resolved_at = None
        agent = session.get(InboxAgent, conversation.assignee_id) if conversation.assignee_id else None
        if agent is not None and agent.status != "offline":
            routing.take_load(session, agent, conversation.weight, force=True)
        else:
            routing.enqueue(conversation, settings)
    if status != "open" and conversation.assignee_id is None:
        conversation.queue_rank_at = None
    sla.refresh_next_due(conversation)
    webhooks.emit(session, "conversation.status_changed", {**summary_view(conversation), "previous_status": before})
    publish_conversation(session, conversation, "status")
    _freed(session, freed, settings)


def set_status(session: Session, *, settings: Settings, conversation_id: int, status: str,
               snoozed_until: datetime | None = None, agent_id: int | None = None) -> InboxConversation:
    if status not in STATUSES:
        raise Unprocessable(f"Unknown status {status!r}", code="invalid_status", details={"known": list(STATUSES)})
    if status == "snoozed" and (snoozed_until is None or snoozed_until <= utcnow()):
        raise Unprocessable("Snoozing needs snoozed_until in the future", code="invalid_snooze")
    conversation = get_conversation(session, conversation_id, lock=True)
    if agent_id is not None:
        _agent(session, agent_id)
    before = conversation.status
    _change_status(session, conversation, status, settings, snoozed_until=snoozed_until)
    if before != status:
        params = {"until": snoozed_until.isoformat()} if status == "snoozed" and snoozed_until else {}
        system_event(session, conversation, key=f"conversation.status.{status}", params=params, agent_id=agent_id,
                     data={"status": status, "previous": before})
    if status == "resolved" and before != "resolved":
        send_survey(session, settings=settings, conversation=conversation)
    if status == "open" and conversation.assignee_id is None:
        routing.route(session, conversation, settings)
    return conversation


def wake_snoozed(session: Session, *, settings: Settings, now: datetime | None = None, limit: int = 500) -> int:
    due = session.scalars(
        select(InboxConversation).where(InboxConversation.status == "snoozed", InboxConversation.snoozed_until <= (now or utcnow()))
        .limit(limit).with_for_update(skip_locked=True)
    ).all()
    for conversation in due:
        _change_status(session, conversation, "open", settings)
        system_event(session, conversation, key="conversation.snooze_ended", data={"status": "open", "previous": "snoozed"})
        routing.route(session, conversation, settings)
    return len(due)


# --- inbound --------------------------------------------------------------------------------


def store_attachment(session: Session, *, max_bytes: int | None, filename: str, content_type: str, data: bytes,
                     customer_id: int | None, message_id: int | None = None) -> InboxAttachment:
    """A file; larger than `max_bytes` is 413 (None: no limit, for files that came with an inbound
    message, which the channel's own limit already accepted)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise PayloadTooLarge(
            f"The file is larger than {max_bytes} bytes", code="attachment_too_large", details={"size": len(data), "max_bytes": max_bytes},
        )
    attachment = InboxAttachment(
        filename=(filename or "file")[:255], content_type=(content_type or "application/octet-stream")[:127], size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), data=data, customer_id=customer_id, message_id=message_id,
    )
    session.add(attachment)
    session.flush()
    return attachment


def _bind_attachments(session: Session, *, message: InboxMessage, ids: list[int], customer_id: int | None) -> None:
    if not ids:
        return
    rows = session.scalars(select(InboxAttachment).where(InboxAttachment.id.in_(ids))).all()
    usable = {a.id for a in rows if a.message_id is None and (customer_id is None or a.customer_id in (None, customer_id))}
    missing = sorted(set(ids) - usable)
    if missing:
        raise Unprocessable("Unknown or already sent attachments", code="attachment_not_found", details={"ids": missing})
    session.execute(update(InboxAttachment).where(InboxAttachment.id.in_(ids)).values(message_id=message.id)
                    .execution_options(synchronize_session=False))


def _threaded_conversation(session: Session, inbound: InboundMessage) -> InboxConversation | None:
    if not inbound.thread_refs:
        return None
    found = session.scalar(
        select(InboxMessage.conversation_id).where(
            InboxMessage.channel == inbound.channel, InboxMessage.provider_message_id.in_(inbound.thread_refs[-THREAD_IDS_KEPT:])
        ).order_by(InboxMessage.id.desc()).limit(1)
    )
    return get_conversation(session, found, lock=True) if found else None


def _latest_conversation(session: Session, customer_id: int, settings: Settings,
                         within: list[int] | None = None) -> InboxConversation | None:
    """The conversation a new message continues: the customer's latest one still going (on any
    channel), or one resolved less than `inbox_reopen_hours` ago."""
    query = select(InboxConversation).where(InboxConversation.customer_id.in_(person_ids(session, customer_id)),
                                            InboxConversation.merged_into_id.is_(None))
    if within is not None:
        query = query.where(InboxConversation.id.in_(within))
    latest = session.scalar(query.order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc()).limit(1)
                            .with_for_update())
    if latest is None:
        return None
    if latest.status == "resolved" and (latest.resolved_at or latest.last_message_at) < utcnow() - timedelta(
        hours=settings.inbox_reopen_hours
    ):
        return None
    return latest


def latest_conversations(session: Session, persons: dict[int, list[int]]) -> dict[int, InboxConversation]:
    """For each person (their canonical profile id: every profile id merged into it, as
    `person_ids`), their latest conversation as `_latest_conversation` finds it, whatever its
    status, locked (in id order, as every batch locks them); people with none are left out."""
    owner = {profile_id: person for person, profile_ids in persons.items() for profile_id in profile_ids}
    if not owner:
        return {}
    newest_first = (InboxConversation.last_message_at.desc(), InboxConversation.id.desc())
    ranked = (select(InboxConversation.id, InboxConversation.customer_id, InboxConversation.last_message_at,
                     func.row_number().over(partition_by=InboxConversation.customer_id, order_by=newest_first).label("rank"))
              .where(InboxConversation.customer_id.in_(sorted(owner)), InboxConversation.merged_into_id.is_(None)).subquery())
    latest: dict[int, tuple[Any, int]] = {}
    for conversation_id, customer_id, last_message_at in session.execute(
            select(ranked.c.id, ranked.c.customer_id, ranked.c.last_message_at).where(ranked.c.rank == 1)):
        person = owner[customer_id]
        if person not in latest or (last_message_at, conversation_id) > latest[person]:
            latest[person] = (last_message_at, conversation_id)
    person_of = {conversation_id: person for person, (_, conversation_id) in latest.items()}
    locked = session.scalars(select(InboxConversation).where(InboxConversation.id.in_(sorted(person_of)))
                             .order_by(InboxConversation.id).with_for_update())
    return {person_of[c.id]: c for c in locked if c.merged_into_id is None}


SCORE = re.compile(r"^\s*(\d{1,2})\s*[.!]?\s*$")


def _survey_answer(session: Session, conversation: InboxConversation, inbound: InboundMessage) -> InboxSurvey | None:
    """A bare number replying to a survey question is its answer, not a new request."""
    match = SCORE.match(inbound.text or "")
    if not match or conversation.status != "resolved":
        return None
    survey = session.scalar(select(InboxSurvey).where(
        InboxSurvey.conversation_id == conversation.id, InboxSurvey.answered_at.is_(None)).order_by(InboxSurvey.id.desc()).limit(1))
    if survey is None:
        return None
    score = int(match.group(1))
    if not (0 <= score <= 10 if survey.kind == "nps" else 1 <= score <= 5):
        return None
    return answer_survey(session, survey_id=survey.id, score=score, comment=None, channel=inbound.channel)


# --- the bot -----------------------------------------------------------------------------------


@dataclass
class Handover:
    """A responder gives the conversation to people: why (`requested`, `misunderstood`,
    `low_confidence`, `human_only`, `error`, ...), the topic it detected, the skill routing
    should require (None: the routing rules decide), and its summary for the agent."""

    reason: str
    topic: str | None = None
    skill: str | None = None
    summary: str = ""


class Responder(Protocol):
    """Answers a customer's message in a conversation nobody is assigned to, inside the message's
    transaction: True when it answered and keeps the conversation, a `Handover` to give it to
    people now, None when it does not take it (the conversation is routed as usual). The inbox
    knows no bot: the composition root registers one (`seamline.assistant`)."""

    def __call__(self, session: Session, *, settings: Settings, conversation: InboxConversation,
                 message: InboxMessage, inbound: InboundMessage) -> bool | Handover | None: ...


_RESPONDERS: list[Responder] = []


def register_responder(responder: Responder) -> None:
    if responder not in _RESPONDERS:
        _RESPONDERS.append(responder)


def unregister_responder(responder: Responder) -> None:
    if responder in _RESPONDERS:
        _RESPONDERS.remove(responder)


def _bot_keeps(session: Session, settings: Settings, conversation: InboxConversation, message: InboxMessage,
               inbound: InboundMessage) -> bool:
    """Ask the responders about a new conversation's message, or one the bot holds. A responder
    that fails has what it wrote rolled back (its savepoint, its notices) and the conversation
    goes to people: a customer is never left without an answer by a broken bot."""
    for responder in list(_RESPONDERS):
        mark = realtime.mark(session)
        try:
            with session.begin_nested():
                answer = responder(session, settings=settings, conversation=conversation, message=message, inbound=inbound)
        except Exception as exc:  # noqa: BLE001 - the people take over; the error goes to the log
            realtime.discard_since(session, mark)
            _log.exception("the bot failed on a message; handing over", conversation_id=conversation.id, error=str(exc)[:300])
            if conversation.handled_by_bot:
                hand_over(session, settings=settings, conversation=conversation, handover=Handover(reason="error"), route=False)
            return False
        if answer is True:
            if not conversation.handled_by_bot:
                conversation.handled_by_bot = True
                publish_conversation(session, conversation, "bot")
            conversation.queue_rank_at = conversation.queued_at = None
            conversation.first_response_due_at = conversation.next_response_due_at = conversation.resolution_due_at = None
            sla.refresh_next_due(conversation)
            return True
        if isinstance(answer, Handover):
            hand_over(session, settings=settings, conversation=conversation, handover=answer, route=False)
            return False
    return False


def bot_reply(session: Session, *, settings: Settings, conversation: InboxConversation, text: str,
              meta: dict[str, Any] | None = None) -> InboxMessage:
    """The bot's message to the customer on the conversation's reply channel: sent at once on a
    live channel (web chat), else queued for the send worker in this transaction, like an
    agent's reply (`high`)."""
    channel = conversation.reply_channel
    adapter = adapter_for(channel)
    address = adapter.address(session, customer_id=conversation.customer_id,
                              thread=(conversation.channel_state or {}).get(channel) or {})
    now = utcnow()
    message = InboxMessage(
        conversation_id=conversation.id, direction="out", kind="message", channel=channel, text=text,
        delivery_status="sent" if adapter.realtime else "queued", next_attempt_at=None if adapter.realtime else now,
        meta={**(meta or {}), "address": address, "bot": True}, created_at=now,
    )
    session.add(message)
    session.flush()
    conversation.last_message_at = now
    conversation.awaiting_reply_since = None  # answered (by the bot)
    queue_send(session, message, priority=Priority.high)
    publish_message(session, conversation, message, without_files=True)
    return message


def hand_over(session: Session, *, settings: Settings, conversation: InboxConversation, handover: Handover,
              route: bool = True) -> None:
    """The bot gives the conversation to people: its summary as a note the agent reads first,
    the topic as a label (and the skill, if the business tied one to it), a system message with
    the reason, the SLA clocks started now, and the conversation in the queue (routed now with
    `route`; `receive` routes it itself)."""
    now = utcnow()
    conversation.handled_by_bot = False
    conversation.awaiting_reply_since = conversation.awaiting_reply_since or now  # now waiting for a person
    if handover.summary:
        session.add(InboxMessage(conversation_id=conversation.id, direction="internal", kind="note", channel=conversation.channel,
                                 text=handover.summary, delivery_status="received", created_at=now,
                                 meta={"bot": True, "summary": True}))
        session.flush()
    params = {"reason": handover.reason, **({"topic": handover.topic} if handover.topic else {})}
    system_event(session, conversation, key="conversation.bot_handover.topic" if handover.topic else "conversation.bot_handover",
                 params=params, data={"bot": {"handover": handover.reason, "topic": handover.topic}})
    if handover.topic and handover.topic not in (conversation.labels or []):
        conversation.labels = [*(conversation.labels or []), handover.topic]
    if handover.skill:
        conversation.required_skill = handover.skill
    sla.start_clocks(session, conversation, now)
    if conversation.status != "open":
        _change_status(session, conversation, "open", settings)
    if conversation.assignee_id is None:
        routing.enqueue(conversation, settings, at=now)
        if route:
            agent = routing.route(session, conversation, settings)
            if agent is not None:
                _announce_assignment(session, conversation, agent_id=agent.id, by=None, note=None)
            else:
                publish_conversation(session, conversation, "queued")


def bot_resolved(session: Session, *, settings: Settings, conversation: InboxConversation) -> None:
    """The bot's conversation went quiet after its answer: resolved by the bot (no survey: the
    survey asks about an agent's help)."""
    system_event(session, conversation, key="conversation.bot_resolved", data={"bot": {"resolved": True}})
    _change_status(session, conversation, "resolved", settings)


def receive(session: Session, *, settings: Settings, inbound: InboundMessage, customer_id: int) -> InboxMessage:
    """Put a customer's message into their conversation (continuing, reopening or starting one),
    route it, and tell the agent."""
    now = utcnow()
    conversation = _threaded_conversation(session, inbound) or _latest_conversation(
        session, customer_id, settings, inbound.continue_within)
    if conversation is not None and _survey_answer(session, conversation, inbound) is not None:
        return _add_message(session, conversation, inbound, direction="in", meta={**inbound.meta, "survey_answer": True})
    created = conversation is None
    if conversation is None:
        priority = routing.priority_of(session, customer_id, settings)
        conversation = InboxConversation(
            customer_id=customer_id, channel=inbound.channel, reply_channel=inbound.channel, status="open",
            subject=(inbound.subject or "")[:500] or None, priority=priority, labels=[], channel_state={},
            required_skill=routing.detect_skill(session, inbound.text or inbound.subject or ""),
            weight=routing.weight_of(inbound.channel, settings), created_at=now, last_message_at=now, sla_breaches=[],
        )
        session.add(conversation)
        session.flush()
        sla.start_clocks(session, conversation, now)
        routing.enqueue(conversation, settings, at=now)
    message = _add_message(session, conversation, inbound, direction="in", meta=inbound.meta)
    _customer_wrote(conversation, inbound, now)
    if not created and conversation.status != "open":
        previous = conversation.status
        _change_status(session, conversation, "open", settings)
        if previous == "resolved":
            conversation.resolution_due_at = None
            policy = sla.policy_for(session, channel=conversation.channel, priority=conversation.priority)
            if policy is not None and policy.resolution_minutes is not None:
                conversation.resolution_due_at = sla.add_business_minutes(now, policy.resolution_minutes, policy.calendar)
        system_event(session, conversation, key="conversation.reopened", data={"status": "open", "previous": previous})
    sla.customer_wrote(session, conversation, now)
    if created:
        webhooks.emit(session, "conversation.created", summary_view(conversation))
    publish_message(session, conversation, message, without_files=not (inbound.attachments or inbound.attachment_ids))
    if conversation.assignee_id is None and (created or conversation.handled_by_bot) and _bot_keeps(
            session, settings, conversation, message, inbound):
        return message
    if conversation.assignee_id is None:
        agent = routing.route(session, conversation, settings)
        if agent is not None:
            _announce_assignment(session, conversation, agent_id=agent.id, by=None, note=None)
        else:
            publish_conversation(session, conversation, "queued")
    return message


def receive_continuing(session: Session, items: list[tuple[InboundMessage, InboxConversation]]) -> list[InboxMessage]:
    """`receive` for a batch of messages that each continue an open conversation an agent has
    (most of what providers send): the messages go in with one INSERT, nothing is routed. The
    caller has locked each conversation and checked it is open and assigned, and that the
    message has no files and no thread references (those go through `receive`)."""
    now = utcnow()
    messages = [_new_message(conversation, inbound, direction="in", meta=inbound.meta) for inbound, conversation in items]
    session.add_all(messages)
    session.flush()
    for (inbound, conversation), message in zip(items, messages, strict=True):
        _customer_wrote(conversation, inbound, now)
        sla.customer_wrote(session, conversation, now)
        publish_message(session, conversation, message, without_files=True)
    return messages


def _customer_wrote(conversation: InboxConversation, inbound: InboundMessage, now: datetime) -> None:
    """The conversation's own record of a customer's message: its channel becomes the reply
    channel, it waits for an answer, and the channel's thread state keeps the provider's id."""
    conversation.channel = conversation.reply_channel = inbound.channel
    conversation.last_message_at = now
    if conversation.awaiting_reply_since is None:
        conversation.awaiting_reply_since = now
    thread = dict((conversation.channel_state or {}).get(inbound.channel) or {})
    thread.update({k: v for k, v in (inbound.meta.get("thread") or {}).items()})
    thread["provider_ids"] = ([*thread.get("provider_ids", []), inbound.provider_message_id])[-THREAD_IDS_KEPT:]
    conversation.channel_state = {**(conversation.channel_state or {}), inbound.channel: thread}


def _new_message(conversation: InboxConversation, inbound: InboundMessage, *, direction: str,
                 meta: dict[str, Any]) -> InboxMessage:
    return InboxMessage(
        conversation_id=conversation.id, direction=direction, kind=inbound.kind, channel=inbound.channel, text=inbound.text or "",
        html=inbound.html, provider_message_id=inbound.provider_message_id, delivery_status="received",
        meta={k: v for k, v in meta.items() if k != "thread"}, created_at=utcnow(),
    )


def _add_message(session: Session, conversation: InboxConversation, inbound: InboundMessage, *, direction: str,
                 meta: dict[str, Any]) -> InboxMessage:
    message = _new_message(conversation, inbound, direction=direction, meta=meta)
    session.add(message)
    session.flush()
    for file in inbound.attachments:
        store_attachment(session, max_bytes=None, filename=file.filename, content_type=file.content_type,
                         data=file.data, customer_id=conversation.customer_id, message_id=message.id)
    _bind_attachments(session, message=message, ids=inbound.attachment_ids, customer_id=conversation.customer_id)
    return message




def history_conversation(session: Session, settings: Settings, customer_id: int, *, channel: str,
                         thread: dict[str, Any]) -> InboxConversation:
    """Where something that needs no agent goes in the person's history (a notice sent to them,
    a call already answered): their latest conversation when it is still going or was resolved
    less than `inbox_reopen_hours` ago; else a new one, resolved from the start (nobody's task
    until the customer answers). The channel's thread state is kept on it for replies."""
    now = utcnow()
    latest = session.scalar(
        select(InboxConversation).where(InboxConversation.customer_id.in_(person_ids(session, customer_id)),
                                        InboxConversation.merged_into_id.is_(None))
        .order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc()).limit(1).with_for_update())
    recent = now - timedelta(hours=settings.inbox_reopen_hours)
    if latest is not None and (latest.status != "resolved" or (latest.resolved_at or latest.last_message_at) >= recent):
        if channel not in (latest.channel_state or {}):
            latest.channel_state = {**(latest.channel_state or {}), channel: thread}
        return latest
    conversation = InboxConversation(
        customer_id=canonical_customer_id(session, customer_id), channel=channel, reply_channel=channel,
        status="resolved", resolved_at=now, priority=0, labels=[], channel_state={channel: thread},
        weight=routing.weight_of(channel, settings), created_at=now, last_message_at=now, sla_breaches=[],
    )
    session.add(conversation)
    session.flush()
    return conversation


def open_task(session: Session, *, settings: Settings, customer_id: int, text: str, label: str,
              data: dict[str, Any] | None = None) -> InboxConversation:
    """A task for the agents about a customer (marketing's "notify an agent"): the person's
    conversation (as `history_conversation` finds it, on the channel they last wrote on) gets a
    system message with `text` and `label`, and is opened and queued like a customer's message,
    so routing gives it to an agent who sees everything about the person."""
    channel = session.scalar(
        select(InboxMessage.channel).join(InboxConversation, InboxConversation.id == InboxMessage.conversation_id)
        .where(InboxConversation.customer_id.in_(person_ids(session, customer_id)), InboxMessage.direction == "in")
        .order_by(InboxMessage.id.desc()).limit(1)) or "phone"
    conversation = history_conversation(session, settings, customer_id, channel=channel, thread={})
    system_event(session, conversation, key="conversation.task", params={"text": text}, data=data)
    set_labels(session, conversation_id=conversation.id, add=[label], remove=[])
    if conversation.status != "open":
        _change_status(session, conversation, "open", settings)
        if conversation.assignee_id is None:
            routing.route(session, conversation, settings)
    conversation.last_message_at = utcnow()
    return conversation


def history_conversations(session: Session, settings: Settings, wanted: dict[int, tuple[str, dict[str, Any]]],
                          families: dict[int, list[int]], *, now: datetime | None = None) -> dict[int, InboxConversation]:
    """`history_conversation` for many live profiles at once ({profile: (channel, thread)},
    with each one's merged profile ids): their latest conversations in one query (locked), the
    new ones written in one statement."""
    now = now or utcnow()
    recent = now - timedelta(hours=settings.inbox_reopen_hours)
    owner = {member: person for person, members in families.items() for member in members if person in wanted}
    latest: dict[int, InboxConversation] = {}
    for conversation in session.scalars(
            select(InboxConversation).where(InboxConversation.customer_id.in_(list(owner)), InboxConversation.merged_into_id.is_(None))
            .order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc()).with_for_update()):
        latest.setdefault(owner[conversation.customer_id], conversation)
    found: dict[int, InboxConversation] = {}
    new: list[dict[str, Any]] = []
    for person, (channel, thread) in wanted.items():
        current = latest.get(person)
        if current is not None and (current.status != "resolved" or (current.resolved_at or current.last_message_at) >= recent):
            if channel not in (current.channel_state or {}):
                current.channel_state = {**(current.channel_state or {}), channel: thread}
            found[person] = current
            continue
        new.append(dict(customer_id=person, channel=channel, reply_channel=channel, status="resolved", resolved_at=now, priority=0,
                        labels=[], channel_state={channel: thread}, weight=routing.weight_of(channel, settings), created_at=now,
                        last_message_at=now, updated_at=now, sla_breaches=[]))
    if new:  # one bulk INSERT ... RETURNING (the unit of work's per-object bookkeeping cost more than the insert)
        for conversation in session.scalars(insert(InboxConversation).returning(InboxConversation), new):
            found[conversation.customer_id] = conversation
    return found


def add_logged(session: Session, conversation: InboxConversation, inbound: InboundMessage, *, direction: str,
               agent_id: int | None = None) -> InboxMessage:
    """Log something that happened elsewhere (an answered call) in the conversation, without
    reopening or queueing it: it needs no answer."""
    message = _add_message(session, conversation, inbound, direction=direction, meta=inbound.meta)
    message.author_agent_id = agent_id
    conversation.last_message_at = message.created_at
    thread = dict((conversation.channel_state or {}).get(inbound.channel) or {})
    thread.update(inbound.meta.get("thread") or {})
    conversation.channel_state = {**(conversation.channel_state or {}), inbound.channel: thread}
    publish_message(session, conversation, message)
    return message


# --- outbound -------------------------------------------------------------------------------


def _agent(session: Session, agent_id: int) -> InboxAgent:
    agent = session.get(InboxAgent, agent_id)
    if agent is None:
        raise NotFound(f"Agent {agent_id} not found", code="agent_not_found")
    return agent


def reachable_channels(session: Session, conversation: InboxConversation, settings: Settings) -> list[str]:
    """Channels a reply can take: configured ones the customer used or can be reached on (a
    closed WhatsApp window too is "not now"), minus the ones whose consent they withdrew."""
    withdrawn = withdrawn_channels(session, conversation.customer_id)
    out = []
    for name, adapter in ADAPTERS.items():
        if (adapter.consent_channel and adapter.consent_channel in withdrawn) or not adapter.configured(settings):
            continue
        try:
            adapter.address(session, customer_id=conversation.customer_id, thread=(conversation.channel_state or {}).get(name) or {})
        except AppError:
            continue
        out.append(name)
    return out


def withdrawn_channels(session: Session, customer_id: int) -> set[str]:
    ids = [i for p in person_ids(session, customer_id)
           for i in customers_service.identity_ids_of(session, p)]
    return {c["channel"] for c in customers_service.current_consents(session, ids) if c["purpose"] == "service" and not c["granted"]}


def scoped_key(scope: str, key: str) -> str:
    """A client's Idempotency-Key under a scope ("outbound", "reply:<conversation id>"), hashed
    when it would not fit the 200-character column."""
    scoped = f"{scope}:{key}"
    return scoped if len(scoped) <= 200 else f"{scope}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def replayed(session: Session, key: str | None, *, text: str) -> InboxMessage | None:
    """The message an earlier request with this key created (the same text), or None."""
    if key is None:
        return None
    found = session.scalar(select(InboxMessage).where(InboxMessage.idempotency_key == key))
    if found is not None and found.text != text:
        raise Unprocessable("This Idempotency-Key was used for a different message", code="idempotency_key_reused",
                            details={"message_id": found.id})
    return found


def reply(
    session: Session, *, settings: Settings, conversation_id: int, agent_id: int, text: str, html: str | None = None,
    attachment_ids: list[int] | None = None, channel: str | None = None, idempotency_key: str | None = None,
) -> InboxMessage:
    """An agent's answer, on `channel` or the conversation's reply channel. Checked first: the
    channel exists, the customer can be reached there and has not withdrawn consent for it. A
    retry with the same Idempotency-Key returns the first answer instead of sending it twice."""
    key = scoped_key(f"reply:{conversation_id}", idempotency_key) if idempotency_key else None
    conversation = get_conversation(session, conversation_id, lock=True)
    earlier = replayed(session, key, text=text)
    if earlier is not None:
        return earlier
    agent = _agent(session, agent_id)
    channel = channel or conversation.reply_channel
    adapter = adapter_for(channel)
    if not adapter.configured(settings):
        # Refused now rather than queued forever: nothing could send it (docs/inbox.md).
        raise Unprocessable(
            f"The {channel} channel is not configured, so nothing can be sent there: choose another channel",
            code="channel_not_configured",
            details={"channel": channel, "reachable": reachable_channels(session, conversation, settings)},
        )
    if adapter.consent_channel and adapter.consent_channel in withdrawn_channels(session, conversation.customer_id):
        raise Conflict(
            f"The customer withdrew consent to be contacted by {adapter.consent_channel}", code="consent_withdrawn",
            details={"channel": channel, "reachable": reachable_channels(session, conversation, settings)},
        )
    thread = dict((conversation.channel_state or {}).get(channel) or {})
    address = adapter.address(session, customer_id=conversation.customer_id, thread=thread)
    now = utcnow()
    message = InboxMessage(
        conversation_id=conversation.id, direction="out", kind="message", channel=channel, author_agent_id=agent.id,
        text=text, html=html, delivery_status="sent" if adapter.realtime else "queued",
        next_attempt_at=None if adapter.realtime else now, meta={"address": address}, idempotency_key=key, created_at=now,
    )
    session.add(message)
    session.flush()
    _bind_attachments(session, message=message, ids=attachment_ids or [], customer_id=None)
    queue_send(session, message)
    if conversation.handled_by_bot:  # an agent who answers takes over from the bot: its clocks start now
        conversation.handled_by_bot = False
        sla.start_clocks(session, conversation, now)
    if conversation.assignee_id is None:
        if routing.claim(session, conversation, agent, settings, force=True):
            _announce_assignment(session, conversation, agent_id=agent.id, by=agent.id, note=None)
    conversation.reply_channel = channel
    conversation.last_message_at = now
    conversation.awaiting_reply_since = None
    sla.agent_replied(conversation, now)
    publish_message(session, conversation, message)
    return message


def add_note(session: Session, *, conversation_id: int, agent_id: int, text: str) -> InboxMessage:
    conversation = get_conversation(session, conversation_id)
    _agent(session, agent_id)
    note = InboxMessage(conversation_id=conversation.id, direction="internal", kind="note", channel=conversation.channel,
                        author_agent_id=agent_id, text=text, delivery_status="received", meta={}, created_at=utcnow())
    session.add(note)
    session.flush()
    publish_message(session, conversation, note)
    return note


def typing(session: Session, *, conversation_id: int, agent_id: int, is_typing: bool) -> None:
    conversation = get_conversation(session, conversation_id)
    agent = _agent(session, agent_id)
    realtime.notify(session, [f"conversation:{conversation.id}", f"webchat:{conversation.customer_id}"],
                    {"type": "typing", "conversation_id": conversation.id, "typing": is_typing, "author": {"name": agent.name}})


# --- assignment and transfer ------------------------------------------------------------------


def _announce_assignment(session: Session, conversation: InboxConversation, *, agent_id: int | None, by: int | None,
                         note: str | None, team_id: int | None = None) -> None:
    data = {**summary_view(conversation), "assigned_by": by, "note": note, "team_id": team_id or conversation.team_id}
    webhooks.emit(session, "conversation.assigned", data)
    realtime.notify(session, [f"agent:{agent_id}" if agent_id else "inbox", f"conversation:{conversation.id}", "inbox"],
                    {"type": "assignment", "conversation": data})


def transfer(session: Session, *, settings: Settings, conversation_id: int, agent_id: int | None = None,
             team_id: int | None = None, note: str | None = None, by_agent_id: int | None = None) -> InboxConversation:
    """To an agent (assigned at once, even over capacity: a person chose them) or to a team
    (back in the queue for that team's agents), with an optional note for whoever takes it.
    An agent transferring to themself (`by_agent_id == agent_id`) takes the conversation, and the
    thread says so ("Taken by agent ..."), from the queue or from a colleague."""
    if (agent_id is None) == (team_id is None):
        raise Unprocessable("Give exactly one of agent_id or team_id", code="invalid_transfer")
    conversation = get_conversation(session, conversation_id, lock=True)
    if conversation.handled_by_bot:  # people take it from the bot: its clocks start now
        conversation.handled_by_bot = False
        sla.start_clocks(session, conversation, utcnow())
    previous = conversation.assignee_id
    if previous is not None and conversation.status == "open":
        routing.release_load(session, previous, conversation.weight)
    session.execute(update(InboxConversation).where(InboxConversation.id == conversation.id).values(assignee_id=None)
                    .execution_options(synchronize_session=False))
    session.refresh(conversation, ["assignee_id"])
    if agent_id is not None:
        agent = _agent(session, agent_id)
        routing.claim(session, conversation, agent, settings, force=True)
        taken = by_agent_id is not None and by_agent_id == agent_id
        key, params = "conversation.taken" if taken else "conversation.transferred.agent", {"agent": agent.name}
    else:
        team = session.get(InboxTeam, team_id)
        if team is None:
            raise NotFound(f"Team {team_id} not found", code="team_not_found")
        conversation.team_id = team.id
        routing.enqueue(conversation, settings)
        key, params = "conversation.transferred.team", {"team": team.name}
    if note:
        key, params = f"{key}.note", {**params, "note": note}
    system_event(session, conversation, key=key, params=params, agent_id=by_agent_id,
                 data={"from_agent_id": previous, "to_agent_id": agent_id, "to_team_id": team_id, "note": note})
    if agent_id is None:
        agent_found = routing.route(session, conversation, settings)
        agent_id = agent_found.id if agent_found else None
    _announce_assignment(session, conversation, agent_id=agent_id, by=by_agent_id, note=note, team_id=team_id)
    if previous is not None and previous != agent_id and conversation.status == "open":
        _freed(session, previous, settings)
    return conversation


# --- merge and split --------------------------------------------------------------------------


def merge(session: Session, *, settings: Settings, source_id: int, target_id: int, agent_id: int | None = None) -> InboxConversation:
    """The person wrote twice: `source`'s messages move into `target`, `source` points to it."""
    source = get_conversation(session, source_id, lock=True)
    target = get_conversation(session, target_id, lock=True)
    if source.id == target.id:
        raise Unprocessable("A conversation cannot be merged into itself", code="same_conversation")
    if canonical_customer_id(session, source.customer_id) != canonical_customer_id(session, target.customer_id):
        raise Conflict("Both conversations must belong to one customer (merge the customers first)", code="different_customers",
                       details={"source_customer_id": source.customer_id, "target_customer_id": target.customer_id})
    session.execute(update(InboxMessage).where(InboxMessage.conversation_id == source.id).values(conversation_id=target.id)
                    .execution_options(synchronize_session=False))
    session.execute(update(InboxSurvey).where(InboxSurvey.conversation_id == source.id).values(conversation_id=target.id)
                    .execution_options(synchronize_session=False))
    freed = source.assignee_id if source.status == "open" else None
    if freed:
        routing.release_load(session, freed, source.weight)
    states = {**(source.channel_state or {}), **(target.channel_state or {})}
    for name, state in (source.channel_state or {}).items():
        ids = [*state.get("provider_ids", []), *states[name].get("provider_ids", [])]
        states[name] = {**state, **states[name], "provider_ids": ids[-THREAD_IDS_KEPT:]}
    target.channel_state = states
    target.labels = sorted({*(target.labels or []), *(source.labels or [])})
    target.last_message_at = max(target.last_message_at, source.last_message_at)
    if source.awaiting_reply_since and (target.awaiting_reply_since is None or source.awaiting_reply_since < target.awaiting_reply_since):
        target.awaiting_reply_since = source.awaiting_reply_since
    source.merged_into_id, source.status, source.queue_rank_at, source.assignee_id = target.id, "resolved", None, None
    source.sla_next_due_at = None
    if target.status != "open" and source.status == "open":
        _change_status(session, target, "open", settings)
    system_event(session, target, key="conversation.merged", params={"merged_id": source.id}, agent_id=agent_id,
                 data={"merged_id": source.id})
    webhooks.emit(session, "conversation.merged", {"source_id": source.id, "target_id": target.id, "customer_id": target.customer_id})
    publish_conversation(session, target, "merged", merged_id=source.id)
    _freed(session, freed, settings)
    return target


def split(session: Session, *, settings: Settings, message_id: int, agent_id: int | None = None) -> InboxConversation:
    """Move a message, and the ones after it, into a new conversation of the same customer."""
    message = session.get(InboxMessage, message_id)
    if message is None:
        raise NotFound(f"Message {message_id} not found", code="message_not_found")
    source = get_conversation(session, message.conversation_id, lock=True)
    if message.direction != "in":
        raise Unprocessable("Only a customer's message can start a new conversation", code="split_needs_customer_message")
    first = session.scalar(select(func.min(InboxMessage.id)).where(InboxMessage.conversation_id == source.id))
    if first == message.id:
        raise Unprocessable("That message already starts its conversation", code="nothing_to_split")
    now = utcnow()
    new = InboxConversation(
        customer_id=source.customer_id, channel=message.channel, reply_channel=message.channel, status="open", subject=source.subject,
        priority=source.priority, labels=[], channel_state=dict(source.channel_state or {}), weight=source.weight,
        required_skill=routing.detect_skill(session, message.text), created_at=message.created_at, last_message_at=now,
        awaiting_reply_since=message.created_at, sla_breaches=[],
    )
    session.add(new)
    session.flush()
    session.execute(update(InboxMessage).where(InboxMessage.conversation_id == source.id, InboxMessage.id >= message.id)
                    .values(conversation_id=new.id).execution_options(synchronize_session=False))
    sla.start_clocks(session, new, message.created_at)
    routing.enqueue(new, settings, at=message.created_at)
    system_event(session, source, key="conversation.split_into", params={"message_id": message.id, "conversation_id": new.id},
                 agent_id=agent_id, data={"split_into": new.id})
    system_event(session, new, key="conversation.split_from", params={"conversation_id": source.id}, agent_id=agent_id,
                 data={"split_from": source.id})
    webhooks.emit(session, "conversation.created", {**summary_view(new), "split_from": source.id})
    agent = routing.route(session, new, settings)
    if agent is not None:
        _announce_assignment(session, new, agent_id=agent.id, by=agent_id, note=None)
    return new


def set_labels(session: Session, *, conversation_id: int, add: list[str], remove: list[str]) -> InboxConversation:
    conversation = get_conversation(session, conversation_id, lock=True)
    conversation.labels = sorted((set(conversation.labels or []) | set(add)) - set(remove))
    publish_conversation(session, conversation, "labels")
    return conversation


# --- surveys ----------------------------------------------------------------------------------


SURVEY_QUESTIONS = {
    "csat": {"en": "How would you rate our help? Reply with a number from 1 (bad) to 5 (excellent).",
             "ru": "Как вы оцениваете нашу помощь? Ответьте числом от 1 (плохо) до 5 (отлично)."},
    "nps": {"en": "How likely are you to recommend us to a friend? Reply with a number from 0 to 10.",
            "ru": "Насколько вероятно, что вы порекомендуете нас друзьям? Ответьте числом от 0 до 10."},
}


#: The scores each kind of survey takes (inclusive).
SURVEY_SCALES = {"csat": (1, 5), "nps": (0, 10)}


def send_survey(session: Session, *, settings: Settings, conversation: InboxConversation) -> InboxSurvey | None:
    """Ask CSAT or NPS on the conversation's reply channel, once per resolution."""
    kind = settings.inbox_survey
    if kind == "none":
        return None
    channel = conversation.reply_channel
    adapter = ADAPTERS.get(channel)
    if adapter is None or (adapter.consent_channel and adapter.consent_channel in withdrawn_channels(session, conversation.customer_id)):
        return None
    try:
        address = adapter.address(session, customer_id=conversation.customer_id, thread=(conversation.channel_state or {}).get(channel) or {})
    except Unprocessable:
        return None
    survey = InboxSurvey(conversation_id=conversation.id, customer_id=conversation.customer_id, kind=kind, channel=channel,
                         agent_id=conversation.assignee_id, sent_at=utcnow())
    session.add(survey)
    session.flush()
    question = SURVEY_QUESTIONS[kind][settings.inbox_language]
    now = utcnow()
    message = InboxMessage(
        conversation_id=conversation.id, direction="out", kind="message", channel=channel, text=question,
        delivery_status="sent" if adapter.realtime else "queued", next_attempt_at=None if adapter.realtime else now,
        meta={"address": address, "survey": {"id": survey.id, "kind": kind}}, created_at=now,
    )
    session.add(message)
    session.flush()
    queue_send(session, message, priority=Priority.normal)
    publish_message(session, conversation, message)
    return survey


def answer_survey(session: Session, *, survey_id: int, score: int, comment: str | None, channel: str | None = None,
                  customer_id: int | None = None) -> InboxSurvey:
    survey = session.get(InboxSurvey, survey_id, with_for_update=True)
    if survey is None or (customer_id is not None and survey.customer_id not in person_ids(session, customer_id)):
        raise NotFound(f"Survey {survey_id} not found", code="survey_not_found")
    low, high = SURVEY_SCALES.get(survey.kind, (0, 10))
    if not low <= score <= high:
        raise Unprocessable(f"A {survey.kind} score is from {low} to {high}", code="invalid_score", details={"min": low, "max": high})
    if survey.answered_at is not None:
        if survey.score == score and survey.comment == comment:
            return survey  # a repeat of the same answer
        raise Conflict("This survey was answered already", code="survey_answered")
    survey.score, survey.comment, survey.answered_at = score, comment, utcnow()
    if channel:
        survey.channel = channel
    webhooks.emit(session, "survey.answered", survey_view(survey))
    return survey


def survey_view(survey: InboxSurvey) -> dict[str, Any]:
    return {"id": survey.id, "conversation_id": survey.conversation_id, "customer_id": survey.customer_id, "kind": survey.kind,
            "channel": survey.channel, "agent_id": survey.agent_id, "score": survey.score, "comment": survey.comment,
            "sent_at": survey.sent_at, "answered_at": survey.answered_at}


# --- customers: merge, 360, timeline, export, erase --------------------------------------------


def canonical_customer_id(session: Session, customer_id: int) -> int:
    """Conversations keep the profile id they started with; after a merge they are read through
    `merged_profile_ids` (and go back with an unmerge), like orders."""
    return resolution.canonical_profile(session, customer_id).id


def person_ids(session: Session, customer_id: int) -> list[int]:
    known = prefetched(session, "person_ids", customer_id)
    if known is not None:
        return list(known)
    return customers_service.merged_profile_ids(session, canonical_customer_id(session, customer_id))


def prefetched(session: Session, kind: str, key: Any) -> Any:
    """What a bulk send (`outbound.send_many`) loaded for many people at once, or None: the
    per-person lookups of routing (the person's profile ids, identifiers, consents, threads)
    read it instead of asking the database once per message."""
    store = session.info.get("inbox_prefetch")
    return None if store is None else store.get(kind, {}).get(key)


def _conversations(session: Session, context: CustomerContext) -> list[InboxConversation]:
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    return list(session.scalars(select(InboxConversation).where(
        InboxConversation.customer_id.in_(ids), InboxConversation.merged_into_id.is_(None)
    ).order_by(InboxConversation.last_message_at.desc()).limit(50)))


def _section(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    return [summary_view(c) for c in _conversations(session, context)]


def _export(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    out = []
    for conversation in session.scalars(select(InboxConversation).where(InboxConversation.customer_id.in_(ids))
                                         .order_by(InboxConversation.id)):
        messages = [m for m in messages_of(session, conversation.id, limit=100_000) if m.kind != "note"]
        out.append({**summary_view(conversation), "messages": [
            {k: v for k, v in view.items() if k not in ("meta",)} for view in messages_view(session, messages)]})
    return out


def _erase(session: Session, context: CustomerContext) -> int:
    """Message texts and files go; the conversations stay as counted facts (for reports)."""
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    conversation_ids = select(InboxConversation.id).where(InboxConversation.customer_id.in_(ids))
    message_ids = select(InboxMessage.id).where(InboxMessage.conversation_id.in_(conversation_ids))
    session.execute(delete(InboxAttachment).where(or_(InboxAttachment.message_id.in_(message_ids), InboxAttachment.customer_id.in_(ids))))
    count = session.execute(update(InboxMessage).where(InboxMessage.conversation_id.in_(conversation_ids))
                            .values(text="", search_text="", html=None, meta={}).execution_options(synchronize_session=False)).rowcount
    session.execute(update(InboxConversation).where(InboxConversation.customer_id.in_(ids))
                    .values(subject=None, channel_state={}).execution_options(synchronize_session=False))
    session.execute(update(InboxSurvey).where(InboxSurvey.customer_id.in_(ids)).values(comment=None)
                    .execution_options(synchronize_session=False))
    session.execute(delete(InboxChatSession).where(InboxChatSession.customer_id.in_(ids)))
    return count


#: The timeline's titles (customers/timeline.py) besides a message's own text.
TITLES = {"inbox.attachment": "(attachment)"}


def _timeline(session: Session, context: CustomerContext, query: TimelineQuery) -> list[TimelineItem]:
    """The customer's messages and the agents' replies, on every channel."""
    if not query.wants("inbox"):
        return []
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    found = (select(InboxMessage.id, InboxMessage.created_at, InboxMessage.channel, InboxMessage.direction, InboxMessage.kind,
                    func.substr(InboxMessage.text, 1, 120).label("title"), InboxMessage.conversation_id)
             .join(InboxConversation, InboxConversation.id == InboxMessage.conversation_id)
             .where(InboxConversation.customer_id.in_(ids), InboxMessage.direction.in_(("in", "out")),
                    query.older_than_cursor(InboxMessage.created_at, InboxMessage.id)))
    if query.channels:
        found = found.where(InboxMessage.channel.in_(query.channels))
    rows = session.execute(found.order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc()).limit(query.limit)).all()
    return [
        TimelineItem(kind="inbox", id=m.id, occurred_at=m.created_at, channel=m.channel,
                     type=f"inbox.call_{'in' if m.direction == 'in' else 'out'}" if m.kind == "call"
                     else f"inbox.message_{'received' if m.direction == 'in' else 'sent'}",
                     data={"conversation_id": m.conversation_id, "direction": m.direction},
                     **({"title": m.title} if m.title else titled(TITLES, "inbox.attachment", {})))
        for m in rows
    ]


def register(sections: SectionRegistry, timeline: TimelineRegistry) -> None:
    sections.register("conversations", _section, export=_export, erase=_erase)
    timeline.register("inbox", _timeline, titles=TITLES)


def identities_of_type(session: Session, customer_id: int, type_name: str) -> list[str]:
    """The customer's verified identifiers of one type (e.g. their email addresses), oldest
    first: messages go only where a trusted party vouched the person is (a phone a browser
    merely typed may be someone else's; docs/customers.md, "Trust")."""
    known = prefetched(session, "verified", customer_id)
    if known is not None:
        return list(known.get(type_name, []))
    ids = person_ids(session, customer_id)
    return list(session.scalars(select(CustomerIdentity.value).where(
        CustomerIdentity.profile_id.in_(ids), CustomerIdentity.type == type_name,
        CustomerIdentity.verified_at.is_not(None)).order_by(CustomerIdentity.id)))

