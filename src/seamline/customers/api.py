"""HTTP routes of the customers domain: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from sqlalchemy.orm import Session

from seamline.core.openapi import errors
from seamline.core.deps import AdminKey, AppSettings, ReadKey, ReadSession, WriteKey, WriteSession, get_database
from seamline.core.errors import Unprocessable
from seamline.core.limits import read_upload
from seamline.core.pagination import decode_cursor, encode_cursor
from seamline.core.schemas import path_id
from seamline.customers import imports, login_codes, resolution, service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.schemas import (
    ConflictPage,
    ConflictRead,
    ConflictResolve,
    ConsentCreate,
    ConsentRead,
    CustomerImportRead,
    CustomerPage,
    CustomerRead,
    CustomerUpsert,
    CustomerUpsertResult,
    ErasureCreate,
    ErasureRead,
    LoginCodeRequest,
    LoginCodeSent,
    LoginCodeVerified,
    LoginCodeVerify,
    MergeCreate,
    MergeRead,
    TimelinePage,
    UnmergeRead,
)
from seamline.customers.sections import SectionRegistry
from seamline.customers.timeline import TimelineQuery, TimelineRegistry, decode_timeline_cursor

router = APIRouter(prefix="/v1", tags=["customers"])


@router.api_route("/customers/imports", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def _imports_other_methods() -> None:
    """405 (with `Allow: POST`), not `GET /customers/{customer_id}` refusing "imports" as an id:
    registered before the id routes, so Starlette matches it first."""
    raise StarletteHTTPException(405)

CustomerId = Annotated[int, path_id(description="A customer id; a merged id leads to its survivor")]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


async def get_rules(request: Request) -> IdentifierRules:
    return request.app.state.identifier_rules


async def get_sections(request: Request) -> SectionRegistry:
    return request.app.state.customer_sections


async def get_timeline(request: Request) -> TimelineRegistry:
    return request.app.state.customer_timeline


Rules = Annotated[IdentifierRules, Depends(get_rules)]
Sections = Annotated[SectionRegistry, Depends(get_sections)]
Timeline = Annotated[TimelineRegistry, Depends(get_timeline)]


def _count_merges(request: Request, reason: str, count: int) -> None:
    if count:
        request.app.state.metrics.merges.labels(reason).inc(count)


@router.post("/customers", response_model=CustomerUpsertResult)
def upsert_customer(
    body: CustomerUpsert, request: Request, rules: Rules, sections: Sections, key: WriteKey
) -> dict[str, Any]:
    """Find or create the profile of these identifiers; profiles they link are merged (within
    the merge rules) and traits are merged latest-wins. Safe to retry. The answer carries the
    profile as the upsert left it (its `profile`, `identities` and `consents` sections); the
    whole 360 is `GET /v1/customers/{id}`."""

    def work(session: Session) -> dict[str, Any]:
        outcome = service.upsert_customer(session, rules=rules, data=body)
        result = outcome.resolution
        return {
            "customer": service.render_customer(session, sections=sections, profile_id=result.profile_id,
                                                only=service.OWN_SECTIONS),
            "created": result.created_profile,
            "merged_customer_ids": [m.absorbed_id for m in result.merges],
            "conflict_ids": [c.id for c in result.conflicts],
            "ignored_identifiers": [{"type": i.type, "value": i.value, "reason": "blocked"} for i in outcome.ignored],
        }

    response = get_database(request).run_write(work)
    _count_merges(request, "link", len(response["merged_customer_ids"]))
    return response


_IMPORT_FORMATS = {"text/csv": "csv", "application/csv": "csv", "application/x-ndjson": "jsonl",
                   "application/jsonl": "jsonl", "application/x-jsonlines": "jsonl"}
_IMPORT_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string", "description": "One person per row (docs/import.md)"}},
        "application/x-ndjson": {"schema": {"type": "string", "description": "One JSON object per line (docs/import.md)"}},
    },
}


@router.post("/customers/imports", response_model=CustomerImportRead, openapi_extra={"requestBody": _IMPORT_BODY},
             responses=errors(415, 422, notes={415: "neither CSV nor JSONL",
                                               422: "`import_invalid`: every bad row in `details.errors` (the first "
                                                    "1,000; `details.error_count` counts all); nothing imported"}))
async def import_customers(request: Request, rules: Rules, settings: AppSettings, _: AdminKey) -> Any:
    """Import customers from a CRM export: the raw body, `text/csv` or `application/x-ndjson`.
    The whole file is checked first; any bad row rejects it (422, every problem listed) and nothing
    is written. Then it is resolved against the identity graph and written in one transaction,
    synchronously (a million people take minutes: prefer `seamline customers import` for those;
    docs/import.md). Importing the same file again changes nothing."""
    file_format, data = await read_upload(request, formats=_IMPORT_FORMATS, expected="text/csv or application/x-ndjson",
                                          limit=settings.customers_import_max_bytes)
    report = await run_in_threadpool(
        imports.import_customers, get_database(request), rules=rules, data=data, format=file_format, source="import",
    )
    return report.as_dict()


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    session: ReadSession,
    rules: Rules,
    _: ReadKey,
    q: Annotated[str | None, Query(min_length=1, max_length=320, description="An identifier in any format, or its prefix")] = None,
    identifier_type: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    if q is not None and "\x00" in q:
        raise Unprocessable("q must not contain NUL", code="invalid_query")
    items, next_cursor = service.list_customers(
        session, rules=rules, q=q, identifier_type=identifier_type, limit=limit, cursor=cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/customers/lookup", response_model=CustomerRead, responses=errors(404, notes={404: "`customer_not_found`"}))
def lookup_customer(
    request: Request,
    session: ReadSession,
    rules: Rules,
    sections: Sections,
    _: ReadKey,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=320)] = None,
    user_id: Annotated[str | None, Query(max_length=320)] = None,
    anonymous_id: Annotated[str | None, Query(max_length=320)] = None,
    loyalty_card: Annotated[str | None, Query(max_length=320)] = None,
) -> dict[str, Any]:
    """Find a customer by one identifier, given as `?<type>=<value>` for any identifier type
    (the ones listed here and any configured); phones and emails in any format."""
    params = list(request.query_params.multi_items())
    if len(params) != 1:
        raise Unprocessable(
            "Give exactly one identifier, e.g. ?phone=+79161234567",
            code="one_identifier_required",
            details={"given": [k for k, _ in params], "types": sorted(rules.types)},
        )
    type_name, value = params[0]
    profile = service.lookup(session, rules=rules, type_name=type_name, value=value)
    return service.render_customer(session, sections=sections, profile_id=profile.id)


@router.get("/customers/{customer_id}", response_model=CustomerRead)
def get_customer(customer_id: CustomerId, session: ReadSession, sections: Sections, _: ReadKey) -> dict[str, Any]:
    """The customer 360. A merged id answers with the profile it was merged into."""
    return service.customer_360(session, sections=sections, customer_id=customer_id)


@router.get("/customers/{customer_id}/merges", response_model=list[MergeRead])
def merge_history(customer_id: CustomerId, session: ReadSession, _: ReadKey) -> list[Any]:
    profile = service.get_profile(session, customer_id)
    return resolution.merges_of(session, profile.id)


@router.post("/customers/{customer_id}/merge", response_model=MergeRead, responses=errors(409))
def merge_customers(
    customer_id: CustomerId, body: MergeCreate, request: Request, rules: Rules, key: AdminKey
) -> Any:
    """Merge another profile into this one by hand (staff). The older profile keeps its id."""
    merge = get_database(request).run_write(
        lambda session: resolution.merge_profiles(
            session, rules=rules, profile_id=customer_id, other_id=body.customer_id, force=body.force,
            actor=f"apikey:{key.name}"[:64],
        )
    )
    _count_merges(request, "manual", 1)
    return merge


@router.post("/merges/{merge_id}/undo", response_model=UnmergeRead, responses=errors(409, notes={409: "`merge_side_gone`, already undone"}))
def unmerge(
    merge_id: Annotated[int, path_id()], request: Request, rules: Rules, key: AdminKey
) -> dict[str, Any]:
    """Undo a merge: both profiles come back, each with its own identifiers, traits and consents,
    and what was added later goes with the side it was linked to. Safe to retry."""
    result = get_database(request).run_write(
        lambda session: resolution.unmerge(session, rules=rules, merge_id=merge_id, actor=f"apikey:{key.name}")
    )
    return {"merge": result.merge, "customer_ids": result.profile_ids, "revoked_link_ids": result.revoked_link_ids}


@router.get("/identity-conflicts", response_model=ConflictPage)
def list_conflicts(
    session: ReadSession,
    _: ReadKey,
    status: Annotated[str | None, Query(pattern="^(open|merged|dismissed)$")] = "open",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Links that would have broken a merge rule, waiting for a person to decide."""
    rows = resolution.list_conflicts(session, status=status, limit=limit + 1, after_id=decode_cursor(cursor))
    return {"items": rows[:limit], "next_cursor": encode_cursor(rows[limit - 1].id) if len(rows) > limit else None}


