"""Event collection: sources, storing checked events once, feeding the identity graph, reading.

`store_events` is the one write path of every collection endpoint. In one transaction it
skips messages already stored (same source and messageId, whatever the interval), inserts the
rest through the driver, and queues what the new events say about identity (`enqueue_identity_work`);
the event writer applies the queue right after answering (`feed_identity_graph`):

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

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, select, union_all
from sqlalchemy.orm import Session

from seamline.core.auth import service as auth_service
from seamline.core.auth.models import ApiKey
from seamline.core.auth.schemas import Scope
from seamline.core.db import DriverSQL
from seamline.core.errors import AppError, Forbidden, Unprocessable
from seamline.core.time import UTCDateTime, utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import DEVICE_TYPES, Identifier, IdentifierRules
from seamline.customers.models import CustomerIdentity
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.signing import valid_user_hash
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry, titled
from seamline.events import destinations
from seamline.events.ingest import MESSAGE_TYPES, CheckedEvent, person_key
from seamline.events.models import EventIdentityFeed, EventRecord, EventSource

CHANNELS = ("web", "app", "store", "call_center", "email", "messenger", "sms", "server", "other")


class BadBatch(AppError):
    status_code = 400
    code = "invalid_events"


# --- sources ---------------------------------------------------------------------------------


def create_source(session: Session, *, name: str, channel: str, server_side: bool = False) -> tuple[EventSource, str]:
    """A tracking source and its write key (shown once); `server_side` when the key stays on a
    server, so what it says about identities is vouched for."""
    if channel not in CHANNELS:
        raise Unprocessable(
            f"Unknown channel {channel!r}", code="unknown_channel", details={"channel": channel, "known": list(CHANNELS)}
        )
    source = EventSource(name=name, channel=channel, server_side=server_side)
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


class LinkedPairs:
    """(userId, anonymousId) pairs, as sent, that the identity graph was seen to hold in one
    profile: the next events of such a pair need no identity work (applying the same link again
    changes nothing: a link seen before is never re-applied). Kept by the event writer, bounded,
    and trusted for `ttl` seconds, so a pair whose identities were erased since gets its
    identity work again within that time."""

    def __init__(self, *, size: int = 200_000, ttl: float = 60.0):
        self.size, self.ttl = size, ttl
        self._until: dict[tuple[str, str | None], float] = {}

    def __contains__(self, key: tuple[str, str | None]) -> bool:
        until = self._until.get(key)
        return until is not None and until > time.monotonic()

    def add_all(self, keys: list[tuple[str, str | None]]) -> None:
        if len(self._until) + len(keys) > self.size:
            self._until.clear()
        until = time.monotonic() + self.ttl
        self._until.update(dict.fromkeys(keys, until))

    def clear(self) -> None:
        self._until.clear()



@dataclass
class StoreOutcome:
    stored: int
    duplicates: int


def store_events(
    session: Session,
    *,
    source: EventSource,
    events: list[CheckedEvent],
    received_at: datetime,
    linked: LinkedPairs | None = None,
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
        sql = DriverSQL(session)
        received = sql.time(received_at)
        # ON CONFLICT: a concurrent request with the same messageId (PostgreSQL) stores it once.
        sql.insert_rows(
            "event_record",
            ("source_id", "message_id", "type", "name", "anonymous_id", "user_id", "person", "channel", "timestamp",
             "received_at", "payload"),
            [(source.id, e.message_id, e.type, e.name, e.anonymous_id, e.user_id,
              person_key(user_id=e.user_id, anonymous_id=e.anonymous_id), source.channel,
              sql.time(e.timestamp), received, e.payload.decode()) for e in new],
            "ON CONFLICT (source_id, message_id) DO NOTHING",
        )
        enqueue_identity_work(session, events=new, source=source, linked=linked)
        destinations.enqueue(session, source=source, events=new)
        for listener in list(_stored_listeners):
            listener(session, source=source, events=new)
    return StoreOutcome(len(new), len(events) - len(new))


#: Called as `listener(session, source=..., events=[CheckedEvent, ...])` in the transaction that
#: stores new events (never for a replay), so what it writes commits with them (marketing queues
#: its reaction to them). Registered once by the composition root.
_stored_listeners: list = []


def on_stored(listener) -> None:  # noqa: ANN001 - Callable[..., None]
    if listener not in _stored_listeners:
        _stored_listeners.append(listener)


def _try(rules: IdentifierRules, type_name: str, value: Any) -> Identifier | None:
    """A usable identifier, or None (an invalid email in traits is a trait, not an error)."""
    if value is None or value == "" or isinstance(value, (bool, dict, list)):
        return None
    try:
        identifier = rules.normalize(type_name, str(value))
    except AppError:
        return None
    return None if rules.is_blocked(identifier) else identifier


def enqueue_identity_work(
    session: Session, *, events: list[CheckedEvent], source: EventSource, linked: LinkedPairs | None = None
) -> None:
    """Queue what the events say about who is who (see `EventIdentityFeed`), in one row.

    Only identify and alias calls and events with a userId matter; a link without traits that
    came earlier in the batch, or that `linked` knows, is not repeated (applying it again would
    change nothing)."""
    items: list[dict[str, Any]] = []
    seen: set[tuple[str | None, ...]] = set()
    # What a server-side source says is vouched for; a browser's or an app's is a claim.
    trust = {"server": True} if source.server_side else {}
    for event in events:
        # A browser may carry the site's signature of its user id (context.userHash): checked when
        # the work is applied, where the settings are.
        signed = {} if trust or not event.user_id else _user_hash_of(event.message)
        if event.type == "identify":
            items.append({"type": "identify", "userId": event.user_id, "anonymousId": event.anonymous_id,
                          "traits": event.message.get("traits") or {}, "at": event.timestamp.isoformat(), **trust, **signed})
            continue
        if event.type == "alias":
            previous = str(event.message.get("previousId"))
        elif event.user_id is not None:
            previous = None
            if linked is not None and (event.user_id, event.anonymous_id) in linked:
                continue
        else:
            continue  # anonymous only: nothing to link
        key = (event.user_id, event.anonymous_id, previous)
        if key not in seen:
            seen.add(key)
            items.append({"type": event.type, "userId": event.user_id, "anonymousId": event.anonymous_id,
                          "previousId": previous, "at": event.timestamp.isoformat(), **trust, **signed})
    if items:
        sql = DriverSQL(session)
        sql.execute(
            "INSERT INTO event_identity_feed (origin, items, created_at) VALUES (?, ?, ?)",
            (f"events:{source.channel}", orjson.dumps(items).decode(), sql.time(utcnow())),
        )


def _user_hash_of(message: dict[str, Any]) -> dict[str, str]:
    context = message.get("context")
    given = context.get("userHash") if isinstance(context, dict) else None
    return {"userHash": given} if isinstance(given, str) and len(given) <= 128 else {}


#: How far an item is vouched for: a server-side source's word, a browser's user id signed by the
#: site (userHash), or nothing but claims.
SERVER, SIGNED, CLAIMED = "server", "signed", ""

#: (identifiers, traits to record or None, observed at, the (userId, anonymousId) pair as sent
#: for a plain event, else None, how far it is vouched for)
Work = tuple[tuple[Identifier, ...], dict[str, Any] | None, datetime, tuple[str, str | None] | None, str]


def _identity_work(session: Session, items: list[dict[str, Any]], rules: IdentifierRules) -> list[Work]:
    """The queued items as `Work`, in order:
    identify links its ids with the `email` / `phone` traits; alias joins `previousId` (a user id
    if one is known by that value, else an anonymous id) to `userId`; any other event links its
    userId and anonymousId."""
    memo: dict[tuple[str, Any], Identifier | None] = {}
    secret = rules.settings.inbox_webchat_identity_secret.get_secret_value()

    def identifier(type_name: str, value: Any) -> Identifier | None:
        key = (type_name, value)
        if key not in memo:
            memo[key] = _try(rules, type_name, value)
        return memo[key]

    work: list[Work] = []
    for item in items:
        user, anonymous = identifier("user_id", item.get("userId")), identifier("anonymous_id", item.get("anonymousId"))
        traits, pair = None, None
        if item["type"] == "identify":
            traits = item.get("traits") or {}
            found = (user, anonymous, identifier("email", traits.get("email")), identifier("phone", traits.get("phone")))
        elif item["type"] == "alias":
            as_user = identifier("user_id", item["previousId"])
            known_user = as_user is not None and session.scalar(
                select(CustomerIdentity.id).where(CustomerIdentity.type == "user_id", CustomerIdentity.value == as_user.value)
            )
            found = (user, as_user if known_user else identifier("anonymous_id", item["previousId"]))
        else:
            found, pair = (user, anonymous), (item["userId"], item.get("anonymousId"))
        identifiers = tuple(i for i in found if i is not None)
        if identifiers:
            trust = SERVER if item.get("server") else SIGNED if item.get("userHash") and valid_user_hash(
                secret, item.get("userId"), item["userHash"]) else CLAIMED
            work.append((identifiers, traits, datetime.fromisoformat(item["at"]), pair, trust))
    return work


def _holders(session: Session, identifiers: set[Identifier]) -> dict[Identifier, tuple[int, int]]:
    """{identifier: (profile id, identity id)} of those that are known, in one query.

    `type = ? AND value IN (...)` per type (SQLite scans the table for a row-value IN), straight
    through the driver: compiling a fresh IN list per batch costs more than the query."""
    by_type: dict[str, list[str]] = {}
    for item in identifiers:
        by_type.setdefault(item.type, []).append(item.value)
    where = " OR ".join(f"(type = ? AND value IN ({', '.join('?' * len(v))}))" for v in by_type.values())
    params = [x for t, v in by_type.items() for x in (t, *v)]
    sql = DriverSQL(session)
    if sql.sqlite:
        # One row, not thousands: Python's sqlite3 releases the GIL around every row it steps
        # to, and under load each release costs a wait for the request thread to give it back.
        packed = sql.execute(
            f"SELECT json_group_array(json_array(type, value, profile_id, id)) FROM customer_identity WHERE {where}",
            params,
        ).fetchone()[0]
        rows = orjson.loads(packed)
    else:
        rows = sql.execute(f"SELECT type, value, profile_id, id FROM customer_identity WHERE {where}", params).fetchall()
    return {Identifier(t, v): (profile_id, identity_id) for t, v, profile_id, identity_id in rows}


def pending_identity_work(session: Session, *, limit: int = 50) -> list[int]:
    """Ids of the oldest queued rows of identity work (not failed ones)."""
    return list(session.scalars(
        select(EventIdentityFeed.id).where(EventIdentityFeed.error.is_(None)).order_by(EventIdentityFeed.id).limit(limit)
    ))


def identity_work_backlog(session: Session) -> int:
    """How many rows of identity work wait to be applied (0 once collection has caught up)."""
    return session.scalar(select(func.count()).select_from(EventIdentityFeed).where(EventIdentityFeed.error.is_(None)))


@dataclass
class FeedOutcome:
    rows: int
    #: The plain (userId, anonymousId) pairs now held by one profile (see `LinkedPairs`).
    linked: list[tuple[str, str | None]]


def feed_identity_graph(session: Session, *, ids: list[int], rules: IdentifierRules) -> FeedOutcome:
    """Apply these queued rows of identity work in order and delete them.
    Several processes may feed at once: on PostgreSQL a row another one holds is skipped.

    The common case, people whose identifiers are all known and linked already, costs one query
    for all the rows (plus one statement for the traits of identify calls); only what is new or
    unlinked goes through resolution (a first login, all identifiers new, is three inserts)."""
    sql = DriverSQL(session)
    marks = ", ".join("?" * len(ids))
    rows = sql.execute(
        f"SELECT id, origin, items FROM event_identity_feed WHERE id IN ({marks}) AND error IS NULL ORDER BY id"
        + ("" if sql.sqlite else " FOR UPDATE SKIP LOCKED"),
        ids,
    ).fetchall()
    if not rows:
        return FeedOutcome(0, [])
    work = [
        (w, origin)
        for _, origin, items in rows
        for w in _identity_work(session, orjson.loads(items) if isinstance(items, str) else items, rules)
    ]
    sql.execute(f"DELETE FROM event_identity_feed WHERE id IN ({', '.join('?' * len(rows))})", [row[0] for row in rows])
    return FeedOutcome(len(rows), _apply(session, work, rules) if work else [])


def set_aside_identity_work(session: Session, *, row_id: int, error: str) -> None:
    """Keep a row that cannot be applied out of the way of the ones after it."""
    row = session.get(EventIdentityFeed, row_id)
    if row is not None:
        row.error = error[:2000]


def _still_unknown(session: Session, identifiers: list[Identifier], sqlite: bool) -> bool:
    """Whether identifiers read as unknown still are, now that nobody else can add them: on
    SQLite this transaction is the only writer; on PostgreSQL after taking the same advisory
    locks `resolve_identifiers` takes."""
    if sqlite:
        return True
    resolution.lock_identifiers(session, identifiers)
    return not _holders(session, set(identifiers))


def _all_verified(session: Session, held: list[tuple[int, int] | None]) -> bool:
    """Whether these (profile id, identity id) identities are verified or devices: a server-side
    source's identify of anything else goes through resolution, which verifies it."""
    ids = [h[1] for h in held if h is not None]
    return not session.scalar(select(func.count()).select_from(CustomerIdentity).where(
        CustomerIdentity.id.in_(ids), CustomerIdentity.verified_at.is_(None), CustomerIdentity.type.notin_(DEVICE_TYPES)))


