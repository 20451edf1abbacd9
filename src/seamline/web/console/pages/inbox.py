"""The agent's inbox: the queue, my conversations, a conversation with the customer's 360 beside
it (identities, cart, orders, loyalty, other conversations, timeline), replies with canned
responses, notes, transfer, resolve. Live: console.js turns the WebSocket's notices into body
events (sl:message, sl:assignment, sl:status) that the lists and the thread refresh on."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from seamline.core.errors import AppError, NotFound, Unprocessable
from seamline.core.schemas import MAX_ID
from seamline.customers import service as customers_service
from seamline.customers.timeline import TimelineQuery
from seamline.inbox import agents, canned, routing
from seamline.inbox import service as inbox
from seamline.inbox.api import attachment_response
from seamline.inbox.adapters import ADAPTERS
from seamline.inbox.models import (
    InboxAgent,
    InboxAttachment,
    InboxConversation,
    InboxMessage,
    InboxTeam,
)
from seamline.web.console.actions import attempt, read
from seamline.web.console.deps import RowId, Staff, permitted
from seamline.web.console.templating import render, translate

router = APIRouter(prefix="/console/inbox")
VIEWS = ("mine", "queue", "open", "resolved")
#: How much of the last message the list shows.
PREVIEW = 90
Search = Annotated[str, Query(max_length=200)]
ChannelFilter = Annotated[str, Query(max_length=32)]
ConversationId = Annotated[int, Query(ge=1, le=MAX_ID)]


def _acting_agent(staff: Staff) -> int:
    if staff.user.agent_id is None:
        raise Unprocessable("Your account is not an inbox agent", code="not_an_agent")
    return staff.user.agent_id


def _views(staff: Staff) -> tuple[str, ...]:
    """The list's views: "mine" only for an inbox agent (an admin who is not one starts at the queue)."""
    return VIEWS if staff.user.agent_id else tuple(v for v in VIEWS if v != "mine")


def _view(staff: Staff, view: str | None) -> str:
    views = _views(staff)
    return view if view in views else views[0]


def _like(text: str, *, fold: bool = True) -> str:
    text = text.casefold() if fold else text
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _matching(session: Session, request: Request, q: str):  # noqa: ANN202 - a SQL condition
    """Conversations a search box means: the customer (name, phone in any format, email, any
    identifier: customers' search), a message's text, or the subject."""
    try:
        people = customers_service.search_customers(session, rules=request.app.state.identifier_rules, q=q, limit=200)
    except AppError:  # not a customer search (a stray character): the messages and subjects still are
        people = []
    profile_ids = {i for person in people for i in customers_service.merged_profile_ids(session, person["id"])}
    pattern = _like(q)
    in_messages = select(InboxMessage.conversation_id).where(InboxMessage.search_text.like(pattern, escape="\\"),
                                                             InboxMessage.kind != "event")
    # SQLite's lower() folds ASCII only: the subject is also tried as typed and capitalized ("возврат", "Возврат").
    subjects = [func.lower(InboxConversation.subject).like(pattern, escape="\\")] + [
        InboxConversation.subject.like(_like(variant, fold=False), escape="\\") for variant in {q, q[:1].upper() + q[1:]}]
    return or_(InboxConversation.customer_id.in_(profile_ids), InboxConversation.id.in_(in_messages), *subjects)


def _list(session: Session, request: Request, staff: Staff, view: str, q: str = "", channel: str = "") -> list[dict[str, Any]]:
    """The view's conversations (at most 100), each with its state in words (queued, mine, whose),
    the last message and how long the customer has been waiting for an answer."""
    if view == "queue":  # the queue's order: who is served next first
        query = routing.waiting(session).order_by(InboxConversation.queue_rank_at, InboxConversation.id)
    else:  # the latest activity first
        query = select(InboxConversation).where(InboxConversation.merged_into_id.is_(None))
        if view == "mine":
            query = query.where(InboxConversation.assignee_id == staff.user.agent_id, InboxConversation.status == "open")
        else:
            query = query.where(InboxConversation.status == view)
        query = query.order_by(InboxConversation.last_message_at.desc(), InboxConversation.id.desc())
    if channel:
        query = query.where(InboxConversation.channel == channel)
    if q:
        query = query.where(_matching(session, request, q))
    rows = session.scalars(query.limit(100)).all()
    # A conversation keeps the profile it started on; after a merge its person is the canonical one.
    people = {c.customer_id: inbox.canonical_customer_id(session, c.customer_id) for c in rows}
    names = {person: inbox.customer_name(session, person)["name"] for person in set(people.values())}
    last = _last_messages(session, [c.id for c in rows], staff.user.agent_id)
    agent_names = inbox.agent_names(session, {c.assignee_id for c in rows if c.assignee_id})
    items = []
    for c in rows:
        if c.status != "open":
            state = c.status
        elif c.handled_by_bot and c.assignee_id is None:
            state = "bot"  # the chat bot is answering: not in the queue (docs/assistant.md)
        elif c.assignee_id is None:
            state = "queued"
        else:
            state = "mine" if c.assignee_id == staff.user.agent_id else "assigned"
        items.append({**inbox.summary_view(c), "customer_id": people[c.customer_id], "customer_name": names[people[c.customer_id]],
                      "state": state, "assignee_name": agent_names.get(c.assignee_id) if c.assignee_id else None,
                      "last": last.get(c.id)})
    return items


