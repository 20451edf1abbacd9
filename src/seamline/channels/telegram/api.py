"""The bot's webhook: Telegram POSTs updates here (set it with `setWebhook`, giving the same
`secret_token` as `inbox_telegram_webhook_secret`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from seamline.channels.telegram.adapter import ADAPTER
from seamline.core.deps import get_database
from seamline.core.errors import PayloadTooLarge
from seamline.inbox import delivery

router = APIRouter(tags=["inbox"])
MAX_BYTES = 1024 * 1024


@router.post("/v1/channels/telegram/webhook", openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
async def telegram_webhook(request: Request) -> dict[str, Any]:
    """A Telegram `Update`. Answers 200 quickly once stored (Telegram resends otherwise);
    401 without the right secret token, with nothing stored."""
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge("An update may be at most 1 MB", code="payload_too_large")
    accepted = await run_in_threadpool(
        delivery.accept, get_database(request), rules=request.app.state.identifier_rules, settings=request.app.state.settings,
        adapter=ADAPTER, headers=dict(request.headers), body=body,
    )
    return {"ok": True, "stored": [{"duplicate": a.duplicate, "message_id": a.message_id, "error": a.error} for a in accepted]}