def _apply(session: Session, work: list[tuple[Work, str]], rules: IdentifierRules) -> list[tuple[str, str | None]]:
    holders = _holders(session, {i for (identifiers, *_), _ in work for i in identifiers})
    sqlite = session.get_bind().dialect.name == "sqlite"
    observations: list[customers_service.TraitObservation] = []
    pairs: list[tuple[tuple[Identifier, ...], tuple[str, str | None]]] = []
    for (identifiers, traits, observed_at, pair, trust), origin in work:
        if pair is not None:
            pairs.append((identifiers, pair))
        # A browser's or an app's write key is public: the ids it sends other than its own
        # device's (and a user id the site signed) are claims, and its traits unverified
        # (docs/customers.md, "Trust").
        server = trust == SERVER
        claimed = frozenset() if server else frozenset(
            i for i in identifiers if i.type not in DEVICE_TYPES and not (trust == SIGNED and i.type == "user_id"))
        if traits and not server:
            traits = customers_service.claimable_traits(rules, traits)
        held = [holders.get(i) for i in identifiers]
        if all(held) and len({h[0] for h in held}) == 1 and (trust == CLAIMED or _all_verified(session, held)):
            if traits:  # known, and one person already
                anchor = resolution.anchor_first(list(identifiers), claimed)[0]
                observations.append((holders[anchor][1], traits, origin, observed_at, server))
            continue
        usable, _blocked = rules.prepare([(i.type, i.value) for i in identifiers])
        usable = resolution.anchor_first(usable, claimed)
        if not any(held) and resolution.fits_one_profile(rules, usable) and _still_unknown(session, usable, sqlite):
            result = resolution.create_profile(session, identifiers=usable, source=origin, claimed=claimed)
            holders.update({i: (result.profile_id, identity_id) for i, identity_id in result.created_identities.items()})
        else:
            result = resolution.resolve_identifiers(session, rules=rules, identifiers=usable, source=origin, claimed=claimed)
            # A resolution creates or moves identities only into its profile: refresh those.
            for t, v, identity_id in session.execute(
                select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.id).where(
                    CustomerIdentity.profile_id == result.profile_id
                )
            ):
                holders[Identifier(t, v)] = (result.profile_id, identity_id)
        if traits and result.speaks_for_primary:
            observations.append((result.primary_identity_id, traits, origin, observed_at, server))
    # Latest wins per trait whatever the order, so the batch's traits can go in one statement.
    customers_service.set_traits_many(session, observations)
    linked = []
    for identifiers, pair in pairs:
        held = {holders[i][0] if i in holders else None for i in identifiers}
        if len(held) == 1 and None not in held:
            linked.append(pair)
    return linked


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


