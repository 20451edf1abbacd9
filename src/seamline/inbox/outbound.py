"""Messages to customers from the rest of the system: `send(customer, text, channel=...)`.

Orders, loyalty and marketing call this (or `POST /v1/inbox/outbound`) instead of talking to a
provider. It:

- picks the channel: the one asked for, else the one the person last wrote on, else the first
  of `inbox_outbound_channels` that reaches them. A channel qualifies when the customer can be
  addressed there (a Telegram chat, a phone for SMS, WhatsApp's 24-hour window, ...) and did not
  withdraw their service consent for it; a marketing message also needs their marketing consent
  granted. Live channels (web chat) are used only when asked for by name: the person may never
  come back to the page.
- puts the message in the person's conversation history (their latest conversation, or a new
  one kept resolved, so it waits in nobody's queue; a reply reopens it and goes to an agent),
  queued for the outbound worker, which applies each provider's rate limit, retries with
  backoff, records delivery and read statuses, and leaves permanent failures on the dead-letter
  list (`dead_letters`, `requeue`).
- is idempotent: a retry with the same Idempotency-Key returns the message already queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import AppError, Conflict, NotFound, Unprocessable
from seamline.core.queue import Priority
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.inbox import service, throttle
from seamline.inbox.adapters import ADAPTERS, ChannelAdapter, adapter_for
from seamline.inbox.models import InboxConversation, InboxMessage


@dataclass
class Route:
    channel: str
    address: dict[str, Any]
    #: The channel's thread state (the last conversation that has one)
    thread: dict[str, Any]


def last_used_channel(session: Session, customer_id: int) -> str | None:
    return session.scalar(
        select(InboxMessage.channel).join(InboxConversation, InboxConversation.id == InboxMessage.conversation_id)
        .where(InboxConversation.customer_id.in_(service.person_ids(session, customer_id)), InboxMessage.direction == "in")
        .order_by(InboxMessage.id.desc()).limit(1))


def _threads(session: Session, customer_id: int) -> dict[str, dict[str, Any]]:
    """Each channel's thread state from the person's most recent conversation that has one."""
    found: dict[str, dict[str, Any]] = {}
    rows = session.scalars(select(InboxConversation.channel_state).where(
        InboxConversation.customer_id.in_(service.person_ids(session, customer_id)))
        .order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc()).limit(50))
    for state in rows:
        for channel, thread in (state or {}).items():
            found.setdefault(channel, dict(thread or {}))
    return found


def _consents(session: Session, customer_id: int) -> dict[tuple[str, str], bool]:
    ids = [i for p in service.person_ids(session, customer_id) for i in customers_service.identity_ids_of(session, p)]
    return {(c["channel"], c["purpose"]): c["granted"] for c in customers_service.current_consents(session, ids)}


def _refusal(adapter: ChannelAdapter, consents: dict[tuple[str, str], bool], purpose: str) -> str | None:
    """Why the customer's consents rule this channel out, or None."""
    if adapter.consent_channel is None:
        return None
    if consents.get((adapter.consent_channel, "service")) is False:
        return "consent_withdrawn"
    if purpose == "marketing" and consents.get((adapter.consent_channel, "marketing")) is not True:
        return "no_marketing_consent"
    return None


#: Channels a message can be sent to an exact identifier on: channel -> (identifier type, the
#: address's key).
EXACT_ADDRESS = {"sms": ("phone", "phone"), "email": ("email", "email")}


def choose(session: Session, *, settings: Settings, customer_id: int, channel: str | None = None,
           purpose: str = "service", to: str | None = None) -> Route:
    """Where a message to this customer goes; raises with every channel's reason when nowhere.
    `to`: that exact phone or email of theirs (with `channel` sms or email), e.g. a login code,
    which must reach the identifier it was asked for and nothing else."""
    consents, threads = _consents(session, customer_id), _threads(session, customer_id)
    if channel is not None:
        candidates = [channel]
        adapter_for(channel)  # an unknown channel is 422 unknown_channel
    else:
        last = last_used_channel(session, customer_id)
        preferred = [c for c in [last, *settings.inbox_outbound_channels] if c in ADAPTERS]
        candidates = list(dict.fromkeys(preferred))
    reasons: dict[str, str] = {}
    for name in candidates:
        adapter = ADAPTERS[name]
        if adapter.realtime and channel is None:
            reasons[name] = "live_channel_only_when_named"
            continue
        if not adapter.configured(settings):
            reasons[name] = "channel_not_configured"
            continue
        refusal = _refusal(adapter, consents, purpose)
        if refusal is not None:
            reasons[name] = refusal
            continue
        thread = threads.get(name, {})
        if to is not None:
            if name not in EXACT_ADDRESS:
                raise Unprocessable(f"A message to an exact address goes by sms or email, not {name}", code="unknown_channel",
                                    details={"channel": name})
            return Route(name, {EXACT_ADDRESS[name][1]: to}, {})
        try:
            address = adapter.address(session, customer_id=customer_id, thread=thread)
        except AppError as exc:
            reasons[name] = exc.code
            continue
        return Route(name, address, thread)
    if channel is not None and reasons.get(channel) in ("consent_withdrawn", "no_marketing_consent"):
        raise Conflict(f"The customer's consent rules out {channel} for a {purpose} message", code=reasons[channel],
                       details={"channel": channel, "purpose": purpose})
    raise Unprocessable("No channel reaches this customer", code="customer_unreachable",
                        details={"customer_id": customer_id, "purpose": purpose, "reasons": reasons})


