"""Moving messages in and out through the channel adapters.

Inbound from a provider's webhook (`accept`): verify the provider, store every raw part of the
request under its unique (channel, provider id), in its sender's lane, with its lane's
`inbox.inbound` job in one transaction (a repeat stops there), and answer: the provider is
acknowledged as soon as what it sent is durable. The job (`process_inbound`) then turns a
lane's stored parts into messages in batches, by one worker of the whole cluster at a time
per lane, and in the order they were stored: for each part, find or create the person from the
sender's identifiers and put the message in their conversation. Parts that continue a
conversation an agent has, from a known sender, are processed together with set-based
statements (`_split`); the rest one by one.
A part that fails to process stays stored as `failed` with the error (its savepoint is rolled
back, the rest of the batch goes on), is logged, shown by `GET /v1/inbox/inbound?status=failed`,
and retried by the inbox job: nothing is lost. The web chat, whose sender waits for their own
message back, stores and processes in one transaction (`store_and_process`).

Outbound (`send_message`): a reply on a channel without a live connection is queued with its
job (`service.SEND`, in the channel's queue `outbound.<channel>`) in the transaction that
writes it, and a worker of the job queue sends it after the commit: one job per message,
agents' replies before campaigns (priorities), claimed only as fast as the channel's rate limit
lets them go (`throttle`). A temporary failure is retried with exponential backoff and
pauses the channel; a permanent one (or the last attempt) marks the message failed (the
dead-letter list) and tells the agent. A message recorded as sent is never sent again (a
repeated job finds it sent); a worker killed between the provider's answer and that record
sends it once more, the one window no provider's API lets us close.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import AppError, describe_error
from seamline.core.queue import Defer, JobContext, Priority, Retry, Task, TaskRegistry, run_due
from seamline.core.queue import service as queue_service
from seamline.core.schemas import strip_nul
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import CustomerIdentity
from seamline.customers.schemas import CustomerUpsert, IdentifierIn
from seamline.inbox import realtime, service, suppression, throttle
from seamline.inbox.adapters import (
    ADAPTERS,
    ChannelAdapter,
    InboundMessage,
    NewAttachment,
    OutboundMessage,
    SendError,
    SendResult,
    adapter_for,
)
from seamline.inbox.models import (
    InboxAttachment,
    InboxConversation,
    InboxInbound,
    InboxMessage,
)

log = structlog.get_logger("seamline.inbox.delivery")


#: Turning stored provider messages into conversation messages (`process_inbound`), one job
#: per lane. A stored part waits in its sender's lane (`lane_of`); a lane is processed by one
#: worker of the whole cluster at a time (`_lane_turn`), in the order its parts were stored, so
#: each person's messages keep their order, while lanes run side by side on every worker. Every webhook request that
#: stored something enqueues its lanes' jobs, coalesced: one queued job stands for all the
#: requests until it starts (then the next request queues the next one), so a burst of webhooks
#: costs a few jobs, not one each.
INBOUND = Task("inbox.inbound", queue="inbound", priority=Priority.high, max_attempts=1000)
#: The PostgreSQL advisory lock (class, lane) held by the worker processing a lane (`_lane_turn`;
#: on SQLite the single writer is the turn).
_PROCESSING_LOCK = 0x5EA7_1B0C


def _queue_lane(session: Session, lane: int) -> None:
    """Make sure `lane` has a queued job (coalesced: a queued one already stands for this)."""
    INBOUND.enqueue(session, {"lane": lane}, dedupe_key=f"inbox.inbound:{lane}", coalesce=True)


def lane_of(adapter: ChannelAdapter, raw: bytes, lanes: int) -> int:
    """The lane of a part's sender: the same person on a channel always gets the same one. A
    part that cannot be read goes to lane 0 (it fails there and is set aside, as anywhere)."""
    if lanes <= 1:
        return 0
    try:
        inbound = adapter.parse(raw)
    except Exception:  # noqa: BLE001 - processing reports it
        return 0
    # What the provider vouches for is the same in every message of a person (a shared contact
    # card adds a claimed phone to one of them)
    vouched = set(inbound.identifiers) - set(inbound.claimed)
    sender = min(vouched or inbound.identifiers or [(str(inbound.customer_id), "")])
    return zlib.crc32(f"{adapter.name}\x1f{sender[0]}\x1f{sender[1]}".encode()) % lanes


@dataclass
class Accepted:
    inbound_id: int | None
    provider_message_id: str
    duplicate: bool
    message_id: int | None = None
    error: str | None = None
    view: Any = None
    #: The stored part's state: received (waiting for its batch), processed or failed
    status: str = "received"


def store_raw(session: Session, *, channel: str, provider_message_id: str, raw: bytes, lane: int = 0) -> int | None:
    """The stored row's id, or None when this (channel, provider id) was stored before."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return session.scalar(
        insert(InboxInbound).values(channel=channel, provider_message_id=provider_message_id[:255], payload=raw,
                                    status="received", attempts=0, received_at=utcnow(), lane=lane)
        .on_conflict_do_nothing(index_elements=["channel", "provider_message_id"]).returning(InboxInbound.id)
    )


