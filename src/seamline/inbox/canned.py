"""Canned responses: saved texts with {{variables}} filled in for the conversation at hand.

Variables: customer.name, customer.first_name, agent.name, and what other modules register
(`register_variables`: commerce adds order.number and order.status of the customer's latest
order, wired in app.py). An unknown or empty variable renders as an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.errors import Conflict, NotFound
from seamline.inbox import service
from seamline.inbox.models import InboxAgent, InboxCannedResponse, InboxConversation

VARIABLE = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)*)\s*\}\}")
#: (session, customer profile ids, newest first) -> {"order.number": "..."}
PROVIDERS: list[Callable[[Session, list[int]], dict[str, Any]]] = []


def register_variables(provider: Callable[[Session, list[int]], dict[str, Any]]) -> None:
    if provider not in PROVIDERS:
        PROVIDERS.append(provider)


def create(session: Session, *, shortcut: str, title: str, body: str) -> InboxCannedResponse:
    if session.scalar(select(InboxCannedResponse.id).where(InboxCannedResponse.shortcut == shortcut)):
        raise Conflict(f"A canned response /{shortcut} exists", code="canned_exists")
    canned = InboxCannedResponse(shortcut=shortcut, title=title, body=body)
    session.add(canned)
    session.flush()
    return canned


def search(session: Session, *, q: str | None, limit: int = 50) -> list[InboxCannedResponse]:
    """By shortcut, title or text, ignoring case in any alphabet (a team keeps tens to hundreds
    of these, so they are filtered here rather than by the database's ASCII-only folding)."""
    rows = session.scalars(select(InboxCannedResponse).order_by(InboxCannedResponse.shortcut)).all()
    if q:
        folded = q.casefold()
        rows = [r for r in rows if folded in f"{r.shortcut}\n{r.title}\n{r.body}".casefold()]
    return list(rows[:limit])


def variables(session: Session, conversation: InboxConversation, agent: InboxAgent | None) -> dict[str, str]:
    ids = service.person_ids(session, conversation.customer_id)
    names = service.customer_name(session, ids[0])
    values: dict[str, Any] = {"customer.name": names["name"], "customer.first_name": names["first_name"],
                              "agent.name": agent.name if agent else None}
    for provider in PROVIDERS:
        values.update(provider(session, ids))
    return {k: "" if v is None else str(v) for k, v in values.items()}


def render(session: Session, *, canned_id: int, conversation_id: int, agent_id: int | None) -> str:
    canned = session.get(InboxCannedResponse, canned_id)
    if canned is None:
        raise NotFound(f"Canned response {canned_id} not found", code="canned_not_found")
    conversation = service.get_conversation(session, conversation_id)
    agent = session.get(InboxAgent, agent_id) if agent_id else None
    values = variables(session, conversation, agent)
    return VARIABLE.sub(lambda m: values.get(m.group(1), ""), canned.body)