def send(session: Session, *, settings: Settings, customer_id: int, text: str, channel: str | None = None,
         purpose: str = "service", source: str | None = None, idempotency_key: str | None = None,
         to: str | None = None, push: dict[str, Any] | None = None) -> tuple[InboxMessage, bool]:
    """Queue a message to a customer on the best channel (or to `to`, see `choose`); (the
    message, whether new). `push`: what a push notification shows beyond the text (`title`,
    `url`, `icon`, `tag`, `urgency`; `schemas.PushOptions`), kept in `meta.push` and given to
    the adapter as `OutboundMessage.data`."""
    key = service.scoped_key("outbound", idempotency_key) if idempotency_key else None
    earlier = service.replayed(session, key, text=text)
    if earlier is not None:
        return earlier, False
    customers_service.get_profile(session, customer_id)
    route = choose(session, settings=settings, customer_id=customer_id, channel=channel, purpose=purpose, to=to)
    conversation = service.history_conversation(session, settings, customer_id, channel=route.channel, thread=route.thread)
    adapter = ADAPTERS[route.channel]
    now = utcnow()
    message = InboxMessage(
        conversation_id=conversation.id, direction="out", kind="message", channel=route.channel, text=text,
        delivery_status="sent" if adapter.realtime else "queued", next_attempt_at=None if adapter.realtime else now,
        meta={"address": route.address, "purpose": purpose, **({"source": source} if source else {}),
              **({"push": push} if push else {})},
        idempotency_key=key, created_at=now,
    )
    session.add(message)
    session.flush()
    service.queue_send(session, message, priority=Priority.bulk if purpose == "marketing" else Priority.high)
    conversation.last_message_at = now
    service.publish_message(session, conversation, message)
    return message, True


def get_message(session: Session, message_id: int) -> InboxMessage:
    message = session.get(InboxMessage, message_id)
    if message is None or message.direction != "out":
        raise NotFound(f"Outbound message {message_id} not found", code="message_not_found")
    return message


def dead_letters(session: Session, *, channel: str | None = None, limit: int = 100,
                 before_id: int | None = None) -> list[InboxMessage]:
    """Outbound messages that could not be delivered (a permanent error, or attempts exhausted)."""
    query = select(InboxMessage).where(InboxMessage.direction == "out", InboxMessage.delivery_status == "failed")
    if channel:
        query = query.where(InboxMessage.channel == channel)
    if before_id:
        query = query.where(InboxMessage.id < before_id)
    return list(session.scalars(query.order_by(InboxMessage.id.desc()).limit(limit)))


def requeue(session: Session, *, message_id: int) -> InboxMessage:
    """Send a dead letter again (after the number was fixed, the provider recovered, ...)."""
    message = session.get(InboxMessage, message_id, with_for_update=True)
    if message is None or message.direction != "out" or message.delivery_status != "failed":
        raise NotFound(f"No failed outbound message {message_id}", code="dead_letter_not_found")
    conversation = session.get(InboxConversation, message.conversation_id)
    adapter = adapter_for(message.channel)
    if adapter.consent_channel and adapter.consent_channel in service.withdrawn_channels(session, conversation.customer_id):
        raise Conflict(f"The customer withdrew consent to be contacted by {adapter.consent_channel}", code="consent_withdrawn",
                       details={"channel": message.channel})
    message.delivery_status, message.attempts, message.next_attempt_at = "queued", 0, utcnow()
    message.meta = {**(message.meta or {}), "requeued_after": message.error}
    message.error = None
    service.queue_send(session, message, priority=Priority.normal)
    return message


def outbound_view(message: InboxMessage, customer_id: int | None = None) -> dict[str, Any]:
    meta = message.meta or {}
    return {
        "id": message.id, "conversation_id": message.conversation_id, "customer_id": customer_id, "channel": message.channel,
        "text": message.text, "purpose": meta.get("purpose"), "source": meta.get("source"),
        "delivery_status": message.delivery_status, "provider_message_id": message.provider_message_id,
        "attempts": message.attempts, "next_attempt_at": message.next_attempt_at, "error": message.error,
        "created_at": message.created_at,
    }


def channel_states(session: Session, *, settings: Settings) -> list[dict[str, Any]]:
    """Every registered channel's sending health: rate limit, pause, queued and failed counts."""
    counts: dict[tuple[str, str], int] = {
        (channel, status): n for channel, status, n in session.execute(
            select(InboxMessage.channel, InboxMessage.delivery_status, func.count())
            .where(InboxMessage.direction == "out", InboxMessage.delivery_status.in_(("queued", "failed")))
            .group_by(InboxMessage.channel, InboxMessage.delivery_status))}
    states = throttle.states(session)
    now = utcnow()
    items = []
    for name in sorted(ADAPTERS):
        state = states.get(name)
        paused = state is not None and state.paused_until is not None and state.paused_until > now
        items.append({
            "channel": name, "rate_per_second": throttle.rate_of(name, settings), "live": ADAPTERS[name].realtime,
            "paused_until": state.paused_until if paused else None, "failures": state.failures if state else 0,
            "last_error": state.last_error if state else None, "last_success_at": state.last_success_at if state else None,
            "queued": counts.get((name, "queued"), 0), "failed": counts.get((name, "failed"), 0),
        })
    return items
