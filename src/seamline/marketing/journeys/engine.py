"""Moving people through journeys.

`advance_due` takes the enrollments whose time has come (the partial index of waiting ones by
`wake_at`, locked with SKIP LOCKED so several workers share the work), and runs each person's
steps until they wait again or leave. Every step a person passes is recorded once
(`MarketingEnrollmentStep`, unique per enrollment and step) in the same transaction as its
effect, so a message, points or a coupon are given once even when a worker dies halfway (the
transaction rolls back, the enrollment is due again, the step runs again).

What happens to people from outside (`on_events`, `on_orders`, `on_segment_changes`, called by
the reactor in its job): a goal reached ends their journeys as converted; an awaited event moves
them on; a trigger enrolls them. People moved this way are made due now, and the advance job is
queued, so they go on within the same second.

Paused journeys hold everyone where they are (waits that end meanwhile run when it restarts);
archived ones end everyone's way (`archived`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce.models import CommerceCoupon, CommercePromotion
from seamline.core.config import Settings
from seamline.core.errors import describe_error
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.inbox import service as inbox_service
from seamline.inbox.models import InboxMessage
from seamline.loyalty import ledger as loyalty_ledger
from seamline.loyalty import rules as loyalty_rules
from seamline.marketing.journeys import service
from seamline.marketing.journeys.definition import (BranchStep, DateTrigger, Definition, EventGoal, EventTrigger, GiveCouponStep,
                                                    GivePointsStep, NotifyAgentStep, OrderGoal, SegmentTrigger, SendStep,
                                                    SplitStep, UpdateTraitStep, WaitStep)
from seamline.marketing.journeys.models import MarketingEnrollment, MarketingEnrollmentStep, MarketingJourney
from seamline.marketing.messages import service as messages
from seamline.marketing.messages.models import MarketingMessage, MarketingTemplate
from seamline.marketing.optichannel import service as optichannel
from seamline.marketing.segments import compiler, facts
from seamline.marketing.segments.models import MarketingProfileFact
from seamline.marketing.segments.rules import properties_pass

log = structlog.get_logger("seamline.marketing.journeys")

#: Steps one person may pass in one go (a journey has at most 50).
MAX_STEPS_AT_ONCE = 60
#: How long a holdout person is followed for the goal (their conversions are the baseline).
HOLDOUT_FOLLOW = timedelta(days=7)
#: An order this long after a journey ended still counts as its conversion.
ATTRIBUTION_WINDOW = timedelta(days=7)
#: Inbox label of the tasks a journey gives agents.
TASK_LABEL = "marketing"


@dataclass(frozen=True)
class Happened:
    """An event of a person, as journeys see it."""

    profile_id: int
    name: str
    kind: str
    properties: dict[str, Any]
    at: datetime


# --- running steps ---------------------------------------------------------------------------


def _record(session: Session, enrollment: MarketingEnrollment, step_id: str, outcome: dict[str, Any], now: datetime) -> bool:
    """Record that the person passed a step; False when they already had (nothing is done twice)."""
    try:
        with session.begin_nested():
            session.add(MarketingEnrollmentStep(enrollment_id=enrollment.id, step_id=step_id, at=now, outcome=outcome))
            session.flush()
    except IntegrityError:
        return False
    return True


def _next_clock(clock: str, zone: str, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    at = datetime.combine(local.date(), time.fromisoformat(clock), tzinfo=local.tzinfo)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), time.fromisoformat(clock), tzinfo=local.tzinfo)
    return at.astimezone(now.tzinfo)


def _wake_times(session: Session, settings: Settings, waits: list[tuple[MarketingEnrollment, WaitStep]], zones: dict[int, str],
                now: datetime) -> dict[int, datetime]:
    """{enrollment id: when its wait "until" a clock time ends}: HH:MM's next moment, or "best"
    (the person's best hour by the next-best-channel model, drawn once per enrollment and step)."""
    best = {e.profile_id: f"{e.id}:{step.id}" for e, step in waits if step.until == "best"}
    moments = optichannel.best_moments(session, settings, {p: zones[p] for p in best}, seeds=best, now=now) if best else {}
    return {e.id: moments[e.profile_id] if step.until == "best" else _next_clock(step.until, zones[e.profile_id], now)
            for e, step in waits}


def arm_of(step: SplitStep, journey_id: int, profile_id: int) -> Any:
    """The person's arm: by a hash of journey and person, so it is random but stays the same."""
    point = int.from_bytes(hashlib.sha256(f"{journey_id}:{step.id}:{profile_id}".encode()).digest()[:8], "big") % 100
    for arm in step.arms:
        if point < arm.percent:
            return arm
        point -= arm.percent
    return step.arms[-1]


def _engaged(session: Session, enrollment: MarketingEnrollment, how: str) -> bool:
    """Whether the person engaged with this journey's last message to them: delivered (or
    read), opened or clicked (tracked: docs/marketing.md), or replied (they wrote after it)."""
    last = session.scalar(select(MarketingMessage).where(MarketingMessage.enrollment_id == enrollment.id,
                                                         MarketingMessage.status == "queued")
                          .order_by(MarketingMessage.id.desc()).limit(1))
    if last is None or last.inbox_message_id is None:
        return False
    sent = session.get(InboxMessage, last.inbox_message_id)
    if sent is None:
        return False
    if how == "delivered":
        return sent.delivery_status in ("delivered", "read")
    if how == "opened":
        return sent.delivery_status == "read" or getattr(last, "opened_at", None) is not None
    if how == "clicked":
        return getattr(last, "clicked_at", None) is not None
    return session.scalar(select(InboxMessage.id).where(
        InboxMessage.conversation_id == sent.conversation_id, InboxMessage.direction == "in",
        InboxMessage.id > sent.id).limit(1)) is not None


def _coupon(session: Session, step: GiveCouponStep, enrollment: MarketingEnrollment, settings: Settings, now: datetime) -> dict[str, Any]:
    promotion = session.scalar(select(CommercePromotion).where(CommercePromotion.code == step.promotion))
    person = messages.person_of(session, settings, enrollment.profile_id)
    zone = person["timezone"]
    local_end = datetime.combine(now.astimezone(ZoneInfo(zone)).date() + timedelta(days=step.valid_days - 1), time(23, 59, 59),
                                 tzinfo=ZoneInfo(zone))
    code = f"{step.promotion[:12].upper()}-{secrets.token_hex(4).upper()}"
    session.add(CommerceCoupon(code=code, promotion_id=promotion.id, usage_limit=1, per_customer_limit=1, active=True,
                               profile_id=enrollment.profile_id, expires_at=local_end.astimezone(now.tzinfo)))
    session.flush()
    coupon = {"code": code, "valid_until": local_end.isoformat(), "promotion": promotion.code,
              "name": promotion.name_ru if person["locale"] == "ru" else promotion.name_en}
    if step.store_from_context and enrollment.context.get("store"):
        coupon["store"] = enrollment.context["store"]
    return coupon


def _points(session: Session, step: GivePointsStep, enrollment: MarketingEnrollment, now: datetime) -> dict[str, Any]:
    program = loyalty_rules.get_program(session)
    account = loyalty_ledger.account_for(session, enrollment.profile_id, program=program, create=True, now=now)
    key = f"marketing:{enrollment.id}:{enrollment.step_id}"
    if not loyalty_ledger.applied(session, key):
        account = loyalty_ledger.lock_account(session, account.id)
        loyalty_ledger.credit(session, account, step.points, kind="bonus", program=program, now=now, key=key,
                              reference=f"journey:{enrollment.journey_id}", comment=step.comment)
    return {"points": step.points}


def run(session: Session, settings: Settings, enrollment: MarketingEnrollment, now: datetime) -> None:
    """Run the person's due steps until they wait again or leave."""
    definition = service.definition_of(session, enrollment.journey_id, enrollment.version)
    journey = session.get(MarketingJourney, enrollment.journey_id)
    for _ in range(MAX_STEPS_AT_ONCE):
        if enrollment.status != "waiting":
            return
        if enrollment.step_id is None:  # the end (after a last wait), or a holdout's follow-up ran out
            service.finish(enrollment, "holdout" if enrollment.arm and _is_holdout(definition, enrollment.arm) else "completed", now)
            return
        step = definition.step(enrollment.step_id)
        if isinstance(step, WaitStep):
            if step.for_event is not None:
                _record(session, enrollment, step.id, {"waiting_for": step.for_event.name}, now)
                enrollment.waiting_step, enrollment.step_id = step.id, step.timeout_next
                enrollment.wake_at = now + timedelta(minutes=step.timeout_minutes)
                return
            until = now + timedelta(minutes=step.minutes) if step.minutes else _wake_times(
                session, settings, [(enrollment, step)], {enrollment.profile_id: messages.person_of(session, settings, enrollment.profile_id)["timezone"]},
                now)[enrollment.id]
            _record(session, enrollment, step.id, {"until": until.isoformat()}, now)
            enrollment.step_id, enrollment.wake_at = step.next, until
            return
        if isinstance(step, SendStep):
            template = messages.get_template(session, step.template_id)
            cap = (definition.frequency_cap.messages, definition.frequency_cap.days) if definition.frequency_cap else None
            outcome = messages.deliver(session, settings=settings, profile_id=enrollment.profile_id, template=template,
                                       channel=step.channel, key=f"journey:{enrollment.id}:{step.id}",
                                       context={**enrollment.context, "journey": {"id": journey.id, "name": journey.name}},
                                       journey_id=journey.id, enrollment_id=enrollment.id, step_id=step.id, arm=enrollment.arm,
                                       cap=cap, now=now)
            if outcome.status == "held":  # quiet hours: the same step again when they end
                enrollment.wake_at = outcome.until
                return
            if _record(session, enrollment, step.id, {"status": outcome.status, "reason": outcome.reason,
                                                      "message_id": outcome.inbox_message_id}, now):
                enrollment.step_id = step.next
            continue
        if isinstance(step, BranchStep):
            if step.rule is not None:
                families = {enrollment.profile_id: customers_service.merged_profile_ids(session, enrollment.profile_id)}
                yes = session.scalars(compiler.members(step.rule, compiler.Scope.of(now, families))).first() is not None
            else:
                yes = _engaged(session, enrollment, step.engaged)
            _record(session, enrollment, step.id, {"branch": "yes" if yes else "no"}, now)
            enrollment.step_id = step.next if yes else step.else_next
            continue
        if isinstance(step, SplitStep):
            arm = arm_of(step, journey.id, enrollment.profile_id)
            _record(session, enrollment, step.id, {"arm": arm.name}, now)
            enrollment.arm = arm.name
            if arm.holdout:  # followed for the goal, sent nothing
                enrollment.step_id, enrollment.wake_at = None, now + HOLDOUT_FOLLOW
                return
            enrollment.step_id = arm.next
            continue
        if isinstance(step, UpdateTraitStep):
            if _record(session, enrollment, step.id, {"key": step.key}, now):
                anchor = customers_service.anchor_identity(session, enrollment.profile_id)
                if anchor is not None:
                    customers_service.set_traits(session, identity_id=anchor.id, traits={step.key: step.value}, source="marketing",
                                                 observed_at=now, verified=True)
            enrollment.step_id = step.next
            continue
        if isinstance(step, GivePointsStep):
            if _record(session, enrollment, step.id, {"points": step.points}, now):
                _points(session, step, enrollment, now)
            enrollment.step_id = step.next
            continue
        if isinstance(step, GiveCouponStep):
            coupon = _coupon(session, step, enrollment, settings, now)
            if _record(session, enrollment, step.id, {"coupon": coupon["code"]}, now):
                enrollment.context = {**enrollment.context, "coupon": coupon}
            enrollment.step_id = step.next
            continue
        if isinstance(step, NotifyAgentStep):
            if _record(session, enrollment, step.id, {}, now):
                inbox_service.open_task(session, settings=settings, customer_id=enrollment.profile_id, text=step.text, label=TASK_LABEL,
                                        data={"journey_id": journey.id, "enrollment_id": enrollment.id})
            enrollment.step_id = step.next
            continue
        raise AssertionError(f"unknown step {step!r}")
    raise RuntimeError(f"enrollment {enrollment.id} passed {MAX_STEPS_AT_ONCE} steps at once")


def _is_holdout(definition: Definition, arm_name: str) -> bool:
    return any(arm.holdout and arm.name == arm_name for step in definition.steps if isinstance(step, SplitStep) for arm in step.arms)


def _send_together(session: Session, settings: Settings, due: list[MarketingEnrollment], now: datetime) -> set[int]:
    """The send steps the due people are at, all at once (`messages.deliver_many`): a campaign's
    or a busy journey's thousands of messages cost a few queries each, not one round of lookups
    per person. Each sent step is recorded as `run` records it; the ids of those held by quiet
    hours (they wait for the morning) are returned."""
    at_send: list[tuple[MarketingEnrollment, Definition, SendStep]] = []
    for enrollment in due:
        if enrollment.step_id is None or enrollment.waiting_step is not None:
            continue
        definition = service.definition_of(session, enrollment.journey_id, enrollment.version)
        step = definition.step(enrollment.step_id)
        if isinstance(step, SendStep):
            at_send.append((enrollment, definition, step))
    if not at_send:
        return set()
    done = {(row[0], row[1]) for row in session.execute(select(MarketingEnrollmentStep.enrollment_id, MarketingEnrollmentStep.step_id).where(
        MarketingEnrollmentStep.enrollment_id.in_([e.id for e, _, _ in at_send])))}
    todo = [(e, d, s) for e, d, s in at_send if (e.id, s.id) not in done]
    for enrollment, _definition, step in at_send:
        if (enrollment.id, step.id) in done:  # sent before (a worker died after): move on
            enrollment.step_id = step.next
    journeys = {j.id: j for j in session.scalars(select(MarketingJourney).where(MarketingJourney.id.in_({e.journey_id for e, _, _ in todo})))}
    templates = {t.id: t for t in session.scalars(select(MarketingTemplate).where(MarketingTemplate.id.in_({s.template_id for _, _, s in todo})))}
    outcomes = messages.deliver_many(session, settings=settings, now=now, items=[
        messages.Delivery(e.profile_id, templates[s.template_id], s.channel, key=f"journey:{e.id}:{s.id}",
                          context={**e.context, "journey": {"id": e.journey_id, "name": journeys[e.journey_id].name}},
                          journey_id=e.journey_id, enrollment_id=e.id, step_id=s.id, arm=e.arm,
                          cap=(d.frequency_cap.messages, d.frequency_cap.days) if d.frequency_cap else None)
        for e, d, s in todo])
    held: set[int] = set()
    steps = []
    for (enrollment, _definition, step), outcome in zip(todo, outcomes, strict=True):
        if outcome.status == "held":
            enrollment.wake_at = outcome.until
            held.add(enrollment.id)
            continue
        steps.append({"enrollment_id": enrollment.id, "step_id": step.id, "at": now,
                      "outcome": {"status": outcome.status, "reason": outcome.reason, "message_id": outcome.inbox_message_id}})
        enrollment.step_id = step.next
    if steps:
        session.execute(insert(MarketingEnrollmentStep.__table__), steps)
    return held


def _waits_together(session: Session, settings: Settings, due: list[MarketingEnrollment], now: datetime) -> set[int]:
    """The waits the due people start, all at once (a step record each, in one statement): a
    million people moving from one wait to the next cost a few statements per thousand. The ids
    of those now waiting are returned."""
    at_wait: list[tuple[MarketingEnrollment, WaitStep]] = []
    for enrollment in due:
        if enrollment.step_id is None or enrollment.waiting_step is not None:
            continue
        step = service.definition_of(session, enrollment.journey_id, enrollment.version).step(enrollment.step_id)
        if isinstance(step, WaitStep):
            at_wait.append((enrollment, step))
    if not at_wait:
        return set()
    done = {(row[0], row[1]) for row in session.execute(select(MarketingEnrollmentStep.enrollment_id, MarketingEnrollmentStep.step_id)
                                                         .where(MarketingEnrollmentStep.enrollment_id.in_([e.id for e, _ in at_wait])))}
    clocks = [e.profile_id for e, step in at_wait if step.until is not None]
    zones = {p: person["timezone"] for p, person in messages.people_of(session, settings, clocks).items()} if clocks else {}
    wake = _wake_times(session, settings, [(e, step) for e, step in at_wait if step.until is not None], zones, now)
    rows = []
    for enrollment, step in at_wait:
        if step.for_event is not None:
            outcome: dict[str, Any] = {"waiting_for": step.for_event.name}
            enrollment.waiting_step, enrollment.step_id = step.id, step.timeout_next
            enrollment.wake_at = now + timedelta(minutes=step.timeout_minutes)
        else:
            until = now + timedelta(minutes=step.minutes) if step.minutes else wake[enrollment.id]
            outcome = {"until": until.isoformat()}
            enrollment.step_id, enrollment.wake_at = step.next, until
        if (enrollment.id, step.id) not in done:
            rows.append({"enrollment_id": enrollment.id, "step_id": step.id, "at": now, "outcome": outcome})
    if rows:
        session.execute(insert(MarketingEnrollmentStep.__table__), rows)
    return {e.id for e, _ in at_wait}


def advance_due(session: Session, *, settings: Settings, now: datetime | None = None, limit: int = 200) -> int:
    """Run the due enrollments of active journeys (up to `limit`); how many ran."""
    now = now or utcnow()
    query = (select(MarketingEnrollment).join(MarketingJourney, MarketingJourney.id == MarketingEnrollment.journey_id)
             .where(MarketingEnrollment.status == "waiting", MarketingEnrollment.wake_at <= now, MarketingJourney.status == "active")
             .order_by(MarketingEnrollment.wake_at).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=MarketingEnrollment, skip_locked=True)
    due = list(session.scalars(query))
    held = _send_together(session, settings, due, now) | _waits_together(session, settings, due, now)
    for enrollment in due:
        if enrollment.id in held:
            continue
        if enrollment.step_id is None and enrollment.waiting_step is None and not enrollment.arm:
            service.finish(enrollment, "completed", now)  # the end: nothing to run, nothing to fail
            continue
        try:
            with session.begin_nested():
                run(session, settings, enrollment, now)
        except Exception as exc:  # noqa: BLE001 - one person's failure must not hold up the others
            session.expire(enrollment)
            log.exception("journey step failed", enrollment_id=enrollment.id)
            enrollment = session.get(MarketingEnrollment, enrollment.id, populate_existing=True)
            service.finish(enrollment, "error", now)
            enrollment.error = describe_error(exc)[:2000]
    return len(due)


# --- what happens from outside ---------------------------------------------------------------


def _live(session: Session, profile_ids: set[int]) -> list[MarketingEnrollment]:
    if not profile_ids:
        return []
    return list(session.scalars(select(MarketingEnrollment).join(MarketingJourney, MarketingJourney.id == MarketingEnrollment.journey_id)
                                .where(MarketingEnrollment.profile_id.in_(sorted(profile_ids)), MarketingEnrollment.status == "waiting",
                                       MarketingJourney.status.in_(("active", "paused")))
                                .order_by(MarketingEnrollment.id).with_for_update(of=MarketingEnrollment)))


def _convert(enrollment: MarketingEnrollment, now: datetime, *, order_id: int | None = None, revenue: int | None = None) -> None:
    enrollment.converted_at, enrollment.conversion_order_id, enrollment.conversion_revenue = now, order_id, revenue
    service.finish(enrollment, "goal", now)


def on_events(session: Session, happened: list[Happened], *, now: datetime | None = None) -> int:
    """Goals, awaited events and triggers of these events; how many people moved or entered."""
    now = now or utcnow()
    now_iso = now.isoformat()
    if not happened:
        return 0
    moved = 0
    by_person: dict[int, list[Happened]] = {}
    for item in happened:
        by_person.setdefault(item.profile_id, []).append(item)
    for enrollment in _live(session, set(by_person)):
        definition = service.definition_of(session, enrollment.journey_id, enrollment.version)
        for item in by_person[enrollment.profile_id]:
            if item.at < enrollment.entered_at:
                continue
            goal = definition.goal
            if isinstance(goal, EventGoal) and goal.name == item.name and properties_pass(goal.where, item.properties, now_iso=now_iso):
                _convert(enrollment, now)
                moved += 1
                break
            if enrollment.waiting_step is not None:
                wait = definition.step(enrollment.waiting_step)
                awaited = wait.for_event
                if awaited.name == item.name and properties_pass(awaited.where, item.properties, now_iso=now_iso):
                    _record(session, enrollment, f"{wait.id}:event", {"event": item.name}, now)
                    enrollment.waiting_step, enrollment.step_id, enrollment.wake_at = None, wait.next, now
                    moved += 1
                    break
    for journey, definition in service.active_journeys(session):
        trigger = definition.trigger
        if not isinstance(trigger, EventTrigger):
            continue
        for item in happened:
            if item.name == trigger.name and item.kind == trigger.kind and properties_pass(trigger.where, item.properties, now_iso=now_iso):
                context = {"event": {"name": item.name, "properties": item.properties, "at": item.at.isoformat()}}
                if isinstance(item.properties.get("store"), str):
                    context["store"] = item.properties["store"]
                enrollment, _why = service.enroll(session, journey=journey, profile_id=item.profile_id, context=context, now=now)
                moved += enrollment is not None
    return moved


def on_orders(session: Session, orders: list[tuple[int, int, int]], *, now: datetime | None = None) -> int:
    """(profile id, order id, total) of new orders: journeys whose goal is an order end converted;
    a journey that ended (its last step done, or a holdout's follow-up) less than
    `ATTRIBUTION_WINDOW` ago counts the order as its conversion too (the campaign's message was
    the last step: the purchase comes after)."""
    now = now or utcnow()
    by_person = {profile_id: (order_id, total) for profile_id, order_id, total in orders}
    converted = 0
    for enrollment in _live(session, set(by_person)):
        if isinstance(service.definition_of(session, enrollment.journey_id, enrollment.version).goal, OrderGoal):
            order_id, total = by_person[enrollment.profile_id]
            _convert(enrollment, now, order_id=order_id, revenue=total)
            converted += 1
    for enrollment in session.scalars(select(MarketingEnrollment).where(
            MarketingEnrollment.profile_id.in_(sorted(by_person)), MarketingEnrollment.status == "done",
            MarketingEnrollment.exit_reason.in_(("completed", "holdout")), MarketingEnrollment.converted_at.is_(None),
            MarketingEnrollment.finished_at >= now - ATTRIBUTION_WINDOW).with_for_update()):
        if isinstance(service.definition_of(session, enrollment.journey_id, enrollment.version).goal, OrderGoal):
            enrollment.converted_at = now
            enrollment.conversion_order_id, enrollment.conversion_revenue = by_person[enrollment.profile_id]
            converted += 1
    return converted


def on_segment_changes(session: Session, changes: list[Any], *, now: datetime | None = None) -> int:
    """Segment entries start journeys; exits end the journeys that leave with the segment."""
    now = now or utcnow()
    moved = 0
    journeys = [(j, d) for j, d in service.active_journeys(session) if isinstance(d.trigger, SegmentTrigger)]
    if not journeys or not changes:
        return 0
    exited = {(c.segment_id, c.profile_id) for c in changes if c.change == "exited"}
    for journey, definition in journeys:
        for change in changes:
            if change.change == "entered" and change.segment_id == definition.trigger.segment_id:
                enrollment, _why = service.enroll(session, journey=journey, profile_id=change.profile_id,
                                                  context={"segment_id": change.segment_id}, now=now)
                moved += enrollment is not None
        if definition.exit_on_segment_exit:
            people = {p for s, p in exited if s == definition.trigger.segment_id}
            for enrollment in session.scalars(select(MarketingEnrollment).where(
                    and_(MarketingEnrollment.journey_id == journey.id, MarketingEnrollment.status == "waiting",
                         MarketingEnrollment.profile_id.in_(sorted(people))))) if people else []:
                service.finish(enrollment, "segment_exit", now)
                moved += 1
    return moved


def date_triggers(session: Session, *, settings: Settings, now: datetime | None = None, limit: int = 5000) -> int:
    """Enroll the people whose date came round today (`DateTrigger`: a date trait's day every
    year, or a number of days after a date trait or the last order), once the day's `at` time has
    passed in the shop's time zone; each person once a day (then the journey's re-entry rule)."""
    now = now or utcnow()
    zone = ZoneInfo(settings.marketing_timezone)
    local = now.astimezone(zone)
    day_start = datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(now.tzinfo)
    enrolled = 0
    for journey, definition in service.active_journeys(session):
        trigger = definition.trigger
        if not isinstance(trigger, DateTrigger) or local.time() < time.fromisoformat(trigger.at):
            continue
        target = local.date() - timedelta(days=trigger.days_after)
        fact = MarketingProfileFact
        key = "orders:last_at" if trigger.trait == "last_order" else facts.trait_key(trigger.trait)
        matches = (func.substr(fact.text_value, 6, 5) == target.strftime("%m-%d") if trigger.annual
                   else func.substr(fact.text_value, 1, 10) == target.isoformat())
        today = select(MarketingEnrollment.profile_id).where(MarketingEnrollment.journey_id == journey.id,
                                                             MarketingEnrollment.entered_at >= day_start)
        people = session.scalars(select(fact.profile_id).where(fact.key == key, fact.kind == "string", matches,
                                                               fact.profile_id.notin_(today)).limit(limit))
        for profile_id in list(people):
            enrollment, _why = service.enroll(session, journey=journey, profile_id=profile_id,
                                              context={"occasion": target.isoformat()}, now=now)
            enrolled += enrollment is not None
    return enrolled
