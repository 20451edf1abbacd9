"""The store clerk's screen (/console/store): find a customer by phone or loyalty card, the
pickups waiting in this store and handover by pickup code, returns taken in this store, and
in-store sales. The same services as the POS API (`/v1/pos/stores/{store}/...`, commerce/pos.py)
and the returns API; everything is recorded in channel "store".

A clerk works in their own store (`StaffUser.store`; asking for another one is a 403, the
store scope of web/staff/scope.py); an admin chooses one with `?store=` (a form field on
writes). Each section is an HTMX fragment swapped whole after its action; the same routes
answer a whole page to a browser without JavaScript."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce import order_views, orders, pos, returns
from seamline.commerce.models import CommerceLocation
from seamline.commerce.schemas import PosHandover, ReturnCreate, SaleCreate
from seamline.core.errors import AppError, Conflict, NotFound, Unprocessable
from seamline.customers import service as customers_service
from seamline.customers.schemas import IdentifierIn
from seamline.loyalty import rules as loyalty_rules
from seamline.loyalty import service as loyalty_service
from seamline.loyalty.models import LoyaltyEntry
from seamline.web.console.actions import attempt, explain, form_key, form_problem, read
from seamline.web.console.deps import Staff, permitted
from seamline.web.console.pages.commerce import accept_return, return_lines
from seamline.web.console.templating import render, translate
from seamline.web.staff import scope

router = APIRouter()

CHANNEL = "store"
SALE_ROWS = 5
PICKUP_LIMIT = 100


# --- which store ---------------------------------------------------------------------------------


def store_code(staff: Staff, requested: str | None) -> str | None:
    """The store this person works in: a clerk's own (another one is a 403 `outside_store`,
    web/staff/scope.py), or the one an admin chose (else their own, if any)."""
    return scope.check_store(staff.user, requested)


def _stores(session: Session) -> list[CommerceLocation]:
    return list(session.scalars(select(CommerceLocation).where(CommerceLocation.kind == "store",
                                                               CommerceLocation.active.is_(True))
                                .order_by(CommerceLocation.code)))


# --- sections ------------------------------------------------------------------------------------


def _balance(session: Session, customer_id: int) -> dict[str, Any] | None:
    account = loyalty_service.account_of_customer(session, customer_id)
    if account is None:
        return None
    return loyalty_service.balance_view(session, account, loyalty_rules.get_program(session))


def _find_customer(session: Session, request: Request, store: CommerceLocation, q: str) -> dict[str, Any]:
    """The POS customer card for a phone (any format), a loyalty card number or an email, with
    the loyalty balance."""
    rules = request.app.state.identifier_rules
    tries = [("email", q)] if "@" in q else [("card", q), ("phone", q)]
    for param, value in tries:
        try:
            card = pos.find_customer(session, rules=rules, store=store, search={param: value})
        except (NotFound, Unprocessable):
            continue
        return {**card, "balance": _balance(session, card["id"]), "found_by": param}
    raise NotFound("No customer with this phone or card", code="customer_not_found")


def _return_order(session: Session, number: str) -> dict[str, Any]:
    """The order to take goods back from, with what is left with the customer per SKU."""
    digits = number.strip().lstrip("#")
    if not digits.isdigit() or len(digits) > 18:
        raise NotFound("No such order", code="order_not_found")
    view = order_views.order_view(session, orders.get_order(session, int(digits)))
    if view["status"] not in returns.RETURNABLE_STATUSES:
        raise Conflict("Not returnable", code="order_not_returnable", details={"status": view["status"]})
    left: dict[str, int] = {}
    for line in view["lines"]:
        left[line["sku"]] = left.get(line["sku"], 0) + line["quantity"] - line["returned"]
    return {**view, "left": left}


def _earned(session: Session, order_id: int) -> LoyaltyEntry | None:
    """The points an order handed over will bring (pending for the hold period)."""
    return session.scalar(select(LoyaltyEntry).where(LoyaltyEntry.idempotency_key == f"earn:order:{order_id}"))


def _context(request: Request, staff: Staff, code: str | None, **sections: Any) -> dict[str, Any]:
    """Everything the page shows; `sections` override a section's state (a result, an error,
    the values typed)."""
    values: dict[str, Any] = {
        "store": None, "store_error": None, "stores": [], "pickups": [],
        "customer_q": "", "customer": None, "customer_error": None,
        "pickup_result": None, "pickup_error": None, "pickup_order": "", "pickup_code": "",
        "return_number": "", "return_order": None, "return_error": None, "return_result": None, "return_key": form_key(),
        "sale_result": None, "sale_error": None, "sale_values": {}, "sale_key": form_key(), "sale_rows": SALE_ROWS,
    }
    values.update(sections)

    def work(session: Session) -> None:
        if staff.user.role == "admin":
            values["stores"] = _stores(session)
        if code is None:
            return
        try:
            store = pos.store_by_code(session, code)
        except AppError as exc:
            values["store_error"] = explain(request, exc)
            return
        values["store"] = store
        values["pickups"] = pos.pickups(session, rules=request.app.state.identifier_rules, store=store, limit=PICKUP_LIMIT)
        if values["customer_q"] and values["customer"] is None and values["customer_error"] is None:
            try:
                values["customer"] = _find_customer(session, request, store, values["customer_q"])
            except AppError as exc:
                values["customer_error"] = explain(request, exc)
        if values["return_number"] and values["return_order"] is None and values["return_error"] is None \
                and values["return_result"] is None:
            try:
                values["return_order"] = _return_order(session, values["return_number"])
            except AppError as exc:
                values["return_error"] = explain(request, exc)

    read(request, work)
    return values


def _answer(request: Request, staff: Staff, code: str | None, fragment: str, *, error: str | None = None,
            ok: str | None = None, **sections: Any) -> HTMLResponse:
    """A section's fragment for HTMX (the whole page otherwise), 422 when the action was refused."""
    context = _context(request, staff, code, **sections)
    flash = ("error", error) if error else ("ok", ok) if ok else None
    htmx = request.headers.get("hx-request") == "true"
    template = fragment if htmx and context["store"] is not None else "store/store.html"
    return render(request, template, section="store", status_code=422 if error else 200, flash=flash, **context)


