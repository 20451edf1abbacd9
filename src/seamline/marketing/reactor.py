"""Marketing's reaction to what happens in the other domains.

The operational domains tell their listeners, inside the transaction of the change, about new
events (`events.service.on_stored`), changed traits, consents, merges, unmerges and erasures
(`customers.changes.on_changed`), orders placed, handed over, cancelled or returned, and carts
changed (`commerce.events`). Marketing's listeners only queue a job (`marketing.react`) in that
transaction, so the change and the reaction commit together: none is lost when a process dies,
and none happens for a change that rolled back. The job, exactly once (an `in_transaction` task):

- finds the live profiles concerned (an event's user id or anonymous id through the identity
  graph; a record's profile id through merges);
- re-evaluates every segment for them (`segments.service.evaluate_people`);
- tells journeys what happened (`journeys.engine`): segment entries and exits, the events
  themselves (triggers, awaited events, goals), orders placed (goals); people moved are due
  now and the `marketing.advance` job is queued to run their steps.

A change touching more than `BULK` people (a customer import) queues one full refresh of every
segment instead. Listeners queue nothing while no segment is active (one indexed look at a small
table; a "yes" is remembered for a few seconds, which at worst queues a job that finds nothing).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import orjson

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from seamline.commerce import events as commerce_events
from seamline.core.config import Settings, get_settings
from seamline.core.db import Database
from seamline.core.queue import Periodic, Priority, Task, TaskRegistry
from seamline.core.queue.registry import Defer, JobContext
from seamline.core.time import utcnow
from seamline.customers import changes as customer_changes
from seamline.customers import resolution
from seamline.customers.models import CustomerIdentity
from seamline.customers.signing import valid_user_hash
from seamline.events.models import EventRecord, EventSource
from seamline.events import service as events_service
from seamline.marketing.campaigns import service as campaign_service
from seamline.marketing.journeys import engine
from seamline.marketing.journeys.models import MarketingJourney
from seamline.marketing.optichannel import service as optichannel
from seamline.marketing.segments import facts
from seamline.marketing.segments import service as segments
from seamline.marketing.segments.models import MarketingSegment

REACT = Task("marketing.react", queue="marketing", priority=Priority.high, in_transaction=True, max_attempts=5)
REFRESH = Task("marketing.refresh", queue="marketing", priority=Priority.normal)
ADVANCE = Task("marketing.advance", queue="marketing", priority=Priority.normal)
CAMPAIGNS = Task("marketing.campaigns", queue="marketing", priority=Priority.normal)
#: More people than this in one change: refresh every segment in full instead.
BULK = 2000
#: People per job (a bigger change is split).
CHUNK = 500
#: An event of a user id the identity graph does not hold yet waits for collection's identity
#: work (applied right after the events commit) this long at most.
IDENTITY_WAIT = timedelta(milliseconds=200)
IDENTITY_WAITS = 25


class _InUse:
    """Whether any segment or journey is active: a "yes" is trusted for `ttl` seconds, a "no"
    never (one created in another process counts at once)."""

    def __init__(self, ttl: float = 5.0):
        self.ttl, self.until = ttl, float("-inf")

    def __call__(self, session: Session) -> bool:
        now = time.monotonic()
        if now < self.until:
            return True
        if session.scalar(select(exists().where(MarketingSegment.status == "active"))) or session.scalar(
                select(exists().where(MarketingJourney.status == "active"))):
            self.until = now + self.ttl
            return True
        return False


IN_USE = _InUse()


def _queue(session: Session, *, cause: str, profiles: list[int] = (), identities: list[int] = (), persons: list[str] = (),
           events: tuple[int, list[str]] | None = None, orders: list[list[int]] = ()) -> None:
    if not IN_USE(session):
        return
    total = len(profiles) + len(identities) + len(persons)
    if total == 0:
        return
    if total > BULK and not events and not orders:
        facts.mark_stale(session)
        REFRESH.enqueue(session, {"cause": cause}, dedupe_key="marketing:refresh-all")
        return
    for start in range(0, max(len(profiles), len(identities), len(persons)), CHUNK):
        args: dict[str, Any] = {"cause": cause, "profiles": list(profiles[start:start + CHUNK]),
                                "identities": list(identities[start:start + CHUNK]), "persons": list(persons[start:start + CHUNK])}
        if start == 0 and events:
            args["events"] = {"source_id": events[0], "message_ids": events[1]}
        if start == 0 and orders:
            args["orders"] = [list(o) for o in orders]
        REACT.enqueue(session, args)


# --- listeners -------------------------------------------------------------------------------


def _on_events(session: Session, *, source: Any, events: list[Any]) -> None:
    for start in range(0, len(events), CHUNK):
        chunk = events[start:start + CHUNK]
        persons = {events_service.person_key(user_id=e.user_id, anonymous_id=e.anonymous_id) for e in chunk}
        # a browser's user id may be a claim: its device's anonymous id is what journeys trust (`_happened`)
        persons |= {events_service.person_key(anonymous_id=e.anonymous_id) for e in chunk if e.user_id and e.anonymous_id}
        persons = sorted(persons)
        _queue(session, cause="event", persons=persons, events=(source.id, [e.message_id for e in chunk]))


def _on_customers(session: Session, *, profile_ids: list[int], identity_ids: list[int]) -> None:
    _queue(session, cause="profile", profiles=list(profile_ids), identities=list(identity_ids))


def _on_order(session: Session, event: Any) -> None:
    profile_id = getattr(event, "profile_id", None)
    if profile_id is None and getattr(event, "order", None) is not None:
        profile_id = event.order.profile_id
    if profile_id is not None:
        placed = [[profile_id, event.order_id, event.total]] if isinstance(event, commerce_events.OrderPlaced) else []
        _queue(session, cause="order", profiles=[profile_id], orders=placed)


def _on_cart(session: Session, event: commerce_events.CartChanged) -> None:
    if event.profile_id is not None:
        _queue(session, cause="cart", profiles=[event.profile_id])
    elif event.anonymous_id:
        _queue(session, cause="cart", persons=[events_service.person_key(anonymous_id=event.anonymous_id)])


def subscribe() -> None:
    """Listen to the operational domains (called once by `seamline.runtime.wire`)."""
    events_service.on_stored(_on_events)
    customer_changes.on_changed(_on_customers)
    commerce_events.on_order_placed(_on_order)
    commerce_events.on_order_handed_over(_on_order)
    commerce_events.on_order_cancelled(_on_order)
    commerce_events.on_order_returned(_on_order)
    commerce_events.on_cart_changed(_on_cart)


# --- the job ---------------------------------------------------------------------------------


def _profiles_of(session: Session, *, identities: list[int], persons: list[str]) -> tuple[set[int], dict[str, int], list[str]]:
    """The profiles holding these identities and person keys, {person key: profile}, and the
    user-id keys nobody holds yet."""
    found: set[int] = set()
    if identities:
        found.update(session.scalars(select(CustomerIdentity.profile_id).where(CustomerIdentity.id.in_(identities))))
    holders: dict[str, int] = {}
    missing: list[str] = []
    if persons:
        wanted = {("user_id" if p.startswith("u:") else "anonymous_id", p[2:]): p for p in persons}
        by_type = {kind: [v for k, v in wanted if k == kind] for kind in ("user_id", "anonymous_id")}
        held = session.execute(select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.profile_id).where(or_(
            *(and_(CustomerIdentity.type == kind, CustomerIdentity.value.in_(values)) for kind, values in by_type.items() if values)))).all()
        for kind, value, profile_id in held:
            found.add(profile_id)
            holders[wanted[(kind, value)]] = profile_id
        missing = [p for key, p in wanted.items() if p not in holders and key[0] == "user_id"]
    return found, holders, missing


def _happened(session: Session, events: dict[str, Any], holders: dict[str, int], settings: Settings | None) -> list[engine.Happened]:
    """The stored events of a batch, as journeys see them (of people the identity graph knows).

    A website's or an app's write key is public: the user id such an event carries is a claim
    (anyone can send "Store Entered" as anyone). Journeys act on it (messages, coupons), so they
    take such an event as its device's: the person holding its anonymous id. A server-side
    source's events, and a user id the site signed (`context.userHash`), are taken as they are."""
    source = session.get(EventSource, events["source_id"])
    secret = settings.inbox_webchat_identity_secret.get_secret_value() if settings is not None else ""
    rows = session.execute(select(EventRecord.person, EventRecord.user_id, EventRecord.anonymous_id, EventRecord.name, EventRecord.type,
                                  EventRecord.payload, EventRecord.timestamp)
                           .where(EventRecord.source_id == events["source_id"], EventRecord.message_id.in_(events["message_ids"]))
                           .order_by(EventRecord.id)).all()
    happened = []
    for person, user_id, anonymous_id, name, kind, payload, at in rows:
        if not name:
            continue
        message = orjson.loads(payload)
        if user_id and not (source is not None and source.server_side):
            context = message.get("context") if isinstance(message.get("context"), dict) else {}
            if not valid_user_hash(secret, user_id, context.get("userHash")):
                person = events_service.person_key(anonymous_id=anonymous_id) if anonymous_id else None
        if person in holders:
            properties = message.get("properties") if isinstance(message.get("properties"), dict) else {}
            happened.append(engine.Happened(holders[person], name, kind, properties, at))
    return happened