@router.post("/identity-conflicts/{conflict_id}/resolve", response_model=ConflictRead,
             responses=errors(409, notes={409: "`conflict_already_resolved`"}))
def resolve_conflict(
    conflict_id: Annotated[int, path_id()], body: ConflictResolve, request: Request, rules: Rules, key: AdminKey
) -> Any:
    """`merge` joins the two profiles despite the rule; `dismiss` keeps them apart for good."""
    return get_database(request).run_write(
        lambda session: resolution.resolve_conflict(
            session, rules=rules, conflict_id=conflict_id, action=body.action, actor=f"apikey:{key.name}"
        )
    )


@router.get("/customers/{customer_id}/consents", response_model=list[ConsentRead])
def get_consents(customer_id: CustomerId, session: ReadSession, _: ReadKey) -> list[dict[str, Any]]:
    profile = service.get_profile(session, customer_id)
    return service.current_consents(session, service.context_of(session, profile).identity_ids)


@router.post("/customers/{customer_id}/consents", response_model=list[ConsentRead])
def give_or_withdraw_consent(
    customer_id: CustomerId, body: list[ConsentCreate], session: WriteSession, rules: Rules, _: WriteKey
) -> list[dict[str, Any]]:
    """Give or withdraw consents (`granted: false`); both are one call. Repeating is harmless."""
    if not body:
        raise Unprocessable("Give at least one consent", code="empty_request")
    service.add_consents(session, rules=rules, customer_id=customer_id, consents=body, source="api")
    profile = service.get_profile(session, customer_id)
    return service.current_consents(session, service.context_of(session, profile).identity_ids)


