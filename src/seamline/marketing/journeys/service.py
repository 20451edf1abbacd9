"""Journeys: define, version, start, pause; enroll people; read each person's state.

The engine that moves people through steps is `journeys/engine.py`; what starts a journey for
someone (an event, a segment entry, a date, an order as a goal) reaches it through the reactor.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from seamline.commerce.models import CommercePromotion
from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.marketing.journeys import library
from seamline.marketing.journeys.definition import BranchStep, Definition, GiveCouponStep, SegmentTrigger, SendStep
from seamline.marketing.journeys.models import MarketingEnrollment, MarketingEnrollmentStep, MarketingJourney, MarketingJourneyVersion
from seamline.marketing.messages import service as messages
from seamline.marketing.messages.models import MarketingTemplate
from seamline.marketing.segments import compiler
from seamline.marketing.segments import rules as segment_rules
from seamline.marketing.segments import service as segments

DEFINITION = TypeAdapter(Definition)


@functools.lru_cache(maxsize=1024)
def _parsed(journey_id: int, version: int, definition_json: str) -> Definition:
    return DEFINITION.validate_python(json.loads(definition_json))


def definition_of(session: Session, journey_id: int, version: int) -> Definition:
    """A version's definition (parsed once per process, found once per transaction: versions never change)."""
    memo = session.info.setdefault("journey_definitions", {})
    if (journey_id, version) not in memo:
        row = session.get(MarketingJourneyVersion, (journey_id, version))
        if row is None:
            raise NotFound(f"Journey {journey_id} has no version {version}", code="journey_version_not_found")
        memo[(journey_id, version)] = _parsed(journey_id, version, json.dumps(row.definition, sort_keys=True))
    return memo[(journey_id, version)]


def current_definition(journey: MarketingJourney) -> Definition:
    return _parsed(journey.id, journey.version, json.dumps(journey.definition, sort_keys=True))


def get_journey(session: Session, journey_id: int, *, lock: bool = False) -> MarketingJourney:
    journey = session.get(MarketingJourney, journey_id, with_for_update=lock, populate_existing=lock)
    if journey is None:
        raise NotFound(f"Journey {journey_id} not found", code="journey_not_found")
    return journey


def list_journeys(session: Session, *, include_archived: bool = False) -> list[MarketingJourney]:
    """Journeys (not the ones campaigns run on: those are shown as campaigns)."""
    query = select(MarketingJourney).where(or_(MarketingJourney.template.is_(None), MarketingJourney.template != "campaign")).order_by(
        MarketingJourney.id)
    if not include_archived:
        query = query.where(MarketingJourney.status != "archived")
    return list(session.scalars(query))


def active_journeys(session: Session) -> list[tuple[MarketingJourney, Definition]]:
    return [(j, current_definition(j)) for j in session.scalars(
        select(MarketingJourney).where(MarketingJourney.status == "active").order_by(MarketingJourney.id))]


def _check_references(session: Session, definition: Definition) -> None:
    """What a definition names must exist: segments, templates, promotions that take coupons."""
    segment_ids = set()
    if isinstance(definition.trigger, SegmentTrigger):
        segment_ids.add(definition.trigger.segment_id)
    rules = [definition.audience] + [s.rule for s in definition.steps if isinstance(s, BranchStep) and s.rule is not None]
    for rule in rules:
        if rule is not None:
            segments.check_rule(rule)
            segment_ids |= segment_rules.referenced_segments(rule)
    _all_exist(segment_ids, lambda: {s.id for s in segments.list_segments(session)},
               "The journey uses segments that do not exist or are archived", "unknown_segment", "segment_ids")
    template_ids = {s.template_id for s in definition.steps if isinstance(s, SendStep)}
    _all_exist(template_ids, lambda: set(session.scalars(select(MarketingTemplate.id).where(
        MarketingTemplate.id.in_(template_ids), MarketingTemplate.archived.is_(False)))),
        "The journey sends templates that do not exist", "unknown_template", "template_ids")
    codes = {s.promotion for s in definition.steps if isinstance(s, GiveCouponStep)}
    _all_exist(codes, lambda: set(session.scalars(select(CommercePromotion.code).where(
        CommercePromotion.code.in_(codes), CommercePromotion.requires_coupon.is_(True)))),
        "Coupons can only be given for promotions that require one", "unknown_promotion", "promotions")


def _all_exist(wanted: set[Any], found: Callable[[], set[Any]], message: str, code: str, detail: str) -> None:
    """422 `code` naming those of `wanted` that `found()` (asked only when something is wanted) lacks."""
    if wanted and (missing := sorted(wanted - found())):
        raise Unprocessable(message, code=code, details={detail: missing})


