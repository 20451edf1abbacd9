"""The store clerk's screen (/console/store): find a customer by phone or loyalty card, the
pickups waiting in this store and handover by pickup code, returns taken in this store, and
in-store sales. The same services as the POS API (`/v1/pos/stores/{store}/...`, commerce/pos.py)
and the returns API; everything is recorded in channel "store".

A clerk works in their own store (`StaffUser.store`; asking for another one is a 403, the
store scope of web/staff/scope.py); an admin chooses one with `?store=` (a form field on
writes). Each section is an HTMX fragment swapped whole after its action; the same routes
answer a whole page to a browser without JavaScript."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from seamline.commerce import catalog_cache, order_views, orders, pos, returns
from seamline.commerce.models import (
    CommerceLocation,
    CommerceProduct,
    CommercePromotion,
    CommerceStock,
    CommerceVariant,
)
from seamline.commerce.schemas import PosHandover, ReturnCreate, SaleCreate
from seamline.core.errors import AppError, Conflict, NotFound, Unprocessable
from seamline.customers import service as customers_service
from seamline.customers.schemas import IdentifierIn
from seamline.loyalty import rules as loyalty_rules
from seamline.loyalty import service as loyalty_service
from seamline.loyalty.models import LoyaltyEntry
from seamline.web import i18n
from seamline.web.console import people
from seamline.web.console.actions import attempt, explain, form_key, form_problem, read
from seamline.web.console.deps import Staff, database, permitted
from seamline.web.console.pages.commerce import accept_return, return_lines
from seamline.web.console.templating import render, translate
from seamline.web.staff import scope

router = APIRouter()

CHANNEL = "store"
PICKUP_LIMIT = 100
#: Products found for the sale at once; lines a sale may have (SaleCreate).
SEARCH_LIMIT = 10
MAX_SALE_LINES = 200


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
        "sale_result": None, "sale_error": None, "sale_values": {}, "sale_key": form_key(), "sale_lines": [],
        "sale_quote": None, "sale_q": "", "sale_found": None,
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
        for order in values["pickups"]:  # a name, else the phone, else "Customer #id" (web/console/people.py)
            if order["customer"]:
                order["customer"] = {**order["customer"], "contact": people.contact_of(order["customer"]["identifiers"]),
                                     "anonymous": False, "erased": False}
        if values["sale_q"] and values["sale_found"] is None:
            values["sale_found"] = _products(session, request, store, values["sale_q"])
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
               order: str = "", product: str = "") -> HTMLResponse:
    code = store_code(staff, store)
    context = _context(request, staff, code, customer_q=q.strip()[:320], return_number=order.strip()[:20],
                       sale_q=product.strip()[:100])
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


# --- the in-store sale: product search, lines priced as the till will charge, then payment --------


class SaleForm(ValueError):
    """The sale form does not make sense (a quantity that is not a number...): the message says why."""


def _products(session: Session, request: Request, store: CommerceLocation, q: str) -> list[dict[str, Any]]:
    """Active SKUs whose SKU starts with `q` or whose product name contains it, with the store's
    price (the catalog's, the till's channel) and what this store can sell of each."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    needles = {escaped, escaped.lower(), escaped.capitalize()}  # SQLite's lower() folds ASCII only
    rows = session.execute(
        select(CommerceVariant, CommerceProduct).join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id)
        .where(CommerceVariant.active.is_(True), CommerceProduct.active.is_(True), or_(
            func.lower(CommerceVariant.sku).like(f"{escaped.lower()}%", escape="\\"),
            *(column.like(f"%{needle}%", escape="\\") for needle in needles
              for column in (CommerceProduct.name_ru, CommerceProduct.name_en, CommerceVariant.name_ru,
                             CommerceVariant.name_en)),
        )).order_by(CommerceVariant.sku).limit(SEARCH_LIMIT)).all()
    if not rows:
        return []
    settings = request.app.state.settings
    catalog = catalog_cache.snapshot(session)
    priced = catalog.variants(session, [v.sku for v, _ in rows])
    sellable = {variant_id: max(0, on_hand - reserved) for variant_id, on_hand, reserved in session.execute(
        select(CommerceStock.variant_id, CommerceStock.on_hand, CommerceStock.reserved)
        .where(CommerceStock.location_id == store.id, CommerceStock.variant_id.in_([v.id for v, _ in rows])))}
    return [{"sku": v.sku, "name_ru": " ".join(filter(None, (p.name_ru, v.name_ru))),
             "name_en": " ".join(filter(None, (p.name_en, v.name_en))),
             "price": priced[v.sku].price(settings, CHANNEL), "currency": settings.commerce_currency,
             "sellable": sellable.get(v.id, 0)} for v, p in rows]