# --- routes --------------------------------------------------------------------------------------


@router.get("/console/store", response_class=HTMLResponse)
def store_page(request: Request, staff: Staff = permitted("store"), store: str = "", q: str = "",
               order: str = "") -> HTMLResponse:
    code = store_code(staff, store)
    context = _context(request, staff, code, customer_q=q.strip()[:320], return_number=order.strip()[:20])
    return render(request, "store/store.html", section="store", **context)


@router.get("/console/store/customer", response_class=HTMLResponse)
def store_customer(request: Request, staff: Staff = permitted("store"), store: str = "", q: str = "") -> HTMLResponse:
    code = store_code(staff, store)
    q = q.strip()[:320]
    if not q:
        return _answer(request, staff, code, "store/_customer.html",
                       customer_error=translate(request, "Enter a phone number or a loyalty card number."))
    return _answer(request, staff, code, "store/_customer.html", customer_q=q)


@router.get("/console/store/pickups", response_class=HTMLResponse)
def store_pickups(request: Request, staff: Staff = permitted("store"), store: str = "") -> HTMLResponse:
    return _answer(request, staff, store_code(staff, store), "store/_pickups.html")


@router.post("/console/store/pickups", response_class=HTMLResponse)
async def store_hand_over(request: Request, staff: Staff = permitted("store")) -> HTMLResponse:
    form = await request.form()
    code = store_code(staff, str(form.get("store") or ""))
    number = str(form.get("order") or "").strip().lstrip("#")
    pickup_code = str(form.get("code") or "").strip()
    typed = {"pickup_order": number, "pickup_code": pickup_code}

    def refuse(message: str) -> HTMLResponse:
        return _answer(request, staff, code, "store/_pickup.html", error=message, pickup_error=message, **typed)

    if code is None:
        return refuse(translate(request, "Choose a store first."))
    if not pickup_code:
        return refuse(translate(request, "Enter the pickup code the customer gives."))
    if number and (not number.isdigit() or len(number) > 18):
        return refuse(translate(request, "No order with this number."))

    settings = request.app.state.settings

    def work(session: Session) -> dict[str, Any]:
        store = pos.store_by_code(session, code)
        data = PosHandover(order_id=int(number) if number else None, code=pickup_code, clerk=staff.user.email[:100])
        order = pos.hand_over(session, settings=settings, store=store, data=data)
        earned = _earned(session, order.id)
        return {"order": order_views.order_view(session, order),
                "points": (earned.pending_delta + earned.available_delta) if earned else 0,
                "available_at": earned.available_at if earned else None}

    result, error = attempt(request, work)
    if error:
        return refuse(error)
    return _answer(request, staff, code, "store/_pickup.html", pickup_result=result,
                   ok=translate(request, "Order #%(id)s was handed over.", id=result["order"]["id"]))


@router.get("/console/store/return", response_class=HTMLResponse)
def store_return_form(request: Request, staff: Staff = permitted("store"), store: str = "", order: str = "") -> HTMLResponse:
    code = store_code(staff, store)
    number = order.strip()[:20]
    if not number:
        return _answer(request, staff, code, "store/_return.html",
                       return_error=translate(request, "Enter the order number."))
    return _answer(request, staff, code, "store/_return.html", return_number=number)


