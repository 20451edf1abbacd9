"""Segments: define them, evaluate them in the database, keep membership current.

Two evaluations write membership, both with the segment's row locked (`_lock`), so they never
interleave on one segment:

- `evaluate` (full): the rule over everyone into a scratch table in one statement, then the
  differences with the members written as set operations. Run when a segment is created or
  edited, and periodically (`marketing_segment_refresh_seconds`) because time alone moves people
  in and out of a window ("ordered in the last 30 days").
- `evaluate_people` (incremental): the rules of every active segment over the people something
  just happened to (an event, an order, a changed trait or consent, a merge), called by the
  marketing reactor in the job that carries the change. Returns the entries and exits, which
  journeys start on.

Entries and exits after a segment's first full evaluation are appended to
`marketing_segment_change` (the first one only fills the segment: its members did not just
enter it).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import BigInteger, Column, MetaData, Table, delete, exists, func, insert, literal, select, text
from sqlalchemy.orm import Session

from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.models import CustomerProfile
from seamline.marketing.segments import compiler, facts
from seamline.marketing.segments import rules as r
from seamline.marketing.segments.models import MarketingSegment, MarketingSegmentChange, MarketingSegmentMember
from seamline.marketing.segments.schemas import SegmentCreate, SegmentUpdate

RULE = TypeAdapter(r.Rule)
#: The scratch table a full evaluation fills (a temporary table: each connection has its own).
_scratch = Table("marketing_segment_eval", MetaData(), Column("profile_id", BigInteger, primary_key=True), prefixes=["TEMPORARY"])
#: Memory PostgreSQL may give one evaluation's hash tables: a condition's set of a million
#: people is then hashed once instead of scanned again for every profile.
EVALUATION_WORK_MEM = "256MB"


@functools.lru_cache(maxsize=512)
def _parsed(segment_id: int, version: int, rules_json: str) -> r.Rule:
    return RULE.validate_python(json.loads(rules_json))


def rule_of(segment: MarketingSegment) -> r.Rule:
    return _parsed(segment.id, segment.version, json.dumps(segment.rules, sort_keys=True))


def check_rule(rule: r.Rule) -> r.Rule:
    """The rule, or 422 `invalid_rule` when it is too big."""
    try:
        r.check_size(rule)
    except ValueError as exc:
        raise Unprocessable(f"The segment rule is not valid: {exc}", code="invalid_rule") from None
    return rule


# --- definitions -----------------------------------------------------------------------------


def get_segment(session: Session, segment_id: int) -> MarketingSegment:
    segment = session.get(MarketingSegment, segment_id)
    if segment is None:
        raise NotFound(f"Segment {segment_id} not found", code="segment_not_found")
    return segment


def list_segments(session: Session, *, include_archived: bool = False) -> list[MarketingSegment]:
    query = select(MarketingSegment).order_by(MarketingSegment.id)
    if not include_archived:
        query = query.where(MarketingSegment.status == "active")
    return list(session.scalars(query))


def _check_references(session: Session, rule: r.Rule, *, segment_id: int | None) -> None:
    """Segments a rule uses must exist and be active, and none may lead back to this one."""
    wanted = r.referenced_segments(rule)
    if not wanted:
        return
    graph = {s.id: r.referenced_segments(rule_of(s)) for s in list_segments(session)}
    missing = sorted(wanted - set(graph))
    if missing:
        raise Unprocessable("The rule uses segments that do not exist or are archived", code="unknown_segment",
                            details={"segment_ids": missing})
    if segment_id is None:
        return
    stack, seen = list(wanted), set()
    while stack:
        current = stack.pop()
        if current == segment_id:
            raise Unprocessable("The rule would make the segment depend on itself", code="segment_cycle",
                                details={"segment_id": segment_id})
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))


def create_segment(session: Session, *, data: SegmentCreate, created_by: str,
                   idempotency_key: str | None = None) -> tuple[MarketingSegment, bool]:
    """A new segment (not evaluated yet); a retry with the same Idempotency-Key returns the first
    one. (segment, whether new)"""
    if idempotency_key is not None:
        earlier = session.scalar(select(MarketingSegment).where(MarketingSegment.idempotency_key == idempotency_key))
        if earlier is not None:
            if earlier.name != data.name:
                raise Unprocessable("This Idempotency-Key was used for another segment", code="idempotency_key_reused")
            return earlier, False
    rule = check_rule(data.rules)
    _check_references(session, rule, segment_id=None)
    now = utcnow()
    segment = MarketingSegment(name=data.name, description=data.description, rules=RULE.dump_python(rule, mode="json", exclude_none=True),
                               status="active", version=1, member_count=0, created_by=created_by, created_at=now, updated_at=now,
                               idempotency_key=idempotency_key)
    session.add(segment)
    session.flush()
    return segment, True


def update_segment(session: Session, *, segment_id: int, data: SegmentUpdate) -> MarketingSegment:
    """A new name, description or rule. A new rule raises the version; the caller evaluates it
    again (members who no longer fit leave, with an exit each; newcomers enter)."""
    segment = _lock(session, segment_id)
    if segment.status != "active":
        raise Conflict("An archived segment cannot be edited", code="segment_archived")
    if data.name is not None:
        segment.name = data.name
    if data.description is not None:
        segment.description = data.description
    if data.rules is not None:
        rule = check_rule(data.rules)
        _check_references(session, rule, segment_id=segment.id)
        dumped = RULE.dump_python(rule, mode="json", exclude_none=True)
        if dumped != segment.rules:
            segment.rules, segment.version = dumped, segment.version + 1
    segment.updated_at = utcnow()
    return segment


def archive_segment(session: Session, *, segment_id: int) -> MarketingSegment:
    """Stop evaluating a segment and empty it (its history stays). Refused while another active
    segment's rule uses it."""
    segment = _lock(session, segment_id)
    users = [s.id for s in list_segments(session) if s.id != segment.id and segment.id in r.referenced_segments(rule_of(s))]
    if users:
        raise Conflict("Other segments use this one", code="segment_in_use", details={"segment_ids": users})
    segment.status, segment.updated_at, segment.member_count = "archived", utcnow(), 0
    session.execute(delete(MarketingSegmentMember).where(MarketingSegmentMember.segment_id == segment.id))
    session.flush()
    if not list_segments(session):  # nothing listens now: the facts will miss changes
        facts.mark_stale(session)
    return segment