def accept(database: Database, *, settings: Settings, adapter: ChannelAdapter, headers: dict[str, str],
           body: bytes) -> list[Accepted]:
    """Verify the provider and store the request's message parts with the job that processes
    them, in one transaction: what is acknowledged is durable and will be processed."""
    adapter.verify(headers, body, settings=settings)
    parts = adapter.split(body)
    if not parts:
        return []

    lanes = [lane_of(adapter, raw, settings.inbox_inbound_lanes) for _, raw in parts]

    def work(session: Session) -> list[Accepted]:
        accepted, waiting = [], set()
        for (provider_id, raw), lane in zip(parts, lanes, strict=True):
            inbound_id = store_raw(session, channel=adapter.name, provider_message_id=provider_id, raw=raw, lane=lane)
            if inbound_id is None:
                accepted.append(_duplicate(session, adapter.name, provider_id))
            else:
                accepted.append(Accepted(inbound_id, provider_id, duplicate=False))
                waiting.add(lane)
        for lane in sorted(waiting):
            _queue_lane(session, lane)
        return accepted

    return database.run_write(work)


def accept_and_process(database: Database, *, rules: IdentifierRules, settings: Settings, adapter: ChannelAdapter,
                       headers: dict[str, str], body: bytes) -> list[Accepted]:
    """As `accept`, but each part is also processed before the answer, which says whether it
    became a message (the email endpoint: a mail relay posts one message at a time and is told
    at once when it is malformed)."""
    adapter.verify(headers, body, settings=settings)
    return [store_and_process(database, rules=rules, settings=settings, channel=adapter.name, provider_message_id=provider_id,
                              raw=raw) for provider_id, raw in adapter.split(body)]


@contextmanager
def _lane_turn(database: Database, lane: int) -> Iterator[None]:
    """Wait until no other worker of the cluster is processing `lane`, and hold it for the block
    (PostgreSQL: a session-level advisory lock on a connection of its own, so the batch and its
    rest can be several transactions and a killed worker's lock goes with its connection; on
    SQLite each batch is one write transaction, which already excludes every other writer)."""
    if database.is_sqlite:
        yield
        return
    key = {"kind": _PROCESSING_LOCK, "lane": lane}
    with database.write_engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:kind, :lane)"), key)
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:kind, :lane)"), key)
            connection.commit()


def _split(session: Session, rules: IdentifierRules, parts: list[tuple[InboxInbound, InboundMessage | None]],
           ) -> tuple[list[tuple[InboxInbound, InboundMessage, InboxConversation]], list[InboxInbound]]:
    """Split a batch into the messages that continue an open conversation an agent has, from a
    sender whose identifiers are all on one person (most of what providers send: processed
    together, `service.receive_continuing`), and the rest, each processed on its own
    (`_process_row`: a new person or conversation, routing, a reopening, files). Each sender's
    order holds: once a sender has a part among the rest, their later parts go there too."""
    eligible = [inbound is not None and inbound.customer_id is None and inbound.continue_within is None
                and not (inbound.attachments or inbound.attachment_ids or inbound.thread_refs) for _, inbound in parts]
    senders = known_senders(session, rules, [inbound.identifiers if ok else [] for (_, inbound), ok in zip(parts, eligible)])
    latest = service.latest_conversations(
        session, customers_service.merged_profile_ids_many(session, {p for p in senders if p is not None}))
    continuing, rest, held = [], [], set()
    for (row, inbound), person in zip(parts, senders):
        who = {("person", person), *(inbound.identifiers if inbound else ())}
        conversation = latest.get(person)
        if (person is None or who & held or conversation is None or conversation.status != "open"
                or conversation.assignee_id is None):
            rest.append(row)
            held |= who
        else:
            continuing.append((row, inbound, conversation))
    return continuing, rest


