"""Calls from the PBX (CTI) and callback tasks.

- ringing: the call is recorded and a screen pop goes to the agent at the ringing extension (or
  to every console when the PBX names none): the caller's profile when the number is known,
  else a new-customer form with the number filled in. Nothing is created for an unknown
  number yet: a call that is never answered by anyone may be a wrong number.
- answered: the agent who picked up (by extension) is recorded; the other consoles close the pop.
- ended: the call is logged in the customer's conversation history and timeline (the number
  creates a profile if it is new). A missed incoming call becomes a callback task: the
  customer's conversation, labelled `callback`, opened and queued like a message. When an agent
  later reaches the customer by an outgoing call, their pending callbacks are marked done.
- a website "call me back" request is the same kind of task.

Every event is stored raw under (phone, "<call id>:<event>") before it is applied, so the PBX's
retries change nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.channels.telephony.adapter import CHANNEL
from seamline.channels.telephony.models import Call
from seamline.channels.telephony.schemas import CallbackRequest, CallEvent
from seamline.core.config import Settings
from seamline.core.errors import AppError, TooManyRequests
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import CustomerIdentity
from seamline.events import service as events_service
from seamline.inbox import agents, delivery, realtime, service
from seamline.inbox.adapters import InboundMessage
from seamline.inbox.models import InboxConversation, InboxInbound, InboxMessage

CALLBACK_LABEL = "callback"

TEXTS = {
    "ru": {"missed": "Пропущенный звонок", "in": "Входящий звонок", "out": "Исходящий звонок", "no_answer": "нет ответа",
           "callback": "Просьба перезвонить", "when": "удобное время", "called_back": "Перезвонили клиенту"},
    "en": {"missed": "Missed call", "in": "Incoming call", "out": "Outgoing call", "no_answer": "no answer",
           "callback": "Please call me back", "when": "preferred time", "called_back": "Called the customer back"},
}


def _phone(rules: IdentifierRules, raw: str) -> str | None:
    """The number in E.164, or None for a hidden or invalid caller id ("anonymous", "unknown")."""
    try:
        return rules.normalize("phone", raw).value
    except AppError:
        return None


def known_customer(session: Session, phone: str | None) -> int | None:
    """The active profile that has this number, without creating anything."""
    if phone is None:
        return None
    profile_id = session.scalar(select(CustomerIdentity.profile_id).where(CustomerIdentity.type == "phone",
                                                                           CustomerIdentity.value == phone))
    if profile_id is None:
        return None
    profile = resolution.canonical_profile(session, profile_id)
    return profile.id if profile.status == "active" else None


def call_view(call: Call) -> dict[str, Any]:
    return {
        "id": call.id, "call_id": call.provider_call_id, "direction": call.direction, "status": call.status,
        "phone": call.customer_phone, "line": call.line, "customer_id": call.customer_id, "agent_id": call.agent_id,
        "extension": call.extension, "conversation_id": call.conversation_id, "message_id": call.message_id,
        "started_at": call.started_at, "answered_at": call.answered_at, "ended_at": call.ended_at,
        "duration_seconds": call.duration_seconds, "recording_url": call.recording_url, "meta": call.meta or {},
    }


def _screen_pop(session: Session, call: Call) -> dict[str, Any]:
    """What the console shows while it rings: the customer (open their 360) or a new-customer form."""
    customer_id = known_customer(session, call.customer_phone if call.customer_phone.startswith("+") else None)
    if customer_id is None:
        return {"customer": None, "new_customer": {"phone": call.customer_phone}}
    person = service.person_ids(session, customer_id)
    conversations = session.execute(
        select(InboxConversation.id, InboxConversation.status, InboxConversation.subject, InboxConversation.last_message_at)
        .where(InboxConversation.customer_id.in_(person), InboxConversation.merged_into_id.is_(None))
        .order_by(InboxConversation.last_message_at.desc()).limit(5)).all()
    return {"customer": {
        "id": customer_id, **service.customer_name(session, customer_id), "phone": call.customer_phone,
        "profile_url": f"/v1/customers/{customer_id}",
        "conversations": [{"id": c.id, "status": c.status, "subject": c.subject, "last_message_at": c.last_message_at}
                          for c in conversations]}}


def _notify(session: Session, call: Call, kind: str, **extra: Any) -> None:
    topics = ["inbox"] if call.agent_id is None else [f"agent:{call.agent_id}", "inbox"]
    realtime.notify(session, topics, {"type": f"call.{kind}", "call": call_view(call), **extra})


def _duration_text(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}:{rest:02d}"


def _log_line(call: Call, language: str) -> str:
    words = TEXTS[language]
    if call.status == "missed":
        return f"{words['missed']}: {call.customer_phone}"
    if call.direction == "out" and not call.duration_seconds:
        return f"{words['out']}: {words['no_answer']}"
    return f"{words['in' if call.direction == 'in' else 'out']}, {_duration_text(call.duration_seconds or 0)}"


def handle_event(session: Session, *, rules: IdentifierRules, settings: Settings, event: CallEvent) -> tuple[Call, bool]:
    """Apply one call event; (the call, False when this event was already applied)."""
    raw = orjson.dumps(event.model_dump(mode="json", by_alias=True))
    inbound_id = delivery.store_raw(session, channel=CHANNEL, provider_message_id=f"{event.call_id}:{event.event}", raw=raw)
    call = session.scalar(select(Call).where(Call.provider_call_id == event.call_id).with_for_update())
    if inbound_id is None and call is not None:
        return call, False
    at = event.at or utcnow()
    customer_raw, line = (event.from_, event.to) if event.direction == "in" else (event.to, event.from_)
    phone = _phone(rules, customer_raw)
    if call is None:
        call = Call(provider_call_id=event.call_id, direction=event.direction, customer_phone=(phone or customer_raw)[:32],
                    line=line[:64], status="ringing", started_at=at, meta={})
        session.add(call)
    agent = agents.agent_at_extension(session, event.extension)
    if event.extension and (event.event != "ringing" or call.agent_id is None):
        call.extension, call.agent_id = event.extension, agent.id if agent else None
    session.flush()
    message_id = None
    if event.event == "ringing" and call.status == "ringing":
        _notify(session, call, "ringing", **_screen_pop(session, call))
    elif event.event == "answered" and call.status == "ringing":
        call.status, call.answered_at = "answered", at
        _notify(session, call, "answered")
    elif event.event == "ended" and call.ended_at is None:
        message_id = _ended(session, rules=rules, settings=settings, call=call, event=event, phone=phone, at=at)
    if inbound_id is not None:
        row = session.get(InboxInbound, inbound_id)
        row.status, row.processed_at, row.attempts, row.message_id = "processed", utcnow(), 1, message_id
    return call, True


def _ended(session: Session, *, rules: IdentifierRules, settings: Settings, call: Call, event: CallEvent, phone: str | None,
           at: datetime) -> int | None:
    answered = call.answered_at is not None or bool(event.duration)
    call.ended_at, call.duration_seconds = at, event.duration if event.duration is not None else (
        int((at - call.answered_at).total_seconds()) if call.answered_at else 0)
    call.recording_url = str(event.recording_url) if event.recording_url else None
    call.status = "ended" if answered or call.direction == "out" else "missed"
    message_id = None
    if phone is not None:
        call.customer_id = delivery.resolve_sender(session, rules=rules, identifiers=[("phone", phone)], name=None, source=CHANNEL)
        message = _log(session, settings, call)
        call.conversation_id, call.message_id = message.conversation_id, message.id
        message_id = message.id
        if call.direction == "out" and answered:
            _callbacks_done(session, settings, call)
    _notify(session, call, "ended")
    return message_id


def _log(session: Session, settings: Settings, call: Call) -> InboxMessage:
    language = settings.inbox_language
    inbound = InboundMessage(
        channel=CHANNEL, provider_message_id=f"call:{call.provider_call_id}", identifiers=[("phone", call.customer_phone)],
        text=_log_line(call, language), kind="call",
        meta={"thread": {"phone": call.customer_phone}, "call": {
            "id": call.id, "direction": call.direction, "status": call.status, "duration_seconds": call.duration_seconds,
            "recording_url": call.recording_url, "extension": call.extension, "line": call.line}},
    )
    if call.status == "missed":
        return _callback_task(session, settings, call.customer_id, inbound)
    conversation = service.history_conversation(session, settings, call.customer_id, channel=CHANNEL,
                                                thread={"phone": call.customer_phone})
    return service.add_logged(session, conversation, inbound, direction="in" if call.direction == "in" else "out",
                              agent_id=call.agent_id)


def _callback_task(session: Session, settings: Settings, customer_id: int, inbound: InboundMessage) -> InboxMessage:
    """The customer's conversation, opened and queued for an agent like a message, labelled."""
    message = service.receive(session, settings=settings, inbound=inbound, customer_id=customer_id)
    service.set_labels(session, conversation_id=message.conversation_id, add=[CALLBACK_LABEL], remove=[])
    return message


