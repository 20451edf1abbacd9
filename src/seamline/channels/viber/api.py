"""The bot's webhook: Viber POSTs callbacks here (set it with `set_webhook`; callbacks are signed
with the bot's auth token, `inbox_viber_auth_token`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from seamline.core.openapi import PROVIDER_ERRORS
from seamline.channels.viber.adapter import ADAPTER
from seamline.channels.webhooks import (
    accept_messages_and_statuses,
    provider_body,
)

router = APIRouter(tags=["inbox"], responses=PROVIDER_ERRORS)
MAX_BYTES = 1024 * 1024


@router.post("/v1/channels/viber/webhook", openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
async def viber_webhook(request: Request) -> dict[str, Any]:
    """Messages, delivery statuses and the `set_webhook` check. 401 without a valid
    `X-Viber-Content-Signature`, with nothing stored."""
    return await accept_messages_and_statuses(request, ADAPTER, await provider_body(request, MAX_BYTES))
