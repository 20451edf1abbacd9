"""What a journey achieved: who entered and is still in it, the messages its send steps queued or
skipped (and why), the people who passed each step, and conversions with their revenue, by A/B
arm with the holdout beside the arms it measures.

Read-only queries over `marketing_enrollment`, `marketing_enrollment_step` and
`marketing_message`, grouped in the database (a journey of a million people costs a few index
scans, never a row per person in Python). The console's Marketing area and its results page call
these; nothing here writes.

A conversion is an enrollment that reached the journey's goal (`converted_at`, with the order and
its total when the goal is an order). A holdout arm's people get nothing after the split and are
followed for the goal for a while (journeys/engine.py `HOLDOUT_FOLLOW`): their conversion rate is
the baseline an arm's `lift` is measured against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from seamline.inbox.models import InboxMessage
from seamline.marketing.journeys import service
from seamline.marketing.journeys.definition import SplitStep
from seamline.marketing.journeys.models import MarketingEnrollment, MarketingEnrollmentStep, MarketingJourneyVersion
from seamline.marketing.messages.models import MarketingMessage


#: Delivery statuses of a message its channel's provider accepted.
SENT = ("sent", "delivered", "read")


@dataclass
class Summary:
    """A journey's people in a few numbers (the list of journeys shows these)."""

    entered: int = 0
    #: still in it (waiting for a step, a time, an event, or followed as a holdout)
    in_journey: int = 0
    converted: int = 0
    #: sum of the converting orders' totals, minor units of the shop's currency
    revenue: int = 0

    @property
    def rate(self) -> float | None:
        """Converted of entered, percent (None before anyone entered)."""
        return round(100.0 * self.converted / self.entered, 2) if self.entered else None


@dataclass
class SendStepResult:
    """One send step's messages: handed to the inbox (`queued`), and skipped with why; of the
    queued ones, what the channel said (`sent`: its provider took it; `delivered`, or read, when
    the channel reports receipts; `failed`: bounced or given up on)
    and what the person did (messages/tracking.py: first open, first click, unsubscribe)."""

    step_id: str
    queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    #: accepted by the channel's provider (an SMTP server, a push service, a messenger's API)
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0

    @property
    def total(self) -> int:
        return self.queued + sum(self.skipped.values())


@dataclass
class ArmResult:
    """An A/B arm (None: people with no arm: the journey has no split, or they have not reached it)."""

    arm: str | None
    holdout: bool
    entered: int
    converted: int
    revenue: int
    #: queued messages of the people of this arm
    messages: int = 0
    #: the arm's conversion rate over the holdout's, percent (None without a holdout or baseline)
    lift: float | None = None

    @property
    def rate(self) -> float | None:
        return round(100.0 * self.converted / self.entered, 2) if self.entered else None


def _converted() -> Any:
    return func.sum(case((MarketingEnrollment.converted_at.is_not(None), 1), else_=0))


def _revenue() -> Any:
    return func.coalesce(func.sum(case((MarketingEnrollment.converted_at.is_not(None), MarketingEnrollment.conversion_revenue),
                                       else_=0)), 0)


def summaries(session: Session, journey_ids: Iterable[int]) -> dict[int, Summary]:
    """Each journey's entered, still in, converted and revenue (one grouped query for all)."""
    ids = sorted(set(journey_ids))
    found = {journey_id: Summary() for journey_id in ids}
    if not ids:
        return found
    waiting = func.sum(case((MarketingEnrollment.status == "waiting", 1), else_=0))
    rows = session.execute(select(MarketingEnrollment.journey_id, func.count(), waiting, _converted(), _revenue())
                           .where(MarketingEnrollment.journey_id.in_(ids)).group_by(MarketingEnrollment.journey_id))
    for journey_id, entered, in_journey, converted, revenue in rows:
        found[journey_id] = Summary(int(entered), int(in_journey or 0), int(converted or 0), int(revenue or 0))
    return found


def summary(session: Session, journey_id: int) -> Summary:
    return summaries(session, [journey_id])[journey_id]


def passed_steps(session: Session, journey_id: int) -> dict[str, int]:
    """How many people passed each step (a step is recorded once per person: a wait when it
    began, a send when it was queued or skipped, a branch with the way taken)."""
    rows = session.execute(select(MarketingEnrollmentStep.step_id, func.count())
                           .join(MarketingEnrollment, MarketingEnrollment.id == MarketingEnrollmentStep.enrollment_id)
                           .where(MarketingEnrollment.journey_id == journey_id).group_by(MarketingEnrollmentStep.step_id))
    return {step_id: int(n) for step_id, n in rows}