def _parsed(row: InboxInbound) -> InboundMessage | None:
    """The normalized message of a stored part, or None when it cannot be read (processing it
    on its own then records why)."""
    try:
        # What providers send may carry NULs (C strings, UTF-16 read as 8-bit); PostgreSQL text
        # cannot hold them, so they are dropped here, for every channel, and the message is kept.
        return strip_nul(adapter_for(row.channel).parse(row.payload))
    except Exception:  # noqa: BLE001 - `_process_row` raises it again where it is recorded
        return None


def _process_batch(session: Session, rules: IdentifierRules, settings: Settings, lane: int, limit: int, *,
                   rest_later: bool) -> tuple[int, list[int]]:
    """Process up to `limit` stored parts of `lane`, oldest first: those continuing an assigned
    conversation together, in one savepoint (if it fails, they join the rest), then the rest,
    each in a savepoint of its own, or, with `rest_later`, left for the caller to process one
    transaction each. (How many parts were taken, the ids left to the caller.)"""
    waiting = InboxInbound.status == literal("received", literal_execute=True)  # the partial index's own predicate
    rows = list(session.scalars(select(InboxInbound).where(waiting, InboxInbound.lane == lane).order_by(InboxInbound.id)
                                .limit(limit).with_for_update(skip_locked=True)))
    parts = [(row, _parsed(row)) for row in rows]
    continuing, rest = _split(session, rules, parts)
    if continuing:
        mark = realtime.mark(session)
        try:
            with session.begin_nested():
                messages = service.receive_continuing(session, [(inbound, conversation) for _, inbound, conversation in continuing])
                for (row, inbound, _), message in zip(continuing, messages, strict=True):
                    _processed(row, message.id)
                    _works_again(session, inbound)
                session.flush()
        except Exception as exc:  # noqa: BLE001 - each then goes on its own, where a failure is kept on its row
            realtime.discard_since(session, mark)
            log.warning("a batch of continuing messages failed; processing them one by one", error=describe_error(exc)[:500])
            rest = sorted([*rest, *(row for row, _, _ in continuing)], key=lambda row: row.id)
    if rest_later:
        return len(rows), [row.id for row in rest]
    parsed = dict(parts)
    for row in rest:
        mark = realtime.mark(session)
        try:
            with session.begin_nested():
                _process_row(session, row, rules, settings, parsed.get(row))
        except Exception as exc:  # noqa: BLE001 - kept on the row, visible and retried
            realtime.discard_since(session, mark)
            row.status, row.error, row.attempts = "failed", _describe(exc, inbound_id=row.id)[:2000], row.attempts + 1
        session.flush()
    return len(rows), []


def process_inbound(database: Database, *, rules: IdentifierRules, settings: Settings, lane: int = 0,
                    batch: int | None = None, budget_seconds: float = 5.0) -> int:
    """Process what webhooks stored in `lane`, batch after batch, until nothing is left or
    `budget_seconds` have passed (then another job carries on): how many parts were taken.
    On PostgreSQL the parts that are not simple continuations go one transaction each after
    their batch: routing locks the chosen agent's load row, and a transaction routing several
    conversations would deadlock with other lanes doing the same."""
    batch = batch or settings.inbox_inbound_batch
    one_by_one = not database.is_sqlite
    started, done = time.monotonic(), 0
    with _lane_turn(database, lane):
        while True:
            taken, rest = database.run_write(
                lambda session: _process_batch(session, rules, settings, lane, batch, rest_later=one_by_one))
            for inbound_id in rest:
                process(database, rules=rules, settings=settings, inbound_id=inbound_id)
            done += taken
            if taken < batch:
                return done
            if time.monotonic() - started > budget_seconds:
                database.run_write(lambda session: _queue_lane(session, lane))
                return done


def _inbound_job(database: Database, rules: IdentifierRules, settings: Settings, context: JobContext, lane: int) -> None:
    database.run_write(lambda session: queue_service.release_key(session, context.job_id))  # later webhooks queue the next job
    process_inbound(database, rules=rules, settings=settings, lane=lane)


