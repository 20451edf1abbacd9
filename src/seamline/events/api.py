"""HTTP routes of the events domain.

The collection endpoints speak the Segment HTTP Tracking API, so its libraries work unchanged:
`POST /v1/{identify,track,page,screen,group,alias,batch}`, the source's write key as the HTTP
Basic user name (or `writeKey` in the body), JSON (any content type: browsers send text/plain to
skip a CORS preflight), optionally gzip-compressed. The answer is `{"success": true}` once every
event is committed.

A batch with invalid events: the valid ones are stored, and the answer is a 400 naming each
rejected event (index, messageId, reason). Resending the whole batch is safe: stored events are
recognized by messageId and not stored twice.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from seamline.core.deps import (
    AdminKey,
    AppSettings,
    ReadKey,
    ReadSession,
    WriteSession,
    get_database,
    get_settings,
)
from seamline.core.errors import BadRequest, Unauthorized
from seamline.core.limits import charge_key
from seamline.core.openapi import BROWSER_ERRORS
from seamline.core.pagination import CursorQuery, before, decode_cursor, encode_cursor, page
from seamline.core.schemas import path_id, query_id
from seamline.core.time import utcnow
from seamline.core.trust_cache import TrustCache
from seamline.events import destinations, service
from seamline.events.ingest import (
    MAX_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    MAX_NAME_LENGTH,
    MESSAGE_TYPES,
    MessageError,
    check_message,
    parse_time,
)
from seamline.events.models import EventSource
from seamline.events.schemas import (
    DeliveryPage,
    DeliveryRead,
    DestinationCreate,
    DestinationCreated,
    DestinationRead,
    EventPage,
    SourceCreate,
    SourceCreated,
    SourceRead,
    TrackResult,
)

router = APIRouter(tags=["events"], responses=BROWSER_ERRORS)
STATIC = FilePath(__file__).parent / "static"
#: The collection paths; CORS is open on these only (write keys are public by design).
COLLECTION_PATHS = {f"/v1/{name}" for name in ("identify", "track", "page", "screen", "group", "alias", "batch")}


def _body(request: Request, raw: bytes, limit: int) -> Any:
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise BadRequest("The body is not valid gzip", code="invalid_gzip") from None
    if len(raw) > limit:
        raise BadRequest(
            f"The request body is over {limit} bytes", code="batch_too_large", details={"limit_bytes": limit}
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="invalid_json") from None


def _write_key(request: Request, body: Any) -> str:
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            user = base64.b64decode(header[6:].strip(), validate=True).decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Malformed Basic authorization", code="invalid_api_key") from None
        if user:
            return user
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        return body["writeKey"]
    raise Unauthorized(
        "A source write key is required: HTTP Basic user name, or writeKey in the body", code="missing_api_key"
    )


async def _collect(request: Request, default_type: str | None) -> dict[str, Any]:
    received_at = utcnow()
    settings = get_settings(request)
    database = get_database(request)
    body = _body(request, await request.body(), settings.event_batch_max_bytes)
    raw_key = _write_key(request, body)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", code="invalid_message")
    if default_type is None:
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise BadRequest("A batch needs a 'batch' array of events", code="invalid_batch")
        batch_sent_at = _batch_time(body.get("sentAt"))
        shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
    else:
        messages, batch_sent_at, shared = [body], None, {}

    checked, rejected = [], []
    for index, message in enumerate(messages):
        if isinstance(message, dict):
            for key, value in shared.items():
                message.setdefault(key, value)
        try:
            checked.append(
                check_message(
                    message, default_type=default_type, batch_sent_at=batch_sent_at,
                    received_at=received_at, max_bytes=settings.event_max_bytes,
                )
            )
        except MessageError as exc:
            message_id = message.get("messageId") if isinstance(message, dict) else None
            rejected.append({"index": index, "messageId": message_id, "code": exc.code, "reason": exc.reason})

    source = await _source(request, database, raw_key)
    charge_key(request, f"source:{source.id}")  # the source's budget (core/limits.py); its IP's was charged before the body was read
    outcome = await request.app.state.event_writer.store(source, checked, received_at)
    if rejected:
        first = rejected[0]
        raise service.BadBatch(
            f"{len(rejected)} of {len(messages)} events rejected; the others were stored. "
            f"Event {first['index']}: {first['reason']}",
            details={"rejected": rejected, "stored": outcome.stored, "duplicates": outcome.duplicates},
        )
    return {"success": True}


#: How long a checked write key is trusted without asking the database again: collection
#: answers thousands of batches a second with the same few keys. Revoking a key or disabling
#: a source takes effect within this time.
SOURCE_CACHE_SECONDS = 5.0


async def _source(request: Request, database, raw_key: str) -> EventSource:  # noqa: ANN001
    cache: TrustCache[EventSource] = request.app.state.event_sources
    source = cache.get(raw_key)
    if source is not None:
        return source

    def check() -> EventSource:
        with database.read() as session:
            return service.source_of_key(session, raw_key)

    source = await run_in_threadpool(check)  # raises for a bad key: never cached
    cache.put(raw_key, source)
    return source


def _batch_time(value: Any) -> datetime | None:
    try:
        return parse_time(value, "sentAt")
    except MessageError as exc:
        raise BadRequest(exc.reason, code=exc.code) from None


def _message_schema(kind: str | None) -> dict[str, Any]:
    """What `ingest.check_message` accepts, as JSON Schema (the spec's fields; others are kept)."""
    some_id = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
                         {"type": "integer", "minimum": -(10**15), "maximum": 10**15}]}
    time = {"type": "string", "format": "date-time"}
    an_object = {"type": ["object", "null"]}
    properties: dict[str, Any] = {
        "type": {"enum": [kind]} if kind else {"enum": list(MESSAGE_TYPES)},
        "userId": some_id, "anonymousId": some_id,
        "messageId": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_ID_LENGTH},
        "timestamp": time, "sentAt": time, "writeKey": {"type": "string"},
        **{field: an_object for field in ("properties", "traits", "context", "integrations")},
    }
    required: list[str] = [] if kind else ["type"]
    if kind == "track":
        properties["event"] = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": r"\S"}
        required.append("event")
    elif kind in ("page", "screen"):
        properties["name"] = {"type": ["string", "null"], "maxLength": MAX_NAME_LENGTH}
    elif kind == "alias":
        properties["previousId"] = some_id
        required += ["userId", "previousId"]
    elif kind == "group":
        properties["groupId"] = some_id
        required.append("groupId")
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if kind != "alias":
        schema["anyOf"] = [{"required": ["userId"]}, {"required": ["anonymousId"]}]
    return schema


