"""Messages to customers from the rest of the system: `send(customer, text, channel=...)`.

Orders, loyalty and marketing call this (or `POST /v1/inbox/outbound`) instead of talking to a
provider. It:

- picks the channel: the one asked for; else, for a service message, the one the person last
  wrote on; else the best of those that reach them by the registered `ChannelRanker`
  (marketing's next-best-channel model, learnt from what they did with earlier messages; the
  choice and the channels it was made among are kept in the message's `meta.choice`); without
  a ranker, the first of `inbox_outbound_channels` that reaches them. A channel qualifies when the customer can be
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

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import AppError, Conflict, Gone, NotFound, Unprocessable
from seamline.core.queue import Priority
from seamline.core.queue.service import enqueue_many
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.models import CustomerConsent, CustomerIdentity
from seamline.inbox import service, suppression, throttle
from seamline.inbox.adapters import ADAPTERS, ChannelAdapter, adapter_for
from seamline.inbox.models import InboxConversation, InboxMessage


@dataclass
class Route:
    channel: str
    address: dict[str, Any]
    #: The channel's thread state (the last conversation that has one)
    thread: dict[str, Any]
    #: How it was chosen when no channel was named (named: None): {"by": "last_used" | "ranked" |
    #: "order", "among": the channels that reach the person}
    choice: dict[str, Any] | None = None


class ChannelRanker(Protocol):
    """Orders the channels that reach a person when no channel is named (one is registered by
    the composition root; the inbox does not know how it decides)."""

    def load(self, session: Session, settings: Settings, families: dict[int, list[int]]) -> Any:
        """What `rank` needs about these people ({person: their profile ids}), read at once for a batch."""

    def rank(self, session: Session, settings: Settings, customer_id: int, reachable: list[str], *,
             loaded: Any, seed: str | None) -> list[str]:
        """`reachable` best first; `seed`: the same seed ranks the same way (a retried send)."""


_rankers: list[ChannelRanker] = []


def register_ranker(ranker: ChannelRanker) -> None:
    """The ranker of channels (a second registration replaces the first: there is one)."""
    _rankers[:] = [ranker]


def last_used_channel(session: Session, customer_id: int) -> str | None:
    known = service.prefetched(session, "last_channel", customer_id)
    if known is not None:
        return known or None
    return session.scalar(
        select(InboxMessage.channel).join(InboxConversation, InboxConversation.id == InboxMessage.conversation_id)
        .where(InboxConversation.customer_id.in_(service.person_ids(session, customer_id)), InboxMessage.direction == "in")
        .order_by(InboxMessage.id.desc()).limit(1))


def _threads(session: Session, customer_id: int) -> dict[str, dict[str, Any]]:
    """Each channel's thread state from the person's most recent conversation that has one."""
    known = service.prefetched(session, "threads", customer_id)
    if known is not None:
        return {channel: dict(thread) for channel, thread in known.items()}
    found: dict[str, dict[str, Any]] = {}
    rows = session.scalars(select(InboxConversation.channel_state).where(
        InboxConversation.customer_id.in_(service.person_ids(session, customer_id)))
        .order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc()).limit(50))
    for state in rows:
        for channel, thread in (state or {}).items():
            found.setdefault(channel, dict(thread or {}))
    return found


def _consents(session: Session, customer_id: int) -> dict[tuple[str, str], bool]:
    known = service.prefetched(session, "consents", customer_id)
    if known is not None:
        return known
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


#: A channel name for "a push notification, wherever this person gets them": on their phone's
#: app when they have one registered (it reaches them away from the computer), else in their browser.
PUSH = "push"
PUSH_CHANNELS = ("mobilepush", "webpush")


def choose(session: Session, *, settings: Settings, customer_id: int, channel: str | None = None,
           purpose: str = "service", to: str | None = None, seed: str | None = None) -> Route:
    """Where a message to this customer goes; raises with every channel's reason when nowhere.
    `to`: that exact phone or email of theirs (with `channel` sms or email), e.g. a login code,
    which must reach the identifier it was asked for and nothing else. `seed`: the ranker's
    (a retried send chooses the same channel)."""
    consents, threads = _consents(session, customer_id), _threads(session, customer_id)
    if channel == PUSH:
        candidates = [name for name in PUSH_CHANNELS if name in ADAPTERS]
    elif channel is not None:
        candidates = [channel]
        adapter_for(channel)  # an unknown channel is 422 unknown_channel
    else:
        last = last_used_channel(session, customer_id)
        candidates = _unnamed_candidates(settings, last)
    reaching, reasons = _reach(session, settings, customer_id, candidates, purpose, consents, threads,
                               named=channel is not None, first=channel is not None or to is not None, to=to)
    if reaching and (channel is not None or to is not None):  # named (or push: the first that reaches them)
        return reaching[0]
    if reaching:
        return _pick(session, settings, customer_id, reaching, last if purpose != "marketing" else None, seed)
    if channel is not None and reasons.get(channel) in ("consent_withdrawn", "no_marketing_consent"):
        raise Conflict(f"The customer's consent rules out {channel} for a {purpose} message", code=reasons[channel],
                       details={"channel": channel, "purpose": purpose})
    if channel is not None and reasons.get(channel) == "address_bounced":
        raise Unprocessable(f"The customer's {channel} address bounced", code="address_bounced", details={"channel": channel})
    raise Unprocessable("No channel reaches this customer", code="customer_unreachable",
                        details={"customer_id": customer_id, "purpose": purpose, "reasons": reasons})


def _reach(session: Session, settings: Settings, customer_id: int, candidates: list[str], purpose: str,
           consents: dict[tuple[str, str], bool], threads: dict[str, dict[str, Any]], *, named: bool,
           first: bool, to: str | None = None) -> tuple[list[Route], dict[str, str]]:
    """The routes among `candidates` that reach the person, and why each other one does not
    (`first`: stop at the first that does; `to`: an exact address, see `choose`)."""
    reasons: dict[str, str] = {}
    reaching: list[Route] = []
    for name in candidates:
        adapter = ADAPTERS[name]
        if adapter.realtime and not named:
            reasons[name] = "live_channel_only_when_named"
            continue
        if not adapter.configured(settings):
            reasons[name] = "channel_not_configured"
            continue
        refusal = _refusal(adapter, consents, purpose)
        if refusal is not None:
            reasons[name] = refusal
            continue
        if to is not None:
            if name not in EXACT_ADDRESS:
                raise Unprocessable(f"A message to an exact address goes by sms or email, not {name}", code="unknown_channel",
                                    details={"channel": name})
            reaching.append(Route(name, {EXACT_ADDRESS[name][1]: to}, {}))
            break
        thread = threads.get(name, {})
        try:
            address = adapter.address(session, customer_id=customer_id, thread=thread)
        except AppError as exc:
            reasons[name] = exc.code
            continue
        reaching.append(Route(name, address, thread))
        if first:
            break
    return reaching, reasons


def _unnamed_candidates(settings: Settings, last: str | None) -> list[str]:
    """The channels a message with no channel named may go to: the one the person last wrote on,
    then `inbox_outbound_channels` (push channels only when an install lists them there)."""
    return list(dict.fromkeys(c for c in [last, *settings.inbox_outbound_channels] if c in ADAPTERS))


def reachability(session: Session, *, settings: Settings, customer_id: int, purpose: str = "marketing") -> dict[str, str | None]:
    """Each channel a message with no channel named may go to -> None when it reaches the person
    for a `purpose` message, else why not (the console's "channels" panel)."""
    consents, threads = _consents(session, customer_id), _threads(session, customer_id)
    candidates = _unnamed_candidates(settings, last_used_channel(session, customer_id))
    reaching, reasons = _reach(session, settings, customer_id, candidates, purpose, consents, threads, named=False, first=False)
    return {name: None if any(r.channel == name for r in reaching) else reasons.get(name) for name in candidates}


def _pick(session: Session, settings: Settings, customer_id: int, reaching: list[Route], last: str | None, seed: str | None) -> Route:
    """The best of the routes that reach the person when no channel was named: a service
    message goes where they last wrote (`last`: they are in a conversation there); otherwise the
    ranker decides, else the order of the candidates (the last used, then the settings')."""
    among = [route.channel for route in reaching]
    by_channel = {route.channel: route for route in reaching}
    if last in by_channel:
        chosen, by = by_channel[last], "last_used"
    elif _rankers:
        loaded = service.prefetched(session, "ranker", customer_id)
        ranked = _rankers[0].rank(session, settings, customer_id, among, loaded=loaded, seed=seed)
        chosen, by = by_channel[next(c for c in ranked if c in by_channel)], "ranked"
    else:
        chosen, by = reaching[0], "order"
    return replace(chosen, choice={"by": by, "among": among})


@dataclass
class Outgoing:
    """One message of `send_many` (the arguments of `send`)."""

    customer_id: int
    text: str
    channel: str | None = None
    purpose: str = "service"
    source: str | None = None
    idempotency_key: str | None = None
    to: str | None = None
    html: str | None = None
    extra: dict[str, Any] | None = None


def send(session: Session, *, settings: Settings, customer_id: int, text: str, channel: str | None = None,
         purpose: str = "service", source: str | None = None, idempotency_key: str | None = None,
         to: str | None = None, html: str | None = None, extra: dict[str, Any] | None = None,
         push: dict[str, Any] | None = None) -> tuple[InboxMessage, bool]:
    """Queue a message to a customer on the best channel (or to `to`, see `choose`); (the
    message, whether new). `html`: its HTML version (email); `extra`: more for the channel,
    kept in the message's meta: `subject` (an email's own subject, not a reply's), `marketing`
    (the marketing message it is: email adds List-Unsubscribe); `push`: what a push
    notification shows beyond the text (`title`, `url`, `icon`, `tag`, `urgency`;
    `schemas.PushOptions`), kept in `meta.push` and given to the adapter as `OutboundMessage.data`."""
    if push:
        extra = {**(extra or {}), "push": push}
    key = service.scoped_key("outbound", idempotency_key) if idempotency_key else None
    earlier = service.replayed(session, key, text=text)
    if earlier is not None:
        return earlier, False
    profile = customers_service.get_profile(session, customer_id)
    route = choose(session, settings=settings, customer_id=customer_id, channel=channel, purpose=purpose, to=to, seed=idempotency_key)
    message = _write(session, settings, Outgoing(profile.id, text, channel, purpose, source, idempotency_key, to, html, extra), route, key)
    session.flush()
    service.queue_send(session, message, priority=_priority(purpose))
    service.publish_message(session, session.get(InboxConversation, message.conversation_id), message)
    return message, True


def _priority(purpose: str) -> Priority:
    return Priority.bulk if purpose == "marketing" else Priority.high


def _values(conversation: InboxConversation, item: Outgoing, route: Route, key: str | None, now: datetime) -> dict[str, Any]:
    """The outbound message's columns."""
    realtime = ADAPTERS[route.channel].realtime
    return dict(
        conversation_id=conversation.id, direction="out", kind="message", channel=route.channel, text=item.text, html=item.html,
        delivery_status="sent" if realtime else "queued", next_attempt_at=None if realtime else now,
        meta={**(item.extra or {}), "address": route.address, "purpose": item.purpose, **({"source": item.source} if item.source else {}),
              **({"choice": route.choice} if route.choice else {})},
        idempotency_key=key, created_at=now,
    )


def _write(session: Session, settings: Settings, item: Outgoing, route: Route, key: str | None) -> InboxMessage:
    """The message in the person's history conversation (not flushed)."""
    conversation = service.history_conversation(session, settings, item.customer_id, channel=route.channel, thread=route.thread)
    now = utcnow()
    message = InboxMessage(**_values(conversation, item, route, key, now))
    session.add(message)
    conversation.last_message_at = now
    return message


def send_many(session: Session, *, settings: Settings, items: list[Outgoing]) -> list[tuple[InboxMessage, bool] | AppError]:
    """`send` for many messages at once (a campaign, a journey's step for many people), each
    with the same rules; for each item (the message, whether new) or the error `send` would have
    raised (that item only). What routing needs to know about the people (their profiles,
    identifiers, consents, threads, last channel) is read for all of them in a few queries, the
    messages are written in one flush and their jobs queued in one statement per channel."""
    results: list[tuple[InboxMessage, bool] | AppError | None] = [None] * len(items)
    keys = {i: service.scoped_key("outbound", item.idempotency_key) for i, item in enumerate(items) if item.idempotency_key}
    sent_before = {m.idempotency_key: m for m in session.scalars(
        select(InboxMessage).where(InboxMessage.idempotency_key.in_(list(keys.values()))))} if keys else {}
    for i, key in keys.items():
        earlier = sent_before.get(key)
        if earlier is not None:  # as `service.replayed` decides it
            results[i] = (earlier, False) if earlier.text == items[i].text else Unprocessable(
                "This Idempotency-Key was used for a different message", code="idempotency_key_reused",
                details={"message_id": earlier.id})
    pending = [i for i, result in enumerate(results) if result is None]
    live = resolution.canonical_profiles(session, {items[i].customer_id for i in pending})
    routed: list[tuple[int, Outgoing, Route]] = []
    written: list[tuple[int, InboxMessage, str, InboxConversation]] = []
    people = sorted({p.id for p in live.values() if p.status == "active"})
    choosing = any(items[i].channel is None and items[i].to is None for i in pending)  # the ranker is asked
    with _prefetch(session, people, settings=settings, rank=choosing):
        for i in pending:
            item = items[i]
            profile = live.get(item.customer_id)
            try:
                if profile is None:
                    raise NotFound(f"Customer {item.customer_id} not found", code="customer_not_found")
                if profile.status == "erased":
                    raise Gone(f"Customer {item.customer_id} was erased", code="customer_erased", details={"customer_id": item.customer_id})
                route = choose(session, settings=settings, customer_id=profile.id, channel=item.channel, purpose=item.purpose, to=item.to,
                               seed=item.idempotency_key)
            except AppError as exc:
                results[i] = exc
                continue
            routed.append((i, replace(item, customer_id=profile.id), route))
        # one conversation per person: the first message's channel decides it, as sending one by one would
        wanted: dict[int, tuple[str, dict[str, Any]]] = {}
        for _i, item, route in routed:
            wanted.setdefault(item.customer_id, (route.channel, route.thread))
        now = utcnow()
        conversations = service.history_conversations(session, settings, wanted, session.info["inbox_prefetch"]["person_ids"], now=now)
        rows = [_values(conversations[item.customer_id], item, route, keys.get(i), now) for i, item, route in routed]
        messages = _insert_messages(session, rows)
        for (i, item, _route), message in zip(routed, messages, strict=True):
            conversation = conversations[item.customer_id]
            if conversation.last_message_at != now:
                conversation.last_message_at = now
            written.append((i, message, item.purpose, conversation))
    by_queue: dict[tuple[str, Priority], list[int]] = {}
    for i, message, purpose, conversation in written:
        if message.delivery_status == "queued":
            by_queue.setdefault((message.channel, _priority(purpose)), []).append(message.id)
        service.publish_message(session, conversation, message, without_files=True)
        results[i] = (message, True)
    for (channel, priority), ids in by_queue.items():
        enqueue_many(session, service.SEND, [{"message_id": message_id} for message_id in ids], priority=priority,
                     queue=service.send_queue(channel))
    return results


def _insert_messages(session: Session, rows: list[dict[str, Any]]) -> list[InboxMessage]:
    """The messages in one INSERT ... RETURNING, in the order of `rows`: matched by their keys
    when every row has one (PostgreSQL then needs no ordering column), else returned in order."""
    if not rows:
        return []
    if all(row["idempotency_key"] for row in rows):
        by_key = {m.idempotency_key: m for m in session.scalars(insert(InboxMessage).returning(InboxMessage), rows)}
        return [by_key[row["idempotency_key"]] for row in rows]
    return list(session.scalars(insert(InboxMessage).returning(InboxMessage, sort_by_parameter_order=True), rows))


@contextmanager
def _prefetch(session: Session, customer_ids: list[int], *, settings: Settings, rank: bool = True) -> Iterator[None]:
    """Load what routing asks per person (`service.prefetched`) for all of these live profiles."""
    families = customers_service.merged_profile_ids_many(session, customer_ids) if customer_ids else {}
    owner = {member: person for person, members in families.items() for member in members}
    identity_owner: dict[int, int] = {}
    verified: dict[int, dict[str, list[str]]] = {p: {} for p in families}
    for profile_id, identity_id, kind, value, verified_at in session.execute(
            select(CustomerIdentity.profile_id, CustomerIdentity.id, CustomerIdentity.type, CustomerIdentity.value,
                   CustomerIdentity.verified_at).where(CustomerIdentity.profile_id.in_(list(owner))).order_by(CustomerIdentity.id)):
        identity_owner[identity_id] = owner[profile_id]
        if verified_at is not None:
            verified[owner[profile_id]].setdefault(kind, []).append(value)
    consents: dict[int, dict[tuple[str, str], bool]] = {p: {} for p in families}
    for identity_id, channel, purpose, granted in session.execute(
            select(CustomerConsent.identity_id, CustomerConsent.channel, CustomerConsent.purpose, CustomerConsent.granted)
            .where(CustomerConsent.identity_id.in_(list(identity_owner))).order_by(CustomerConsent.recorded_at, CustomerConsent.id)):
        consents[identity_owner[identity_id]][(channel, purpose)] = granted
    threads: dict[int, dict[str, dict[str, Any]]] = {p: {} for p in families}
    for customer_id, state in session.execute(
            select(InboxConversation.customer_id, InboxConversation.channel_state).where(InboxConversation.customer_id.in_(list(owner)))
            .order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc())):
        for channel, thread in (state or {}).items():
            threads[owner[customer_id]].setdefault(channel, dict(thread or {}))
    last_channel: dict[int, str] = {p: "" for p in families}
    latest = (select(InboxConversation.customer_id, func.max(InboxMessage.id).label("id"))
              .join(InboxMessage, InboxMessage.conversation_id == InboxConversation.id)
              .where(InboxConversation.customer_id.in_(list(owner)), InboxMessage.direction == "in")
              .group_by(InboxConversation.customer_id).subquery())
    newest: dict[int, tuple[int, str]] = {}
    for customer_id, message_id, channel in session.execute(
            select(latest.c.customer_id, latest.c.id, InboxMessage.channel).join(InboxMessage, InboxMessage.id == latest.c.id)):
        person = owner[customer_id]
        if person not in newest or message_id > newest[person][0]:
            newest[person] = (message_id, channel)
    last_channel.update({person: channel for person, (_, channel) in newest.items()})
    addresses = [value for kinds in verified.values() for values in kinds.values() for value in values]
    addresses += [thread["address"] for by_channel in threads.values() for thread in by_channel.values()
                  if isinstance(thread.get("address"), str)]
    session.info["inbox_prefetch"] = {"person_ids": families, "verified": verified, "consents": consents, "threads": threads,
                                      "last_channel": last_channel, "suppressed": suppression.suppressed_many(session, addresses)}
    if rank and _rankers and families:
        loaded = _rankers[0].load(session, settings, families)
        session.info["inbox_prefetch"]["ranker"] = {person: loaded for person in families}
    try:
        yield
    finally:
        session.info.pop("inbox_prefetch", None)


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
