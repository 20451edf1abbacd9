"""The community's Callback API server: VK POSTs events here (add it in the community's settings →
API usage → Callback API, with the secret key `inbox_vk_secret` and API version 5.103 or newer)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from seamline.core.openapi import PROVIDER_ERRORS
from seamline.channels.vk.adapter import ADAPTER, event_of
from seamline.channels.webhooks import (
    accept_messages,
    provider_body,
)
from seamline.core.errors import Conflict

router = APIRouter(tags=["inbox"], responses=PROVIDER_ERRORS)
MAX_BYTES = 1024 * 1024


@router.post("/v1/channels/vk/webhook", response_class=PlainTextResponse, openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
async def vk_webhook(request: Request) -> str:
    """A Callback API event. Answers the plain text `ok` once stored (VK resends otherwise), or
    the confirmation code to a `confirmation` event; 401 without the right secret, with nothing
    stored."""
    body = await provider_body(request, MAX_BYTES)
    settings, headers = request.app.state.settings, dict(request.headers)
    ADAPTER.verify(headers, body, settings=settings)
    if event_of(body)["type"] == "confirmation":
        if not settings.inbox_vk_confirmation_code:
            raise Conflict("VK is not configured (inbox_vk_confirmation_code)", code="vk_not_configured")
        return settings.inbox_vk_confirmation_code
    await accept_messages(request, ADAPTER, body)
    return "ok"
