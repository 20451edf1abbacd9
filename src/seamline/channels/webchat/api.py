"""The web chat's public API, called by the widget from any site (CORS open on /v1/webchat/*):
sessions, messages, files, the email fallback, surveys, and the visitor's WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    File,
    Header,
    Query,
    Request,
    Response,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import FileResponse
from pydantic import EmailStr, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from seamline.channels.webchat import service
from seamline.channels.webchat.adapter import ADAPTER
from seamline.core.deps import get_database
from seamline.core.errors import AppError, NotFound, Unprocessable
from seamline.core.limits import charge_key
from seamline.core.openapi import BROWSER_ERRORS
from seamline.core.schemas import MAX_ID, Id, PathId, RequestModel, free_text
from seamline.inbox import realtime
from seamline.inbox import service as inbox_service
from seamline.inbox.api import attachment_response, dumps
from seamline.inbox.models import (
    InboxAttachment,
    InboxChatSession,
    InboxConversation,
    InboxMessage,
)

router = APIRouter(tags=["webchat"], responses=BROWSER_ERRORS)
STATIC = FilePath(__file__).parent / "static"
PRESENCE_SECONDS = 3.0
Token = Annotated[str | None, Header(alias="Authorization", description="`Bearer wc_...`, from POST /v1/webchat/sessions")]


class SessionCreate(RequestModel):
    writeKey: Annotated[str, StringConstraints(min_length=1, max_length=200)]  # noqa: N815 - the widget's JSON
    anonymousId: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]  # noqa: N815
    userId: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")] | None = None  # noqa: N815
    userHash: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[0-9a-fA-F]+$")] | None = Field(  # noqa: N815
        default=None, description="Hex HMAC-SHA256 of userId with inbox_webchat_identity_secret, computed by the site's backend")
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="The session token the widget holds: the same session is resumed for the same visitor")


class MessageCreate(RequestModel):
    text: free_text(8000) = ""
    clientMessageId: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\w\-]+$")] = Field(  # noqa: N815
        default_factory=lambda: str(uuid.uuid4()), description="The widget's id of the message: a retry with it returns the same message")
    attachmentIds: list[Id] = Field(default_factory=list, max_length=10)  # noqa: N815
    page: Annotated[str, StringConstraints(max_length=2000)] | None = None


class EmailSet(RequestModel):
    email: EmailStr


class SurveyAnswer(RequestModel):
    score: int = Field(ge=0, le=10)
    comment: free_text(2000) | None = None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _chat(request: Request, authorization: str | None) -> InboxChatSession:
    token = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else authorization
    with get_database(request).read() as session:
        return service.session_of_token(session, token)


@router.get("/webchat/widget.js", include_in_schema=False)
def widget() -> FileResponse:
    return FileResponse(STATIC / "widget.js", media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})


@router.post("/v1/webchat/sessions", status_code=201)
def open_session(body: SessionCreate, request: Request) -> dict[str, Any]:
    charge_key(request, f"write_key:{body.writeKey}")  # the site's budget (core/limits.py)
    database, rules, settings = get_database(request), request.app.state.identifier_rules, request.app.state.settings

    def work(session):  # noqa: ANN001, ANN202
        chat, token = service.open_session(session, rules=rules, settings=settings, write_key=body.writeKey,
                                           anonymous_id=body.anonymousId, user_id=body.userId, user_hash_given=body.userHash,
                                           resume_token=body.token)
        return {"token": token, **service.state(session, chat, base=_base(request))}

    return database.run_write(work)


@router.post("/v1/webchat/messages", status_code=201)
def send_message(body: MessageCreate, request: Request, authorization: Token = None) -> dict[str, Any]:
    chat = _chat(request, authorization)
    if not body.text.strip() and not body.attachmentIds:
        raise Unprocessable("A message needs text or a file", code="empty_message")
    try:
        return service.send(get_database(request), rules=request.app.state.identifier_rules, settings=request.app.state.settings,
                            chat=chat, text=body.text, client_message_id=body.clientMessageId, attachment_ids=body.attachmentIds,
                            page=body.page, base=_base(request))
    except service.MessageFailed as exc:
        raise Unprocessable(f"The message was stored but could not be delivered: {exc}", code="message_failed") from exc


@router.get("/v1/webchat/messages")
def list_messages(request: Request, authorization: Token = None,
                  after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None) -> dict[str, Any]:
    """The messages after `after` (the last id the client has), oldest first, and the survey
    waiting for an answer (`pendingSurvey`, else null): what the socket would have sent."""
    chat = _chat(request, authorization)
    with get_database(request).read() as session:
        return {"items": service.history(session, chat, after_id=after, base=_base(request)),
                "pendingSurvey": service.pending_survey(session, chat)}


@router.post("/v1/webchat/attachments", status_code=201)
async def upload(request: Request, file: Annotated[UploadFile, File()], authorization: Token = None) -> dict[str, Any]:
    chat = await run_in_threadpool(_chat, request, authorization)
    settings = request.app.state.settings
    data = await file.read(settings.inbox_attachment_max_bytes + 1)

    def store() -> InboxAttachment:
        with get_database(request).write() as session:
            return inbox_service.store_attachment(session, max_bytes=settings.inbox_attachment_max_bytes, filename=file.filename or "file",
                                                  content_type=file.content_type or "", data=data, customer_id=chat.customer_id)

    stored = await run_in_threadpool(store)
    return {"id": stored.id, "filename": stored.filename, "contentType": stored.content_type, "size": stored.size,
            "url": f"{_base(request)}/v1/webchat/attachments/{stored.id}"}


@router.get("/v1/webchat/attachments/{attachment_id}")
def download(attachment_id: PathId, request: Request, authorization: Token = None,
             token: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The visitor's own files and the agent's files in their conversations (token by header or ?token=)."""
    chat = _chat(request, authorization or token)
    with get_database(request).read() as session:
        stored = session.get(InboxAttachment, attachment_id)
        visible = False
        if stored is not None and stored.message_id is None:  # uploaded, not sent yet: the uploader's
            visible = stored.customer_id in inbox_service.person_ids(session, chat.customer_id)
        elif stored is not None:
            message = session.get(InboxMessage, stored.message_id)
            conversation = session.get(InboxConversation, message.conversation_id)
            allowed = service.visible_conversations(session, chat)
            visible = message.direction != "internal" and (
                conversation.id in allowed if allowed is not None
                else conversation.customer_id in inbox_service.person_ids(session, chat.customer_id))
        if not visible:
            raise NotFound(f"Attachment {attachment_id} not found", code="attachment_not_found")
        return attachment_response(stored)