def process_inbound_due(database: Database, *, rules: IdentifierRules, settings: Settings) -> int:
    """Every stored part waiting for its batch, in every lane, processed here and now (tests and
    cron; the workers do it otherwise): how many were taken."""
    with database.read() as session:
        lanes = sorted(session.scalars(select(InboxInbound.lane).where(InboxInbound.status == "received").distinct()))
    return sum(process_inbound(database, rules=rules, settings=settings, lane=lane, budget_seconds=float("inf"))
               for lane in lanes)


def store_and_process(database: Database, *, rules: IdentifierRules, settings: Settings, channel: str,
                      provider_message_id: str, raw: bytes | Callable[[Session], bytes],
                      view: Callable[[Session, int], Any] | None = None) -> Accepted:
    """Store a raw part and turn it into a message in one transaction (the usual case: one
    commit). If processing fails, that transaction is rolled back and the raw part is stored
    on its own, marked failed with the error, for the inbox job to retry: nothing is lost.

    `raw` may be built inside the transaction (from what it reads); `view(session, message id)`
    renders the stored message there too, so the caller needs no second read."""

    def work(session: Session) -> Accepted:
        payload = raw(session) if callable(raw) else raw
        inbound_id = store_raw(session, channel=channel, provider_message_id=provider_message_id, raw=payload)
        if inbound_id is None:
            found = _duplicate(session, channel, provider_message_id)
        else:
            row = session.get(InboxInbound, inbound_id)
            found = Accepted(inbound_id, provider_message_id, duplicate=False, message_id=_process_row(session, row, rules, settings),
                             status="processed")
        if view is not None and found.message_id is not None:
            found.view = view(session, found.message_id)
        return found

    try:
        return database.run_write(work)
    except Exception as exc:  # noqa: BLE001 - kept, visible and retried
        error = _describe(exc, provider_message_id=provider_message_id)
        with database.write() as session:
            payload = raw(session) if callable(raw) else raw
            inbound_id = store_raw(session, channel=channel, provider_message_id=provider_message_id, raw=payload)
            if inbound_id is None:
                return _duplicate(session, channel, provider_message_id)
            session.execute(update(InboxInbound).where(InboxInbound.id == inbound_id).values(
                status="failed", error=error[:2000], attempts=1))
        return Accepted(inbound_id, provider_message_id, duplicate=False, error=error, status="failed")


def _duplicate(session: Session, channel: str, provider_message_id: str) -> Accepted:
    row = session.scalar(select(InboxInbound).where(InboxInbound.channel == channel,
                                                    InboxInbound.provider_message_id == provider_message_id[:255]))
    return Accepted(row.id if row else None, provider_message_id, duplicate=True, message_id=row.message_id if row else None,
                    error=row.error if row else None, status=row.status if row else "received")


def _describe(exc: Exception, **context: Any) -> str:
    """What is kept on the row (no SQL statement: `describe_error`); the log gets the traceback."""
    error = describe_error(exc)
    log.warning("inbound message failed to process", error=error[:500], exc_info=not isinstance(exc, AppError), **context)
    return error


def known_senders(session: Session, rules: IdentifierRules, senders: list[list[tuple[str, str]]]) -> list[int | None]:
    """For each sender's identifiers, the active profile already holding every one of them, or
    None (something is new, blocked or belongs elsewhere: identity resolution must decide).
    One query for the identifiers of all the senders and one per step of their merge chains."""
    wanted: list[set[tuple[str, str]] | None] = []
    for identifiers in senders:
        pairs: set[tuple[str, str]] | None = set()
        for pair in identifiers:
            try:
                known = rules.normalize(*pair)
            except AppError:
                pairs = None
                break
            if rules.is_blocked(known):
                pairs = None
                break
            pairs.add((known.type, known.value))
        wanted.append(pairs or None)
    every = sorted({pair for pairs in wanted if pairs for pair in pairs})
    owner: dict[tuple[str, str], int] = {}
    for start in range(0, len(every), 200):
        owner.update({(t, v): profile_id for t, v, profile_id in session.execute(
            select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.profile_id).where(
                or_(*(and_(CustomerIdentity.type == t, CustomerIdentity.value == v) for t, v in every[start:start + 200]))))})
    canonical = resolution.canonical_profiles(session, set(owner.values()))
    found: list[int | None] = []
    for pairs in wanted:
        if pairs is None or not all(pair in owner for pair in pairs):
            found.append(None)
            continue
        profiles = {canonical.get(owner[pair]) for pair in pairs}
        profile = profiles.pop() if len(profiles) == 1 else None
        found.append(profile.id if profile is not None and profile.status == "active" else None)
    return found


