"""Event collection: sources, storing checked events once, feeding the identity graph, reading.

`store_events` is the one write path of every collection endpoint. In one transaction it
skips messages already stored (same source and messageId, whatever the interval), inserts the
rest in one `executemany` through the driver, and feeds the identity graph from what is new:

- identify: the user id, the anonymous id and the `email` / `phone` traits are linked, and the
  traits recorded (latest wins, with the event's time);
- alias: `previousId` (a user id if one is known by that value, else an anonymous id) joins
  `userId`;
- any event carrying both a userId and an anonymousId links them (as Segment's identity
  resolution does); an event carrying a userId makes sure that user id exists.

Anonymous-only events create no profile: they belong to whoever that anonymous id turns out to
be (events are keyed by identifier values, see models.py), which makes the browsing done before
login part of the profile retroactively.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, or_, select, union_all
from sqlalchemy.orm import Session

from seamline.core.auth import service as auth_service
from seamline.core.auth.models import ApiKey
from seamline.core.auth.schemas import Scope
from seamline.core.errors import AppError, Forbidden, Unprocessable
from seamline.core.time import UTCDateTime
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import Identifier, IdentifierRules
from seamline.customers.models import CustomerIdentity
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry
from seamline.events import destinations
from seamline.events.ingest import MESSAGE_TYPES, CheckedEvent, person_key
from seamline.events.models import EventRecord, EventSource

CHANNELS = ("web", "app", "store", "call_center", "email", "messenger", "sms", "server", "other")


class BadBatch(AppError):
    status_code = 400
    code = "invalid_events"


# --- sources ---------------------------------------------------------------------------------


def create_source(session: Session, *, name: str, channel: str) -> tuple[EventSource, str]:
    """A tracking source and its write key (shown once)."""
    if channel not in CHANNELS:
        raise Unprocessable(
            f"Unknown channel {channel!r}", code="unknown_channel", details={"channel": channel, "known": list(CHANNELS)}
        )
    source = EventSource(name=name, channel=channel)
    session.add(source)
    session.flush()
    key, raw = auth_service.create_api_key(session, name=f"write key of source {source.id} ({name[:150]})", scopes=[Scope.track])
    key.source_id = source.id
    session.flush()
    return source, raw


def list_sources(session: Session) -> list[EventSource]:
    return list(session.scalars(select(EventSource).order_by(EventSource.id)))


def source_of_key(session: Session, raw_key: str) -> EventSource:
    key: ApiKey = auth_service.authenticate(session, raw_key)
    if key.source_id is None:
        raise Forbidden(
            "This key is not a source's write key; create a source (POST /v1/sources) and send its key",
            code="not_a_write_key",
        )
    source = session.get(EventSource, key.source_id)
    if source is None or source.disabled_at is not None:
        raise Forbidden("This source is disabled", code="source_disabled")
    return source


# --- storing ---------------------------------------------------------------------------------


@dataclass
class StoreOutcome:
    stored: int
    duplicates: int


def _time_param(session: Session, value: datetime) -> Any:
    """A timestamp as SQLAlchemy's own type would bind it (SQLite keeps text, naive UTC)."""
    if session.get_bind().dialect.name == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def store_events(
    session: Session,
    *,
    source: EventSource,
    events: list[CheckedEvent],
    received_at: datetime,
    rules: IdentifierRules,
) -> StoreOutcome:
    if not events:
        return StoreOutcome(0, 0)
    # One message per messageId within the request too (a batch may repeat itself).
    unique: dict[str, CheckedEvent] = {}
    for event in events:
        unique.setdefault(event.message_id, event)
    ids = list(unique)
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        known.update(
            session.scalars(
                select(EventRecord.message_id).where(
                    EventRecord.source_id == source.id, EventRecord.message_id.in_(ids[start : start + 500])
                )
            )
        )
    new = [e for m, e in unique.items() if m not in known]
    if new:
        received = _time_param(session, received_at)
        rows = [
            (source.id, e.message_id, e.type, e.name, e.anonymous_id, e.user_id,
             person_key(user_id=e.user_id, anonymous_id=e.anonymous_id), source.channel,
             _time_param(session, e.timestamp), received, e.payload.decode())
            for e in new
        ]
        dbapi = session.connection().connection.dbapi_connection
        mark = "?" if session.get_bind().dialect.name == "sqlite" else "%s"
        cursor = dbapi.cursor()
        # ON CONFLICT: a concurrent request with the same messageId (PostgreSQL) stores it once.
        cursor.executemany(
            "INSERT INTO event_record (source_id, message_id, type, name, anonymous_id, user_id, person, channel, "
            f"timestamp, received_at, payload) VALUES ({', '.join([mark] * 11)}) "
            "ON CONFLICT (source_id, message_id) DO NOTHING",
            rows,
        )
        feed_identity_graph(session, events=new, source=source, rules=rules)
        destinations.enqueue(session, source=source, events=new)
    return StoreOutcome(len(new), len(events) - len(new))


