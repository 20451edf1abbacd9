"""The one waiting queue of every channel, and who answers what.

- Topic detection: the first enabled `InboxRoutingRule` whose regular expression matches the
  customer's first message sets the required skill.
- Priority: the sum of the registered priority signals (loyalty tier and the VIP trait, wired
  in `app.py`, so the inbox imports neither loyalty nor commerce).
- Queue order: `queue_rank_at` = time queued minus `priority × inbox_priority_seconds`. A gold
  customer is served as if they had waited that much longer, and a long wait still wins over
  priority in the end, so nobody starves.
- Assignment: among online agents with the skill (and in the team, when the conversation has
  one) and room for its weight, the least loaded (load / capacity), then the one assigned
  longest ago. The agent's load is raised by a conditional UPDATE (`load + weight <=
  capacity`), so two processes never overfill an agent; the conversation is claimed the same
  way (`assignee_id IS NULL`), so it is never assigned twice.
- When an agent comes online or frees capacity, they take waiting conversations in queue
  order (`fill_agent`); when one goes offline, their open conversations go back to the queue
  keeping their place and are routed again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.inbox.adapters import ADAPTERS
from seamline.inbox.models import (
    InboxAgent,
    InboxConversation,
    InboxRoutingRule,
    InboxTeamMember,
)

#: (session, customer id, settings) -> priority points; filled by app.py
PRIORITY_SIGNALS: list[Callable[[Session, int, Settings], int]] = []


def register_priority_signal(signal: Callable[[Session, int, Settings], int]) -> None:
    if signal not in PRIORITY_SIGNALS:
        PRIORITY_SIGNALS.append(signal)


def priority_of(session: Session, customer_id: int, settings: Settings) -> int:
    return sum(signal(session, customer_id, settings) for signal in PRIORITY_SIGNALS)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def detect_skill(session: Session, text: str) -> str | None:
    rules = session.scalars(
        select(InboxRoutingRule).where(InboxRoutingRule.enabled.is_(True)).order_by(InboxRoutingRule.position, InboxRoutingRule.id)
    )
    for rule in rules:
        if _compiled(rule.pattern).search(text):
            return rule.skill
    return None


def check_pattern(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise Unprocessable(f"Invalid regular expression: {exc}", code="invalid_pattern") from exc


def create_rule(session: Session, *, name: str, pattern: str, skill: str, position: int = 0, enabled: bool = True) -> InboxRoutingRule:
    """A rule: a first message matching `pattern` (a regular expression) needs `skill`; rules are
    tried by position."""
    check_pattern(pattern)
    rule = InboxRoutingRule(name=name, pattern=pattern, skill=skill, position=position, enabled=enabled)
    session.add(rule)
    session.flush()
    return rule


def list_rules(session: Session) -> list[InboxRoutingRule]:
    return list(session.scalars(select(InboxRoutingRule).order_by(InboxRoutingRule.position, InboxRoutingRule.id)))


def delete_rule(session: Session, rule_id: int) -> None:
    if not session.execute(delete(InboxRoutingRule).where(InboxRoutingRule.id == rule_id)).rowcount:
        raise NotFound(f"Routing rule {rule_id} not found", code="routing_rule_not_found")


def enqueue(conversation: InboxConversation, settings: Settings, *, at: datetime | None = None) -> None:
    """Put the conversation in the waiting queue (keeping its place if it had one)."""
    queued = conversation.queued_at or at or utcnow()
    conversation.queued_at = queued
    conversation.queue_rank_at = queued - timedelta(seconds=conversation.priority * settings.inbox_priority_seconds)
    conversation.assignee_id = None


def weight_of(channel: str, settings: Settings) -> int:
    adapter = ADAPTERS.get(channel)
    return settings.inbox_channel_weights.get(channel, adapter.weight if adapter else 1)


def _team_agent_ids(session: Session, team_id: int) -> set[int]:
    return set(session.scalars(select(InboxTeamMember.agent_id).where(InboxTeamMember.team_id == team_id)))


def take_load(session: Session, agent: InboxAgent, weight: int, *, force: bool = False) -> bool:
    """Add `weight` to the agent's load if it fits (always when `force`); False if it did not."""
    condition = InboxAgent.id == agent.id
    if not force:
        condition = and_(condition, InboxAgent.load + weight <= InboxAgent.capacity)
    done = session.execute(
        update(InboxAgent).where(condition).values(load=InboxAgent.load + weight, last_assigned_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if done:
        session.refresh(agent, ["load", "last_assigned_at"])
    return bool(done)


def release_load(session: Session, agent_id: int | None, weight: int) -> None:
    if agent_id is None:
        return
    session.execute(
        update(InboxAgent).where(InboxAgent.id == agent_id)
        .values(load=func.max(InboxAgent.load - weight, 0) if session.get_bind().dialect.name == "sqlite"
                else func.greatest(InboxAgent.load - weight, 0))
        .execution_options(synchronize_session=False)
    )


def candidates(session: Session, conversation: InboxConversation, settings: Settings) -> list[InboxAgent]:
    """Online agents who can take the conversation, best first."""
    weight = weight_of(conversation.channel, settings)
    agents = session.scalars(select(InboxAgent).where(InboxAgent.status == "online")).all()
    team = _team_agent_ids(session, conversation.team_id) if conversation.team_id else None
    fit = [
        a for a in agents
        if (conversation.required_skill is None or conversation.required_skill in (a.skills or []))
        and (team is None or a.id in team)
        and a.load + min(weight, a.capacity) <= a.capacity
    ]
    epoch = datetime.min.replace(tzinfo=utcnow().tzinfo)
    return sorted(fit, key=lambda a: (a.load / max(a.capacity, 1), a.last_assigned_at or epoch, a.id))


def claim(session: Session, conversation: InboxConversation, agent: InboxAgent, settings: Settings, *, force: bool = False) -> bool:
    """Assign the conversation to the agent if both are still free (atomic against other processes)."""
    weight = min(weight_of(conversation.channel, settings), max(agent.capacity, 1))
    counts = conversation.status == "open"
    if counts and not take_load(session, agent, weight, force=force):
        return False
    claimed = session.execute(
        update(InboxConversation)
        .where(InboxConversation.id == conversation.id, InboxConversation.assignee_id.is_(None))
        .values(assignee_id=agent.id, queue_rank_at=None, weight=weight)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        if counts:
            release_load(session, agent.id, weight)
        return False
    session.refresh(conversation, ["assignee_id", "queue_rank_at", "weight"])
    return True


def route(session: Session, conversation: InboxConversation, settings: Settings) -> InboxAgent | None:
    """Assign a waiting conversation to the best free agent, if any; else it stays queued."""
    if conversation.assignee_id is not None or conversation.status != "open":
        return None
    for agent in candidates(session, conversation, settings):
        if claim(session, conversation, agent, settings):
            return agent
    return None


def _fits_agent(agent: InboxAgent, team_ids: set[int]):  # noqa: ANN202 - a SQL condition
    skills = list(agent.skills or [])
    skill = or_(InboxConversation.required_skill.is_(None), InboxConversation.required_skill.in_(skills)) if skills else (
        InboxConversation.required_skill.is_(None)
    )
    team = or_(InboxConversation.team_id.is_(None), InboxConversation.team_id.in_(team_ids)) if team_ids else (
        InboxConversation.team_id.is_(None)
    )
    return and_(skill, team)


def waiting(session: Session):  # noqa: ANN201 - a select of the queue
    return select(InboxConversation).where(
        InboxConversation.status == "open", InboxConversation.assignee_id.is_(None), InboxConversation.queue_rank_at.is_not(None)
    )


def fill_agent(session: Session, agent: InboxAgent, settings: Settings, *, limit: int = 50) -> list[InboxConversation]:
    """Give a free agent the waiting conversations they can take, in queue order."""
    if agent.status != "online":
        return []
    team_ids = set(session.scalars(select(InboxTeamMember.team_id).where(InboxTeamMember.agent_id == agent.id)))
    taken: list[InboxConversation] = []
    while agent.load < agent.capacity and len(taken) < limit:
        batch = session.scalars(
            waiting(session).where(_fits_agent(agent, team_ids)).order_by(InboxConversation.queue_rank_at, InboxConversation.id)
            .limit(10)
        ).all()
        progressed = False
        for conversation in batch:
            if agent.load >= agent.capacity:
                break
            if claim(session, conversation, agent, settings):
                taken.append(conversation)
                progressed = True
        if not progressed:
            break
    return taken


def queue_position(session: Session, conversation: InboxConversation) -> int | None:
    """1 for the next to be served among the conversations waiting for the same skill."""
    if conversation.queue_rank_at is None or conversation.assignee_id is not None:
        return None
    ahead = session.scalar(
        select(func.count()).select_from(waiting(session).where(
            InboxConversation.queue_rank_at < conversation.queue_rank_at,
            InboxConversation.required_skill.is_(None) if conversation.required_skill is None
            else InboxConversation.required_skill == conversation.required_skill,
        ).subquery())
    )
    return int(ahead or 0) + 1