def _dump(definition: Definition) -> dict[str, Any]:
    return DEFINITION.dump_python(definition, mode="json", exclude_none=True)


def create_journey(session: Session, *, name: str, description: str, definition: Definition, created_by: str,
                   template: str | None = None, idempotency_key: str | None = None) -> tuple[MarketingJourney, bool]:
    """A new journey, as a draft (nobody enters until it is started)."""
    if idempotency_key is not None:
        earlier = session.scalar(select(MarketingJourney).where(MarketingJourney.idempotency_key == idempotency_key))
        if earlier is not None:
            return earlier, False
    _check_references(session, definition)
    now = utcnow()
    dumped = _dump(definition)
    journey = MarketingJourney(name=name, description=description, status="draft", version=1, definition=dumped, template=template,
                               created_by=created_by, idempotency_key=idempotency_key, created_at=now, updated_at=now)
    session.add(journey)
    session.flush()
    session.add(MarketingJourneyVersion(journey_id=journey.id, version=1, definition=dumped, created_at=now))
    session.flush()
    return journey, True


def create_from_library(session: Session, *, data: Any, created_by: str, locale: str,
                        idempotency_key: str | None = None) -> tuple[MarketingJourney, bool]:
    """A ready-made journey (journeys/library.py) as a draft, with its message templates."""
    if idempotency_key is not None:
        earlier = session.scalar(select(MarketingJourney).where(MarketingJourney.idempotency_key == idempotency_key))
        if earlier is not None:
            return earlier, False
    ready = library.ready(data.template)
    if ready.needs_promotion and not data.promotion:
        raise Unprocessable("This journey gives a coupon: name the promotion (one that requires a coupon)",
                            code="promotion_required", details={"template": data.template})
    name = data.name or ready.name.get(locale, ready.name["en"])
    template_ids = {}
    for key, content in ready.messages.items():
        template, _ = messages.create_template(session, name=f"{name}: {library.message_name(key, locale)}", content=content,
                                               created_by=created_by)
        template_ids[key] = template.id
    definition = DEFINITION.validate_python(ready.build(template_ids, data.promotion, data.channel))
    journey, new = create_journey(session, name=name, description=ready.description, definition=definition, created_by=created_by,
                                  template=data.template, idempotency_key=idempotency_key)
    return journey, new


def update_journey(session: Session, *, journey_id: int, name: str | None = None, description: str | None = None,
                   definition: Definition | None = None) -> MarketingJourney:
    """A new name or description, or a new version of the definition: people in flight keep the
    version they entered with; people entering from now on get the new one."""
    journey = get_journey(session, journey_id, lock=True)
    if journey.status == "archived":
        raise Conflict("An archived journey cannot be edited", code="journey_archived")
    if name is not None:
        journey.name = name
    if description is not None:
        journey.description = description
    if definition is not None:
        _check_references(session, definition)
        dumped = _dump(definition)
        if dumped != journey.definition:
            journey.version += 1
            journey.definition = dumped
            session.add(MarketingJourneyVersion(journey_id=journey.id, version=journey.version, definition=dumped, created_at=utcnow()))
    journey.updated_at = utcnow()
    session.flush()
    return journey


STATUS_MOVES = {"start": ({"draft", "paused"}, "active"), "pause": ({"active"}, "paused"),
                "archive": ({"draft", "active", "paused"}, "archived")}


def set_status(session: Session, *, journey_id: int, action: str, now: datetime | None = None) -> MarketingJourney:
    """start (draft or paused -> active), pause (nobody enters, nobody moves: waits that end
    while paused run when it starts again), archive (everyone in it leaves). Repeating an action
    already done changes nothing."""
    allowed, target = STATUS_MOVES[action]
    journey = get_journey(session, journey_id, lock=True)
    if journey.status == target:
        return journey
    if journey.status not in allowed:
        raise Conflict(f"A {journey.status} journey cannot {action}", code="journey_status",
                       details={"status": journey.status, "action": action})
    journey.status, journey.updated_at = target, now or utcnow()
    if target == "archived":
        finish_all(session, journey_id=journey.id, reason="archived", now=now)
    return journey


def finish(enrollment: MarketingEnrollment, reason: str, now: datetime) -> None:
    enrollment.status, enrollment.exit_reason, enrollment.finished_at = "done", reason, now
    enrollment.wake_at = enrollment.step_id = enrollment.waiting_step = None


def finish_all(session: Session, *, journey_id: int, reason: str, now: datetime | None = None) -> int:
    now = now or utcnow()
    live = list(session.scalars(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey_id,
                                                                  MarketingEnrollment.status == "waiting").with_for_update()))
    for enrollment in live:
        finish(enrollment, reason, now)
    return len(live)