def _sale_lines(form: Any) -> list[tuple[str, int]]:
    """[(sku, quantity)] of the form, in order, the same SKU on one line: the lines `sku-<n>` /
    `qty-<n>` (quantity 0 or `remove` = n takes a line away), then the SKU typed or scanned
    (`new_sku`) or added from the search results (`add`), one more of it."""
    found: dict[str, int] = {}
    removed = str(form.get("remove") or "")
    numbers = sorted({int(match.group(1)) for key in form.keys() if (match := re.fullmatch(r"sku-(\d{1,3})", key))})
    for number in numbers:
        sku = str(form.get(f"sku-{number}") or "").strip()
        if not sku or str(number) == removed:
            continue
        text = str(form.get(f"qty-{number}") or "1").strip()
        if not text.isdigit() or len(text) > 6:
            raise SaleForm("Quantities are whole numbers from 1; points from 0.")
        if int(text):
            found[sku] = found.get(sku, 0) + int(text)
    for name in ("new_sku", "add"):
        sku = str(form.get(name) or "").strip()[:64]
        if sku:
            found[sku] = found.get(sku, 0) + 1
    if len(found) > MAX_SALE_LINES:
        raise SaleForm("A sale has at most 200 lines.")
    return list(found.items())


def _sale_data(session: Session, request: Request, form: Any, lines: list[tuple[str, int]], staff: Staff,
               *, expected: int | None = None) -> SaleCreate:
    text = str(form.get("points") or "0").strip() or "0"
    if not text.isdigit() or len(text) > 12:
        raise SaleForm("Quantities are whole numbers from 1; points from 0.")
    customer_id, identifiers = _sale_customer(session, request, str(form.get("customer") or "").strip()[:320])
    coupon = str(form.get("coupon") or "").strip()[:64]
    payment: dict[str, Any] = {"method": str(form.get("method") or "card")}
    if expected is not None:
        payment["amount"] = expected
    return SaleCreate(lines=[{"sku": sku, "quantity": quantity} for sku, quantity in lines], customer_id=customer_id,
                      identifiers=identifiers, points=int(text), coupons=[coupon] if coupon else [], payment=payment,
                      clerk=staff.user.email[:100])


def _quote_view(session: Session, priced: Any, locale: str) -> dict[str, Any]:
    """A priced sale for the page: lines in the person's language, promotions by their names."""
    skus = [line.sku for line in priced.lines]
    names = {sku: (ru, en, vru, ven) for sku, ru, en, vru, ven in session.execute(
        select(CommerceVariant.sku, CommerceProduct.name_ru, CommerceProduct.name_en, CommerceVariant.name_ru,
               CommerceVariant.name_en).join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id)
        .where(CommerceVariant.sku.in_(skus)))} if skus else {}
    codes = [p.code for p in priced.promotions if p.points is None]
    title = CommercePromotion.name_en if locale == "en" else CommercePromotion.name_ru
    titles = dict(session.execute(select(CommercePromotion.code, title).where(CommercePromotion.code.in_(codes))).all()) \
        if codes else {}

    def name(sku: str, fallback: str) -> str:
        if sku not in names:
            return fallback
        ru, en, vru, ven = names[sku]
        return " ".join(filter(None, (en, ven) if locale == "en" else (ru, vru))) or fallback

    return {
        "currency": priced.currency, "subtotal": priced.subtotal, "discount": priced.discount, "total": priced.total,
        "points": priced.points,
        "lines": [{"sku": line.sku, "name": name(line.sku, line.name), "quantity": line.quantity,
                   "unit_price": line.unit_price, "discount": line.discount, "total": line.total} for line in priced.lines],
        "promotions": [{"code": p.code, "name": titles.get(p.code) or p.name, "amount": p.amount, "points": p.points,
                        "coupon": p.coupon} for p in priced.promotions],
        "rejected_coupons": priced.rejected_coupons,
    }


def _quote(request: Request, staff: Staff, code: str, form: Any, lines: list[tuple[str, int]]
           ) -> tuple[dict[str, Any] | None, str | None]:
    """The sale priced as `pos.record_sale` will charge it (nothing written), or why it cannot be."""
    view, error, _ = _try_quote(request, staff, code, form, lines)
    return view, error


def _try_quote(request: Request, staff: Staff, code: str, form: Any, lines: list[tuple[str, int]]
               ) -> tuple[dict[str, Any] | None, str | None, AppError | None]:
    settings, rules = request.app.state.settings, request.app.state.identifier_rules

    def work(session: Session) -> dict[str, Any]:
        pos.store_by_code(session, code)
        data = _sale_data(session, request, form, lines, staff)
        return _quote_view(session, pos.quote_sale(session, settings=settings, rules=rules, data=data),
                           staff.user.locale)

    try:
        return read(request, work), None, None
    except AppError as exc:
        return None, explain(request, exc), exc
    except SaleForm as exc:
        return None, translate(request, str(exc)), None
    except ValidationError as exc:
        return None, form_problem(request, exc), None


def _money(request: Request, staff: Staff, minor: int, currency: str) -> str:
    settings = request.app.state.settings
    return i18n.Formats(staff.user.locale, settings.console_timezone, settings.default_region).money(minor, currency)


def _typed(form: Any) -> dict[str, str]:
    """What stays in the sale form: the customer, points, coupon, payment method (the lines are
    `sale_lines`)."""
    return {name: str(form.get(name) or "") for name in ("customer", "points", "coupon", "method")}


