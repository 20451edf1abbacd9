"""HTTP and WebSocket routes of the inbox: agents and teams, conversations and messages, the
queue, the single window, settings (SLA, routing rules, canned responses, webhooks), surveys,
inbound payloads, the load dashboard, and the agents' real-time socket."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import (
    APIRouter,
    Depends,
    File,
    Query,
    Request,
    Response,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from seamline.core.auth import service as auth_service
from seamline.core.auth.models import ApiKey
from seamline.core.auth.schemas import Scope
from seamline.core.deps import (
    AdminKey,
    AppSettings,
    IdempotencyKey,
    ReadKey,
    ReadSession,
    WriteKey,
    WriteSession,
    get_database,
    require,
)
from seamline.core.errors import AppError, NotFound, Unprocessable
from seamline.core.openapi import errors
from seamline.core.pagination import BeforeIdQuery, CursorQuery, before, encode_cursor, page
from seamline.core.schemas import QueryBool, path_id, query_id
from seamline.customers import service as customers_service
from seamline.customers.api import Sections
from seamline.inbox import (
    agents,
    canned,
    delivery,
    outbound,
    realtime,
    routing,
    service,
    sla,
    suppression,
    webhooks,
)
from seamline.inbox.models import (
    InboxAgent,
    InboxAttachment,
    InboxConversation,
    InboxInbound,
    InboxRoutingRule,
    InboxSlaPolicy,
    InboxSurvey,
    InboxTeam,
    InboxWebhook,
)
from seamline.inbox.schemas import (
    AgentCreate,
    AgentCreated,
    AgentList,
    AgentRead,
    AgentStatus,
    AgentUpdate,
    AttachmentRead,
    CannedCreate,
    CannedList,
    CannedRead,
    CannedRendered,
    ChannelStateList,
    ConversationDetailRead,
    ConversationPage,
    ConversationRead,
    ConversationSummaryRead,
    DashboardRead,
    InboundPage,
    InboundRetried,
    LabelsChange,
    MergeRequest,
    MessageList,
    MessageRead,
    NoteCreate,
    OutboundCreate,
    OutboundPage,
    OutboundRead,
    QueueRead,
    ReplyCreate,
    RoutingRuleCreate,
    RoutingRuleList,
    RoutingRuleRead,
    SlaPolicyCreate,
    SlaPolicyList,
    SlaPolicyRead,
    SplitRequest,
    StatusChange,
    SurveyAnswer,
    SuppressionPage,
    SurveyPage,
    SurveyRead,
    TeamCreate,
    TeamList,
    TeamRead,
    Transfer,
    Typing,
    WebhookCreate,
    WebhookCreated,
    WebhookDeadLetterPage,
    WebhookDeliveryRetried,
    WebhookList,
    WindowRead,
)

router = APIRouter(prefix="/v1/inbox", tags=["inbox"], responses=errors(401, 403, 422))

_CONVERSATION_ERRORS = errors(404, 409, notes={404: "`conversation_not_found`", 409: "`merge_chain`"})
_ACTION_ERRORS = errors(400, 404, 409, 413, 422, notes={
    404: "`conversation_not_found`, `agent_not_found`", 409: "`merge_chain`", 422: "`agent_required`, `not_your_agent`"})

AgentKey = Annotated[ApiKey, Depends(require(Scope.agent))]
IdPath = Annotated[int, query_id()]
PathId = Annotated[int, path_id()]
Limit = Annotated[int, Query(ge=1, le=500)]


def _actor(session: Session, key: ApiKey, agent_id: int | None) -> int:
    """The acting agent: the key's own agent, else `agent_id` (a staff or system key acting for one)."""
    own = agents.agent_of_key(session, key.id)
    if own is not None:
        if agent_id not in (None, own.id):
            raise Unprocessable("This key acts as its own agent only", code="not_your_agent", details={"agent_id": own.id})
        return own.id
    if agent_id is None:
        raise Unprocessable("Say which agent acts: agent_id (or use the agent's own key)", code="agent_required")
    agents.get_agent(session, agent_id)
    return agent_id


# --- agents and teams ---------------------------------------------------------------------------


@router.post("/agents", status_code=201, response_model=AgentCreated, responses=errors(400, 409, 413, 422, notes={
    409: "`agent_exists`, `extension_taken`", 422: "`team_not_found`"}))
