"""Customers: search by any identifier or name, the 360 page (every module's section and the
timeline across channels), manual merge and its undo, identity conflicts, consents, and the
privacy actions (export, erase). Handlers parse the form, call the customers services the JSON
API calls (customers/api.py) and render."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from seamline.core.errors import AppError, Gone, NotFound, Unprocessable
from seamline.core.schemas import MAX_ID
from seamline.customers import resolution
from seamline.customers import service as customers
from seamline.customers.identifiers import DEVICE_TYPES
from seamline.customers.models import (
    CustomerConflict,
)
from seamline.customers.schemas import ConsentCreate, CustomerUpsert, IdentifierIn
from seamline.customers.timeline import TimelineQuery, decode_timeline_cursor
from seamline.web import i18n
from seamline.web.console import icons, labels, people
from seamline.web.console.actions import attempt, read
from seamline.web.console.deps import RowId, Staff, permitted
from seamline.web.console.templating import render, translate

router = APIRouter(prefix="/console")

PAGE = 50
TIMELINE_PAGE = 20
#: Sections with their own block on the 360 page; any other registered section is printed generically.
KNOWN_SECTIONS = ("profile", "identities", "consents", "events", "orders", "cart", "loyalty", "conversations", "timeline",
                  "recommendations")
#: Channel code -> its icon (inline SVG, web/console/icons.py); the label is channel_labels' below.
CHANNEL_ICONS = icons.CHANNEL_ICONS


def channel_labels(request: Request) -> dict[str, str]:
    """Channel code -> its name in the reader's language (the channel vocabulary of web/console/labels.py)."""
    staff = getattr(request.state, "staff", None)
    words = labels.Labels(staff.user.locale if staff else i18n.DEFAULT_LOCALE)
    return {code: words.channel(code) for code in labels.VOCABULARIES["channel"]}


def _actor(staff: Staff) -> str:
    return f"staff:{staff.user.email}"[:64]


def _common(request: Request) -> dict[str, Any]:
    return {"icons": CHANNEL_ICONS, "labels": channel_labels(request)}


# --- search --------------------------------------------------------------------------------------


def _search(session: Session, request: Request, q: str | None, cursor: str | None) -> dict[str, Any]:
    rules = request.app.state.identifier_rules
    items, next_cursor = customers.list_customers(session, rules=rules, q=q or None, identifier_type=None, limit=PAGE,
                                                  cursor=cursor)
    if q and not cursor:  # the first page also finds partial phones and names
        items = customers.search_customers(session, rules=rules, q=q, limit=PAGE)
    rows = []
    for item in items:
        identifiers = item["identifiers"]
        rows.append({
            **people.brief(item["id"], traits=item["traits"], identifiers=identifiers),
            # a device's anonymous id (a UUID) tells staff nothing: counted, not shown
            "identifiers": [(i.type, i.value) for i in identifiers if i.type not in DEVICE_TYPES],
            "devices": sum(1 for i in identifiers if i.type in DEVICE_TYPES),
            "channels": sorted({i.source for i in identifiers}),
            "last_seen": max([item["updated_at"], *(i.created_at for i in identifiers)]),
        })
    return {"rows": rows, "next_cursor": next_cursor}


@router.get("/customers")
def search_page(request: Request, staff: Staff = permitted("customers.view"),
                q: Annotated[str, Query(max_length=320)] = "", cursor: Annotated[str | None, Query(max_length=200)] = None
                ) -> HTMLResponse:
    q = q.replace("\x00", "").strip()
    try:
        found = read(request, lambda s: _search(s, request, q, cursor))
        error = None
    except AppError as exc:
        found, error = {"rows": [], "next_cursor": None}, exc.message
    template = "customers/_results.html" if request.headers.get("hx-target") == "results" else "customers/search.html"
    return render(request, template, section="customers", q=q, error=error, **found, **_common(request),
                  status_code=422 if error else 200)