def _try(rules: IdentifierRules, type_name: str, value: Any) -> Identifier | None:
    """A usable identifier, or None (an invalid email in traits is a trait, not an error)."""
    if value is None or value == "" or isinstance(value, (bool, dict, list)):
        return None
    try:
        identifier = rules.normalize(type_name, str(value))
    except AppError:
        return None
    return None if rules.is_blocked(identifier) else identifier


def feed_identity_graph(session: Session, *, events: list[CheckedEvent], source: EventSource, rules: IdentifierRules) -> None:
    """Identify/alias, and userId + anonymousId pairs, into the identity graph (see module doc).

    The common case, people whose identifiers are all known and linked already, costs one query
    for the whole batch (plus the traits of identify calls); only what is new or unlinked goes
    through the full resolution, in event order."""
    origin = f"events:{source.channel}"
    work: list[tuple[list[Identifier], dict[str, Any] | None, datetime]] = []
    for event in events:
        message = event.message
        user = _try(rules, "user_id", event.user_id)
        anonymous = _try(rules, "anonymous_id", event.anonymous_id)
        if event.type == "identify":
            traits = message.get("traits") or {}
            found = [user, anonymous, _try(rules, "email", traits.get("email")), _try(rules, "phone", traits.get("phone"))]
            work.append(([i for i in found if i is not None], traits, event.timestamp))
        elif event.type == "alias":
            previous = str(message.get("previousId"))
            as_user = _try(rules, "user_id", previous)
            known_user = as_user is not None and session.scalar(
                select(CustomerIdentity.id).where(CustomerIdentity.type == "user_id", CustomerIdentity.value == as_user.value)
            )
            other = as_user if known_user else _try(rules, "anonymous_id", previous)
            work.append(([i for i in (user, other) if i is not None], None, event.timestamp))
        elif user is not None:
            work.append(([user, anonymous] if anonymous is not None else [user], None, event.timestamp))
    work = [w for w in work if w[0]]
    if not work:
        return
    wanted = list({i for identifiers, _, _ in work for i in identifiers})

    def load_holders() -> dict[tuple[str, str], tuple[int, int]]:
        by_type: dict[str, list[str]] = {}
        for identifier in wanted:
            by_type.setdefault(identifier.type, []).append(identifier.value)
        # `type = ? AND value IN (...)` per type (SQLite scans the table for a row-value IN),
        # straight through the driver: compiling a fresh IN list per batch costs more than the query.
        mark = "?" if session.get_bind().dialect.name == "sqlite" else "%s"
        where = " OR ".join(f"(type = {mark} AND value IN ({', '.join([mark] * len(v))}))" for v in by_type.values())
        params = [x for t, v in by_type.items() for x in (t, *v)]
        cursor = session.connection().connection.dbapi_connection.cursor()
        cursor.execute(f"SELECT type, value, profile_id, id FROM customer_identity WHERE {where}", params)
        return {(t, v): (profile_id, identity_id) for t, v, profile_id, identity_id in cursor.fetchall()}

    holders = load_holders()
    linked: set[tuple[Identifier, ...]] = set()
    observations: list[tuple[int, dict[str, Any], str, datetime]] = []
    for identifiers, traits, observed_at in work:
        usable, _blocked = rules.prepare([(i.type, i.value) for i in identifiers])
        if not usable:
            continue
        held = [holders.get((i.type, i.value)) for i in usable]
        if all(held) and len({h[0] for h in held}) == 1:  # known, and one person already
            if traits:
                observations.append((held[0][1], traits, origin, observed_at))
            continue
        key = tuple(usable)
        if not traits and key in linked:
            continue
        result = resolution.resolve_identifiers(session, rules=rules, identifiers=usable, source=origin)
        if traits:
            observations.append((result.primary_identity_id, traits, origin, observed_at))
        linked.add(key)
        # A resolution creates or moves identities only into its profile: refresh those.
        for t, v, identity_id in session.execute(
            select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.id).where(
                CustomerIdentity.profile_id == result.profile_id
            )
        ):
            holders[(t, v)] = (result.profile_id, identity_id)
    # Latest wins per trait whatever the order, so the batch's traits can go in one statement.
    customers_service.set_traits_many(session, observations)


# --- reading ---------------------------------------------------------------------------------


def event_view(record: EventRecord) -> dict[str, Any]:
    message = orjson.loads(record.payload)
    return {
        "id": record.id,
        "message_id": record.message_id,
        "source_id": record.source_id,
        "channel": record.channel,
        "type": record.type,
        "event": message.get("event"),
        "name": message.get("name"),
        "anonymous_id": record.anonymous_id,
        "user_id": record.user_id,
        "timestamp": record.timestamp,
        "original_timestamp": message.get("originalTimestamp") or message.get("timestamp"),
        "sent_at": message.get("sentAt"),
        "received_at": record.received_at,
        "properties": message.get("properties") or {},
        "traits": message.get("traits") or {},
        "context": message.get("context") or {},
        "integrations": message.get("integrations") or {},
        "message": message,
    }


