"""The SMS gateway's webhook (incoming SMS and delivery reports, one URL for both: SMSC and SMS.ru
take a single handler URL), and the agent console's SMS counter."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from seamline.core.openapi import PROVIDER_ERRORS
from seamline.channels.sms import segments
from seamline.channels.sms.adapter import ADAPTER, WEBHOOK_PATH
from seamline.channels.sms.providers import PROVIDERS, Callback
from seamline.channels.webhooks import (
    accept_messages_and_statuses,
    provider_body,
)
from seamline.core.config import Settings
from seamline.core.deps import AppSettings
from seamline.core.schemas import RequestModel
from seamline.inbox.api import AgentKey

router = APIRouter(tags=["inbox"], responses=PROVIDER_ERRORS)
MAX_BYTES = 512 * 1024


class SegmentsRequest(RequestModel):
    text: str = Field(max_length=20_000)


def public_url(request: Request, settings: Settings) -> str:
    """The URL the gateway called: behind a proxy, `inbox_sms_public_url` with this path and query."""
    base = settings.inbox_sms_public_url.rstrip("/")
    if not base:
        return str(request.url)
    return base + request.url.path + (f"?{request.url.query}" if request.url.query else "")


@router.post(WEBHOOK_PATH, response_model=None, openapi_extra={"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {"type": "object"}}, "application/json": {"schema": {"type": "object"}}}}})
async def sms_webhook(request: Request) -> Response:
    """An incoming SMS or a delivery report from the gateway of `inbox_sms_provider`. 401 unless
    authenticated (Twilio's signature, X-Seamline-Signature, or `?secret=` for SMS.ru and SMSC),
    with nothing stored; 422 when it is not the provider's callback. Answers what the provider
    expects: `100` (SMS.ru), `OK` (SMSC), empty TwiML (Twilio), a JSON summary (generic)."""
    body = await provider_body(request, MAX_BYTES)
    settings = request.app.state.settings
    callback = Callback(provider=settings.inbox_sms_provider, url=public_url(request, settings), query=dict(request.query_params),
                        content_type=request.headers.get("content-type", ""), body=body).encode()
    summary = await accept_messages_and_statuses(request, ADAPTER, callback)
    acknowledgement = PROVIDERS[settings.inbox_sms_provider].acknowledgement
    if acknowledgement is None:
        return JSONResponse(summary)
    content, media_type = acknowledgement
    return Response(content=content, media_type=media_type)


@router.post("/v1/channels/sms/segments")
def sms_segments(body: SegmentsRequest, settings: AppSettings, _: AgentKey) -> dict[str, Any]:
    """What a text costs as SMS, for the agent's console ("2 SMS"): its encoding (GSM-7, or
    UCS-2 when a character is outside the GSM alphabet, listed in `unicode_chars`), parts,
    units (septets or UTF-16 code units), units per part, units left in the last part, and
    whether it is over `inbox_sms_max_parts` (such a reply is not sent)."""
    counted = segments.count(body.text)
    return {**counted.as_dict(), "max_parts": settings.inbox_sms_max_parts, "too_long": counted.parts > settings.inbox_sms_max_parts}
