"""The bot's webhook: Telegram POSTs updates here (set it with `setWebhook`, giving the same
`secret_token` as `inbox_telegram_webhook_secret`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from seamline.core.openapi import PROVIDER_ERRORS
from seamline.channels.telegram.adapter import ADAPTER
from seamline.channels.webhooks import (
    accept_messages,
    provider_body,
    stored_view,
)

router = APIRouter(tags=["inbox"], responses=PROVIDER_ERRORS)
MAX_BYTES = 1024 * 1024


@router.post("/v1/channels/telegram/webhook", openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
async def telegram_webhook(request: Request) -> dict[str, Any]:
    """A Telegram `Update`. Answers 200 quickly once stored (Telegram resends otherwise);
    401 without the right secret token, with nothing stored."""
    accepted = await accept_messages(request, ADAPTER, await provider_body(request, MAX_BYTES))
    return {"ok": True, "stored": stored_view(accepted)}