def _lock(session: Session, segment_id: int) -> MarketingSegment:
    segment = session.get(MarketingSegment, segment_id, with_for_update=True, populate_existing=True)
    if segment is None:
        raise NotFound(f"Segment {segment_id} not found", code="segment_not_found")
    return segment


def in_dependency_order(segments: Iterable[MarketingSegment]) -> list[MarketingSegment]:
    """Segments ordered so that one using another comes after it (ties by id)."""
    pending = {s.id: s for s in segments}
    done: list[MarketingSegment] = []
    while pending:
        ready = [s for s in pending.values() if not (r.referenced_segments(rule_of(s)) & set(pending))]
        if not ready:  # a cycle cannot be saved; evaluate the rest in id order rather than stall
            ready = list(pending.values())
        for segment in sorted(ready, key=lambda s: s.id):
            done.append(segment)
            pending.pop(segment.id)
    return done


# --- full evaluation -------------------------------------------------------------------------


@dataclass
class Evaluation:
    segment_id: int
    members: int
    entered: int
    exited: int
    milliseconds: int


def _tune(session: Session) -> None:
    """PostgreSQL settings for an evaluation over everyone, for this transaction only: memory to
    hash each condition's set once, and no nested loops. Each condition reads its whole set
    anyway, and the planner's row estimates for JSON tests are guesses: a nested loop chosen on a
    guess of one row ran a condition again for every person (4.4 s against 0.08 s at 20,000
    profiles, bench/marketing_segments.py)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{EVALUATION_WORK_MEM}'"))
        session.execute(text("SET LOCAL enable_nestloop = off"))


def _fresh_scratch(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS marketing_segment_eval (profile_id BIGINT PRIMARY KEY) "
                             "ON COMMIT DROP"))
        session.execute(text("TRUNCATE marketing_segment_eval"))
    else:
        session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS marketing_segment_eval (profile_id INTEGER PRIMARY KEY)"))
        session.execute(text("DELETE FROM marketing_segment_eval"))


def evaluate(session: Session, *, segment_id: int, now: datetime | None = None, cause: str = "refresh") -> Evaluation:
    """Evaluate a segment over everyone and write the differences (see the module doc)."""
    started = time.perf_counter()
    now = now or utcnow()
    segment = _lock(session, segment_id)
    if segment.status != "active":
        raise Conflict("An archived segment is not evaluated", code="segment_archived")
    rule = rule_of(segment)
    facts.ensure(session, now=now)
    _tune(session)
    _fresh_scratch(session)
    connection = session.connection()
    connection.execute(insert(_scratch).from_select(["profile_id"], compiler.members(rule, compiler.Scope.everyone(now))))
    member, scratch = MarketingSegmentMember.__table__, _scratch
    is_member = exists().where(member.c.segment_id == segment.id, member.c.profile_id == scratch.c.profile_id)
    in_scratch = exists().where(scratch.c.profile_id == member.c.profile_id)
    entering = select(scratch.c.profile_id).where(~is_member)
    leaving = select(member.c.profile_id).where(member.c.segment_id == segment.id, ~in_scratch)
    logged = segment.evaluated_version is not None
    change = MarketingSegmentChange.__table__
    if logged:
        for kind, query in (("exited", leaving), ("entered", entering)):
            connection.execute(insert(change).from_select(
                ["segment_id", "profile_id", "change", "cause", "at"],
                query.with_only_columns(literal(segment.id), query.selected_columns[0], literal(kind), literal(cause), literal(now, type_=change.c.at.type))))
    # counted, not read from rowcount: an INSERT ... SELECT of nothing reports -1 on PostgreSQL
    exited = session.scalar(select(func.count()).select_from(leaving.subquery())) or 0
    entered = session.scalar(select(func.count()).select_from(entering.subquery())) or 0
    connection.execute(delete(member).where(member.c.segment_id == segment.id, ~in_scratch))
    connection.execute(insert(member).from_select(
        ["segment_id", "profile_id", "entered_at"],
        entering.with_only_columns(literal(segment.id), scratch.c.profile_id, literal(now, type_=member.c.entered_at.type))))
    count = session.scalar(select(func.count()).select_from(scratch)) or 0
    milliseconds = int((time.perf_counter() - started) * 1000)
    segment.member_count, segment.evaluated_at, segment.evaluated_version, segment.evaluation_ms = count, now, segment.version, milliseconds
    return Evaluation(segment.id, count, entered, exited, milliseconds)


def estimate(session: Session, *, rule: r.Rule, now: datetime | None = None, sample: int = 10) -> dict[str, Any]:
    """How many people a rule holds for now, and a few of them (a rule being edited: nothing is written)."""
    started = time.perf_counter()
    now = now or utcnow()
    check_rule(rule)
    _check_references(session, rule, segment_id=None)
    facts.ensure(session, now=now)
    _tune(session)
    query = compiler.members(rule, compiler.Scope.everyone(now)).subquery()
    # One statement: the window's count needs every member before the limit applies, so the plan
    # is the full evaluation's (a bare LIMIT would walk profiles one by one through each condition).
    rows = session.execute(select(query.c.id, func.count().over()).order_by(query.c.id.desc()).limit(max(sample, 1))).all()
    count = rows[0][1] if rows else 0
    ids = [row[0] for row in rows][:sample]
    total = session.scalar(select(func.count()).select_from(CustomerProfile).where(CustomerProfile.status == "active")) or 0
    return {"count": count, "of": total, "sample_ids": ids, "milliseconds": int((time.perf_counter() - started) * 1000)}


# --- incremental evaluation ----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    segment_id: int
    profile_id: int
    change: str  # entered | exited


def _live_families(session: Session, profile_ids: Iterable[int]) -> tuple[dict[int, list[int]], set[int]]:
    """({live profile: it and the profiles merged into it} for the live profiles these ids lead
    to, the ids that are not live themselves)."""
    ids = set(profile_ids)
    canonical = resolution.canonical_profiles(session, ids)
    live = {p.id for p in canonical.values() if p.status == "active"}
    families = customers_service.merged_profile_ids_many(session, sorted(live)) if live else {}
    not_live = {i for i in ids if i not in live}
    return families, not_live


def evaluate_people(session: Session, *, profile_ids: Iterable[int], cause: str, now: datetime | None = None) -> list[Change]:
    """Re-evaluate every active segment for these people (see the module doc); the changes made."""
    now = now or utcnow()
    families, not_live = _live_families(session, profile_ids)
    facts.refresh(session, families, not_live)
    member = MarketingSegmentMember.__table__
    if not_live:  # merged away or erased: their memberships live on in the survivor's, or end
        session.execute(delete(member).where(member.c.profile_id.in_(sorted(not_live))))
    if not families:
        return []
    segments = [s for s in session.scalars(select(MarketingSegment).where(MarketingSegment.status == "active")
                                           .order_by(MarketingSegment.id).with_for_update(of=MarketingSegment))
                if s.evaluated_version is not None]
    people = sorted(families)
    scope = compiler.Scope.of(now, families)
    changes: list[Change] = []
    for segment in in_dependency_order(segments):
        now_in = set(session.scalars(compiler.members(rule_of(segment), scope)))
        were_in = set(session.scalars(select(member.c.profile_id).where(member.c.segment_id == segment.id,
                                                                        member.c.profile_id.in_(people))))
        entered, exited = sorted(now_in - were_in), sorted(were_in - now_in)
        if exited:
            session.execute(delete(member).where(member.c.segment_id == segment.id, member.c.profile_id.in_(exited)))
        if entered:
            session.execute(insert(member), [{"segment_id": segment.id, "profile_id": p, "entered_at": now} for p in entered])
        moved = [Change(segment.id, p, "entered") for p in entered] + [Change(segment.id, p, "exited") for p in exited]
        if moved:
            session.execute(insert(MarketingSegmentChange.__table__), [
                {"segment_id": c.segment_id, "profile_id": c.profile_id, "change": c.change, "cause": cause, "at": now} for c in moved])
            segment.member_count = segment.member_count + len(entered) - len(exited)
            changes.extend(moved)
    return changes


# --- reading ---------------------------------------------------------------------------------


def members_page(session: Session, *, segment_id: int, limit: int = 50, after_id: int | None = None) -> list[MarketingSegmentMember]:
    get_segment(session, segment_id)
    query = select(MarketingSegmentMember).where(MarketingSegmentMember.segment_id == segment_id)
    if after_id is not None:
        query = query.where(MarketingSegmentMember.profile_id > after_id)
    return list(session.scalars(query.order_by(MarketingSegmentMember.profile_id).limit(limit)))


def segments_of(session: Session, profile_ids: list[int]) -> list[tuple[MarketingSegment, datetime]]:
    """The active segments these profiles (one person) are in, with when they entered."""
    rows = session.execute(select(MarketingSegment, func.min(MarketingSegmentMember.entered_at))
                           .join(MarketingSegmentMember, MarketingSegmentMember.segment_id == MarketingSegment.id)
                           .where(MarketingSegmentMember.profile_id.in_(profile_ids), MarketingSegment.status == "active")
                           .group_by(MarketingSegment.id).order_by(MarketingSegment.id))
    return [(segment, entered) for segment, entered in rows]


def changes_of(session: Session, profile_ids: list[int], *, limit: int = 100, before: datetime | None = None) -> list[tuple[MarketingSegmentChange, str]]:
    """The person's entries and exits, newest first, with each segment's name."""
    query = (select(MarketingSegmentChange, MarketingSegment.name)
             .join(MarketingSegment, MarketingSegment.id == MarketingSegmentChange.segment_id)
             .where(MarketingSegmentChange.profile_id.in_(profile_ids)))
    if before is not None:
        query = query.where(MarketingSegmentChange.at < before)
    return [(c, name) for c, name in session.execute(query.order_by(MarketingSegmentChange.at.desc(), MarketingSegmentChange.id.desc()).limit(limit))]


def due_for_refresh(session: Session, *, older_than: datetime) -> list[int]:
    """Active segments whose last full evaluation is older than `older_than` (or that never had one)."""
    return list(session.scalars(select(MarketingSegment.id).where(
        MarketingSegment.status == "active",
        (MarketingSegment.evaluated_at.is_(None)) | (MarketingSegment.evaluated_at < older_than)
        | (MarketingSegment.evaluated_version != MarketingSegment.version)).order_by(MarketingSegment.id)))