@router.get("/console/store/products", response_class=HTMLResponse)
def store_products(request: Request, staff: Staff = permitted("store"), store: str = "",
                   product: str = "") -> HTMLResponse:
    """Products for the sale: by SKU or name, with the price and what this store can sell."""
    code = store_code(staff, store)
    q = product.strip()[:100]
    context = _context(request, staff, code, sale_q=q)
    if request.headers.get("hx-request") == "true" and context["store"] is not None:
        return render(request, "store/_sale_found.html", **context)
    return render(request, "store/store.html", section="store", **context)


@router.post("/console/store/sale/quote", response_class=HTMLResponse)
async def store_sale_quote(request: Request, staff: Staff = permitted("store")) -> HTMLResponse:
    """The sale form after a change (a line added, scanned, removed, a quantity, the customer,
    points, a coupon): its lines priced with promotions and points and the total to pay, before
    the customer pays. Nothing is written."""
    form = await request.form()
    code = store_code(staff, str(form.get("store") or ""))
    key = str(form.get("key") or form_key())
    search = str(form.get("product") or "").strip()[:100]
    if code is None:
        return _answer(request, staff, code, "store/_sale.html", error=translate(request, "Choose a store first."))
    try:
        lines = _sale_lines(form)
    except SaleForm as exc:
        message = translate(request, str(exc))
        return _answer(request, staff, code, "store/_sale.html", error=message, sale_error=message, sale_key=key,
                       sale_values=_typed(form), sale_q=search)
    quote, error, failure = _try_quote(request, staff, code, form, lines) if lines else (None, None, None)
    if failure is not None and failure.code in ("unknown_sku", "no_price"):
        # A SKU typed, scanned or chosen that cannot be sold is not added; the other lines stay priced.
        unsellable = set((failure.details or {}).get("skus") or ())
        lines = [(sku, quantity) for sku, quantity in lines if sku not in unsellable]
        if lines:
            quote, _ = _quote(request, staff, code, form, lines)
    shown = quote["lines"] if quote else [{"sku": sku, "quantity": quantity, "name": sku} for sku, quantity in lines]
    return _answer(request, staff, code, "store/_sale.html", error=error, sale_error=error,
                   sale_quote=quote, sale_lines=shown, sale_values=_typed(form), sale_key=key, sale_q=search)


@router.post("/console/store/sales", response_class=HTMLResponse)
async def store_sale(request: Request, staff: Staff = permitted("store")) -> HTMLResponse:
    """Record the sale (`pos.record_sale`, idempotent by the form's key) and take the payment.
    When the page showed a total (`expected_total`), the sale is recorded only at that total: a
    price that changed meanwhile is shown again instead of being charged."""
    form = await request.form()
    code = store_code(staff, str(form.get("store") or ""))
    key = str(form.get("key") or form_key())
    typed_lines: list[tuple[str, int]] = []

    def refuse(message: str, quote: dict[str, Any] | None = None) -> HTMLResponse:
        shown = quote["lines"] if quote else [{"sku": sku, "quantity": q, "name": sku} for sku, q in typed_lines]
        return _answer(request, staff, code, "store/_sale.html", error=message, sale_error=message, sale_key=key,
                       sale_values=_typed(form), sale_lines=shown, sale_quote=quote)

    if code is None:
        return refuse(translate(request, "Choose a store first."))
    try:
        typed_lines = _sale_lines(form)
    except SaleForm as exc:
        return refuse(translate(request, str(exc)))
    if not typed_lines:
        return refuse(translate(request, "Add at least one SKU."))
    expected_text = str(form.get("expected_total") or "").strip()
    expected = int(expected_text) if expected_text.isdigit() and len(expected_text) <= 15 else None
    settings, rules = request.app.state.settings, request.app.state.identifier_rules

    def work(session: Session) -> dict[str, Any]:
        store = pos.store_by_code(session, code)
        data = _sale_data(session, request, form, typed_lines, staff, expected=expected)
        placed = pos.record_sale(session, settings=settings, rules=rules, store=store, data=data,
                                 idempotency_key=f"console:{key}")
        earned = _earned(session, placed.order.id)
        return {"order": order_views.order_view(session, placed.order),
                "points_earned": (earned.pending_delta + earned.available_delta) if earned else 0,
                "points_spent": data.points}

    try:
        result = database(request).run_write(work)
    except AppError as exc:
        if exc.code == "amount_mismatch":
            quote, _ = _quote(request, staff, code, form, typed_lines)
            return refuse(translate(request, "The total is now %(total)s: tell the customer and pay again.",
                                    total=_money(request, staff, exc.details["expected"], exc.details["currency"])), quote)
        return refuse(explain(request, exc))
    except SaleForm as exc:
        return refuse(translate(request, str(exc)))
    except ValidationError as exc:
        return refuse(form_problem(request, exc))
    return _answer(request, staff, code, "store/_sale.html", sale_result=result,
                   ok=translate(request, "Sale #%(id)s recorded.", id=result["order"]["id"]))