def create_agent(body: AgentCreate, session: WriteSession, admin: AdminKey) -> dict[str, Any]:
    key = raw = None
    if body.create_key:
        key, raw = auth_service.create_api_key(session, name=f"agent {body.email}", scopes=[Scope.agent], created_by=admin)
    agent = agents.create_agent(session, name=body.name, email=str(body.email), skills=body.skills, capacity=body.capacity,
                                team_ids=body.team_ids, api_key_id=key.id if key else None, extension=body.extension)
    return {**agents.agent_view(session, agent), **({"api_key": raw} if raw else {})}


@router.get("/agents", response_model=AgentList)
def list_agents(session: ReadSession, _: AgentKey) -> dict[str, Any]:
    return {"items": [agents.agent_view(session, a) for a in session.scalars(select(InboxAgent).order_by(InboxAgent.id))]}


@router.get("/agents/me", response_model=AgentRead, responses=errors(404, notes={404: "`not_an_agent`: the key acts for no agent"}))
def me(session: ReadSession, key: AgentKey) -> dict[str, Any]:
    own = agents.agent_of_key(session, key.id)
    if own is None:
        raise NotFound("This key is not an agent's key", code="not_an_agent")
    return agents.agent_view(session, own)


@router.patch("/agents/{agent_id:int}", response_model=AgentRead, responses=errors(400, 404, 409, 413, 422, notes={
    404: "`agent_not_found`", 409: "`extension_taken`", 422: "`team_not_found`"}))
def update_agent(agent_id: PathId, body: AgentUpdate, session: WriteSession, settings: AppSettings, _: AdminKey) -> dict[str, Any]:
    agent = agents.update_agent(session, settings=settings, agent_id=agent_id, changes=body.model_dump(exclude_unset=True))
    return agents.agent_view(session, agent)


@router.post("/agents/{agent_id:int}/status", response_model=AgentRead, responses=errors(400, 404, 413, 422, notes={
    404: "`agent_not_found`", 422: "`not_your_agent`"}))
def set_agent_status(agent_id: PathId, body: AgentStatus, session: WriteSession, settings: AppSettings, key: AgentKey) -> dict[str, Any]:
    _actor(session, key, agent_id)
    return agents.agent_view(session, agents.set_status(session, settings=settings, agent_id=agent_id, status=body.status))