def list_events(
    session: Session,
    *,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    message_id: str | None = None,
    type_: str | None = None,
    source_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[EventRecord]:
    query = select(EventRecord)
    for column, value in (
        (EventRecord.anonymous_id, anonymous_id),
        (EventRecord.user_id, user_id),
        (EventRecord.message_id, message_id),
        (EventRecord.type, type_),
        (EventRecord.source_id, source_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(EventRecord.id < before_id)
    return list(session.scalars(query.order_by(EventRecord.id.desc()).limit(limit)))


def _keys_of(context: CustomerContext) -> list[str]:
    """The person keys events of this profile are filed under."""
    return [person_key(user_id=i.value) if i.type == "user_id" else person_key(anonymous_id=i.value)
            for i in context.identities if i.type in ("user_id", "anonymous_id")]


def timeline_items(session: Session, context: CustomerContext, query: TimelineQuery) -> list[TimelineItem]:
    """The person's events, newest first, from `query.before` on.

    One range of the (person, timestamp, id) index per identifier, each read backwards for at
    most `limit` rows, merged: the cost depends on the page size, not on how many events the
    person has."""
    if query.types is not None and not set(query.types) & ({f"event.{t}" for t in MESSAGE_TYPES} | {"event"}):
        return []
    keys = _keys_of(context)
    if not keys:
        return []
    ranges = []
    for key in keys:
        part = select(EventRecord.id, EventRecord.timestamp).where(EventRecord.person == key)
        if query.before is not None:
            at, last_id = query.before
            part = part.where(
                or_(EventRecord.timestamp < at, and_(EventRecord.timestamp == at, EventRecord.id < last_id))
            )
        if query.channels:
            part = part.where(EventRecord.channel.in_(query.channels))
        if query.types and "event" not in query.types:
            part = part.where(EventRecord.type.in_([t.split(".", 1)[1] for t in query.types if t.startswith("event.")]))
        ranges.append(part.order_by(EventRecord.timestamp.desc(), EventRecord.id.desc()).limit(query.limit))
    if len(ranges) == 1:
        picked = ranges[0].subquery()
    else:
        picked = union_all(*[r.subquery().select() for r in ranges]).subquery()  # one key per event: no repeats
    top = select(picked.c.id).order_by(picked.c.timestamp.desc(), picked.c.id.desc()).limit(query.limit)
    ids = list(session.scalars(top))
    if not ids:
        return []
    records = {r.id: r for r in session.scalars(select(EventRecord).where(EventRecord.id.in_(ids)))}
    items = []
    for record_id in ids:
        record = records[record_id]
        view = event_view(record)
        title = view["event"] or view["name"] or record.type
        items.append(
            TimelineItem(
                kind="event",
                id=record.id,
                occurred_at=record.timestamp,
                channel=record.channel,
                type=f"event.{record.type}",
                title=title,
                data={k: view[k] for k in ("message_id", "source_id", "properties", "traits", "context", "anonymous_id", "user_id", "received_at")},
            )
        )
    return items


def export_events(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    """Every stored event of the person (the data-subject export)."""
    keys = _keys_of(context)
    if not keys:
        return []
    records = session.scalars(select(EventRecord).where(EventRecord.person.in_(keys)).order_by(EventRecord.id))
    return [event_view(r) for r in records]


def erase_events(session: Session, context: CustomerContext) -> int:
    """Delete every event of the person (erasure); returns how many."""
    keys = _keys_of(context)
    if not keys:
        return 0
    result = session.execute(delete(EventRecord).where(EventRecord.person.in_(keys)))
    return result.rowcount or 0


# --- what this module adds to the customer 360 and timeline ---------------------------------


def _events_section(session: Session, context: CustomerContext) -> dict[str, Any]:
    """How much the person did where: counts per channel, first and last seen."""
    keys = _keys_of(context)
    if not keys:
        return {"count": 0, "by_channel": {}, "first_seen_at": None, "last_seen_at": None}
    rows = session.execute(
        select(EventRecord.channel, func.count(), func.min(EventRecord.timestamp), func.max(EventRecord.timestamp))
        .where(EventRecord.person.in_(keys))
        .group_by(EventRecord.channel)
    ).all()
    as_time = UTCDateTime().process_result_value
    firsts = [as_time(r[2], None) for r in rows if r[2] is not None]
    lasts = [as_time(r[3], None) for r in rows if r[3] is not None]
    return {
        "count": sum(r[1] for r in rows),
        "by_channel": {r[0]: r[1] for r in rows},
        "first_seen_at": min(firsts) if firsts else None,
        "last_seen_at": max(lasts) if lasts else None,
    }


def register(sections: SectionRegistry, timeline: TimelineRegistry) -> None:
    sections.register("events", _events_section, export=export_events, erase=erase_events)
    timeline.register("event", timeline_items)
