"""The agent's inbox: the queue, my conversations, a conversation with the customer's 360 beside
it (identities, cart, orders, loyalty, other conversations, timeline), replies with canned
responses, notes, transfer, resolve. Live: console.js turns the WebSocket's notices into body
events (sl:message, sl:assignment, sl:status) that the lists and the thread refresh on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.core.errors import NotFound, Unprocessable
from seamline.customers import service as customers_service
from seamline.customers.timeline import TimelineQuery
from seamline.inbox import agents, canned, routing
from seamline.inbox import service as inbox
from seamline.inbox.api import attachment_response
from seamline.inbox.models import (
    InboxAgent,
    InboxAttachment,
    InboxConversation,
    InboxTeam,
)
from seamline.web.console.actions import attempt, read
from seamline.web.console.deps import RowId, Staff, permitted
from seamline.web.console.templating import render, translate

router = APIRouter(prefix="/console/inbox")
VIEWS = ("mine", "queue", "open", "resolved")
ConversationId = Annotated[int, Query(ge=1, le=2**62)]


def _acting_agent(staff: Staff) -> int:
    if staff.user.agent_id is None:
        raise Unprocessable("Your account is not an inbox agent", code="not_an_agent")
    return staff.user.agent_id


def _list(session: Session, staff: Staff, view: str) -> list[dict[str, Any]]:
    if view == "queue":
        rows = session.scalars(routing.waiting(session).order_by(InboxConversation.queue_rank_at, InboxConversation.id)
                               .limit(100)).all()
    elif view == "mine":
        rows = inbox.list_conversations(session, assignee_id=staff.user.agent_id or -1, status="open", limit=100) \
            if staff.user.agent_id else []
    else:
        rows = inbox.list_conversations(session, status=view, limit=100)
    # A conversation keeps the profile it started on; after a merge its person is the canonical one.
    people = {c.customer_id: inbox.canonical_customer_id(session, c.customer_id) for c in rows}
    names = {person: inbox.customer_name(session, person)["name"] for person in set(people.values())}
    return [{**inbox.summary_view(c), "customer_id": people[c.customer_id], "customer_name": names[people[c.customer_id]]}
            for c in rows]


def _counts(session: Session, staff: Staff) -> dict[str, int]:
    queue = session.scalar(select(func.count()).select_from(routing.waiting(session).subquery())) or 0
    mine = session.scalar(select(func.count()).select_from(InboxConversation).where(
        InboxConversation.assignee_id == staff.user.agent_id, InboxConversation.status == "open",
        InboxConversation.merged_into_id.is_(None))) or 0 if staff.user.agent_id else 0
    return {"queue": queue, "mine": mine}


def _list_context(session: Session, staff: Staff, view: str) -> dict[str, Any]:
    me = session.get(InboxAgent, staff.user.agent_id) if staff.user.agent_id else None
    return {"view": view, "views": VIEWS, "items": _list(session, staff, view), "counts": _counts(session, staff),
            "me": agents.agent_view(session, me) if me else None}


@router.get("")
def inbox_page(request: Request, staff: Staff = permitted("inbox"), view: str = "mine") -> HTMLResponse:
    view = view if view in VIEWS else "mine"
    context = read(request, lambda s: _list_context(s, staff, view))
    return render(request, "inbox/page.html", section="inbox", current=None, window=None, **context)


@router.get("/list")
def inbox_list(request: Request, staff: Staff = permitted("inbox"), view: str = "mine",
               current: ConversationId | None = None) -> HTMLResponse:
    view = view if view in VIEWS else "mine"
    context = read(request, lambda s: _list_context(s, staff, view))
    return render(request, "inbox/_list.html", current=current, **context)


def _window(session: Session, request: Request, conversation_id: int) -> dict[str, Any]:
    """The single window: the conversation and everything about the person (the same data as
    GET /v1/inbox/conversations/{id}/window, plus the latest timeline items)."""
    state = request.app.state
    conversation = inbox.get_conversation(session, conversation_id)
    view = inbox.conversation_view(session, conversation, state.settings)
    customer = customers_service.render_customer(session, sections=state.customer_sections, profile_id=view["customer_id"])
    items, _ = customers_service.timeline_page(session, timeline=state.customer_timeline, customer_id=view["customer_id"],
                                                query=TimelineQuery(limit=15))
    agent_rows = session.scalars(select(InboxAgent).order_by(InboxAgent.name)).all()
    return {
        "conversation": view, "customer": customer, "name": inbox.customer_name(session, view["customer_id"]),
        "other_conversations": [c for c in customer["sections"].get("conversations") or [] if c["id"] != conversation_id],
        "reachable": inbox.reachable_channels(session, conversation, state.settings),
        "timeline": items, "agents": {a.id: a for a in agent_rows},
        "teams": session.scalars(select(InboxTeam).order_by(InboxTeam.name)).all(),
        "canned": canned.search(session, q=None, limit=200),
    }


@router.get("/{conversation_id}")
def conversation_page(request: Request, conversation_id: RowId, staff: Staff = permitted("inbox"), view: str = "mine") -> HTMLResponse:
    view = view if view in VIEWS else "mine"

    def load(session: Session) -> dict[str, Any]:
        return {**_list_context(session, staff, view), "window": _window(session, request, conversation_id)}

    return render(request, "inbox/page.html", section="inbox", current=conversation_id, **read(request, load))


@router.get("/{conversation_id}/thread")
def thread(request: Request, conversation_id: RowId, staff: Staff = permitted("inbox")) -> HTMLResponse:
    window = read(request, lambda s: _window(s, request, conversation_id))
    return render(request, "inbox/_thread.html", window=window)


def _after_action(request: Request, conversation_id: int, error: str | None, ok: str, form_text: str = "") -> HTMLResponse:
    window = read(request, lambda s: _window(s, request, conversation_id))
    return render(request, "inbox/_conversation.html", window=window, status_code=422 if error else 200,
                  flash=("error", error) if error else ("ok", ok), draft=form_text if error else "")


@router.post("/{conversation_id}/reply")
def reply(request: Request, conversation_id: RowId, text: Annotated[str, Form(max_length=20_000)] = "",
          channel: Annotated[str, Form(max_length=32)] = "", nonce: Annotated[str, Form(max_length=64)] = "",
          staff: Staff = permitted("inbox")) -> HTMLResponse:
    """Send a reply. The form's nonce is the Idempotency-Key: a double submit sends once."""

    def work(session: Session) -> str:
        if not text.strip():
            raise Unprocessable(translate(request, "Write a message first."), code="empty_message")
        return inbox.reply(session, settings=request.app.state.settings, conversation_id=conversation_id,
                           agent_id=_acting_agent(staff), text=text, channel=channel or None,
                           idempotency_key=f"console:{staff.user.id}:{nonce}" if nonce else None).delivery_status

    status, error = attempt(request, work)
    # Say only what is true: a live chat's reply is delivered to the page now; any other channel's
    # is queued for the provider, and its state (sent, delivered, failed and why) shows on it.
    done = translate(request, "Sent.") if status == "sent" else translate(
        request, "Queued for sending: its state is shown on the message.")
    return _after_action(request, conversation_id, error, done, text)