def resolve_sender(session: Session, *, rules: IdentifierRules, identifiers: list[tuple[str, str]], name: str | None,
                   source: str, claimed: list[tuple[str, str]] = ()) -> int:
    """The profile of a message's sender. Identifiers all already on one person (a returning
    customer's email, a WhatsApp number that is also their phone) are a lookup; anything else
    goes through identity resolution, where `claimed` ones (the provider does not vouch for
    them) join nobody who exists."""
    if identifiers:
        known = known_senders(session, rules, [identifiers])[0]
        if known is not None:
            return known
    outcome = customers_service.upsert_customer(session, rules=rules, data=CustomerUpsert(
        identifiers=[IdentifierIn(type=t, value=v) for t, v in identifiers], source=source),
        claimed=customers_service.claims(rules, list(claimed)))
    profile_id = outcome.resolution.profile_id
    if name and outcome.resolution.speaks_for_primary and service.customer_name(session, profile_id)["name"] is None:
        customers_service.set_traits(session, identity_id=outcome.resolution.primary_identity_id, traits={"name": name},
                                     source=source, observed_at=utcnow(), verified=not claimed)
    return profile_id


def _process_row(session: Session, row: InboxInbound, rules: IdentifierRules, settings: Settings,
                 inbound: InboundMessage | None = None) -> int:
    """Turn one stored part into a message (`inbound`: the part already parsed by `_parsed`)."""
    inbound = inbound or strip_nul(adapter_for(row.channel).parse(row.payload))  # see `_parsed` on NULs
    customer_id = inbound.customer_id
    if customer_id is None:
        customer_id = resolve_sender(session, rules=rules, identifiers=inbound.identifiers, name=inbound.sender_name,
                                     source=row.channel, claimed=inbound.claimed)
    message = service.receive(session, settings=settings, inbound=inbound, customer_id=customer_id)
    _processed(row, message.id)
    _works_again(session, inbound)
    return message.id


def _works_again(session: Session, inbound: InboundMessage) -> None:
    """A person writing from an address that bounced shows it works again: its suppression is lifted."""
    address = (inbound.meta.get("thread") or {}).get("address") if isinstance(inbound.meta, dict) else None
    if isinstance(address, str) and address:
        suppression.lift(session, channel=inbound.channel, address=address)


def _processed(row: InboxInbound, message_id: int) -> None:
    row.status, row.message_id, row.processed_at, row.error = "processed", message_id, utcnow(), None
    row.attempts += 1


def process(database: Database, *, rules: IdentifierRules, settings: Settings, inbound_id: int) -> tuple[int | None, str | None]:
    """Process a stored part again (a retry); (message id, None) or (None, the error kept on the row)."""

    def work(session: Session) -> int | None:
        row = session.get(InboxInbound, inbound_id, with_for_update=True)
        if row is None or row.status == "processed":
            return row.message_id if row else None
        return _process_row(session, row, rules, settings)

    try:
        return database.run_write(work), None
    except Exception as exc:  # noqa: BLE001 - kept on the row, visible and retried
        error = _describe(exc, inbound_id=inbound_id)
        with database.write() as session:
            session.execute(update(InboxInbound).where(InboxInbound.id == inbound_id).values(
                status="failed", error=error[:2000], attempts=InboxInbound.attempts + 1))
        return None, error


def retry_inbound(database: Database, *, rules: IdentifierRules, settings: Settings, limit: int = 100,
                  stale_seconds: float = 30) -> int:
    """Process again what failed; and make sure what is still waiting `stale_seconds` after it
    was stored has its lane's job (a crash between storing and processing, a lane beyond a
    lowered `inbox_inbound_lanes`): the lane processes it, so a person's messages keep their
    order even when the lanes are behind. How many parts were retried or handed to their lane."""
    stale = utcnow() - timedelta(seconds=stale_seconds)
    with database.read() as session:
        failed = list(session.scalars(select(InboxInbound.id).where(
            InboxInbound.status == "failed", InboxInbound.received_at <= stale,
            InboxInbound.attempts < settings.delivery_max_attempts).order_by(InboxInbound.id).limit(limit)))
        waiting = session.execute(select(InboxInbound.lane, func.count()).where(
            InboxInbound.status == "received", InboxInbound.received_at <= stale).group_by(InboxInbound.lane)).all()
    if waiting:
        database.run_write(lambda session: [_queue_lane(session, lane) for lane, _ in sorted(waiting)])
    for inbound_id in failed:
        process(database, rules=rules, settings=settings, inbound_id=inbound_id)
    return len(failed) + sum(count for _, count in waiting)