@router.get("/customers/{customer_id}/export")
def export_customer(customer_id: CustomerId, session: ReadSession, sections: Sections, _: AdminKey) -> dict[str, Any]:
    """Everything held about the person, as one JSON document (data-subject access request)."""
    return service.export_customer(session, sections=sections, customer_id=customer_id)


@router.post("/customers/{customer_id}/erase", response_model=ErasureRead)
def erase_customer(
    customer_id: CustomerId, body: ErasureCreate, request: Request, sections: Sections, key: AdminKey
) -> Any:
    """Erase the person's personal data (GDPR art. 17, 152-FZ art. 21). Keeps an audit record
    without personal data. Repeating the call returns the same record."""
    return get_database(request).run_write(
        lambda session: service.erase_customer(
            session, customer_id=customer_id, reason=body.reason, actor=f"apikey:{key.name}", sections=sections
        )
    )


@router.get("/customers/{customer_id}/timeline", response_model=TimelinePage)
def customer_timeline(
    customer_id: CustomerId,
    session: ReadSession,
    timeline: Timeline,
    _: ReadKey,
    limit: Limit = 50,
    cursor: Cursor = None,
    channel: Annotated[list[str] | None, Query(max_length=20, description="Only these channels (repeatable)")] = None,
    type: Annotated[
        list[str] | None, Query(max_length=20, description='Only these item types, e.g. "event.track", or a kind: "event"')
    ] = None,
) -> dict[str, Any]:
    """Everything the person did, on every channel, newest first (cursor-paginated)."""
    query = TimelineQuery(limit=limit, before=decode_timeline_cursor(cursor), channels=channel, types=type)
    items, next_cursor = service.timeline_page(session, timeline=timeline, customer_id=customer_id, query=query)
    return {"items": items, "next_cursor": next_cursor}


# --- one-time login codes (customers/login_codes.py) ---------------------------------------------


@router.post("/auth/login-codes", response_model=LoginCodeSent, status_code=202, tags=["auth"],
             response_model_exclude_none=True)
def request_login_code(
    body: LoginCodeRequest, request: Request, settings: AppSettings, rules: Rules, _: WriteKey
) -> dict[str, Any]:
    """Send a 6-digit one-time login code to a phone (SMS) or email, valid 10 minutes; a new
    request replaces the previous code. At most 5 requests per identifier an hour (429
    `too_many_codes`). No channel can deliver it (the person is not reachable by SMS or email): 422 `login_code_undeliverable`, as the inbox's `customer_unreachable`; nothing stored.
    Called by the shop's backend (a `write` key), never from the browser."""

    def work(session: Session) -> dict[str, Any]:
        issued = login_codes.request_code(
            session, settings=settings, rules=rules, identifier_type=body.identifier.type, value=body.identifier.value
        )
        return login_codes.view(issued, settings=settings)

    return get_database(request).run_write(work)


@router.post("/auth/login-codes/verify", response_model=LoginCodeVerified, tags=["auth"])
def verify_login_code(body: LoginCodeVerify, request: Request, rules: Rules, _: WriteKey) -> dict[str, Any]:
    """Check the code: the person is the profile of the identifier (created if new), joined with
    `anonymous_id`. Wrong code: 422 `invalid_code` with `attempts_left`; expired, used, replaced
    or five wrong attempts: 422 `code_expired`. Repeating a successful verify with the same code
    within its validity answers the same customer again."""
    outcome = get_database(request).run_write(
        lambda session: login_codes.verify_code(
            session, rules=rules, identifier_type=body.identifier.type, value=body.identifier.value, code=body.code,
            anonymous_id=body.anonymous_id, channel=body.channel,
        )
    )
    if outcome.error is not None:
        raise outcome.error
    return {"customer_id": outcome.customer_id, "created": outcome.created}