#: The timeline's titles (customers/timeline.py): English templates by title key, translated by the
#: console. A track event's title is its name (the console translates the well-known ones); a
#: page's or a screen's, its name as the site gave it.
TITLES = {
    "event.track": "%(event)s",
    "event.page": "Page viewed",
    "event.screen": "Screen viewed",
    "event.identify": "Profile updated",
    "event.group": "Joined a group",
    "event.alias": "Identifiers linked",
}


def _title(kind: str, view: dict[str, Any]) -> dict[str, Any]:
    if kind == "track" and view["event"]:
        return titled(TITLES, "event.track", {"event": view["event"]})
    if kind in ("page", "screen") and view["name"]:
        return {"title": view["name"]}
    if f"event.{kind}" in TITLES:
        return titled(TITLES, f"event.{kind}", {})
    return {"title": view["event"] or view["name"] or kind}


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
        part = select(EventRecord.id, EventRecord.timestamp).where(
            EventRecord.person == key, query.older_than_cursor(EventRecord.timestamp, EventRecord.id)
        )
        if query.channels:
            part = part.where(EventRecord.channel.in_(query.channels))
        if (wanted := query.subtypes("event")) is not None:
            part = part.where(EventRecord.type.in_(wanted))
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
        items.append(
            TimelineItem(
                kind="event",
                id=record.id,
                occurred_at=record.timestamp,
                channel=record.channel,
                type=f"event.{record.type}",
                data={k: view[k] for k in ("message_id", "source_id", "properties", "traits", "context", "anonymous_id", "user_id", "received_at")},
                **_title(record.type, view),
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
    timeline.register("event", timeline_items, titles=TITLES)