def react(session: Session, args: dict[str, Any], *, now: datetime | None = None, settings: Settings | None = None) -> list[segments.Change]:
    """The job's work (see the module doc); the segment changes it made."""
    now = now or utcnow()
    profiles, holders, missing = _profiles_of(session, identities=args.get("identities") or [], persons=args.get("persons") or [])
    waits = args.get("waits", 0)
    if missing and waits < IDENTITY_WAITS and events_service.identity_work_backlog(session) > 0:
        raise Defer(IDENTITY_WAIT, {**args, "waits": waits + 1})
    profiles.update(args.get("profiles") or [])
    if not profiles:
        return []
    changes = segments.evaluate_people(session, profile_ids=profiles, cause=args.get("cause", "event"), now=now)
    canonical = {p: c.id for p, c in resolution.canonical_profiles(session, profiles).items()}
    moved = engine.on_segment_changes(session, changes, now=now)
    if args.get("events"):
        happened = [engine.Happened(canonical.get(h.profile_id, h.profile_id), h.name, h.kind, h.properties, h.at)
                    for h in _happened(session, args["events"], holders, settings)]
        moved += engine.on_events(session, happened, now=now)
    if args.get("orders"):
        moved += engine.on_orders(session, [(canonical.get(p, p), o, t) for p, o, t in args["orders"]], now=now)
        optichannel.on_orders(session, settings or get_settings(), [canonical.get(p, p) for p, _o, _t in args["orders"]], now=now)
    if moved:
        ADVANCE.enqueue(session, {}, dedupe_key="marketing:advance", coalesce=True)
    return changes


