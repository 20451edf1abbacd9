"""The WhatsApp webhook: Meta's subscription check (GET) and notifications (POST)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from seamline.core.openapi import PROVIDER_ERRORS
from seamline.channels.webhooks import (
    accept_messages_and_statuses,
    provider_body,
)
from seamline.channels.whatsapp.adapter import ADAPTER
from seamline.core.errors import Forbidden

router = APIRouter(tags=["inbox"], responses=PROVIDER_ERRORS)
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
    return await accept_messages_and_statuses(request, ADAPTER, await provider_body(request, MAX_BYTES))
