"""The bot's webhook: Viber POSTs callbacks here (set it with `set_webhook`; callbacks are signed
with the bot's auth token, `inbox_viber_auth_token`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from seamline.channels.viber.adapter import ADAPTER
from seamline.core.deps import get_database
from seamline.core.errors import PayloadTooLarge
from seamline.inbox import delivery

router = APIRouter(tags=["inbox"])
MAX_BYTES = 1024 * 1024


@router.post("/v1/channels/viber/webhook", openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
async def viber_webhook(request: Request) -> dict[str, Any]:
    """Messages, delivery statuses and the `set_webhook` check. 401 without a valid
    `X-Viber-Content-Signature`, with nothing stored."""
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise PayloadTooLarge("A callback may be at most 1 MB", code="payload_too_large")
    settings, database = request.app.state.settings, get_database(request)

    def handle() -> dict[str, Any]:
        accepted = delivery.accept(database, rules=request.app.state.identifier_rules, settings=settings, adapter=ADAPTER,
                                   headers=dict(request.headers), body=body)
        statuses = ADAPTER.parse_statuses(body)
        changed = delivery.apply_statuses(database, channel=ADAPTER.name, statuses=statuses) if statuses else 0
        return {"messages": [{"duplicate": a.duplicate, "message_id": a.message_id, "error": a.error} for a in accepted],
                "statuses": len(statuses), "statuses_applied": changed}

    return await run_in_threadpool(handle)