@router.post("/v1/webchat/email")
def set_email(body: EmailSet, request: Request, authorization: Token = None) -> dict[str, Any]:
    chat = _chat(request, authorization)
    rules = request.app.state.identifier_rules
    email = get_database(request).run_write(lambda s: service.set_email(s, rules=rules, chat=chat, email=str(body.email)))
    return {"email": email}


@router.post("/v1/webchat/surveys/{survey_id}")
def answer_survey(survey_id: PathId, body: SurveyAnswer, request: Request, authorization: Token = None) -> dict[str, Any]:
    chat = _chat(request, authorization)
    with get_database(request).write() as session:
        survey = inbox_service.answer_survey(session, survey_id=survey_id, score=body.score, comment=body.comment,
                                             channel="webchat", customer_id=chat.customer_id)
        return {"id": survey.id, "score": survey.score}


# --- the visitor's socket -------------------------------------------------------------------------


def _frames(notice: dict[str, Any], base: str, allowed: set[int] | None) -> list[dict[str, Any]]:
    kind = notice.get("type")
    conversation_id = notice.get("conversation_id") or (notice.get("conversation") or {}).get("id")
    if allowed is not None and conversation_id not in allowed:
        return []
    if kind == "message":
        view = notice["message"]
        frames = [{"type": "message", "message": service.widget_message(view, base=base)}]
        survey = (view.get("meta") or {}).get("survey")
        if survey:
            low, high = inbox_service.SURVEY_SCALES.get(survey["kind"], (0, 10))
            frames.append({"type": "survey", "surveyId": survey["id"], "kind": survey["kind"], "question": view["text"],
                           "scale": {"min": low, "max": high}})
        return frames
    if kind == "typing":
        return [{"type": "typing", "typing": notice["typing"], "author": notice.get("author")}]
    if kind == "status":
        return [{"type": "status", "status": notice["conversation"]["status"]}]
    return []


def _connect(app, token: str | None) -> tuple[InboxChatSession, list[int], dict[str, Any], set[int] | None]:  # noqa: ANN001
    with app.state.database.read() as session:
        chat = service.session_of_token(session, token)
        return (chat, inbox_service.person_ids(session, chat.customer_id), service.presence(session, chat),
                service.visible_conversations(session, chat))


def _presence(app, chat: InboxChatSession) -> tuple[dict[str, Any], set[int] | None]:  # noqa: ANN001
    with app.state.database.read() as session:
        return service.presence(session, chat), service.visible_conversations(session, chat)


@router.websocket("/v1/webchat/ws")
async def visitor_socket(websocket: WebSocket, token: Annotated[str | None, Query(max_length=200)] = None) -> None:
    """Frames to the widget: message, typing, queue, status, survey. From it: typing."""
    try:
        chat, person, presence, allowed = await run_in_threadpool(_connect, websocket.app, token)
    except AppError as exc:
        await websocket.close(code=4401, reason=exc.message[:100])
        return
    await websocket.accept()
    base = f"{'https' if websocket.url.scheme == 'wss' else 'http'}://{websocket.url.netloc}"
    subscription = realtime.HUB.subscribe(f"webchat:{p}" for p in person)
    await websocket.send_text(dumps({"type": "queue", **presence}))

    async def pump() -> None:
        nonlocal allowed
        last = presence
        while True:
            try:
                notice = await asyncio.wait_for(subscription.get(), timeout=PRESENCE_SECONDS)
                if allowed is not None and notice.get("conversation_id") not in allowed and notice.get("type") == "message":
                    _now, allowed = await run_in_threadpool(_presence, websocket.app, chat)  # this browser's new conversation?
                for frame in _frames(notice, base, allowed):
                    await websocket.send_text(dumps(frame))
            except TimeoutError:
                pass
            now, allowed = await run_in_threadpool(_presence, websocket.app, chat)
            if now != last:
                await websocket.send_text(dumps({"type": "queue", **now}))
                last = now

    sender = asyncio.create_task(pump())
    try:
        while True:
            frame = await websocket.receive_json()
            if isinstance(frame, dict) and frame.get("type") == "typing":
                await run_in_threadpool(_customer_typing, websocket.app, chat, bool(frame.get("typing")))
    except (WebSocketDisconnect, RuntimeError, ValueError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        subscription.close()


def _customer_typing(app, chat: InboxChatSession, is_typing: bool) -> None:  # noqa: ANN001
    with app.state.database.write() as session:
        conversation = service.latest_conversation(session, chat)
        if conversation is not None:
            realtime.notify(session, [f"conversation:{conversation.id}"] + (
                [f"agent:{conversation.assignee_id}"] if conversation.assignee_id else []),
                {"type": "customer_typing", "conversation_id": conversation.id, "typing": is_typing})


__all__ = ["router", "ADAPTER"]
