"""The profile facts segments read traits, consents and order totals from (`MarketingProfileFact`).

Facts: `trait:<key>` (the trait as the profile shows it), `consent:<channel>:<purpose>` (the
latest: granted or withdrawn), and over the orders that count (not cancelled, not waiting for
payment) of the person and the profiles merged into them: `orders:count`, `orders:revenue`
(minor units, summed across currencies) and `orders:last_at` (number: Unix time; text: ISO 8601 UTC to the second).

- `refresh(session, families)`: the facts of a few people, from their identities' traits and
  consents, chosen the way the profile chooses them (`customers.service.traits_by_profile`,
  `current_consents`). The reactor calls it before it evaluates their segments.
- `rebuild(session)`: every fact again, in two statements (window functions choose each
  person's trait and latest consent). Run when the facts may be stale: before the first
  evaluation ever, after a period with no active segment (listeners queue nothing then), and
  after a bulk change (an import). `seamline marketing rebuild-facts` runs it by hand.

On PostgreSQL a rebuild holds an exclusive advisory lock and a refresh a shared one, so a
refresh never interleaves with a rebuild that would overwrite it with an older snapshot.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Float, String, case, cast, delete, func, insert, literal, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from seamline.commerce.models import CommerceOrder
from seamline.core.jsonsql import json_kind, json_number, json_text
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.models import CustomerConsent, CustomerIdentity, CustomerProfile, CustomerTrait
from seamline.marketing.segments.models import MarketingProfileFact, MarketingState

_LOCK = 0x5E65_FAC7  # the advisory lock's key
#: Orders that count: placed and not cancelled (a returned order still happened).
COUNTED_ORDER = CommerceOrder.status.notin_(("cancelled", "pending_payment"))
STATE = "profile_facts"


def trait_key(key: str) -> str:
    return f"trait:{key}"


def consent_key(channel: str, purpose: str) -> str:
    return f"consent:{channel}:{purpose}"


def _columns(value: Any) -> tuple[str, str, float | None] | None:
    """(kind, text, number) of a JSON value; None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean", "true" if value else "false", None
    if isinstance(value, (int, float)):
        return "number", json.dumps(value), float(value)
    if isinstance(value, str):
        return "string", value, None
    return ("object" if isinstance(value, dict) else "array"), json.dumps(value, ensure_ascii=False), None


def _lock(session: Session, *, exclusive: bool) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock{'' if exclusive else '_shared'}(:key)"), {"key": _LOCK})


def refresh(session: Session, families: dict[int, list[int]], gone: set[int] = frozenset()) -> None:
    """The facts of these live profiles ({profile: it and its merged ids}) from their sources;
    the facts of `gone` profiles (merged away, erased) removed."""
    _lock(session, exclusive=False)
    profiles = sorted(set(families) | set(gone))
    if not profiles:
        return
    session.execute(delete(MarketingProfileFact).where(MarketingProfileFact.profile_id.in_(profiles)))
    if not families:
        return
    identities = resolution.identity_ids_by_profile(session, families)
    rows: list[dict[str, Any]] = []
    for profile_id, traits in customers_service.traits_by_profile(session, {p: identities.get(p, []) for p in families}).items():
        for key, chosen in traits.items():
            columns = _columns(chosen["value"])
            if columns is not None:
                rows.append({"key": trait_key(key), "profile_id": profile_id, "kind": columns[0], "text_value": columns[1],
                             "number_value": columns[2]})
    owner = {i: p for p, ids in identities.items() for i in ids}
    latest: dict[tuple[int, str, str], bool] = {}
    for row in session.execute(select(CustomerConsent.identity_id, CustomerConsent.channel, CustomerConsent.purpose, CustomerConsent.granted)
                               .where(CustomerConsent.identity_id.in_(list(owner)))
                               .order_by(CustomerConsent.recorded_at, CustomerConsent.id)):
        latest[(owner[row.identity_id], row.channel, row.purpose)] = row.granted
    for (profile_id, channel, purpose), granted in latest.items():
        rows.append({"key": consent_key(channel, purpose), "profile_id": profile_id, "kind": "string",
                     "text_value": "granted" if granted else "withdrawn", "number_value": None})
    owners = {m: p for p, ids in families.items() for m in ids}
    totals: dict[int, list] = {}
    for profile_id, count, revenue, last in session.execute(
            select(CommerceOrder.profile_id, func.count(), func.coalesce(func.sum(CommerceOrder.total), 0), func.max(CommerceOrder.created_at))
            .where(CommerceOrder.profile_id.in_(list(owners)), COUNTED_ORDER).group_by(CommerceOrder.profile_id)):
        seen = totals.setdefault(owners[profile_id], [0, 0, last])
        seen[0], seen[1], seen[2] = seen[0] + count, seen[1] + int(revenue), max(seen[2], last)
    for profile_id, (count, revenue, last) in totals.items():
        rows.extend(_order_rows(profile_id, count, revenue, last))
    if rows:
        session.execute(insert(MarketingProfileFact), rows)