@router.post("/teams", status_code=201, response_model=TeamRead, responses=errors(400, 409, 413, notes={409: "`team_exists`"}))
def create_team(body: TeamCreate, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    team = agents.create_team(session, name=body.name)
    return {"id": team.id, "name": team.name}


@router.get("/teams", response_model=TeamList)
def list_teams(session: ReadSession, _: AgentKey) -> dict[str, Any]:
    return {"items": [{"id": t.id, "name": t.name} for t in session.scalars(select(InboxTeam).order_by(InboxTeam.id))]}


@router.get("/dashboard", response_model=DashboardRead)
def dashboard(session: ReadSession, settings: AppSettings, _: AgentKey) -> dict[str, Any]:
    return agents.dashboard(session, settings=settings)


# --- conversations ------------------------------------------------------------------------------


@router.get("/conversations", response_model=ConversationPage, responses=errors(404, 410, 422, notes={
    404: "`customer_not_found`", 422: "`invalid_cursor`"}))
def list_conversations(
    session: ReadSession, _: AgentKey,
    status: Annotated[str | None, Query(pattern="^(open|pending|snoozed|resolved)$")] = None,
    assignee_id: IdPath | None = None, unassigned: QueryBool = False, customer_id: IdPath | None = None,
    channel: Annotated[str | None, Query(max_length=32)] = None, label: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50, cursor: CursorQuery = None, before_id: BeforeIdQuery = None,
) -> dict[str, Any]:
    """Conversations, newest first, a page at a time (`next_cursor`). `next_before_id` is the
    deprecated way to the next page, kept while clients move to the cursor."""
    rows = service.list_conversations(session, status=status, assignee_id=assignee_id, unassigned=unassigned,
                                      customer_id=customer_id, channel=channel, label=label, limit=limit + 1,
                                      before_id=before(cursor, before_id))
    items, next_cursor = page(rows, limit)
    return {"items": [service.summary_view(c) for c in items], "next_cursor": next_cursor,
            "next_before_id": items[-1].id if next_cursor else None}


@router.get("/queue", response_model=QueueRead)
def queue(session: ReadSession, _: AgentKey, limit: Limit = 100) -> dict[str, Any]:
    rows = session.scalars(routing.waiting(session).order_by(InboxConversation.queue_rank_at, InboxConversation.id).limit(limit)).all()
    return {"items": [{**service.summary_view(c), "required_skill": c.required_skill, "position": i + 1} for i, c in enumerate(rows)]}


@router.get("/conversations/{conversation_id}", response_model=ConversationDetailRead, responses=_CONVERSATION_ERRORS)
def get_conversation(conversation_id: PathId, session: ReadSession, settings: AppSettings, _: AgentKey) -> dict[str, Any]:
    return service.conversation_view(session, service.get_conversation(session, conversation_id), settings)


@router.get("/conversations/{conversation_id}/window", response_model=WindowRead, responses=errors(404, 409, 410, notes={
    404: "`conversation_not_found`", 409: "`merge_chain`"}))
def single_window(conversation_id: PathId, session: ReadSession, settings: AppSettings, sections: Sections,
                  _: AgentKey) -> dict[str, Any]:
    """Everything the agent needs in one call: the conversation, the customer 360 (profile,
    identities, consents, cart, orders, loyalty, conversations, the latest 20 timeline items)."""
    conversation = service.get_conversation(session, conversation_id)
    view = service.conversation_view(session, conversation, settings)
    customer_id = view["customer_id"]
    customer = customers_service.render_customer(session, sections=sections, profile_id=customer_id)
    return {
        "conversation": view,
        "customer": customer,
        "other_conversations": [c for c in customer["sections"].get("conversations") or [] if c["id"] != conversation.id],
        "reachable_channels": service.reachable_channels(session, conversation, settings),
    }


@router.get("/conversations/{conversation_id}/messages", response_model=MessageList, responses=errors(404, 409, 422, notes={
    404: "`conversation_not_found`", 409: "`merge_chain`", 422: "`invalid_cursor`"}))
def list_messages(
    conversation_id: PathId, session: ReadSession, _: AgentKey,
    after_id: Annotated[int | None, query_id(description=(
        "Only the messages after this one, oldest first (polling for new ones: pass the last id you have)"))] = None,
    cursor: CursorQuery = None, before_id: BeforeIdQuery = None, limit: Limit = 100,
) -> dict[str, Any]:
    """A conversation's messages in the order they were written: the latest `limit`, and
    `next_cursor` for the page of older ones before them (null: the first message is here).
    With `after_id`, the messages after it instead (`next_cursor` is then null)."""
    conversation = service.get_conversation(session, conversation_id)
    rows = service.messages_of(session, conversation.id, limit=limit + 1, after_id=after_id,
                               before_id=before(cursor, before_id))
    if after_id is not None:
        return {"items": service.messages_view(session, rows[:limit]), "next_cursor": None}
    older = len(rows) > limit  # oldest first: the extra row is the oldest, beyond this page
    items = rows[1:] if older else rows
    return {"items": service.messages_view(session, items), "next_cursor": encode_cursor(items[0].id) if older else None}


@router.post("/conversations/{conversation_id}/messages", status_code=201, response_model=MessageRead, responses=errors(
    400, 404, 409, 410, 413, 422, notes={
        404: "`conversation_not_found`, `agent_not_found`, `canned_not_found`",
        409: "`consent_withdrawn` (with the channels that remain), `merge_chain`",
        422: "`empty_message`, `unknown_channel`, `channel_not_configured`, `channel_unreachable`, `channel_cannot_send`, "
             "`attachment_not_found`, `idempotency_key_reused`, `agent_required`, `not_your_agent`"}))
def reply(conversation_id: PathId, body: ReplyCreate, session: WriteSession, settings: AppSettings, key: AgentKey,
          idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """An agent's answer. A retry with the same `Idempotency-Key` returns the first answer, sent once."""
    agent_id = _actor(session, key, body.agent_id)
    text = body.text
    if body.canned_response_id:
        text = canned.render(session, canned_id=body.canned_response_id, conversation_id=conversation_id, agent_id=agent_id)
    if not text.strip() and not body.attachment_ids:
        raise Unprocessable("A reply needs text or an attachment", code="empty_message")
    message = service.reply(session, settings=settings, conversation_id=conversation_id, agent_id=agent_id, text=text,
                            html=body.html, attachment_ids=body.attachment_ids, channel=body.channel,
                            idempotency_key=idempotency_key)
    return service.messages_view(session, [message])[0]


@router.post("/conversations/{conversation_id}/notes", status_code=201, response_model=MessageRead, responses=_ACTION_ERRORS)
def add_note(conversation_id: PathId, body: NoteCreate, session: WriteSession, key: AgentKey) -> dict[str, Any]:
    note = service.add_note(session, conversation_id=conversation_id, agent_id=_actor(session, key, body.agent_id), text=body.text)
    return service.messages_view(session, [note])[0]


@router.post("/conversations/{conversation_id}/status", response_model=ConversationRead, responses=errors(400, 404, 409, 413, 422, notes={
    404: "`conversation_not_found`, `agent_not_found`", 409: "`merge_chain`", 422: "`invalid_snooze`, `not_your_agent`"}))
def change_status(conversation_id: PathId, body: StatusChange, session: WriteSession, settings: AppSettings, key: AgentKey) -> dict[str, Any]:
    agent_id = _actor(session, key, body.agent_id) if body.agent_id or agents.agent_of_key(session, key.id) else None
    conversation = service.set_status(session, settings=settings, conversation_id=conversation_id, status=body.status,
                                      snoozed_until=body.snoozed_until, agent_id=agent_id)
    return service.conversation_view(session, conversation, settings, messages=False)


@router.post("/conversations/{conversation_id}/transfer", response_model=ConversationRead, responses=errors(400, 404, 409, 413, 422, notes={
    404: "`conversation_not_found`, `agent_not_found`, `team_not_found`", 409: "`merge_chain`",
    422: "`invalid_transfer`, `not_your_agent`"}))
def transfer(conversation_id: PathId, body: Transfer, session: WriteSession, settings: AppSettings, key: AgentKey) -> dict[str, Any]:
    by = _actor(session, key, body.agent_id) if body.agent_id or agents.agent_of_key(session, key.id) else None
    conversation = service.transfer(session, settings=settings, conversation_id=conversation_id, agent_id=body.to_agent_id,
                                    team_id=body.to_team_id, note=body.note, by_agent_id=by)
    return service.conversation_view(session, conversation, settings, messages=False)


@router.post("/conversations/{conversation_id}/typing", status_code=204, response_class=Response, responses=_ACTION_ERRORS)
def agent_typing(conversation_id: PathId, body: Typing, session: WriteSession, key: AgentKey) -> Response:
    service.typing(session, conversation_id=conversation_id, agent_id=_actor(session, key, body.agent_id), is_typing=body.typing)
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/labels", response_model=ConversationSummaryRead, responses=errors(400, 404, 409, 413, notes={
    404: "`conversation_not_found`", 409: "`merge_chain`"}))