@router.post("/{conversation_id}/note")
def note(request: Request, conversation_id: RowId, text: Annotated[str, Form(max_length=20_000)] = "",
         staff: Staff = permitted("inbox")) -> HTMLResponse:
    def work(session: Session) -> None:
        if not text.strip():
            raise Unprocessable(translate(request, "Write a message first."), code="empty_message")
        inbox.add_note(session, conversation_id=conversation_id, agent_id=_acting_agent(staff), text=text)

    _, error = attempt(request, work)
    return _after_action(request, conversation_id, error, translate(request, "Note added."), text)


@router.post("/{conversation_id}/status")
def change_status(request: Request, conversation_id: RowId, status: Annotated[str, Form(max_length=16)],
                  staff: Staff = permitted("inbox")) -> HTMLResponse:
    _, error = attempt(request, lambda s: inbox.set_status(s, settings=request.app.state.settings, conversation_id=conversation_id,
                                                         status=status, agent_id=staff.user.agent_id))
    return _after_action(request, conversation_id, error, translate(request, "Done."))


@router.post("/{conversation_id}/take")
def take(request: Request, conversation_id: RowId, staff: Staff = permitted("inbox")) -> HTMLResponse:
    """Take a waiting conversation from the queue (a transfer to oneself)."""
    _, error = attempt(request, lambda s: inbox.transfer(s, settings=request.app.state.settings, conversation_id=conversation_id,
                                                       agent_id=_acting_agent(staff), by_agent_id=staff.user.agent_id))
    return _after_action(request, conversation_id, error, translate(request, "The conversation is yours."))


@router.post("/{conversation_id}/transfer")
def transfer(request: Request, conversation_id: RowId, to: Annotated[str, Form(max_length=40)],
             note_text: Annotated[str, Form(alias="note", max_length=2000)] = "", staff: Staff = permitted("inbox")) -> HTMLResponse:
    """`to` is "agent:N" or "team:N"."""
    kind, _, raw = to.partition(":")
    target = int(raw) if raw.isdigit() else None

    def work(session: Session) -> None:
        if kind not in ("agent", "team") or target is None:
            raise Unprocessable(translate(request, "Choose whom to transfer to."), code="invalid_transfer")
        inbox.transfer(session, settings=request.app.state.settings, conversation_id=conversation_id,
                       agent_id=target if kind == "agent" else None, team_id=target if kind == "team" else None,
                       note=note_text or None, by_agent_id=staff.user.agent_id)

    _, error = attempt(request, work)
    return _after_action(request, conversation_id, error, translate(request, "Transferred."))


@router.get("/{conversation_id}/canned")
def canned_text(request: Request, conversation_id: RowId, canned_id: Annotated[int, Query(ge=1, le=2**62)],
                staff: Staff = permitted("inbox")) -> HTMLResponse:
    """A canned response with the customer's and order's values filled in, into the reply box."""
    text = read(request, lambda s: canned.render(s, canned_id=canned_id, conversation_id=conversation_id,
                                                 agent_id=staff.user.agent_id))
    return render(request, "inbox/_reply_box.html", draft=text)


@router.get("/attachments/{attachment_id}")
def attachment(request: Request, attachment_id: RowId, staff: Staff = permitted("inbox")) -> Response:
    def load(session: Session) -> Response:
        stored = session.get(InboxAttachment, attachment_id)
        if stored is None:
            raise NotFound(f"Attachment {attachment_id} not found", code="attachment_not_found")
        return attachment_response(stored)

    return read(request, load)


@router.post("/availability")
def availability(request: Request, status: Annotated[str, Form(max_length=16)], staff: Staff = permitted("inbox")) -> Response:
    _, error = attempt(request, lambda s: agents.set_status(s, settings=request.app.state.settings,
                                                          agent_id=_acting_agent(staff), status=status))
    if error:
        return render(request, "_empty.html", status_code=422, flash=("error", error))
    return Response(status_code=204, headers={"HX-Refresh": "true"})