# --- entering --------------------------------------------------------------------------------


def _may_enter(session: Session, journey: MarketingJourney, definition: Definition, profile_id: int, now: datetime) -> str | None:
    """Why this person may not enter now, or None."""
    last = session.scalar(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey.id,
                                                            MarketingEnrollment.profile_id == profile_id)
                          .order_by(MarketingEnrollment.id.desc()).limit(1))
    if last is not None:
        if last.status == "waiting":
            return "already_in"
        policy = definition.reentry
        if policy.policy == "never":
            return "entered_before"
        if policy.policy == "after_days" and (now - last.entered_at).total_seconds() < policy.days * 86400:
            return "entered_recently"
    if definition.audience is not None:
        families = {profile_id: customers_service.merged_profile_ids(session, profile_id)}
        held = session.scalars(compiler.members(definition.audience, compiler.Scope.of(now, families))).first()
        if held is None:
            return "not_in_audience"
    return None


def _insert_enrollment(session: Session, values: dict[str, Any]) -> int | None:
    """Insert unless the person is already in the journey (the live-enrollment unique index:
    two triggers at once enroll once); the new id or None."""
    table = MarketingEnrollment.__table__
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(**values)
    statement = insert.on_conflict_do_nothing(index_elements=["journey_id", "profile_id"], index_where=text("status = 'waiting'"))
    return session.execute(statement.returning(table.c.id)).scalar()


def enroll(session: Session, *, journey: MarketingJourney, profile_id: int, context: dict[str, Any] | None = None,
           now: datetime | None = None, check: bool = True) -> tuple[MarketingEnrollment | None, str | None]:
    """Put a person into a journey: they wait at its first step, due now (the engine runs it).
    (the enrollment, None) or (None, why not)."""
    now = now or utcnow()
    if journey.status != "active":
        return None, "journey_not_active"
    profile = resolution.canonical_profile(session, profile_id)
    if profile.status != "active":
        return None, "customer_not_active"
    definition = current_definition(journey)
    if check and (reason := _may_enter(session, journey, definition, profile.id, now)) is not None:
        return None, reason
    new_id = _insert_enrollment(session, {
        "journey_id": journey.id, "version": journey.version, "profile_id": profile.id, "status": "waiting",
        "step_id": definition.start, "wake_at": now, "context": context or {}, "entered_at": now})
    if new_id is None:
        return None, "already_in"
    return session.get(MarketingEnrollment, new_id), None


# --- reading ---------------------------------------------------------------------------------


def enrollments_page(session: Session, *, journey_id: int, status: str | None = None, limit: int = 50,
                     before_id: int | None = None) -> list[MarketingEnrollment]:
    get_journey(session, journey_id)
    query = select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey_id)
    if status is not None:
        query = query.where(MarketingEnrollment.status == status)
    if before_id is not None:
        query = query.where(MarketingEnrollment.id < before_id)
    return list(session.scalars(query.order_by(MarketingEnrollment.id.desc()).limit(limit)))


def get_enrollment(session: Session, enrollment_id: int) -> MarketingEnrollment:
    enrollment = session.get(MarketingEnrollment, enrollment_id)
    if enrollment is None:
        raise NotFound(f"Enrollment {enrollment_id} not found", code="enrollment_not_found")
    return enrollment


def steps_of(session: Session, enrollment_id: int) -> list[MarketingEnrollmentStep]:
    return list(session.scalars(select(MarketingEnrollmentStep).where(MarketingEnrollmentStep.enrollment_id == enrollment_id)
                                .order_by(MarketingEnrollmentStep.id)))


def counts(session: Session, journey_id: int) -> dict[str, Any]:
    """How many are in the journey at each step, and how many left for each reason."""
    waiting = dict(session.execute(select(func.coalesce(MarketingEnrollment.waiting_step, MarketingEnrollment.step_id), func.count())
                                   .where(MarketingEnrollment.journey_id == journey_id, MarketingEnrollment.status == "waiting")
                                   .group_by(func.coalesce(MarketingEnrollment.waiting_step, MarketingEnrollment.step_id))).all())
    done = dict(session.execute(select(MarketingEnrollment.exit_reason, func.count())
                                .where(MarketingEnrollment.journey_id == journey_id, MarketingEnrollment.status == "done")
                                .group_by(MarketingEnrollment.exit_reason)).all())
    return {"in_journey": sum(waiting.values()), "at_step": {k or "end": v for k, v in waiting.items()}, "left": done}