def _order_rows(profile_id: int, count: int, revenue: int, last: datetime) -> list[dict[str, Any]]:
    return [
        {"key": "orders:count", "profile_id": profile_id, "kind": "number", "text_value": str(count), "number_value": float(count)},
        {"key": "orders:revenue", "profile_id": profile_id, "kind": "number", "text_value": str(revenue), "number_value": float(revenue)},
        {"key": "orders:last_at", "profile_id": profile_id, "kind": "string", "text_value": iso_seconds(last),
         "number_value": last.timestamp()},
    ]


def rebuild(session: Session, *, now: datetime | None = None) -> int:
    """Every fact again (see the module doc); how many there are."""
    _lock(session, exclusive=True)
    session.execute(delete(MarketingProfileFact))
    trait, identity, profile = CustomerTrait.__table__, CustomerIdentity.__table__, CustomerProfile.__table__
    ranked = select(
        identity.c.profile_id, trait.c.key, trait.c.value,
        func.row_number().over(partition_by=(identity.c.profile_id, trait.c.key),
                               order_by=(trait.c.verified.desc(), trait.c.observed_at.desc(), trait.c.identity_id.desc())).label("rank"),
    ).select_from(trait.join(identity, identity.c.id == trait.c.identity_id).join(profile, profile.c.id == identity.c.profile_id)).where(
        profile.c.status == "active").subquery()
    kind = json_kind(ranked.c.value)
    session.execute(insert(MarketingProfileFact).from_select(
        ["key", "profile_id", "kind", "text_value", "number_value"],
        select(literal("trait:") + ranked.c.key, ranked.c.profile_id, kind, json_text(ranked.c.value), json_number(ranked.c.value))
        .where(ranked.c.rank == 1, kind.is_not(None), kind != "null")))
    consent = CustomerConsent.__table__
    latest = select(
        identity.c.profile_id, consent.c.channel, consent.c.purpose, consent.c.granted,
        func.row_number().over(partition_by=(identity.c.profile_id, consent.c.channel, consent.c.purpose),
                               order_by=(consent.c.recorded_at.desc(), consent.c.id.desc())).label("rank"),
    ).select_from(consent.join(identity, identity.c.id == consent.c.identity_id).join(profile, profile.c.id == identity.c.profile_id)).where(
        profile.c.status == "active").subquery()
    session.execute(insert(MarketingProfileFact).from_select(
        ["key", "profile_id", "kind", "text_value", "number_value"],
        select(literal("consent:") + latest.c.channel + literal(":") + latest.c.purpose, latest.c.profile_id, literal("string"),
               _granted_text(latest.c.granted), literal(None)).where(latest.c.rank == 1)))
    order = CommerceOrder.__table__
    roots = merged_roots()
    owner = func.coalesce(roots.c.root, order.c.profile_id)
    summed = select(owner.label("profile_id"), func.count().label("n"), func.coalesce(func.sum(order.c.total), 0).label("revenue"),
                    func.max(order.c.created_at).label("last_at")).select_from(
        order.outerjoin(roots, roots.c.id == order.c.profile_id).join(profile, profile.c.id == owner)).where(
        order.c.profile_id.is_not(None), COUNTED_ORDER, profile.c.status == "active").group_by(owner).subquery()
    columns = ["key", "profile_id", "kind", "text_value", "number_value"]
    for key, number in (("orders:count", summed.c.n), ("orders:revenue", summed.c.revenue)):
        session.execute(insert(MarketingProfileFact).from_select(columns, select(
            literal(key), summed.c.profile_id, literal("number"), cast(number, String), cast(number, Float))))
    session.execute(insert(MarketingProfileFact).from_select(columns, select(
        literal("orders:last_at"), summed.c.profile_id, literal("string"), iso_text(summed.c.last_at), epoch_seconds(summed.c.last_at))))
    count = session.scalar(select(func.count()).select_from(MarketingProfileFact)) or 0
    _set_state(session, {"built_at": (now or utcnow()).isoformat(), "valid": True, "facts": count})
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE marketing_profile_fact"))
    return count