@router.post("/customers")
def create_customer(request: Request, staff: Staff = permitted("customers.edit"),
                    identifier: Annotated[str, Form(max_length=320)] = "", first_name: Annotated[str, Form(max_length=200)] = "",
                    last_name: Annotated[str, Form(max_length=200)] = "") -> Response:
    """A new profile for a phone or email nobody has yet (the screen pop's "create the customer")."""
    value = identifier.strip()
    rules = request.app.state.identifier_rules
    kind = "email" if "@" in value else "phone"
    traits = {k: v.strip() for k, v in (("first_name", first_name), ("last_name", last_name)) if v.strip()}

    def work(session: Session) -> int:
        rules.normalize(kind, value)
        data = CustomerUpsert(identifiers=[IdentifierIn(type=kind, value=value)], traits=traits, source="console")
        return customers.upsert_customer(session, rules=rules, data=data).resolution.profile_id

    try:
        created, error = attempt(request, work)
    except ValidationError:
        created, error = None, translate(request, "Give a phone number or an email.")
    if error:
        found = read(request, lambda s: _search(s, request, value, None))
        return render(request, "customers/_results.html", q=value, error=error, status_code=422, flash=("error", error),
                      **found, **_common(request))
    target = f"/console/customers/{created}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# --- identity conflicts --------------------------------------------------------------------------


def _brief(session: Session, profile_id: int) -> dict[str, Any]:
    """Who a conflict's side is now: the profile it is part of (after merges), its name and identifiers."""
    profile = resolution.canonical_profile(session, profile_id)
    if profile.status == "erased":
        return {"id": profile.id, "erased": True, "name": None, "identifiers": []}
    context = customers.context_of(session, profile)
    return {"id": profile.id, "erased": False, "name": customers.display_name(customers.traits_of(session, context.identity_ids)),
            "identifiers": [(i.type, i.value) for i in context.identities]}


def _conflict_view(session: Session, conflict: Any) -> dict[str, Any]:
    return {"id": conflict.id, "status": conflict.status, "violations": conflict.violations,
            "created_at": conflict.created_at, "resolved_by": conflict.resolved_by,
            "a": _brief(session, conflict.profile_a_id), "b": _brief(session, conflict.profile_b_id)}


