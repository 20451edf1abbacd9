"""Raw email in over HTTP: for an MTA that pipes the support address's mail to Seamline
(e.g. Postfix `pipe` + curl) instead of Seamline polling a mailbox by IMAP.

`POST /v1/channels/email/messages`, beside every other provider's `/v1/channels/<name>/`;
`/v1/inbox/channels/email/messages` is its old name, kept working (deprecated)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from seamline.channels.email.adapter import ADAPTER
from seamline.core.deps import WriteKey, get_database
from seamline.core.errors import BadRequest, PayloadTooLarge
from seamline.core.openapi import errors
from seamline.inbox import delivery

router = APIRouter(tags=["inbox"])


#: The path an MTA posts to, and its old name (kept for MTAs configured with it; deprecated).
PATH = "/v1/channels/email/messages"
OLD_PATH = "/v1/inbox/channels/email/messages"
#: The message's bytes, whatever the MTA calls them (`message/rfc822`; a pipe's curl says octet-stream).
_BODY = {"requestBody": {"required": True, "content": {
    media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in ("message/rfc822", "application/octet-stream")}}}


class EmailAccepted(BaseModel):
    inbound_id: int | None = Field(description="The raw message as stored (`GET /v1/inbox/inbound`); none for a bounce report")
    provider_message_id: str | None = Field(description="Its Message-ID (or a digest of the message when it has none); a bounce's: "
                                            "the Message-ID of our message it returns")
    duplicate: bool = Field(description="Stored before: nothing done again")
    message_id: int | None = Field(description="The inbox message it became, when processed")
    error: str | None = Field(description="Why it could not be processed (kept on the stored message, retried)")
    statuses_applied: int = Field(default=0, description="A bounce report (DSN, RFC 3464): how many of our messages it marked failed")


_RESPONSES = errors(400, 401, 403, 413, 422, notes={400: "`empty_email`", 422: "`malformed_email` (stored, retried)", 413: "`email_too_large`"})


@router.post(PATH, status_code=202, openapi_extra=_BODY, response_model=EmailAccepted, responses=_RESPONSES)
@router.post(OLD_PATH, status_code=202, openapi_extra=_BODY, deprecated=True, response_model=EmailAccepted,
             responses=_RESPONSES, description=f"Deprecated: the old name of `POST {PATH}`, which it is in every way.")
async def receive_email(request: Request, _: WriteKey) -> dict[str, Any]:
    """One RFC 822 message as the body. Stored raw first (a repeat of its Message-ID is ignored),
    then processed; a message that cannot be processed stays stored as failed, with the error
    (`GET /v1/inbox/inbound?status=failed`), and is retried by the inbox job."""
    settings = request.app.state.settings
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.inbox_email_max_bytes:
            raise PayloadTooLarge(f"An email may be at most {settings.inbox_email_max_bytes} bytes", code="email_too_large")
    if not body.strip():
        raise BadRequest("The body must be one RFC 822 message", code="empty_email")
    statuses = ADAPTER.parse_statuses(body)
    if statuses:  # a bounce (DSN): the returned message failed; nobody wrote
        ADAPTER.verify(dict(request.headers), body, settings=settings)
        applied = await run_in_threadpool(delivery.apply_statuses, get_database(request), channel=ADAPTER.name, statuses=statuses)
        return {"inbound_id": None, "provider_message_id": statuses[0].provider_message_id, "duplicate": False, "message_id": None,
                "error": None, "statuses_applied": applied}
    accepted = await run_in_threadpool(
        delivery.accept_and_process, get_database(request), rules=request.app.state.identifier_rules, settings=settings, adapter=ADAPTER,
        headers=dict(request.headers), body=body,
    )
    if not accepted:  # a report without a failure (delayed, delivered): nothing to do
        return {"inbound_id": None, "provider_message_id": None, "duplicate": False, "message_id": None, "error": None}
    item = accepted[0]
    return {"inbound_id": item.inbound_id, "provider_message_id": item.provider_message_id, "duplicate": item.duplicate,
            "message_id": item.message_id, "error": item.error}
