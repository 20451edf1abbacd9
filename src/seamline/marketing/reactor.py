"""Marketing's reaction to what happens in the other domains.

The operational domains tell their listeners, inside the transaction of the change, about new
events (`events.service.on_stored`), changed traits, consents, merges, unmerges and erasures
(`customers.changes.on_changed`), orders placed, handed over, cancelled or returned, and carts
changed (`commerce.events`). Marketing's listeners only queue a job (`marketing.react`) in that
transaction, so the change and the reaction commit together: none is lost when a process dies,
and none happens for a change that rolled back. The job, exactly once (an `in_transaction` task):

- finds the live profiles concerned (an event's user id or anonymous id through the identity
  graph; a record's profile id through merges);
- re-evaluates every segment for them (`segments.service.evaluate_people`).

A change touching more than `BULK` people (a customer import) queues one full refresh of every
segment instead. Listeners queue nothing while no segment is active (one indexed look at a small
table; a "yes" is remembered for a few seconds, which at worst queues a job that finds nothing).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from seamline.commerce import events as commerce_events
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic, Priority, Task, TaskRegistry
from seamline.core.queue.registry import Defer, JobContext
from seamline.core.time import utcnow
from seamline.customers import changes as customer_changes
from seamline.customers.models import CustomerIdentity
from seamline.events import service as events_service
from seamline.marketing.segments import facts
from seamline.marketing.segments import service as segments
from seamline.marketing.segments.models import MarketingSegment

REACT = Task("marketing.react", queue="marketing", priority=Priority.high, in_transaction=True, max_attempts=5)
REFRESH = Task("marketing.refresh", queue="marketing", priority=Priority.normal)
#: More people than this in one change: refresh every segment in full instead.
BULK = 2000
#: People per job (a bigger change is split).
CHUNK = 500
#: An event of a user id the identity graph does not hold yet waits for collection's identity
#: work (applied right after the events commit) this long at most.
IDENTITY_WAIT = timedelta(milliseconds=200)
IDENTITY_WAITS = 25


class _InUse:
    """Whether any segment is active: a "yes" is trusted for `ttl` seconds, a "no" never (a
    segment created in another process counts at once)."""

    def __init__(self, ttl: float = 5.0):
        self.ttl, self.until = ttl, float("-inf")

    def __call__(self, session: Session) -> bool:
        now = time.monotonic()
        if now < self.until:
            return True
        if session.scalar(select(exists().where(MarketingSegment.status == "active"))):
            self.until = now + self.ttl
            return True
        return False


IN_USE = _InUse()


def _queue(session: Session, *, cause: str, profiles: list[int] = (), identities: list[int] = (), persons: list[str] = ()) -> None:
    if not IN_USE(session):
        return
    total = len(profiles) + len(identities) + len(persons)
    if total == 0:
        return
    if total > BULK:
        facts.mark_stale(session)
        REFRESH.enqueue(session, {"cause": cause}, dedupe_key="marketing:refresh-all")
        return
    for start in range(0, max(len(profiles), len(identities), len(persons)), CHUNK):
        REACT.enqueue(session, {"cause": cause, "profiles": list(profiles[start:start + CHUNK]),
                                "identities": list(identities[start:start + CHUNK]),
                                "persons": list(persons[start:start + CHUNK])})


# --- listeners -------------------------------------------------------------------------------


def _on_events(session: Session, *, source: Any, events: list[Any]) -> None:
    persons = sorted({events_service.person_key(user_id=e.user_id, anonymous_id=e.anonymous_id) for e in events})
    _queue(session, cause="event", persons=persons)


def _on_customers(session: Session, *, profile_ids: list[int], identity_ids: list[int]) -> None:
    _queue(session, cause="profile", profiles=list(profile_ids), identities=list(identity_ids))


def _on_order(session: Session, event: Any) -> None:
    profile_id = getattr(event, "profile_id", None)
    if profile_id is None and getattr(event, "order", None) is not None:
        profile_id = event.order.profile_id
    if profile_id is not None:
        _queue(session, cause="order", profiles=[profile_id])


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


def _profiles_of(session: Session, *, identities: list[int], persons: list[str]) -> tuple[set[int], list[str]]:
    """The profiles holding these identities and person keys; the user-id keys nobody holds yet."""
    found: set[int] = set()
    if identities:
        found.update(session.scalars(select(CustomerIdentity.profile_id).where(CustomerIdentity.id.in_(identities))))
    missing: list[str] = []
    if persons:
        wanted = {("user_id" if p.startswith("u:") else "anonymous_id", p[2:]): p for p in persons}
        by_type = {kind: [v for k, v in wanted if k == kind] for kind in ("user_id", "anonymous_id")}
        held = session.execute(select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.profile_id).where(or_(
            *(and_(CustomerIdentity.type == kind, CustomerIdentity.value.in_(values)) for kind, values in by_type.items() if values)))).all()
        seen = set()
        for kind, value, profile_id in held:
            found.add(profile_id)
            seen.add((kind, value))
        missing = [p for key, p in wanted.items() if key not in seen and key[0] == "user_id"]
    return found, missing


def react(session: Session, args: dict[str, Any]) -> list[segments.Change]:
    """The job's work (see the module doc); the segment changes it made."""
    profiles, missing = _profiles_of(session, identities=args.get("identities") or [], persons=args.get("persons") or [])
    waits = args.get("waits", 0)
    if missing and waits < IDENTITY_WAITS and events_service.identity_work_backlog(session) > 0:
        raise Defer(IDENTITY_WAIT, {**args, "waits": waits + 1})
    profiles.update(args.get("profiles") or [])
    if not profiles:
        return []
    return segments.evaluate_people(session, profile_ids=profiles, cause=args.get("cause", "event"))


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
        react(context.session, args)

    registry.add(REACT, _react)
    registry.add(REFRESH, lambda _context, args: refresh_all(database, cause=args.get("cause", "refresh")))


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    if not settings.marketing_segment_refresh_seconds:
        return []
    # Checked every tenth of the period: each segment is refreshed when its own evaluation ages.
    every = max(5.0, settings.marketing_segment_refresh_seconds / 10)
    return [Periodic("marketing.segments", every, lambda: refresh_all(database, only_due=True, settings=settings), queue="marketing")]
