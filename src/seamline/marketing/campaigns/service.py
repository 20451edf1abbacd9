"""Campaigns: a message (or A/B variants of it) to a segment, now or at a time, throttled.

A campaign runs on a journey of its own (hidden from the journeys list): `[wait until the local
time] -> [split into variants and a holdout] -> send the variant`, with the goal "an order", so
quiet hours, caps, consent, the split, the holdout and conversions are the journeys' own. When it
starts, the segment's members are enrolled in bulk, each due at the start plus their place in the
throttle (`per_minute`); the journey scheduler then sends at that pace.

With an A/B test, only `test_percent` of the audience is enrolled first (a seeded shuffle); after
`after_hours` the variant with the best metric (conversion rate, or delivery rate) wins, the
journey gets a version that sends only the winner (the holdout stays), and the members not yet
reached are enrolled on it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.inbox.models import InboxMessage
from seamline.marketing.campaigns.models import MarketingCampaign
from seamline.marketing.campaigns.schemas import CampaignCreate
from seamline.marketing.journeys import service as journeys
from seamline.marketing.journeys.definition import Definition
from seamline.marketing.journeys.models import MarketingEnrollment, MarketingJourney
from seamline.marketing.journeys.results import SENT
from seamline.marketing.messages.models import MarketingMessage, MarketingTemplate
from seamline.marketing.segments.models import MarketingSegment, MarketingSegmentMember

#: Enrollments written per statement when a campaign starts.
CHUNK = 5000
HOLDOUT = "holdout"


def get_campaign(session: Session, campaign_id: int, *, lock: bool = False) -> MarketingCampaign:
    campaign = session.get(MarketingCampaign, campaign_id, with_for_update=lock, populate_existing=lock)
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} not found", code="campaign_not_found")
    return campaign


def list_campaigns(session: Session) -> list[MarketingCampaign]:
    return list(session.scalars(select(MarketingCampaign).order_by(MarketingCampaign.id.desc())))


def create_campaign(session: Session, *, data: CampaignCreate, created_by: str,
                    idempotency_key: str | None = None) -> tuple[MarketingCampaign, bool]:
    """A draft campaign (nothing is sent until it is scheduled)."""
    if idempotency_key is not None:
        earlier = session.scalar(select(MarketingCampaign).where(MarketingCampaign.idempotency_key == idempotency_key))
        if earlier is not None:
            return earlier, False
    segment = session.get(MarketingSegment, data.segment_id)
    if segment is None or segment.status != "active":
        raise Unprocessable("The campaign's segment does not exist or is archived", code="unknown_segment",
                            details={"segment_ids": [data.segment_id]})
    wanted = {v.template_id for v in data.variants}
    found = set(session.scalars(select(MarketingTemplate.id).where(MarketingTemplate.id.in_(wanted), MarketingTemplate.archived.is_(False))))
    if missing := sorted(wanted - found):
        raise Unprocessable("The campaign sends templates that do not exist", code="unknown_template", details={"template_ids": missing})
    campaign = MarketingCampaign(
        name=data.name, segment_id=data.segment_id, status="draft", variants=[v.model_dump() for v in data.variants],
        holdout_percent=data.holdout_percent, channel=data.channel, send_at=data.send_at, local_time=data.local_time,
        per_minute=data.per_minute, ab_test=data.ab_test.model_dump() if data.ab_test else None, created_by=created_by,
        idempotency_key=idempotency_key, created_at=utcnow())
    session.add(campaign)
    session.flush()
    return campaign, True


def _arms(campaign: MarketingCampaign, variants: list[dict[str, Any]], index: dict[str, int]) -> list[dict[str, Any]]:
    """The split's arms: the variants share what the holdout leaves, in whole percents."""
    left = 100 - campaign.holdout_percent
    total = sum(v["percent"] for v in variants) or 1
    arms = [{"name": v["name"], "percent": left * v["percent"] // total, "next": f"send_{index[v['name']]}"} for v in variants]
    arms[-1]["percent"] += left - sum(a["percent"] for a in arms)
    if campaign.holdout_percent:
        arms.append({"name": HOLDOUT, "percent": campaign.holdout_percent, "holdout": True})
    return arms


def definition(campaign: MarketingCampaign, variants: list[dict[str, Any]] | None = None) -> Definition:
    """The campaign's journey (see the module doc), for all its variants or only some (the winner)."""
    variants = variants or campaign.variants
    steps: list[dict[str, Any]] = []
    if campaign.local_time:
        steps.append({"id": "local_time", "type": "wait", "until": campaign.local_time, "next": "split"})
    index = {v["name"]: i for i, v in enumerate(campaign.variants)}  # a variant's step keeps its id in every version
    arms = _arms(campaign, variants, index)
    if len(arms) > 1:
        steps.append({"id": "split", "type": "split", "arms": arms})
    elif steps:  # one variant, no holdout: no split (`_enroll` gives everyone its name as their arm)
        steps[0]["next"] = arms[0]["next"]
    for variant in variants:
        steps.append({"id": f"send_{index[variant['name']]}", "type": "send", "template_id": variant["template_id"],
                      **({"channel": campaign.channel} if campaign.channel else {})})
    return journeys.DEFINITION.validate_python({"trigger": {"type": "api"}, "goal": {"type": "order"},
                                                "reentry": {"policy": "never"}, "steps": steps})


def schedule(session: Session, *, campaign_id: int, now: datetime | None = None) -> MarketingCampaign:
    """Draft -> scheduled: it starts at `send_at` (now when it has none). Scheduling again
    changes nothing."""
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status != "draft":
        if campaign.status in ("scheduled", "sending", "testing", "sent"):
            return campaign
        raise Conflict(f"A {campaign.status} campaign cannot be scheduled", code="campaign_status", details={"status": campaign.status})
    segment = session.get(MarketingSegment, campaign.segment_id)
    if segment is None or segment.status != "active":
        raise Conflict("The campaign's segment was archived", code="segment_archived")
    journey, _ = journeys.create_journey(session, name=f"Campaign: {campaign.name}"[:200], description="", definition=definition(campaign),
                                         created_by=campaign.created_by, template="campaign")
    journeys.set_status(session, journey_id=journey.id, action="start", now=now)
    campaign.journey_id, campaign.status = journey.id, "scheduled"
    campaign.send_at = campaign.send_at or now
    return campaign


def cancel(session: Session, *, campaign_id: int, now: datetime | None = None) -> MarketingCampaign:
    """Stop it: nobody else gets it (people already sent to stay sent). Cancelling again changes nothing."""
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status == "cancelled":
        return campaign
    if campaign.status == "sent":
        raise Conflict("The campaign was sent", code="campaign_status", details={"status": campaign.status})
    if campaign.journey_id is not None:
        journeys.set_status(session, journey_id=campaign.journey_id, action="archive", now=now)
    campaign.status, campaign.finished_at = "cancelled", now or utcnow()
    return campaign


def _enroll(session: Session, campaign: MarketingCampaign, journey: MarketingJourney, people: list[int], start: datetime,
            offset: int = 0) -> int:
    """Enroll people in the campaign's journey, each due at the start plus their place in the throttle."""
    table = MarketingEnrollment.__table__
    dialect = session.get_bind().dialect.name
    current = journeys.current_definition(journey)
    step = current.start
    splits = any(s.type == "split" for s in current.steps)
    only = None if splits else next(s.id for s in current.steps if s.type == "send")
    arm = None if splits else next(v["name"] for i, v in enumerate(campaign.variants) if f"send_{i}" == only)
    pace = timedelta(minutes=1) / campaign.per_minute if campaign.per_minute else timedelta(0)
    written = 0
    for begin in range(0, len(people), CHUNK):
        rows = [{"journey_id": journey.id, "version": journey.version, "profile_id": person, "status": "waiting", "step_id": step,
                 "wake_at": start + pace * (offset + begin + n), "context": {"campaign_id": campaign.id}, "entered_at": start, "arm": arm}
                for n, person in enumerate(people[begin:begin + CHUNK])]
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        session.execute(insert.on_conflict_do_nothing(index_elements=["journey_id", "profile_id"], index_where=text("status = 'waiting'")),
                        rows)
        written += len(rows)
    return written


def _members(session: Session, segment_id: int) -> list[int]:
    return list(session.scalars(select(MarketingSegmentMember.profile_id).where(MarketingSegmentMember.segment_id == segment_id)
                                .order_by(MarketingSegmentMember.profile_id)))


def start(session: Session, *, campaign_id: int, now: datetime | None = None) -> MarketingCampaign:
    """Enroll the audience (or the A/B test group) of a scheduled campaign whose time has come."""
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status != "scheduled" or campaign.send_at > now:
        return campaign
    journey = journeys.get_journey(session, campaign.journey_id)
    people = _members(session, campaign.segment_id)
    campaign.audience, campaign.started_at = len(people), now
    if campaign.ab_test:
        random.Random(campaign.id).shuffle(people)
        people = people[:max(1, len(people) * campaign.ab_test["test_percent"] // 100)] if people else []
        campaign.status, campaign.test_ends_at = "testing", now + timedelta(hours=campaign.ab_test["after_hours"])
    else:
        campaign.status, campaign.finished_at = "sent", now
    _enroll(session, campaign, journey, people, now)
    return campaign


def _rates(session: Session, campaign: MarketingCampaign) -> dict[str, float]:
    """Each variant's rate of the A/B metric so far."""
    if campaign.ab_test["metric"] == "delivered":
        rows = session.execute(select(MarketingMessage.arm, func.count(), func.count(case(
            (InboxMessage.delivery_status.in_(("delivered", "read")), 1))))
            .outerjoin(InboxMessage, InboxMessage.id == MarketingMessage.inbox_message_id)
            .where(MarketingMessage.journey_id == campaign.journey_id, MarketingMessage.status == "queued")
            .group_by(MarketingMessage.arm)).all()
    else:
        rows = session.execute(select(MarketingEnrollment.arm, func.count(), func.count(MarketingEnrollment.converted_at))
                               .where(MarketingEnrollment.journey_id == campaign.journey_id, MarketingEnrollment.arm.is_not(None))
                               .group_by(MarketingEnrollment.arm)).all()
    return {arm: (hits / total if total else 0.0) for arm, total, hits in rows if arm != HOLDOUT}


def pick_winner(session: Session, *, campaign_id: int, now: datetime | None = None) -> MarketingCampaign:
    """After the test: the best variant (ties: the first listed) is sent to everyone not reached yet."""
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status != "testing" or campaign.test_ends_at > now:
        return campaign
    rates = _rates(session, campaign)
    order = {v["name"]: i for i, v in enumerate(campaign.variants)}
    winner = max(campaign.variants, key=lambda v: (rates.get(v["name"], 0.0), -order[v["name"]]))
    journey = journeys.update_journey(session, journey_id=campaign.journey_id,
                                      definition=definition(campaign, [{**winner, "percent": 100}]))
    reached = set(session.scalars(select(MarketingEnrollment.profile_id).where(MarketingEnrollment.journey_id == journey.id)))
    rest = [p for p in _members(session, campaign.segment_id) if p not in reached]
    _enroll(session, campaign, journey, rest, now)
    campaign.winner, campaign.status, campaign.finished_at = winner["name"], "sent", now
    campaign.audience = len(reached) + len(rest)
    return campaign


def due(session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """(campaigns to start, campaigns whose A/B test is over)."""
    starting = list(session.scalars(select(MarketingCampaign.id).where(MarketingCampaign.status == "scheduled",
                                                                       MarketingCampaign.send_at <= now)))
    testing = list(session.scalars(select(MarketingCampaign.id).where(MarketingCampaign.status == "testing",
                                                                      MarketingCampaign.test_ends_at <= now)))
    return starting, testing


def _no_messages() -> dict[str, Any]:
    return {"queued": 0, "sent": 0, "delivered": 0, "failed": 0, "opened": 0, "clicked": 0, "skipped": {}}


def results(session: Session, campaign: MarketingCampaign) -> dict[str, Any]:
    """Per variant and the holdout: people, messages queued (handed to the channel's queue) and
    skipped (by reason); of the queued ones, sent (the channel's provider took it: sent, delivered
    or read), delivered, failed (bounced, or given up on), opened and clicked (messages/tracking.py:
    first open, first click); converted and revenue, with the conversion rate's lift over the holdout."""
    if campaign.journey_id is None:
        return {"arms": {}}
    arms: dict[str, dict[str, Any]] = {}
    for arm, people, converted, revenue in session.execute(
            select(MarketingEnrollment.arm, func.count(), func.count(MarketingEnrollment.converted_at),
                   func.coalesce(func.sum(MarketingEnrollment.conversion_revenue), 0))
            .where(MarketingEnrollment.journey_id == campaign.journey_id).group_by(MarketingEnrollment.arm)):
        arms[arm or "-"] = {"people": people, "converted": converted, "revenue": int(revenue), **_no_messages()}
    for arm, status, reason, delivery, count, opened, clicked in session.execute(
            select(MarketingMessage.arm, MarketingMessage.status, MarketingMessage.reason, InboxMessage.delivery_status, func.count(),
                   func.count(MarketingMessage.opened_at), func.count(MarketingMessage.clicked_at))
            .outerjoin(InboxMessage, InboxMessage.id == MarketingMessage.inbox_message_id)
            .where(MarketingMessage.journey_id == campaign.journey_id)
            .group_by(MarketingMessage.arm, MarketingMessage.status, MarketingMessage.reason, InboxMessage.delivery_status)):
        row = arms.setdefault(arm or "-", {"people": 0, "converted": 0, "revenue": 0, **_no_messages()})
        if status == "queued":
            row["queued"] += count
            row["sent"] += count if delivery in SENT else 0
            row["opened"], row["clicked"] = row["opened"] + opened, row["clicked"] + clicked
            if delivery in ("delivered", "read"):
                row["delivered"] += count
            elif delivery == "failed":  # bounced, or given up on
                row["failed"] += count
        elif status == "skipped":
            row["skipped"][reason] = row["skipped"].get(reason, 0) + count
    base = arms.get(HOLDOUT)
    base_rate = base["converted"] / base["people"] if base and base["people"] else None
    for row in arms.values():
        row["conversion_rate"] = row["converted"] / row["people"] if row["people"] else 0.0
        row["lift"] = row["conversion_rate"] - base_rate if base_rate is not None else None
    return {"arms": arms, "holdout_conversion_rate": base_rate}
