"""The WhatsApp webhook: Meta's subscription check (GET) and notifications (POST)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from seamline.channels.whatsapp.adapter import ADAPTER
from seamline.core.deps import get_database
from seamline.core.errors import Forbidden, PayloadTooLarge
from seamline.inbox import delivery

router = APIRouter(tags=["inbox"])
MAX_BYTES = 3 * 1024 * 1024


@router.get("/v1/channels/whatsapp/webhook", response_class=PlainTextResponse)
def verify_subscription(request: Request, mode: Annotated[str, Query(alias="hub.mode", max_length=50)] = "",
                        token: Annotated[str, Query(alias="hub.verify_token", max_length=500)] = "",
                        challenge: Annotated[str, Query(alias="hub.challenge", max_length=500)] = "") -> str:
    expected = request.app.state.settings.inbox_whatsapp_verify_token.get_secret_value()
    if mode != "subscribe" or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Forbidden("Wrong verify token", code="invalid_verify_token")
    return challenge


@router.post("/v1/channels/whatsapp/webhook", openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
async def whatsapp_webhook(request: Request) -> dict[str, Any]:
    """Messages and statuses. 401 without a valid `X-Hub-Signature-256`, with nothing stored."""
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge("A notification may be at most 3 MB", code="payload_too_large")
    settings, database = request.app.state.settings, get_database(request)

    def handle() -> dict[str, Any]:
        accepted = delivery.accept(database, rules=request.app.state.identifier_rules, settings=settings, adapter=ADAPTER,
                                   headers=dict(request.headers), body=body)
        statuses = ADAPTER.parse_statuses(body)
        changed = delivery.apply_statuses(database, channel=ADAPTER.name, statuses=statuses) if statuses else 0
        return {"messages": [{"duplicate": a.duplicate, "message_id": a.message_id, "error": a.error} for a in accepted],
                "statuses": len(statuses), "statuses_applied": changed}

    return await run_in_threadpool(handle)