def labels(conversation_id: PathId, body: LabelsChange, session: WriteSession, _: AgentKey) -> dict[str, Any]:
    conversation = service.set_labels(session, conversation_id=conversation_id, add=body.add, remove=body.remove)
    return service.summary_view(conversation)


@router.post("/conversations/{conversation_id}/merge", response_model=ConversationDetailRead, responses=errors(400, 404, 409, 413, 422, notes={
    404: "`conversation_not_found`", 409: "`different_customers`, `merge_chain`", 422: "`same_conversation`, `not_your_agent`"}))
def merge(conversation_id: PathId, body: MergeRequest, session: WriteSession, settings: AppSettings, key: AgentKey) -> dict[str, Any]:
    by = _actor(session, key, body.agent_id) if body.agent_id or agents.agent_of_key(session, key.id) else None
    target = service.merge(session, settings=settings, source_id=body.source_id, target_id=conversation_id, agent_id=by)
    return service.conversation_view(session, target, settings)


@router.post("/split", status_code=201, response_model=ConversationDetailRead, responses=errors(400, 404, 413, 422, notes={
    404: "`message_not_found`", 422: "`split_needs_customer_message`, `nothing_to_split`, `not_your_agent`"}))
def split(body: SplitRequest, session: WriteSession, settings: AppSettings, key: AgentKey) -> dict[str, Any]:
    by = _actor(session, key, body.agent_id) if body.agent_id or agents.agent_of_key(session, key.id) else None
    return service.conversation_view(session, service.split(session, settings=settings, message_id=body.message_id, agent_id=by), settings)


@router.get("/search", response_model=MessageList, responses=errors(404, 410, 422, notes={
    404: "`customer_not_found`", 422: "`invalid_cursor`"}))