def _callbacks_done(session: Session, settings: Settings, call: Call) -> None:
    """An agent reached the customer: their pending callback requests and missed calls are done."""
    pending = session.scalars(select(Call).where(
        Call.customer_id.in_(service.person_ids(session, call.customer_id)), Call.status.in_(("missed", "requested")),
        Call.id != call.id).with_for_update()).all()
    conversations = {c.conversation_id for c in pending if c.conversation_id}
    for earlier in pending:
        earlier.status = "called_back" if earlier.status == "missed" else "done"
        earlier.meta = {**(earlier.meta or {}), "called_back_by": call.id}
    for conversation_id in conversations:
        conversation = service.set_labels(session, conversation_id=conversation_id, add=[], remove=[CALLBACK_LABEL])
        service.system_event(session, conversation, TEXTS[settings.inbox_language]["called_back"],
                             key="conversation.called_back", agent_id=call.agent_id, data={"call_id": call.id})


def request_callback(session: Session, *, rules: IdentifierRules, settings: Settings, body: CallbackRequest) -> tuple[Call, bool]:
    """A website visitor asks to be called; (the task, whether new). One open request per number
    at a time, and at most `inbox_callback_max_per_phone_per_day` a day (a public form)."""
    source = events_service.source_of_key(session, body.writeKey)
    phone = rules.normalize("phone", body.phone).value  # 422 invalid_phone
    provider_id = f"callback:{source.id}:{body.requestId}" if body.requestId else f"callback:{uuid.uuid4()}"
    same = session.scalar(select(Call).where(Call.provider_call_id == provider_id))
    if same is not None:
        return same, False
    waiting = session.scalar(select(Call).where(Call.customer_phone == phone, Call.direction == "callback",
                                                Call.status == "requested").order_by(Call.id.desc()).limit(1))
    if waiting is not None:
        return waiting, False
    now = utcnow()
    today, oldest = session.execute(select(func.count(), func.min(Call.started_at)).where(
        Call.customer_phone == phone, Call.direction == "callback", Call.started_at >= now - timedelta(days=1))).one()
    if today >= settings.inbox_callback_max_per_phone_per_day:
        retry_after = max(1, int((oldest + timedelta(days=1) - now).total_seconds()) + 1)
        raise TooManyRequests("Too many callback requests for this number today", code="too_many_callback_requests",
                              details={"limit": settings.inbox_callback_max_per_phone_per_day, "retry_after_seconds": retry_after})
    # A public form: the number is whatever the visitor typed, a claim (a new one gets a profile
    # of its own, a known one is its holder's: the agent calls that number, nothing is told).
    customer_id = delivery.resolve_sender(session, rules=rules, identifiers=[("phone", phone)], name=body.name, source=CHANNEL,
                                          claimed=[("phone", phone)])
    call = Call(provider_call_id=provider_id, direction="callback", customer_phone=phone, status="requested",
                customer_id=customer_id, started_at=utcnow(),
                meta={"name": body.name, "comment": body.comment, "preferred_time": body.preferredTime, "page": body.page,
                      "anonymous_id": body.anonymousId, "source_id": source.id})
    session.add(call)
    session.flush()
    words = TEXTS[settings.inbox_language]
    text = words["callback"] + (f": {body.comment}" if body.comment else "") + (
        f" ({words['when']}: {body.preferredTime})" if body.preferredTime else "")
    message = _callback_task(session, settings, customer_id, InboundMessage(
        channel=CHANNEL, provider_message_id=provider_id, identifiers=[("phone", phone)], text=text, kind="call",
        meta={"thread": {"phone": phone}, "call": {"id": call.id, "direction": "callback", "status": "requested",
                                                   "preferred_time": body.preferredTime, "page": body.page}}))
    call.conversation_id, call.message_id = message.conversation_id, message.id
    return call, True


def calls_of(session: Session, *, customer_id: int | None = None, status: str | None = None, limit: int = 100,
             before_id: int | None = None) -> list[Call]:
    query = select(Call).order_by(Call.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Call.id < before_id)
    if customer_id is not None:
        query = query.where(Call.customer_id.in_(service.person_ids(session, customer_id)))
    if status is not None:
        query = query.where(Call.status == status)
    return list(session.scalars(query))