def _outbound(session: Session, message: InboxMessage) -> OutboundMessage:
    conversation = session.get(InboxConversation, message.conversation_id)
    files = session.scalars(select(InboxAttachment).where(InboxAttachment.message_id == message.id).order_by(InboxAttachment.id))
    meta = message.meta or {}
    return OutboundMessage(
        message_id=message.id, conversation_id=conversation.id, address=meta.get("address") or {},
        text=message.text, html=message.html, subject=meta.get("subject") or conversation.subject,
        attachments=[NewAttachment(f.filename, f.content_type, f.data) for f in files],
        thread=dict((conversation.channel_state or {}).get(message.channel) or {}),
        marketing=meta["marketing"] if isinstance(meta.get("marketing"), dict) else None,
        data=dict(meta.get("push") or {}),
    )


@dataclass
class _Claim:
    message_id: int
    channel: str
    attempts: int
    outbound: OutboundMessage
    #: The channel's outage failures in a row when claimed (a success then clears the pause)
    channel_failures: int


def _start(session: Session, settings: Settings, message_id: int) -> _Claim | Defer | None:
    """What to send now; or `Defer` to the end of the channel's pause (it began after this job
    was claimed); or None: the message was sent, failed or removed meanwhile."""
    message = session.get(InboxMessage, message_id, with_for_update=True)
    if message is None or message.direction != "out" or message.delivery_status != "queued":
        return None
    now = utcnow()
    channel = throttle.health(session, message.channel, settings=settings, now=now)
    if channel.paused_until is not None:
        message.next_attempt_at = channel.paused_until
        return Defer(channel.paused_until - now)
    outbound = adapter_for(message.channel).prepare(session, _outbound(session, message))
    return _Claim(message.id, message.channel, message.attempts, outbound, channel.failures)


def send_message(database: Database, settings: Settings, args: dict[str, Any]) -> None:
    """The `inbox.send` job: one attempt at one message, outside any transaction, recorded on
    the message; `Retry` at the message's backoff after a temporary failure."""
    step = database.run_write(lambda session: _start(session, settings, args["message_id"]))
    if step is None:
        return
    if isinstance(step, Defer):
        raise step
    try:
        result = adapter_for(step.channel).send(step.outbound, settings=settings)
    except SendError as exc:
        error, temporary, retry_after, learned = str(exc), exc.temporary, exc.retry_after, exc.meta
    except Exception as exc:  # noqa: BLE001 - an adapter bug is recorded on the message like any failure
        log.exception("adapter send crashed", message_id=step.message_id)
        error, temporary, retry_after, learned = describe_error(exc), True, None, {}
    else:
        _sent(database, step, result)
        return
    delay = database.run_write(lambda session: _failed(session, settings, step, error, temporary=temporary,
                                                       retry_after=retry_after, learned=learned))
    if delay is not None:
        raise Retry(delay, error)


def register_tasks(tasks: TaskRegistry, database: Database, settings: Settings, rules: IdentifierRules) -> None:
    """Bind inbound processing, and the send task to a queue per sending channel without a live
    connection, each limited to its channel's rate (call after the adapters are registered)."""
    tasks.add(INBOUND, lambda context, args: _inbound_job(database, rules, settings, context, int(args.get("lane", 0))))
    _register_sends(tasks, database, settings)


def _register_sends(tasks: TaskRegistry, database: Database, settings: Settings) -> None:
    queues = {service.send_queue(name): throttle.ChannelLimiter(name, settings)
              for name, adapter in sorted(ADAPTERS.items()) if adapter.sends and not adapter.realtime}
    tasks.add(service.SEND, lambda _context, args: send_message(database, settings, args), queues=queues)