def merged_roots() -> Any:
    """(id, root) of every merged profile: the live profile it now belongs to (over several merges)."""
    merged = CustomerProfile.__table__.alias("merged")
    base = select(merged.c.id, merged.c.merged_into_id.label("root")).where(merged.c.status == "merged")
    walk = base.cte("merged_walk", recursive=True)
    up = CustomerProfile.__table__.alias("up")
    walk = walk.union_all(select(walk.c.id, up.c.merged_into_id).join(up, up.c.id == walk.c.root).where(up.c.status == "merged"))
    final = CustomerProfile.__table__.alias("final")
    return select(walk.c.id, walk.c.root).join(final, final.c.id == walk.c.root).where(final.c.status != "merged").subquery()


class epoch_seconds(FunctionElement):  # noqa: N801 - reads like a SQL function
    """Unix time of a stored UTC date-time."""

    inherit_cache = True
    type = Float()
    name = "epoch_seconds"


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(list(element.clauses)[0], **kw)}) AS DOUBLE PRECISION)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(list(element.clauses)[0], **kw)}) - 2440587.5) * 86400.0)"


class iso_text(FunctionElement):  # noqa: N801
    """A stored date-time as ISO 8601 UTC text to the second (2026-12-01T10:00:00Z)."""

    inherit_cache = True
    type = String()
    name = "iso_text"


@compiles(iso_text, "postgresql")
def _iso_pg(element: iso_text, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(list(element.clauses)[0], **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


@compiles(iso_text, "sqlite")
def _iso_sqlite(element: iso_text, compiler: Any, **kw: Any) -> str:
    value = compiler.process(list(element.clauses)[0], **kw)  # stored as UTC 'YYYY-MM-DD HH:MM:SS.ffffff'
    return f"(substr({value}, 1, 10) || 'T' || substr({value}, 12, 8) || 'Z')"


def iso_seconds(at: datetime) -> str:
    """`iso_text` in Python."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _granted_text(column: Any) -> Any:
    return case((column == literal(True), literal("granted")), else_=literal("withdrawn"))


def _set_state(session: Session, value: dict[str, Any]) -> None:
    row = session.get(MarketingState, STATE, with_for_update=True)
    if row is None:
        session.add(MarketingState(name=STATE, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()
    session.flush()


def mark_stale(session: Session) -> None:
    """The facts may have missed changes (no segment was active, so nothing listened)."""
    row = session.get(MarketingState, STATE, with_for_update=True)
    if row is not None and (row.value or {}).get("valid"):
        row.value, row.updated_at = {**row.value, "valid": False}, utcnow()


def ensure(session: Session, *, now: datetime | None = None) -> bool:
    """Rebuild the facts when they may be stale or were never built; whether it did."""
    row = session.get(MarketingState, STATE)
    if row is not None and (row.value or {}).get("valid"):
        return False
    rebuild(session, now=now)
    return True