def _openapi_body(kind: str | None) -> dict[str, Any]:
    if kind:
        schema = _message_schema(kind)
    else:
        events = {"anyOf": [_message_schema(name) | {"required": [*_message_schema(name)["required"], "type"]}
                            for name in MESSAGE_TYPES]}
        schema = {"type": "object", "required": ["batch"], "properties": {
            "batch": {"type": "array", "items": events},
            "sentAt": {"type": "string", "format": "date-time"}, "context": {"type": "object"},
            "writeKey": {"type": "string"}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _collection_route(kind: str | None):  # noqa: ANN202
    async def endpoint(request: Request) -> dict[str, Any]:
        return await _collect(request, kind)

    name = kind or "batch"
    endpoint.__name__ = f"collect_{name}"
    endpoint.__doc__ = (
        f"Segment-compatible `{name}` call. Authenticate with the source's write key as the HTTP Basic "
        "user name (or `writeKey` in the body)."
    )
    return endpoint


for _kind in ("identify", "track", "page", "screen", "group", "alias", None):
    router.add_api_route(
        f"/v1/{_kind or 'batch'}", _collection_route(_kind), methods=["POST"], response_model=TrackResult,
        openapi_extra=_openapi_body(_kind), summary=f"Collect: {_kind or 'batch'}",
    )


@router.get("/seamline.js", include_in_schema=False)
def tracker_script() -> FileResponse:
    """The browser tracker (see docs/tracker.md)."""
    return FileResponse(
        STATIC / "seamline.js", media_type="application/javascript", headers={"Cache-Control": "public, max-age=300"}
    )


@router.post("/v1/sources", response_model=SourceCreated, status_code=201)
def create_source(body: SourceCreate, session: WriteSession, _: AdminKey) -> dict[str, Any]:
    """A tracking source (website, app, store POS, call center...) and its write key, shown once."""
    source, write_key = service.create_source(session, name=body.name, channel=body.channel, server_side=body.server_side)
    return {**SourceRead.model_validate(source).model_dump(), "write_key": write_key}


@router.get("/v1/sources", response_model=list[SourceRead])
def list_sources(session: ReadSession, _: ReadKey) -> list[Any]:
    return service.list_sources(session)


#: No NUL character: PostgreSQL text cannot hold one (nothing stored has one), so a filter with
#: it is a 422 on both databases instead of a driver error.
NO_NUL = r"^[^\x00]*$"


@router.get("/v1/events", response_model=EventPage)
def list_events(
    session: ReadSession,
    _: ReadKey,
    anonymous_id: Annotated[str | None, Query(max_length=320, pattern=NO_NUL)] = None,
    user_id: Annotated[str | None, Query(max_length=320, pattern=NO_NUL)] = None,
    message_id: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    type: Annotated[str | None, Query(max_length=16, pattern=NO_NUL)] = None,
    source_id: Annotated[int | None, query_id()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Raw events as stored, newest first (for debugging a source; the person's story is the timeline)."""
    records = service.list_events(
        session, anonymous_id=anonymous_id, user_id=user_id, message_id=message_id, type_=type,
        source_id=source_id, before_id=decode_cursor(cursor), limit=limit + 1,
    )
    page = records[:limit]
    return {
        "items": [service.event_view(r) for r in page],
        "next_cursor": encode_cursor(page[-1].id) if len(records) > limit else None,
    }


Id = Annotated[int, path_id()]


@router.post("/v1/destinations", response_model=DestinationCreated, status_code=201)
def create_destination(body: DestinationCreate, session: WriteSession, settings: AppSettings, _: AdminKey) -> Any:
    """A webhook receiving every collected event (or some types), signed, at least once. The
    signing secret is in this answer only (it is stored encrypted)."""
    destination, secret = destinations.create_destination(session, settings=settings, name=body.name, url=body.url,
                                                          secret=body.secret, types=body.types)
    return {**DestinationRead.model_validate(destination).model_dump(), "secret": secret}


@router.get("/v1/destinations", response_model=list[DestinationRead])
def list_destinations(session: ReadSession, _: AdminKey) -> list[Any]:
    return destinations.list_destinations(session)


@router.get("/v1/destinations/{destination_id}/dead-letters", response_model=DeliveryPage)
def dead_letters(
    destination_id: Id, session: ReadSession, _: AdminKey, limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: CursorQuery = None,
) -> Any:
    """Batches that could not be delivered after the last attempt, newest first, a page at a time."""
    items, next_cursor = page(destinations.dead_letters(session, destination_id=destination_id, limit=limit + 1,
                                                        before_id=before(cursor)), limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/destinations/{destination_id}/dead-letters/{delivery_id}/retry", response_model=DeliveryRead)
def retry_dead_letter(destination_id: Id, delivery_id: Id, session: WriteSession, _: AdminKey) -> Any:
    """Send a dead batch again (from the first attempt)."""
    return destinations.retry_dead_letter(session, destination_id=destination_id, delivery_id=delivery_id)