def send_steps(session: Session, journey_id: int) -> list[SendStepResult]:
    """Messages of each send step: queued (with their delivery, opens, clicks, unsubscribes),
    and skipped by reason (capped, journey_capped, no_marketing_consent, customer_unreachable,
    consent_withdrawn...). Messages held by quiet hours are not here: the step runs again when
    they end and its message counts then. Steps in the order of their first message."""
    delivery = InboxMessage.delivery_status
    rows = session.execute(select(MarketingMessage.step_id, MarketingMessage.status, MarketingMessage.reason, delivery, func.count(),
                                  func.count(MarketingMessage.opened_at), func.count(MarketingMessage.clicked_at),
                                  func.count(MarketingMessage.unsubscribed_at), func.min(MarketingMessage.id))
                           .outerjoin(InboxMessage, InboxMessage.id == MarketingMessage.inbox_message_id)
                           .where(MarketingMessage.journey_id == journey_id, MarketingMessage.step_id.is_not(None),
                                  MarketingMessage.status.in_(("queued", "skipped")))
                           .group_by(MarketingMessage.step_id, MarketingMessage.status, MarketingMessage.reason, delivery))
    found: dict[str, SendStepResult] = {}
    first: dict[str, int] = {}
    for step_id, status, reason, delivered_as, n, opened, clicked, unsubscribed, first_id in rows:
        result = found.setdefault(step_id, SendStepResult(step_id))
        first[step_id] = min(first.get(step_id, first_id), first_id)
        if status == "queued":
            result.queued += int(n)
            result.sent += int(n) if delivered_as in SENT else 0
            result.delivered += int(n) if delivered_as in ("delivered", "read") else 0
            result.failed += int(n) if delivered_as == "failed" else 0
            result.opened, result.clicked = result.opened + int(opened), result.clicked + int(clicked)
            result.unsubscribed += int(unsubscribed)
        else:
            key = reason or "unknown"
            result.skipped[key] = result.skipped.get(key, 0) + int(n)
    return sorted(found.values(), key=lambda r: first[r.step_id])


def holdout_arms(session: Session, journey_id: int) -> set[str]:
    """The names of the arms that are holdouts in any version of the journey."""
    names: set[str] = set()
    for version in session.scalars(select(MarketingJourneyVersion.version).where(MarketingJourneyVersion.journey_id == journey_id)):
        definition = service.definition_of(session, journey_id, version)
        names |= {arm.name for step in definition.steps if isinstance(step, SplitStep) for arm in step.arms if arm.holdout}
    return names


def arms(session: Session, journey_id: int) -> list[ArmResult]:
    """Entered, converted, revenue and queued messages by A/B arm, the holdout included, with
    each arm's lift over the holdout. Arms by name, the people without an arm first."""
    holdouts = holdout_arms(session, journey_id)
    rows = session.execute(select(MarketingEnrollment.arm, func.count(), _converted(), _revenue())
                           .where(MarketingEnrollment.journey_id == journey_id).group_by(MarketingEnrollment.arm))
    sent = dict(session.execute(select(MarketingMessage.arm, func.count()).where(
        MarketingMessage.journey_id == journey_id, MarketingMessage.status == "queued").group_by(MarketingMessage.arm)).all())
    found = [ArmResult(arm, arm in holdouts, int(entered), int(converted or 0), int(revenue or 0), int(sent.get(arm, 0)))
             for arm, entered, converted, revenue in rows]
    baseline = next((a.rate for a in found if a.holdout and a.rate), None)
    for result in found:
        if baseline and not result.holdout and result.arm is not None and result.rate is not None:
            result.lift = round(100.0 * (result.rate - baseline) / baseline, 2)
    return sorted(found, key=lambda a: (a.arm is not None, a.holdout, a.arm or ""))


def results(session: Session, journey_id: int) -> dict[str, Any]:
    """Everything the results page shows: {summary, steps (passed), sends, arms}."""
    service.get_journey(session, journey_id)
    return {"summary": summary(session, journey_id), "passed": passed_steps(session, journey_id),
            "sends": send_steps(session, journey_id), "arms": arms(session, journey_id)}
