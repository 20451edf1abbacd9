"""The console's loyalty area: find a member by customer id, phone, email or card; their
account (balance, pending, tier, cards, the ledger with reasons, orders and expiry, the
wallet); manual adjustments through the audited service (`loyalty.service.adjust`, as
`POST /v1/customers/{id}/loyalty/adjustments`), recorded with the staff member's email as the
actor. Everyone with loyalty.view sees; only loyalty.adjust (admins) adjusts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from seamline.core.errors import AppError, NotFound, Unprocessable
from seamline.core.pagination import decode_cursor, page
from seamline.customers import service as customers_service
from seamline.loyalty import ledger, wallet
from seamline.loyalty import service as loyalty_service
from seamline.loyalty.schemas import AdjustmentCreate
from seamline.web.console.actions import attempt, form_key, form_problem, read
from seamline.web.console.deps import RowId, Staff, permitted
from seamline.web.console.pages.commerce import customer_brief
from seamline.web.console.templating import render, translate

router = APIRouter()

ENTRY_PAGE = 50
WALLET_ENTRIES = 20
SEARCH_LIMIT = 20


# --- search --------------------------------------------------------------------------------------


def _search(session: Session, request: Request, q: str) -> list[dict[str, Any]]:
    """Customers whose id, phone, email or loyalty card is `q` (identifiers in any format, or
    by prefix), each with their balance."""
    found: dict[int, dict[str, Any]] = {}
    digits = q.lstrip("#")
    if digits.isdigit() and len(digits) <= 12:
        try:
            profile = customers_service.get_profile(session, int(digits))
            found[profile.id] = {"id": profile.id, "identifiers": [], "traits": None}
        except AppError:
            pass
    items, _ = customers_service.list_customers(session, rules=request.app.state.identifier_rules, q=q,
                                                identifier_type=None, limit=SEARCH_LIMIT, cursor=None)
    for item in items:
        found[item["id"]] = {"id": item["id"], "identifiers": [(i.type, i.value) for i in item["identifiers"]],
                             "traits": item["traits"]}
    rows = []
    for pid, item in list(found.items())[:SEARCH_LIMIT]:
        name = customers_service.display_name(item["traits"]) if item["traits"] is not None else (customer_brief(session, pid) or {}).get("name")
        account = ledger.find_account(session, pid)
        rows.append({"id": pid, "name": name, "identifiers": item["identifiers"],
                     "points": loyalty_service.spendable(session, account) if account else None,
                     "tier": account.tier if account else None})
    return rows


@router.get("/console/loyalty", response_class=HTMLResponse)
def loyalty_search(request: Request, staff: Staff = permitted("loyalty.view"), q: str = "") -> HTMLResponse:
    q = q.strip()[:320]
    rows = read(request, lambda s: _search(s, request, q)) if q else []
    return render(request, "loyalty/search.html", section="loyalty", q=q, rows=rows)


# --- the account ---------------------------------------------------------------------------------


def _account_context(session: Session, customer_id: int, cursor: str | None) -> dict[str, Any]:
    profile = customers_service.get_profile(session, customer_id)
    customer = customer_brief(session, profile.id)
    account = loyalty_service.account_of_customer(session, profile.id)
    if account is None:
        return {"customer": customer, "account": None, "entries": [], "wallet": [], "next_cursor": None}
    view = loyalty_service.account_view(session, account, entry_limit=0)
    entries, next_cursor = page(loyalty_service.entries(session, account.id, limit=ENTRY_PAGE + 1,
                                                        before_id=decode_cursor(cursor)), ENTRY_PAGE)
    return {"customer": customer, "account": view, "entries": entries, "next_cursor": next_cursor,
            "wallet": wallet.entries(session, account.id, limit=WALLET_ENTRIES)}


def _account_page(request: Request, customer_id: int, *, cursor: str | None = None, flash: tuple[str, str] | None = None,
                  status_code: int = 200, **extra: Any) -> HTMLResponse:
    try:
        context = read(request, lambda s: _account_context(s, customer_id, cursor))
    except (NotFound, AppError):
        return render(request, "error.html", status_code=404, section="loyalty", title=translate(request, "Not found"),
                      message=translate(request, "No customer found."))
    values = {"adjust_key": form_key(), "adjust_values": {}, **extra}
    template = "loyalty/_account.html" if request.headers.get("hx-request") == "true" else "loyalty/account.html"
    return render(request, template, section="loyalty", flash=flash, status_code=status_code, **context, **values)


@router.get("/console/loyalty/customers/{customer_id}", response_class=HTMLResponse)
def loyalty_account(customer_id: RowId, request: Request, staff: Staff = permitted("loyalty.view"),
                    cursor: str | None = None) -> HTMLResponse:
    """The account; `cursor` (the "Older entries" link) pages the ledger (a damaged one: the first page)."""
    try:
        decode_cursor(cursor)
    except Unprocessable:
        cursor = None
    return _account_page(request, customer_id, cursor=cursor)


@router.post("/console/loyalty/customers/{customer_id}/adjustments", response_class=HTMLResponse)
async def loyalty_adjust(customer_id: RowId, request: Request, staff: Staff = permitted("loyalty.adjust")) -> HTMLResponse:
    form = await request.form()
    typed = {"points": str(form.get("points") or "").strip(), "comment": str(form.get("comment") or "").strip()}
    key = str(form.get("key") or form_key())

    def refuse(message: str) -> HTMLResponse:
        return _account_page(request, customer_id, flash=("error", message), status_code=422, adjust_error=message,
                             adjust_values=typed, adjust_key=key)

    try:
        points = int(typed["points"])
    except ValueError:
        return refuse(translate(request, "Points are a whole number, positive to add or negative to take."))
    if points == 0:
        return refuse(translate(request, "Points are a whole number, positive to add or negative to take."))
    if not typed["comment"]:
        return refuse(translate(request, "Give the reason for the adjustment."))
    try:
        data = AdjustmentCreate(points=points, reason="adjust", staff=staff.user.email[:100], comment=typed["comment"])
    except ValidationError as exc:
        return refuse(form_problem(request, exc))
    entry, error = attempt(request, lambda s: loyalty_service.adjust(
        s, customer_id=customer_id, data=data, api_key=None, idempotency_key=f"console:{key}")[0].id)
    if error:
        return refuse(error)
    return _account_page(request, customer_id, flash=("ok", translate(request, "Points adjusted: %(n)s.", n=f"{points:+d}")),
                         adjusted=entry)