def search(session: ReadSession, _: AgentKey, q: Annotated[str, Query(min_length=2, max_length=200)],
           customer_id: IdPath | None = None, limit: Limit = 50, cursor: CursorQuery = None) -> dict[str, Any]:
    """Messages containing `q` (any case), newest first, a page at a time."""
    items, next_cursor = page(service.search_messages(session, q=q, limit=limit + 1, customer_id=customer_id,
                                                      before_id=before(cursor)), limit)
    return {"items": service.messages_view(session, items), "next_cursor": next_cursor}


# --- attachments ----------------------------------------------------------------------------------


@router.post("/attachments", status_code=201, response_model=AttachmentRead, responses=errors(400, 413, notes={
    413: "`attachment_too_large` (over `inbox_attachment_max_bytes`)"}))
async def upload(request: Request, file: Annotated[UploadFile, File()], _: AgentKey) -> dict[str, Any]:
    settings = request.app.state.settings
    data = await file.read(settings.inbox_attachment_max_bytes + 1)

    def store() -> InboxAttachment:
        with get_database(request).write() as session:
            return service.store_attachment(session, max_bytes=settings.inbox_attachment_max_bytes, filename=file.filename or "file",
                                            content_type=file.content_type or "", data=data, customer_id=None)

    stored = await run_in_threadpool(store)
    return {"id": stored.id, "filename": stored.filename, "content_type": stored.content_type, "size": stored.size}


@router.get("/attachments/{attachment_id}", response_class=Response, responses={
    200: {"description": "The file, as a download", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    **errors(404, notes={404: "`attachment_not_found`"})})
def download(attachment_id: PathId, session: ReadSession, _: AgentKey) -> Response:
    stored = session.get(InboxAttachment, attachment_id)
    if stored is None:
        raise NotFound(f"Attachment {attachment_id} not found", code="attachment_not_found")
    return attachment_response(stored)


def attachment_response(stored: InboxAttachment) -> Response:
    """The file as a download (never rendered inline: it came from a customer), its name in
    ASCII and in UTF-8 (RFC 6266)."""
    ascii_name = "".join(c for c in stored.filename if c.isascii() and (c.isalnum() or c in "._- ")) or "file"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(stored.filename, safe='')}"
    return Response(stored.data, media_type=stored.content_type, headers={
        "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"})


# --- settings: SLA, routing rules, canned responses, webhooks --------------------------------------


@router.post("/sla-policies", status_code=201, response_model=SlaPolicyRead, responses=errors(400, 409, 413, 422, notes={
    409: "`sla_policy_exists`", 422: "`invalid_calendar`"}))