def _last_messages(session: Session, conversation_ids: list[int], my_agent_id: int | None) -> dict[int, dict[str, Any]]:
    """Each conversation's latest message a person wrote (the customer's, an agent's reply or
    note; not system events): its direction, kind, author (`mine`: the reader's) and the start of its text."""
    if not conversation_ids:
        return {}
    latest = select(func.max(InboxMessage.id)).where(
        InboxMessage.conversation_id.in_(conversation_ids), InboxMessage.kind != "event").group_by(InboxMessage.conversation_id)
    messages = session.scalars(select(InboxMessage).where(InboxMessage.id.in_(latest))).all()
    authors = inbox.agent_names(session, {m.author_agent_id for m in messages if m.author_agent_id})
    found = {}
    for m in messages:
        text = " ".join((m.text or "").split())
        found[m.conversation_id] = {
            "direction": m.direction, "kind": m.kind, "author": authors.get(m.author_agent_id),
            "mine": m.author_agent_id is not None and m.author_agent_id == my_agent_id, "bot": bool((m.meta or {}).get("bot")),
            "text": text if len(text) <= PREVIEW else text[:PREVIEW - 1].rstrip() + "…",
        }
    return found


def _counts(session: Session, staff: Staff) -> dict[str, int]:
    queue = session.scalar(select(func.count()).select_from(routing.waiting(session).subquery())) or 0
    mine = session.scalar(select(func.count()).select_from(InboxConversation).where(
        InboxConversation.assignee_id == staff.user.agent_id, InboxConversation.status == "open",
        InboxConversation.merged_into_id.is_(None))) or 0 if staff.user.agent_id else 0
    return {"queue": queue, "mine": mine}


def _me(session: Session, staff: Staff) -> dict[str, Any] | None:
    me = session.get(InboxAgent, staff.user.agent_id) if staff.user.agent_id else None
    return agents.agent_view(session, me) if me else None


def _list_context(session: Session, request: Request, staff: Staff, view: str, q: str = "", channel: str = "") -> dict[str, Any]:
    search = urlencode({k: v for k, v in (("q", q), ("channel", channel)) if v})
    return {"view": view, "views": _views(staff), "items": _list(session, request, staff, view, q, channel),
            "counts": _counts(session, staff), "me": _me(session, staff), "q": q, "channel": channel,
            "channels": _channels(), "filters": urlencode({"view": view}) + (f"&{search}" if search else ""),
            "search": f"&{search}" if search else ""}


def _channels() -> tuple[str, ...]:
    """The channel filter's choices: the inbox's channels (their adapters register at start-up)."""
    return tuple(sorted(ADAPTERS))


def _filters(q: str, channel: str) -> tuple[str, str]:
    return q.replace("\x00", "").strip(), channel if channel in ADAPTERS else ""


@router.get("")
def inbox_page(request: Request, staff: Staff = permitted("inbox"), view: str | None = None, q: Search = "",
               channel: ChannelFilter = "") -> HTMLResponse:
    view, (q, channel) = _view(staff, view), _filters(q, channel)
    context = read(request, lambda s: _list_context(s, request, staff, view, q, channel))
    return render(request, "inbox/page.html", section="inbox", current=None, window=None, **context)


@router.get("/list")
def inbox_list(request: Request, staff: Staff = permitted("inbox"), view: str | None = None, q: Search = "",
               channel: ChannelFilter = "", current: ConversationId | None = None) -> HTMLResponse:
    view, (q, channel) = _view(staff, view), _filters(q, channel)
    context = read(request, lambda s: _list_context(s, request, staff, view, q, channel))
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
def conversation_page(request: Request, conversation_id: RowId, staff: Staff = permitted("inbox"), view: str | None = None,
                      q: Search = "", channel: ChannelFilter = "") -> HTMLResponse:
    view, (q, channel) = _view(staff, view), _filters(q, channel)

    def load(session: Session) -> dict[str, Any]:
        return {**_list_context(session, request, staff, view, q, channel), "window": _window(session, request, conversation_id)}

    return render(request, "inbox/page.html", section="inbox", current=conversation_id, **read(request, load))


@router.get("/{conversation_id}/thread")
def thread(request: Request, conversation_id: RowId, staff: Staff = permitted("inbox")) -> HTMLResponse:
    window = read(request, lambda s: _window(s, request, conversation_id))
    return render(request, "inbox/_thread.html", window=window)


def _after_action(request: Request, conversation_id: int, error: str | None, ok: str, form_text: str = "") -> HTMLResponse:
    """The conversation again, and the agent's load out of band (a take or a resolve changes it)."""
    staff = request.state.staff
    window, me = read(request, lambda s: (_window(s, request, conversation_id), _me(s, staff)))
    return render(request, "inbox/_action_result.html", window=window, me=me, status_code=422 if error else 200,
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
def canned_text(request: Request, conversation_id: RowId, canned_id: Annotated[int, Query(ge=1, le=MAX_ID)],
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