@router.get("/customers/conflicts")
def conflicts_page(request: Request, staff: Staff = permitted("customers.edit"),
                   status: Annotated[str, Query(pattern="^(open|merged|dismissed)$")] = "open",
                   after: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> HTMLResponse:
    def load(session: Session) -> dict[str, Any]:
        rows = resolution.list_conflicts(session, status=status, limit=PAGE + 1, after_id=after)
        return {"conflicts": [_conflict_view(session, c) for c in rows[:PAGE]],
                "next_after": rows[PAGE - 1].id if len(rows) > PAGE else None}

    return render(request, "customers/conflicts.html", section="customers", status=status, **read(request, load))


@router.post("/customers/conflicts/{conflict_id}/resolve")
def resolve_conflict(request: Request, conflict_id: RowId, staff: Staff = permitted("customers.edit"),
                     action: Annotated[str, Form(max_length=16)] = "") -> HTMLResponse:
    rules = request.app.state.identifier_rules
    if action not in ("merge", "dismiss"):
        error = translate(request, "Choose merge or dismiss.")
    else:
        _, error = attempt(request, lambda s: resolution.resolve_conflict(
            s, rules=rules, conflict_id=conflict_id, action=action, actor=_actor(staff)).id)

    def load(session: Session) -> dict[str, Any] | None:
        row = session.get(CustomerConflict, conflict_id)
        return _conflict_view(session, row) if row else None

    conflict = read(request, load)
    if conflict is None:
        return render(request, "error.html", status_code=404, title="404", message=translate(request, "Not found"))
    ok = translate(request, "Merged.") if action == "merge" else translate(request, "Dismissed: the profiles stay apart.")
    return render(request, "customers/_conflict.html", c=conflict, status_code=422 if error else 200,
                  flash=("error", error) if error else ("ok", ok))


# --- the 360 page --------------------------------------------------------------------------------


def _customer(session: Session, request: Request, customer_id: int) -> dict[str, Any]:
    state = request.app.state
    c360 = customers.customer_360(session, sections=state.customer_sections, customer_id=customer_id)
    sections = c360["sections"]
    items, next_cursor = customers.timeline_page(session, timeline=state.customer_timeline, customer_id=c360["id"],
                                                 query=TimelineQuery(limit=TIMELINE_PAGE))
    merges = resolution.merges_of(session, c360["id"])
    traits = (sections.get("profile") or {}).get("traits", {})
    return {
        "customer": c360, "sections": sections, "name": customers.display_name(traits), "traits": traits,
        "who": people.brief(c360["id"], traits=traits, identifiers=sections.get("identities") or []),
        "other_sections": {k: v for k, v in sections.items() if k not in KNOWN_SECTIONS},
        "timeline": [asdict(i) for i in items], "next_cursor": next_cursor, "merges": merges,
        "consent_channels": state.settings.consent_channels, "consent_purposes": state.settings.consent_purposes,
    }


def _customer_or_error(request: Request, customer_id: int) -> tuple[dict[str, Any] | None, Response | None]:
    try:
        return read(request, lambda s: _customer(s, request, customer_id)), None
    except Gone:
        return None, render(request, "customers/erased.html", section="customers", status_code=410, customer_id=customer_id,
                            erasure=None)
    except NotFound:
        return None, render(request, "error.html", section="customers", status_code=404, title="404",
                            message=translate(request, "No customer with this number."))


def _block(request: Request, customer_id: int, *, error: str | None = None, ok: str | None = None,
           form: dict[str, Any] | None = None) -> Response:
    """The customer block (everything under the page title) after an action, with its message."""
    data, failed = _customer_or_error(request, customer_id)
    if failed is not None:
        return failed
    headers = {"HX-Push-Url": f"/console/customers/{data['customer']['id']}"} if data["customer"]["id"] != customer_id else None
    flash = ("error", error) if error else (("ok", ok) if ok else None)
    return render(request, "customers/_customer.html", status_code=422 if error else 200, headers=headers, flash=flash,
                  form=form or {}, **data, **_common(request))


@router.get("/customers/{customer_id}")
def customer_page(request: Request, customer_id: RowId, staff: Staff = permitted("customers.view")) -> Response:
    data, failed = _customer_or_error(request, customer_id)
    if failed is not None:
        return failed
    if data["customer"]["id"] != customer_id:  # a merged id: the profile it lives on
        return RedirectResponse(f"/console/customers/{data['customer']['id']}", status_code=303)
    return render(request, "customers/detail.html", section="customers", form={}, **data, **_common(request))


@router.get("/customers/{customer_id}/timeline")
def timeline_more(request: Request, customer_id: RowId, staff: Staff = permitted("customers.view"),
                  cursor: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    """The next page of the timeline: its items and the next "load more" button (HTMX)."""
    def load(session: Session) -> dict[str, Any]:
        query = TimelineQuery(limit=TIMELINE_PAGE, before=decode_timeline_cursor(cursor))
        items, next_cursor = customers.timeline_page(session, timeline=request.app.state.customer_timeline,
                                                     customer_id=customer_id, query=query)
        return {"timeline": [asdict(i) for i in items], "next_cursor": next_cursor}

    try:
        data = read(request, load)
    except AppError as exc:
        return render(request, "customers/_timeline_items.html", customer={"id": customer_id}, timeline=[], next_cursor=None,
                      status_code=422, flash=("error", exc.message), **_common(request))
    return render(request, "customers/_timeline_items.html", customer={"id": customer_id}, **data, **_common(request))


# --- merge and unmerge -----------------------------------------------------------------------------


def _find_other(session: Session, request: Request, other: str) -> int:
    """A customer number (#42 or 42) or any identifier of exactly one customer."""
    text = other.strip()
    if re.fullmatch(r"#?\d{1,9}", text):
        return int(text.lstrip("#"))
    rules = request.app.state.identifier_rules
    found = set()
    for type_name in rules.types:
        try:
            found.add(customers.lookup(session, rules=rules, type_name=type_name, value=text).id)
        except (NotFound, Unprocessable):
            continue
    if len(found) != 1:
        raise NotFound("No single customer has this identifier" if found else "No customer has this identifier",
                       code="merge_target_not_found")
    return found.pop()


@router.post("/customers/{customer_id}/merge")
def merge(request: Request, customer_id: RowId, staff: Staff = permitted("customers.edit"),
          other: Annotated[str, Form(max_length=320)] = "", force: Annotated[bool, Form()] = False) -> Response:
    rules = request.app.state.identifier_rules
    if not other.strip():
        return _block(request, customer_id, error=translate(request, "Give the other customer's number or an identifier."),
                      form={"other": other})

    def work(session: Session) -> tuple[int, int]:
        other_id = _find_other(session, request, other)
        if resolution.canonical_profile(session, other_id).id == resolution.canonical_profile(session, customer_id).id:
            raise Unprocessable("These are already the same customer", code="same_customer")
        done = resolution.merge_profiles(session, rules=rules, profile_id=customer_id, other_id=other_id, force=force,
                                         actor=_actor(staff))
        return done.survivor_id, done.absorbed_id

    result, error = attempt(request, work)
    if error:
        return _block(request, customer_id, error=error, form={"other": other})
    request.app.state.metrics.merges.labels("manual").inc()
    return _block(request, result[0], ok=translate(request, "Customer #%(absorbed)s was merged into #%(survivor)s.",
                                                   absorbed=result[1], survivor=result[0]))


@router.post("/merges/{merge_id}/undo")
def undo_merge(request: Request, merge_id: RowId, staff: Staff = permitted("customers.edit"),
               customer_id: Annotated[int, Form(ge=1, le=MAX_ID)] = 0) -> Response:
    rules = request.app.state.identifier_rules
    result, error = attempt(request, lambda s: resolution.unmerge(s, rules=rules, merge_id=merge_id, actor=_actor(staff)[:200])
                            .profile_ids)
    shown = customer_id or (result[0] if result else 0)
    ok = translate(request, "Merge undone: customers %(ids)s are apart again.",
                   ids=", ".join(f"#{i}" for i in result)) if result else None
    return _block(request, shown, error=error, ok=ok)


# --- consents --------------------------------------------------------------------------------------


@router.post("/customers/{customer_id}/consents")
def change_consent(request: Request, customer_id: RowId, staff: Staff = permitted("customers.edit"),
                   channel: Annotated[str, Form(max_length=64)] = "", purpose: Annotated[str, Form(max_length=64)] = "",
                   granted: Annotated[str, Form(max_length=8)] = "") -> Response:
    rules = request.app.state.identifier_rules
    try:
        consent = ConsentCreate(channel=channel, purpose=purpose, granted=granted == "yes", source="console")
    except ValidationError:
        return _block(request, customer_id, error=translate(request, "Choose a channel and a purpose."))
    if granted not in ("yes", "no"):
        return _block(request, customer_id, error=translate(request, "Choose whether the consent is given or withdrawn."))
    _, error = attempt(request, lambda s: customers.add_consents(s, rules=rules, customer_id=customer_id, consents=[consent],
                                                                source="console").id)
    ok = translate(request, "Consent given.") if consent.granted else translate(request, "Consent withdrawn.")
    return _block(request, customer_id, error=error, ok=None if error else ok)


# --- privacy: export and erase ---------------------------------------------------------------------


@router.get("/customers/{customer_id}/export")
def export(request: Request, customer_id: RowId, staff: Staff = permitted("customers.privacy")) -> Response:
    """Everything held about the person (GET /v1/customers/{id}/export), downloaded as a file."""
    try:
        document = read(request, lambda s: customers.export_customer(s, sections=request.app.state.customer_sections,
                                                                     customer_id=customer_id))
    except (Gone, NotFound) as exc:
        return render(request, "error.html", section="customers", status_code=exc.status_code, title=str(exc.status_code),
                      message=exc.message)
    body = json.dumps(jsonable_encoder(document), ensure_ascii=False, indent=2)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="customer-{document["customer"]["id"]}.json"',
        "Cache-Control": "no-store"})


@router.post("/customers/{customer_id}/erase")
def erase(request: Request, customer_id: RowId, staff: Staff = permitted("customers.privacy"),
          confirm: Annotated[str, Form(max_length=40)] = "", reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    form = {"reason": reason}
    if confirm.strip().lstrip("#") != str(customer_id):
        return _block(request, customer_id, form=form,
                      error=translate(request, "To erase, type the customer's number (%(id)s) in the confirmation field.",
                                      id=customer_id))
    if not reason.strip() or "\x00" in reason:
        return _block(request, customer_id, form=form, error=translate(request, "Say why the data is erased."))
    erasure, error = attempt(request, lambda s: customers.erase_customer(
        s, customer_id=customer_id, reason=reason.strip(), actor=_actor(staff), sections=request.app.state.customer_sections))
    if error:
        return _block(request, customer_id, error=error, form=form)
    view = {"profile_id": erasure.profile_id, "reason": erasure.reason, "erased_at": erasure.erased_at,
            "removed_counts": erasure.removed_counts, "requested_by": erasure.requested_by}
    return render(request, "customers/_erased.html", customer_id=customer_id, erasure=view,
                  flash=("ok", translate(request, "The customer's personal data was erased.")))
