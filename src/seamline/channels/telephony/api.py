"""Telephony endpoints: the PBX's call events, the website's callback form, the call list."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from seamline.channels.telephony import service
from seamline.channels.telephony.schemas import CallbackRequest, CallEvent
from seamline.channels.webhooks import (
    provider_body,
)
from seamline.core.deps import ReadSession, get_database
from seamline.core.errors import Unauthorized, Unprocessable
from seamline.core.limits import charge_key
from seamline.core.openapi import PROVIDER_ERRORS, replayed
from seamline.core.pagination import CursorQuery, before, page
from seamline.events.destinations import verify
from seamline.inbox.api import AgentKey, IdPath, Limit

router = APIRouter(prefix="/v1/channels/telephony", tags=["inbox"], responses=PROVIDER_ERRORS)
MAX_BYTES = 256 * 1024
SIGNATURE_HEADER = "x-seamline-signature"
_EVENTS = TypeAdapter(CallEvent | list[CallEvent])


@router.post("/events", openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"oneOf": [CallEvent.model_json_schema(by_alias=True), {"type": "array", "maxItems": 100}]}}}}})
async def call_events(request: Request) -> dict[str, Any]:
    """One call event or a list of them, signed with `inbox_telephony_secret`
    (`X-Seamline-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, at most 5
    minutes old). 401 with nothing stored otherwise; a repeated event changes nothing."""
    body = await provider_body(request, MAX_BYTES)
    settings = request.app.state.settings
    secret = settings.inbox_telephony_secret.get_secret_value()
    if not secret or not verify(secret, request.headers.get(SIGNATURE_HEADER, ""), body):
        raise Unauthorized("Missing, wrong or stale X-Seamline-Signature", code="invalid_signature")
    try:
        parsed = _EVENTS.validate_python(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        errors = exc.errors(include_url=False, include_context=False) if isinstance(exc, ValidationError) else str(exc)
        raise Unprocessable("Not a call event", code="invalid_payload", details={"errors": errors}) from exc
    events = parsed if isinstance(parsed, list) else [parsed]
    if len(events) > 100:
        raise Unprocessable("At most 100 events per request", code="too_many_events")
    database, rules = get_database(request), request.app.state.identifier_rules

    def apply() -> list[dict[str, Any]]:
        done = []
        for event in events:
            done.append(database.run_write(lambda s, e=event: _applied(s, e)))
        return done

    def _applied(session, event: CallEvent) -> dict[str, Any]:  # noqa: ANN001
        call, applied = service.handle_event(session, rules=rules, settings=settings, event=event)
        return {"call_id": event.call_id, "event": event.event, "applied": applied, "status": call.status, "id": call.id}

    return {"events": await run_in_threadpool(apply)}


@router.post("/callback-requests", status_code=201, responses=replayed())
def request_callback(body: CallbackRequest, request: Request, response: Response) -> dict[str, Any]:
    """The website's "call me back" form (the site's public write key, like the tracker): a
    callback task in the inbox queue. A repeat while one is waiting returns it (200)."""
    charge_key(request, f"write_key:{body.writeKey}")  # the site's budget (core/limits.py)
    database = get_database(request)
    call, new = database.run_write(lambda s: _created(s, request, body))
    if not new:
        response.status_code = 200
    return call


def _created(session, request: Request, body: CallbackRequest) -> tuple[dict[str, Any], bool]:  # noqa: ANN001
    call, new = service.request_callback(session, rules=request.app.state.identifier_rules, settings=request.app.state.settings,
                                         body=body)
    return {"id": call.id, "status": call.status, "conversation_id": call.conversation_id}, new


@router.get("/calls")
def list_calls(session: ReadSession, _: AgentKey, customer_id: IdPath | None = None,
               status: Annotated[str | None, Query(pattern="^(ringing|answered|ended|missed|called_back|requested|done)$")] = None,
               limit: Limit = 100, cursor: CursorQuery = None) -> dict[str, Any]:
    """Calls and callback tasks, newest first, a page at a time (`status=missed` or `requested`:
    callbacks still to make)."""
    items, next_cursor = page(service.calls_of(session, customer_id=customer_id, status=status, limit=limit + 1,
                                               before_id=before(cursor)), limit)
    return {"items": [service.call_view(c) for c in items], "next_cursor": next_cursor}