def campaigns(database: Database, settings: Settings, *, now: datetime | None = None) -> int:
    """Start the campaigns whose time came, pick the winners of A/B tests that ended (each in its
    own transaction), then run the steps that became due; how many campaigns moved."""
    now = now or utcnow()
    with database.read() as session:
        starting, testing = campaign_service.due(session, now)
    for campaign_id in starting:
        database.run_write(lambda s, i=campaign_id: campaign_service.start(s, campaign_id=i, now=now))
    for campaign_id in testing:
        database.run_write(lambda s, i=campaign_id: campaign_service.pick_winner(s, campaign_id=i, now=now))
    if starting or testing:
        advance(database, settings)
    return len(starting) + len(testing)


def dates(database: Database, settings: Settings) -> int:
    """Enroll the people whose date came round (`journeys.engine.date_triggers`), then run them."""
    enrolled = database.run_write(lambda s: engine.date_triggers(s, settings=settings))
    if enrolled:
        advance(database, settings)
    return enrolled


def advance(database: Database, settings: Settings, *, budget_seconds: float = 20.0, batch: int = 200) -> int:
    """Run due journey steps in batches (one transaction each) until none is due or the budget is
    spent (then the job queues itself again); how many enrollments ran."""
    began, total = time.monotonic(), 0
    while True:
        ran = database.run_write(lambda s: engine.advance_due(s, settings=settings, limit=batch))
        total += ran
        if ran < batch:
            return total
        if time.monotonic() - began > budget_seconds:
            database.run_write(lambda s: ADVANCE.enqueue(s, {}, dedupe_key="marketing:advance-more"))
            return total


def refresh_all(database: Database, *, cause: str = "refresh", only_due: bool = False, settings: Settings | None = None) -> int:
    """Evaluate every active segment in full (each in its own transaction), or only those whose
    last evaluation is older than the refresh period; how many were evaluated."""
    with database.read() as session:
        if only_due and settings is not None:
            ids = segments.due_for_refresh(session, older_than=utcnow() - timedelta(seconds=settings.marketing_segment_refresh_seconds))
        else:
            ids = [s.id for s in segments.in_dependency_order(segments.list_segments(session))]
    done = 0
    for segment_id in ids:
        database.run_write(lambda s, i=segment_id: segments.evaluate(s, segment_id=i, cause=cause))
        done += 1
    return done


def register_tasks(registry: TaskRegistry, database: Database, settings: Settings) -> None:
    def _react(context: JobContext, args: dict[str, Any]) -> None:
        react(context.session, args, settings=settings)

    registry.add(REACT, _react)
    registry.add(REFRESH, lambda _context, args: refresh_all(database, cause=args.get("cause", "refresh")))
    registry.add(ADVANCE, lambda _context, _args: advance(database, settings))
    registry.add(CAMPAIGNS, lambda _context, _args: campaigns(database, settings))


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    tasks = []
    if settings.marketing_segment_refresh_seconds:
        # Checked every tenth of the period: each segment is refreshed when its own evaluation ages.
        every = max(5.0, settings.marketing_segment_refresh_seconds / 10)
        tasks.append(Periodic("marketing.segments", every, lambda: refresh_all(database, only_due=True, settings=settings),
                              queue="marketing"))
    if settings.marketing_advance_seconds:
        tasks.append(Periodic("marketing.journeys", settings.marketing_advance_seconds, lambda: advance(database, settings),
                              queue="marketing"))
        tasks.append(Periodic("marketing.campaigns", 15, lambda: campaigns(database, settings), queue="marketing"))
        # dates (birthdays, days since the last order) are looked at every quarter of an hour
        tasks.append(Periodic("marketing.dates", 900, lambda: dates(database, settings), queue="marketing"))
    if settings.marketing_optichannel_seconds:
        tasks.append(Periodic("marketing.optichannel", settings.marketing_optichannel_seconds,
                              lambda: database.run_write(lambda s: optichannel.credit_replies(s, settings)), queue="marketing"))
        tasks.append(Periodic("marketing.optichannel.cohorts", settings.marketing_optichannel_seconds * 12,
                              lambda: database.run_write(lambda s: optichannel.refresh_cohorts(s, settings)), queue="marketing"))
    return tasks
