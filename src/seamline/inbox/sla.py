"""SLA clocks: which policy applies, due times in business hours, and breaches.

A conversation carries three due times: first response (from its first customer message), next
response (from the oldest unanswered customer message after the first reply) and resolution.
`sla_next_due_at` is the earliest one not yet met or flagged; the breach job reads it through an
index. Clocks keep running while a conversation is pending or snoozed (the customer's wait is
what the targets measure); a resolved conversation has none.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.errors import Conflict, Unprocessable
from seamline.inbox.models import InboxConversation, InboxSlaPolicy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCKS = ("first_response", "next_response", "resolution")


def check_calendar(calendar: dict[str, Any] | None) -> None:
    """Reject a calendar `add_business_minutes` could not use."""
    if calendar is None:
        return
    try:
        ZoneInfo(calendar.get("timezone", "UTC"))
        hours = calendar.get("hours") or {}
        if not hours or set(hours) - set(WEEKDAYS):
            raise ValueError(f"hours must name weekdays among {', '.join(WEEKDAYS)}")
        for span in hours.values():
            start, end = (time.fromisoformat(v) for v in span)
            if not start < end:
                raise ValueError("each day's start must come before its end")
        for day in calendar.get("holidays") or []:
            date.fromisoformat(day)
    except (ValueError, TypeError, KeyError) as exc:
        raise Unprocessable(f"Invalid business calendar: {exc}", code="invalid_calendar") from exc


def add_business_minutes(start: datetime, minutes: int, calendar: dict[str, Any] | None) -> datetime:
    """`start` plus `minutes`, counting only the calendar's open hours (all hours without one)."""
    if calendar is None:
        return start + timedelta(minutes=minutes)
    zone = ZoneInfo(calendar.get("timezone", "UTC"))
    hours = {day: tuple(time.fromisoformat(v) for v in span) for day, span in calendar["hours"].items()}
    holidays = {date.fromisoformat(d) for d in calendar.get("holidays") or []}
    remaining = timedelta(minutes=minutes)
    cursor = start.astimezone(zone)
    for _ in range(800):  # at most two years of days: a calendar with open hours ends well before
        day = cursor.date()
        span = hours.get(WEEKDAYS[day.weekday()])
        if span and day not in holidays:
            opens = datetime.combine(day, span[0], zone)
            closes = datetime.combine(day, span[1], zone)
            begin = max(cursor, opens)
            if begin < closes:
                if begin + remaining <= closes:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= closes - begin
        cursor = datetime.combine(day + timedelta(days=1), time(0), zone)
    raise Unprocessable("The business calendar has no open hours", code="invalid_calendar")


def create_policy(session: Session, *, name: str, calendar: dict[str, Any] | None, is_default: bool, **targets: Any) -> InboxSlaPolicy:
    """A policy; a new default replaces the old one (there is at most one)."""
    check_calendar(calendar)
    if session.scalar(select(InboxSlaPolicy.id).where(InboxSlaPolicy.name == name)):
        raise Conflict(f"SLA policy {name!r} exists", code="sla_policy_exists")
    if is_default:
        for policy in session.scalars(select(InboxSlaPolicy).where(InboxSlaPolicy.is_default.is_(True))):
            policy.is_default = False
    policy = InboxSlaPolicy(name=name, calendar=calendar, is_default=is_default, **targets)
    session.add(policy)
    session.flush()
    return policy


def policy_for(session: Session, *, channel: str, priority: int) -> InboxSlaPolicy | None:
    """The most specific policy: one naming the channel and the highest priority floor met,
    else the default."""
    best: InboxSlaPolicy | None = None
    for policy in session.scalars(select(InboxSlaPolicy).order_by(InboxSlaPolicy.id)):
        if policy.channels and channel not in policy.channels:
            continue
        if priority < policy.min_priority:
            continue
        key = (policy.min_priority, bool(policy.channels), not policy.is_default)
        if best is None or key > (best.min_priority, bool(best.channels), not best.is_default):
            best = policy
    return best


def _due(policy: InboxSlaPolicy, field: str, start: datetime) -> datetime | None:
    minutes = getattr(policy, f"{field}_minutes")
    return None if minutes is None else add_business_minutes(start, minutes, policy.calendar)


def start_clocks(session: Session, conversation: InboxConversation, at: datetime) -> None:
    policy = policy_for(session, channel=conversation.channel, priority=conversation.priority)
    conversation.sla_policy_id = policy.id if policy else None
    if policy is not None:
        conversation.first_response_due_at = _due(policy, "first_response", at)
        conversation.resolution_due_at = _due(policy, "resolution", at)
    refresh_next_due(conversation)


def customer_wrote(session: Session, conversation: InboxConversation, at: datetime) -> None:
    """A customer message: after the first reply it starts the next-response clock."""
    if conversation.first_response_at is not None and conversation.next_response_due_at is None:
        policy = session.get(InboxSlaPolicy, conversation.sla_policy_id) if conversation.sla_policy_id else None
        if policy is not None:
            conversation.next_response_due_at = _due(policy, "next_response", at)
    refresh_next_due(conversation)


def agent_replied(conversation: InboxConversation, at: datetime) -> None:
    if conversation.first_response_at is None:
        conversation.first_response_at = at
    conversation.next_response_due_at = None
    refresh_next_due(conversation)


def refresh_next_due(conversation: InboxConversation) -> None:
    due = []
    breaches = set(conversation.sla_breaches or [])
    if conversation.status != "resolved":
        if conversation.first_response_at is None and "first_response" not in breaches:
            due.append(conversation.first_response_due_at)
        if "next_response" not in breaches:
            due.append(conversation.next_response_due_at)
        if "resolution" not in breaches:
            due.append(conversation.resolution_due_at)
    due = [d for d in due if d is not None]
    conversation.sla_next_due_at = min(due) if due else None


def breached_clocks(conversation: InboxConversation, now: datetime) -> list[str]:
    """Clocks past due and not flagged yet."""
    found = []
    breaches = set(conversation.sla_breaches or [])
    if conversation.status == "resolved":
        return found
    if (
        conversation.first_response_at is None
        and conversation.first_response_due_at is not None
        and conversation.first_response_due_at <= now
    ):
        found.append("first_response")
    if conversation.next_response_due_at is not None and conversation.next_response_due_at <= now:
        found.append("next_response")
    if conversation.resolution_due_at is not None and conversation.resolution_due_at <= now:
        found.append("resolution")
    return [clock for clock in found if clock not in breaches]


def clocks(conversation: InboxConversation, now: datetime, *, at_risk_minutes: int) -> dict[str, Any]:
    """What the conversation view shows: each due time, whether it is met, breached or at risk."""
    out: dict[str, Any] = {"policy_id": conversation.sla_policy_id, "breaches": list(conversation.sla_breaches or [])}
    risk = now + timedelta(minutes=at_risk_minutes)
    for clock in CLOCKS:
        due = getattr(conversation, f"{clock}_due_at")
        met = clock == "first_response" and conversation.first_response_at is not None
        state = None
        if due is not None:
            if clock in out["breaches"]:
                state = "breached"
            elif met:
                state = "met"
            elif conversation.status == "resolved":
                state = "met" if clock == "resolution" else "stopped"
            else:
                state = "at_risk" if due <= risk else "running"
        out[clock] = {"due_at": due, "state": state}
    out["at_risk"] = any(out[c]["state"] == "at_risk" for c in CLOCKS)
    return out
