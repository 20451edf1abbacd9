"""Agents, teams, availability, and the load dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.inbox import realtime, routing, service
from seamline.inbox.models import (
    InboxAgent,
    InboxConversation,
    InboxTeam,
    InboxTeamMember,
)

AVAILABILITY = ("online", "away", "offline")


def get_agent(session: Session, agent_id: int, *, lock: bool = False) -> InboxAgent:
    agent = session.get(InboxAgent, agent_id, with_for_update=lock)
    if agent is None:
        raise NotFound(f"Agent {agent_id} not found", code="agent_not_found")
    return agent


def agent_of_key(session: Session, api_key_id: int) -> InboxAgent | None:
    return session.scalar(select(InboxAgent).where(InboxAgent.api_key_id == api_key_id))


def agent_view(session: Session, agent: InboxAgent) -> dict[str, Any]:
    return {
        "id": agent.id, "name": agent.name, "email": agent.email, "skills": list(agent.skills or []), "status": agent.status,
        "capacity": agent.capacity, "load": agent.load, "api_key_id": agent.api_key_id, "extension": agent.extension,
        "team_ids": sorted(session.scalars(select(InboxTeamMember.team_id).where(InboxTeamMember.agent_id == agent.id))),
        "status_changed_at": agent.status_changed_at, "last_assigned_at": agent.last_assigned_at,
    }


def _set_teams(session: Session, agent: InboxAgent, team_ids: list[int]) -> None:
    found = set(session.scalars(select(InboxTeam.id).where(InboxTeam.id.in_(team_ids))))
    missing = sorted(set(team_ids) - found)
    if missing:
        raise Unprocessable("Unknown teams", code="team_not_found", details={"ids": missing})
    session.execute(delete(InboxTeamMember).where(InboxTeamMember.agent_id == agent.id))
    session.add_all(InboxTeamMember(team_id=t, agent_id=agent.id) for t in sorted(found))


def _check_extension(session: Session, extension: str | None, agent_id: int | None = None) -> None:
    if extension is None:
        return
    holder = session.scalar(select(InboxAgent.id).where(InboxAgent.extension == extension))
    if holder is not None and holder != agent_id:
        raise Conflict(f"Extension {extension} belongs to another agent", code="extension_taken", details={"agent_id": holder})


def agent_at_extension(session: Session, extension: str | None) -> InboxAgent | None:
    return session.scalar(select(InboxAgent).where(InboxAgent.extension == extension)) if extension else None


def create_agent(session: Session, *, name: str, email: str, skills: list[str], capacity: int, team_ids: list[int],
                 api_key_id: int | None = None, extension: str | None = None) -> InboxAgent:
    if session.scalar(select(InboxAgent.id).where(InboxAgent.email == email.lower())):
        raise Conflict(f"An agent with email {email} exists", code="agent_exists")
    _check_extension(session, extension)
    agent = InboxAgent(name=name, email=email.lower(), skills=sorted(set(skills)), capacity=capacity, load=0, status="offline",
                       api_key_id=api_key_id, extension=extension, status_changed_at=utcnow())
    session.add(agent)
    session.flush()
    _set_teams(session, agent, team_ids)
    return agent


def update_agent(session: Session, *, settings: Settings, agent_id: int, changes: dict[str, Any]) -> InboxAgent:
    agent = get_agent(session, agent_id, lock=True)
    if "team_ids" in changes:
        _set_teams(session, agent, changes.pop("team_ids"))
    if "extension" in changes:
        _check_extension(session, changes["extension"], agent.id)
    for field in ("name", "skills", "capacity", "extension"):
        if field in changes:
            setattr(agent, field, sorted(set(changes[field])) if field == "skills" else changes[field])
    session.flush()
    if agent.status == "online":
        _announce(session, routing.fill_agent(session, agent, settings), agent)
    return agent


def _announce(session: Session, taken: list[InboxConversation], agent: InboxAgent) -> None:
    for conversation in taken:
        service._announce_assignment(session, conversation, agent_id=agent.id, by=None, note=None)


def set_status(session: Session, *, settings: Settings, agent_id: int, status: str) -> InboxAgent:
    """Online: the agent takes waiting conversations. Offline: their open conversations go back
    to the queue (keeping their place) and to other agents. Away: keeps what they have, gets nothing new."""
    if status not in AVAILABILITY:
        raise Unprocessable(f"Unknown availability {status!r}", code="invalid_status", details={"known": list(AVAILABILITY)})
    agent = get_agent(session, agent_id, lock=True)
    if agent.status != status:
        agent.status, agent.status_changed_at = status, utcnow()
    session.flush()
    if status == "offline":
        requeue_agent(session, settings=settings, agent=agent)
    elif status == "online":
        _announce(session, routing.fill_agent(session, agent, settings), agent)
    realtime.notify(session, ["inbox", f"agent:{agent.id}"], {"type": "agent", "agent": {"id": agent.id, "status": agent.status,
                                                                                          "load": agent.load}})
    return agent


def requeue_agent(session: Session, *, settings: Settings, agent: InboxAgent) -> int:
    conversations = session.scalars(
        select(InboxConversation).where(InboxConversation.assignee_id == agent.id, InboxConversation.status == "open")
        .order_by(InboxConversation.id).with_for_update()
    ).all()
    session.execute(update(InboxAgent).where(InboxAgent.id == agent.id).values(load=0).execution_options(synchronize_session=False))
    session.refresh(agent, ["load"])
    for conversation in conversations:
        session.execute(update(InboxConversation).where(InboxConversation.id == conversation.id).values(assignee_id=None)
                        .execution_options(synchronize_session=False))
        session.refresh(conversation, ["assignee_id"])
        routing.enqueue(conversation, settings)
        service.system_event(session, conversation, key="conversation.agent_offline", params={"agent": agent.name},
                             data={"from_agent_id": agent.id})
        found = routing.route(session, conversation, settings)
        service._announce_assignment(session, conversation, agent_id=found.id if found else None, by=None, note=None)
    return len(conversations)


def create_team(session: Session, *, name: str) -> InboxTeam:
    if session.scalar(select(InboxTeam.id).where(InboxTeam.name == name)):
        raise Conflict(f"Team {name!r} exists", code="team_exists")
    team = InboxTeam(name=name)
    session.add(team)
    session.flush()
    return team


def dashboard(session: Session, *, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """What the console's load view shows: per agent, per team, the queue, and SLA at risk."""
    now = now or utcnow()
    risk = now + timedelta(minutes=settings.inbox_sla_at_risk_minutes)
    per_agent = dict(session.execute(
        select(InboxConversation.assignee_id, func.count()).where(
            InboxConversation.status.in_(("open", "pending")), InboxConversation.assignee_id.is_not(None))
        .group_by(InboxConversation.assignee_id)).all())
    awaiting = dict(session.execute(
        select(InboxConversation.assignee_id, func.count()).where(
            InboxConversation.status == "open", InboxConversation.assignee_id.is_not(None),
            InboxConversation.awaiting_reply_since.is_not(None)).group_by(InboxConversation.assignee_id)).all())
    at_risk = dict(session.execute(
        select(InboxConversation.assignee_id, func.count()).where(
            InboxConversation.sla_next_due_at.is_not(None), InboxConversation.sla_next_due_at <= risk,
            InboxConversation.status != "resolved").group_by(InboxConversation.assignee_id)).all())
    teams = {t.id: t.name for t in session.scalars(select(InboxTeam))}
    queue = session.execute(
        select(InboxConversation.team_id, func.count(), func.min(InboxConversation.queued_at))
        .where(InboxConversation.status == "open", InboxConversation.assignee_id.is_(None), InboxConversation.queue_rank_at.is_not(None))
        .group_by(InboxConversation.team_id)).all()
    agents = session.scalars(select(InboxAgent).order_by(InboxAgent.id)).all()
    return {
        "at": now,
        "agents": [{
            "id": a.id, "name": a.name, "status": a.status, "capacity": a.capacity, "load": a.load,
            "open": per_agent.get(a.id, 0), "awaiting_reply": awaiting.get(a.id, 0), "sla_at_risk": at_risk.get(a.id, 0),
        } for a in agents],
        "queues": [{
            "team_id": team_id, "team": teams.get(team_id), "waiting": count,
            "longest_wait_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        } for team_id, count, oldest in sorted(queue, key=lambda r: (r[0] is not None, r[0] or 0))],
        "waiting_total": sum(r[1] for r in queue),
        "sla_at_risk_total": sum(at_risk.values()),
        "online_agents": sum(1 for a in agents if a.status == "online"),
    }