def send_due(database: Database, *, settings: Settings, limit: int = 100) -> int:
    """One pass over the due sends of every channel, here and now (tests and cron; the workers
    do it otherwise), each within its rate limit: how many messages were tried (one that found
    its channel paused was not)."""
    tasks = TaskRegistry()
    _register_sends(tasks, database, settings)
    return sum(run_due(database, tasks, queue, limit=limit, task=service.SEND.name) for queue in tasks.queues)


def _sent(database: Database, claim: _Claim, result: SendResult) -> None:
    with database.write() as session:
        message = session.get(InboxMessage, claim.message_id, with_for_update=True)
        message.delivery_status, message.provider_message_id = result.status, result.provider_message_id
        message.attempts, message.error, message.next_attempt_at = claim.attempts + 1, None, None
        message.meta = {**(message.meta or {}), **result.meta}
        adapter_for(claim.channel).settle(session, claim.outbound, result.meta)
        conversation = session.get(InboxConversation, message.conversation_id, with_for_update=True)
        thread = dict((conversation.channel_state or {}).get(claim.channel) or {})
        if result.provider_message_id:
            thread["provider_ids"] = [*thread.get("provider_ids", []), result.provider_message_id][-service.THREAD_IDS_KEPT:]
        conversation.channel_state = {**(conversation.channel_state or {}), claim.channel: thread}
        if claim.channel_failures:
            throttle.recovered(session, claim.channel)
        _status_notice(session, conversation, message)


def _status_notice(session: Session, conversation: InboxConversation, message: InboxMessage) -> None:
    realtime.notify(session, [f"conversation:{conversation.id}"] + ([f"agent:{conversation.assignee_id}"] if conversation.assignee_id else []),
                    {"type": "delivery", "conversation_id": conversation.id, "message_id": message.id,
                     "delivery_status": message.delivery_status, "error": message.error})


def _failed(session: Session, settings: Settings, claim: _Claim, error: str, *, temporary: bool,
            retry_after: float | None = None, learned: dict[str, Any] | None = None) -> timedelta | None:
    """Record a failed attempt (and what it `learned`, e.g. push subscriptions gone); the delay
    before the next one, or None: the message failed."""
    message = session.get(InboxMessage, claim.message_id, with_for_update=True)
    message.attempts, message.error = claim.attempts + 1, error[:2000]
    if learned:
        message.meta = {**(message.meta or {}), **learned}
        adapter_for(claim.channel).settle(session, claim.outbound, learned)
    if temporary:
        until = throttle.outage(session, claim.channel, error=error, settings=settings, retry_after=retry_after)
        log.warning("channel paused after a temporary failure", channel=claim.channel, until=until.isoformat(), error=error[:300])
    if temporary and claim.attempts + 1 < settings.delivery_max_attempts:
        delay = min(settings.delivery_backoff_seconds * 2**claim.attempts, 3600.0) * random.uniform(0.5, 1.0)
        wait = timedelta(seconds=max(delay, retry_after or 0))
        message.next_attempt_at = utcnow() + wait
        return wait
    message.delivery_status, message.next_attempt_at = "failed", None
    conversation = session.get(InboxConversation, message.conversation_id)
    log.warning("outbound message failed", message_id=claim.message_id, error=error[:300])
    service.system_event(session, conversation, key="conversation.not_delivered",
                         params={"message_id": claim.message_id, "error": error[:300]},
                         data={"message_id": claim.message_id, "error": error[:500]})
    _status_notice(session, conversation, message)
    return None


def apply_statuses(database: Database, *, channel: str, statuses: list[Any]) -> int:
    """Delivery reports: a status only moves forward (sent < delivered < read), as reports
    arrive out of order and repeated; failed is kept whatever came before."""
    order = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
    changed = 0
    with database.write() as session:
        for status in statuses:
            message = session.scalar(select(InboxMessage).where(
                InboxMessage.channel == channel, InboxMessage.provider_message_id == status.provider_message_id).with_for_update())
            if message is None:
                continue
            if status.status == "failed" or order.get(status.status, -1) > order.get(message.delivery_status, 9):
                message.delivery_status, message.error = status.status, status.error or message.error
                _status_notice(session, session.get(InboxConversation, message.conversation_id), message)
                changed += 1
            for address in status.gone:  # a hard bounce: that address is never tried again (until lifted)
                suppression.suppress(session, channel=channel, address=address, reason=status.error or "bounced", message_id=message.id)
    return changed