def create_sla_policy(body: SlaPolicyCreate, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    return _policy_view(sla.create_policy(session, **body.model_dump()))


def _policy_view(policy: InboxSlaPolicy) -> dict[str, Any]:
    return {c: getattr(policy, c) for c in ("id", "name", "first_response_minutes", "next_response_minutes", "resolution_minutes",
                                           "calendar", "channels", "min_priority", "is_default")}


@router.get("/sla-policies", response_model=SlaPolicyList)
def list_sla_policies(session: ReadSession, _: AgentKey) -> dict[str, Any]:
    return {"items": [_policy_view(p) for p in session.scalars(select(InboxSlaPolicy).order_by(InboxSlaPolicy.id))]}


@router.post("/routing-rules", status_code=201, response_model=RoutingRuleRead, responses=errors(400, 413, 422, notes={
    422: "`invalid_pattern`"}))
def create_routing_rule(body: RoutingRuleCreate, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    return _rule_view(routing.create_rule(session, **body.model_dump()))


def _rule_view(rule: InboxRoutingRule) -> dict[str, Any]:
    return {c: getattr(rule, c) for c in ("id", "name", "pattern", "skill", "position", "enabled")}


@router.get("/routing-rules", response_model=RoutingRuleList)
def list_routing_rules(session: ReadSession, _: AgentKey) -> dict[str, Any]:
    return {"items": [_rule_view(r) for r in routing.list_rules(session)]}


@router.delete("/routing-rules/{rule_id}", status_code=204, response_class=Response, responses=errors(404, notes={
    404: "`routing_rule_not_found`"}))
def delete_routing_rule(rule_id: PathId, session: WriteSession, _: AdminKey) -> Response:
    routing.delete_rule(session, rule_id)
    return Response(status_code=204)


@router.post("/canned-responses", status_code=201, response_model=CannedRead, responses=errors(400, 409, 413, notes={
    409: "`canned_exists`"}))
def create_canned(body: CannedCreate, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    row = canned.create(session, shortcut=body.shortcut, title=body.title, body=body.body)
    return {"id": row.id, "shortcut": row.shortcut, "title": row.title, "body": row.body}


@router.get("/canned-responses", response_model=CannedList)
def list_canned(session: ReadSession, _: AgentKey, q: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    return {"items": [{"id": r.id, "shortcut": r.shortcut, "title": r.title, "body": r.body} for r in canned.search(session, q=q)]}


@router.get("/canned-responses/{canned_id}/render", response_model=CannedRendered, responses=errors(404, 409, notes={
    404: "`canned_not_found`, `conversation_not_found`", 409: "`merge_chain`"}))
def render_canned(canned_id: PathId, session: ReadSession, key: AgentKey, conversation_id: Annotated[int, query_id()],
                  agent_id: IdPath | None = None) -> dict[str, Any]:
    own = agents.agent_of_key(session, key.id)
    text = canned.render(session, canned_id=canned_id, conversation_id=conversation_id, agent_id=own.id if own else agent_id)
    return {"text": text}


@router.post("/webhooks", status_code=201, response_model=WebhookCreated, responses=errors(400, 409, 413, 422, notes={
    409: "`secret_key_required`: the server has no key to store the secret encrypted",
    422: "`invalid_url`, `unknown_event_type`"}))
def create_webhook(body: WebhookCreate, session: WriteSession, settings: AppSettings, _: AdminKey) -> dict[str, Any]:
    """A webhook for conversation and message events; its signing secret is in this answer only
    (it is stored encrypted)."""
    hook, secret = webhooks.create_webhook(session, settings=settings, url=body.url, types=body.types, secret=body.secret)
    return {"id": hook.id, "url": hook.url, "types": hook.types, "secret": secret}


@router.get("/webhooks", response_model=WebhookList)
def list_webhooks(session: ReadSession, _: AdminKey) -> dict[str, Any]:
    return {"items": [{"id": h.id, "url": h.url, "types": h.types, "active": h.active}
                      for h in session.scalars(select(InboxWebhook).order_by(InboxWebhook.id))]}


@router.get("/webhooks/{webhook_id}/dead-letters", response_model=WebhookDeadLetterPage, responses=errors(422, notes={
    422: "`invalid_cursor`"}))
def webhook_dead_letters(webhook_id: PathId, session: ReadSession, _: AdminKey, limit: Limit = 100,
                         cursor: CursorQuery = None) -> dict[str, Any]:
    """Events that could not be delivered after the last attempt, newest first, a page at a time."""
    items, next_cursor = page(webhooks.dead_letters(session, webhook_id=webhook_id, limit=limit + 1, before_id=before(cursor)), limit)
    return {"items": [{"id": d.id, "event_type": d.event_type, "attempts": d.attempts, "last_error": d.last_error,
                       "created_at": d.created_at} for d in items], "next_cursor": next_cursor}


@router.post("/webhooks/{webhook_id}/dead-letters/{delivery_id}/retry", response_model=WebhookDeliveryRetried, responses=errors(
    404, notes={404: "`delivery_not_found`"}))
def retry_webhook(webhook_id: PathId, delivery_id: PathId, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    row = webhooks.retry(session, webhook_id=webhook_id, delivery_id=delivery_id)
    return {"id": row.id, "status": row.status}


# --- surveys and inbound --------------------------------------------------------------------------


@router.get("/surveys", response_model=SurveyPage, responses=errors(422, notes={422: "`invalid_cursor`"}))
def list_surveys(session: ReadSession, _: AgentKey, conversation_id: IdPath | None = None, limit: Limit = 100,
                 cursor: CursorQuery = None) -> dict[str, Any]:
    """Surveys sent and their answers, newest first, a page at a time."""
    query = select(InboxSurvey).order_by(InboxSurvey.id.desc()).limit(limit + 1)
    if conversation_id is not None:
        query = query.where(InboxSurvey.conversation_id == conversation_id)
    if (below := before(cursor)) is not None:
        query = query.where(InboxSurvey.id < below)
    items, next_cursor = page(session.scalars(query).all(), limit)
    return {"items": [service.survey_view(s) for s in items], "next_cursor": next_cursor}


@router.post("/surveys/{survey_id}/answer", response_model=SurveyRead, responses=errors(400, 404, 409, 413, 422, notes={
    404: "`survey_not_found`", 409: "`survey_answered` (with another score)", 422: "`invalid_score`"}))
def answer_survey(survey_id: PathId, body: SurveyAnswer, session: WriteSession, _: AgentKey) -> dict[str, Any]:
    return service.survey_view(service.answer_survey(session, survey_id=survey_id, score=body.score, comment=body.comment))


@router.get("/inbound", response_model=InboundPage, responses=errors(422, notes={422: "`invalid_cursor`"}))
def list_inbound(session: ReadSession, _: AdminKey, status: Annotated[str | None, Query(pattern="^(received|processed|failed)$")] = None,
                 limit: Limit = 100, cursor: CursorQuery = None) -> dict[str, Any]:
    """What providers sent, stored raw before processing, newest first, a page at a time."""
    query = select(InboxInbound).order_by(InboxInbound.id.desc()).limit(limit + 1)
    if status:
        query = query.where(InboxInbound.status == status)
    if (below := before(cursor)) is not None:
        query = query.where(InboxInbound.id < below)
    items, next_cursor = page(session.scalars(query).all(), limit)
    return {"items": [{"id": r.id, "channel": r.channel, "provider_message_id": r.provider_message_id, "status": r.status,
                       "attempts": r.attempts, "error": r.error, "message_id": r.message_id, "received_at": r.received_at,
                       "size": len(r.payload)} for r in items], "next_cursor": next_cursor}


@router.post("/inbound/{inbound_id}/retry", response_model=InboundRetried, responses=errors(404, notes={
    404: "`inbound_not_found`"}))
def retry_inbound(inbound_id: PathId, request: Request, _: AdminKey) -> dict[str, Any]:
    """Process a stored inbound part again: the message it became, or the error it failed with again."""
    with get_database(request).read() as session:
        if session.get(InboxInbound, inbound_id) is None:
            raise NotFound(f"Inbound {inbound_id} not found", code="inbound_not_found")
    message_id, error = delivery.process(get_database(request), rules=request.app.state.identifier_rules,
                                         settings=request.app.state.settings, inbound_id=inbound_id)
    return {"id": inbound_id, "message_id": message_id, "error": error}


# --- outbound for the rest of the system, dead letters, channel health -------------------------------


@router.post("/outbound", status_code=201, response_model=OutboundRead, responses={
    200: {"model": OutboundRead, "description": "A retry with the same `Idempotency-Key`: the first message"},
    **errors(400, 404, 409, 410, 413, 422, notes={
        404: "`customer_not_found`", 409: "`consent_withdrawn`, `no_marketing_consent` (a channel asked for)",
        422: "`customer_unreachable` (each channel's reason), `address_bounced` (the named channel's every address hard-bounced), `unknown_channel`, `idempotency_key_reused`"})})
def send_outbound(body: OutboundCreate, session: WriteSession, settings: AppSettings, response: Response, _: WriteKey,
                  idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Send a message to a customer on the channel that reaches them (see docs/inbox.md,
    "Outbound"). 422 `customer_unreachable` lists every channel's reason; a retry with the same
    `Idempotency-Key` returns the first message (200)."""
    message, new = outbound.send(session, settings=settings, customer_id=body.customer_id, text=body.text,
                                 channel=body.channel, purpose=body.purpose, source=body.source, idempotency_key=idempotency_key,
                                 push=body.push.model_dump(exclude_none=True) if body.push else None)
    if not new:
        response.status_code = 200
    return outbound.outbound_view(message, body.customer_id)


@router.get("/outbound/{message_id}", response_model=OutboundRead, responses=errors(404, notes={404: "`message_not_found`"}))
def get_outbound(message_id: PathId, session: ReadSession, _: ReadKey) -> dict[str, Any]:
    return outbound.outbound_view(outbound.get_message(session, message_id))


@router.get("/dead-letters", response_model=OutboundPage, responses=errors(422, notes={422: "`invalid_cursor`"}))
def list_dead_letters(session: ReadSession, _: AdminKey, channel: Annotated[str | None, Query(max_length=32)] = None,
                      cursor: CursorQuery = None, before_id: BeforeIdQuery = None, limit: Limit = 100) -> dict[str, Any]:
    """Outbound messages (agents' replies and system messages) that could not be delivered,
    newest first, a page at a time."""
    items, next_cursor = page(outbound.dead_letters(session, channel=channel, limit=limit + 1,
                                                    before_id=before(cursor, before_id)), limit)
    return {"items": [outbound.outbound_view(m) for m in items], "next_cursor": next_cursor}


@router.post("/dead-letters/{message_id}/retry", response_model=OutboundRead, responses=errors(404, 409, notes={
    404: "`dead_letter_not_found`", 409: "`consent_withdrawn`"}))
def retry_dead_letter(message_id: PathId, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    return outbound.outbound_view(outbound.requeue(session, message_id=message_id))


@router.get("/suppressions", response_model=SuppressionPage, responses=errors(422, notes={422: "`invalid_cursor`"}))
def list_suppressions(session: ReadSession, _: AdminKey, channel: Annotated[str | None, Query(max_length=32)] = None,
                      address: Annotated[str | None, Query(max_length=320)] = None, cursor: CursorQuery = None,
                      before_id: BeforeIdQuery = None, limit: Limit = 100) -> dict[str, Any]:
    """Addresses nothing is sent to because their channel said they are gone for good (an email's
    hard bounce), newest first. A person writing from one lifts it."""
    items, next_cursor = page(suppression.listing(session, channel=channel, address=address, limit=limit + 1,
                                                  before_id=before(cursor, before_id)), limit)
    return {"items": items, "next_cursor": next_cursor}


@router.delete("/suppressions/{suppression_id}", status_code=204, response_class=Response, responses=errors(404, notes={
    404: "`suppression_not_found`"}))
def lift_suppression(suppression_id: PathId, session: WriteSession, _: AdminKey) -> Response:
    """Send to the address again (the person says their mailbox works now)."""
    suppression.lift_by_id(session, suppression_id)
    return Response(status_code=204)


@router.get("/channels", response_model=ChannelStateList)
def channel_health(session: ReadSession, settings: AppSettings, _: AgentKey) -> dict[str, Any]:
    """Each channel: its rate limit, whether it is paused after failures, queued and failed messages."""
    return {"items": outbound.channel_states(session, settings=settings)}


# --- real time --------------------------------------------------------------------------------------


def _ws_agent(request_app, raw_key: str | None, agent_id: int | None) -> tuple[list[str], int | None]:  # noqa: ANN001
    database = request_app.state.database
    with database.read() as session:
        key = auth_service.authenticate(session, raw_key or "")
        auth_service.check_scope(key, Scope.agent)
        own = agents.agent_of_key(session, key.id)
        if own is not None:
            agent_id = own.id
        elif agent_id is not None:
            agents.get_agent(session, agent_id)
    return (["inbox"] + ([f"agent:{agent_id}"] if agent_id else [])), agent_id


@router.websocket("/ws")
async def agent_socket(websocket: WebSocket, key: Annotated[str | None, Query(max_length=200)] = None,
                       agent_id: Annotated[int | None, query_id()] = None) -> None:
    """Agent consoles: assignment, new messages, typing, status, SLA and dashboard changes.
    Send `{"type": "watch", "conversation_id": N}` to follow a conversation (its messages and
    the customer's typing), `{"type": "typing", "conversation_id": N, "typing": true}` to show yours."""
    try:
        topics, agent_id = await run_in_threadpool(_ws_agent, websocket.app, key, agent_id)
    except AppError as exc:
        await websocket.close(code=4401, reason=exc.message[:100])
        return
    await serve_agent_socket(websocket, topics, agent_id)


async def serve_agent_socket(websocket: WebSocket, topics: list[str], agent_id: int | None) -> None:
    """Accept an authenticated agent socket and pump its topics' notices until it closes (the API's
    socket and the staff console's share this)."""
    await websocket.accept()
    subscription = realtime.HUB.subscribe(topics)
    await websocket.send_json({"type": "ready", "agent_id": agent_id, "topics": topics})

    async def pump() -> None:
        while True:
            await websocket.send_text(dumps(await subscription.get()))

    sender = asyncio.create_task(pump())
    try:
        while True:
            frame = await websocket.receive_json()
            if not isinstance(frame, dict):
                continue
            conversation_id = frame.get("conversation_id")
            if frame.get("type") == "watch" and isinstance(conversation_id, int):
                subscription.add(f"conversation:{conversation_id}")
            elif frame.get("type") == "typing" and isinstance(conversation_id, int) and agent_id:
                await run_in_threadpool(_typing, websocket.app, conversation_id, agent_id, bool(frame.get("typing")))
    except (WebSocketDisconnect, RuntimeError, ValueError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        subscription.close()


def _typing(app, conversation_id: int, agent_id: int, is_typing: bool) -> None:  # noqa: ANN001
    with contextlib.suppress(AppError), app.state.database.write() as session:
        service.typing(session, conversation_id=conversation_id, agent_id=agent_id, is_typing=is_typing)


def dumps(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload, default=str).decode()