@router.post("/console/store/returns", response_class=HTMLResponse)
async def store_return(request: Request, staff: Staff = permitted("store")) -> HTMLResponse:
    form = await request.form()
    code = store_code(staff, str(form.get("store") or ""))
    number = str(form.get("order") or "").strip().lstrip("#")[:20]

    def refuse(message: str) -> HTMLResponse:
        return _answer(request, staff, code, "store/_return.html", error=message, return_number=number,
                       return_key=str(form.get("key") or form_key()))

    if code is None:
        return refuse(translate(request, "Choose a store first."))
    if not number.isdigit():
        return refuse(translate(request, "No order with this number."))
    try:
        lines = return_lines(form)
    except ValueError:
        return refuse(translate(request, "Quantities are whole numbers from 0."))
    if not lines:
        return refuse(translate(request, "Enter how many of which lines came back."))
    try:
        data = ReturnCreate(lines=lines, location=code, channel=CHANNEL, reason=str(form.get("reason") or "").strip())
    except ValidationError as exc:
        return refuse(form_problem(request, exc))
    outcome, error = accept_return(request, order_id=int(number), data=data, key=str(form.get("key") or form_key()))
    if error:
        return refuse(error)
    return _answer(request, staff, code, "store/_return.html", return_result=outcome,
                   ok=translate(request, "The return was accepted."))


def _sale_customer(session: Session, request: Request, q: str) -> tuple[int | None, list[IdentifierIn]]:
    """The customer of a sale by loyalty card, phone or email; an unknown phone number becomes a
    new customer at the till, as the POS API does; an unknown card is an error."""
    if not q:
        return None, []
    rules = request.app.state.identifier_rules
    for type_name in ("loyalty_card", "phone", "email"):
        try:
            profile = customers_service.lookup(session, rules=rules, type_name=type_name, value=q)
        except AppError:
            continue
        return profile.id, [IdentifierIn(type="loyalty_card", value=q)] if type_name == "loyalty_card" else []
    try:
        rules.normalize("phone", q)
    except AppError:
        raise NotFound("No customer with this phone or card", code="customer_not_found") from None
    return None, [IdentifierIn(type="phone", value=q)]


@router.post("/console/store/sales", response_class=HTMLResponse)
async def store_sale(request: Request, staff: Staff = permitted("store")) -> HTMLResponse:
    form = await request.form()
    code = store_code(staff, str(form.get("store") or ""))
    typed = {name: str(value) for name, value in form.multi_items() if name not in ("csrf",)}
    key = str(form.get("key") or form_key())

    def refuse(message: str) -> HTMLResponse:
        return _answer(request, staff, code, "store/_sale.html", error=message, sale_error=message, sale_values=typed,
                       sale_key=key)

    if code is None:
        return refuse(translate(request, "Choose a store first."))
    quantities: dict[str, int] = {}
    try:
        for row in range(SALE_ROWS):
            sku = str(form.get(f"sku-{row}") or "").strip()
            if not sku:
                continue
            quantity = int(str(form.get(f"qty-{row}") or "1").strip())
            if quantity < 1:
                raise ValueError(quantity)
            quantities[sku] = quantities.get(sku, 0) + quantity
        points = int(str(form.get("points") or "0").strip() or "0")
        if points < 0:
            raise ValueError(points)
    except ValueError:
        return refuse(translate(request, "Quantities are whole numbers from 1; points from 0."))
    if not quantities:
        return refuse(translate(request, "Add at least one SKU."))
    method = str(form.get("method") or "card")
    who = str(form.get("customer") or "").strip()[:320]
    settings, rules = request.app.state.settings, request.app.state.identifier_rules

    def work(session: Session) -> dict[str, Any]:
        store = pos.store_by_code(session, code)
        customer_id, identifiers = _sale_customer(session, request, who)
        data = SaleCreate(lines=[{"sku": s, "quantity": q} for s, q in quantities.items()], customer_id=customer_id,
                          identifiers=identifiers, points=points, payment={"method": method}, clerk=staff.user.email[:100])
        placed = pos.record_sale(session, settings=settings, rules=rules, store=store, data=data,
                                 idempotency_key=f"console:{key}")
        earned = _earned(session, placed.order.id)
        return {"order": order_views.order_view(session, placed.order),
                "points_earned": (earned.pending_delta + earned.available_delta) if earned else 0,
                "points_spent": points}

    result, error = attempt(request, work)
    if error:
        return refuse(error)
    return _answer(request, staff, code, "store/_sale.html", sale_result=result,
                   ok=translate(request, "Sale #%(id)s recorded.", id=result["order"]["id"]))
