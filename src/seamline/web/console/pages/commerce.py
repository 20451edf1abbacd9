"""The console's commerce area: the order list and the order page (lines, totals, promotions,
payments, fulfilment, history, returns, points) with the actions its state allows, and stock by
location. Handlers are thin: they call the same services as the JSON API (commerce/api.py).
A clerk's list and actions are limited to their store (web/staff/scope.py: `check_order_list`,
`check_order_action` before each action, `allowed_actions` for the buttons).

Also what the store and loyalty pages share: `customer_brief`, return lines and `accept_return`."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from seamline.commerce import order_views, orders, payments, returns, stock
from seamline.commerce.models import CommerceLocation, CommerceProduct, CommerceVariant
from seamline.commerce.schemas import ReturnCreate, ReturnLineIn
from seamline.core.errors import AppError, NotFound
from seamline.customers import service as customers_service
from seamline.loyalty.models import LoyaltyEntry
from seamline.web.console import people
from seamline.web.console.actions import attempt, explain, form_key, form_problem, read
from seamline.web.console.deps import RowId, Staff, database, permitted
from seamline.web.console.templating import render, translate
from seamline.web.staff import scope

router = APIRouter()
T = TypeVar("T")

STATUSES = ("pending_payment", "confirmed", "ready_for_pickup", "shipped", "completed", "cancelled", "returned")
FULFILMENTS = ("delivery", "click_and_collect", "pickup_point", "in_store")
CHANNELS = ("web", "app", "store", "call_center", "console")
PAGE_SIZE = 50
#: Available at or below this is highlighted as low stock on the stock page (0: out of stock).
LOW_STOCK = 2
STOCK_ROWS = 50
#: Order-page actions are recorded in this channel (the store screen records "store").
CONSOLE_CHANNEL = "console"


def customer_brief(session: Session, customer_id: int | None) -> dict[str, Any] | None:
    """{id, name, contact, anonymous, erased} of the live profile behind an id (web/console/people.py;
    None for no customer)."""
    if customer_id is None:
        return None
    return people.briefs(session, [customer_id])[customer_id]


def order_points(session: Session, order_id: int) -> list[LoyaltyEntry]:
    """The loyalty entries an order caused (earned, spent, taken back, given back)."""
    return list(session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.order_id == order_id).order_by(LoyaltyEntry.id)))


def return_outcome(session: Session, order_id: int, return_id: int) -> dict[str, Any]:
    """A return as accepted: its lines and refunds, and the points it reversed or gave back."""
    record = returns.return_view(session, returns.get_return(session, order_id, return_id))
    points = list(session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.reference == f"return:{return_id}")
                                  .order_by(LoyaltyEntry.id)))
    return {**record, "points": points}


def accept_return(request: Request, *, order_id: int, data: ReturnCreate, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """The return service as `POST /v1/orders/{id}/returns` runs it: accepted in one
    transaction, then its refund sent; the outcome read back."""
    settings = request.app.state.settings
    accepted, error = attempt(request, lambda s: returns.accept_return(
        s, settings=settings, order_id=order_id, data=data, idempotency_key=f"console:{key}").record.id)
    if error:
        return None, error
    try:
        payments.send_requested_refunds(database(request), settings=settings, order_id=order_id)
    except AppError:
        pass  # the refund stays requested; the refunds job sends it again
    return read(request, lambda s: return_outcome(s, order_id, accepted)), None


def return_lines(form: Any) -> list[ReturnLineIn]:
    """`qty-<sku>` fields with a quantity above 0 (an empty field is 0)."""
    lines = []
    for name, value in form.multi_items():
        if not name.startswith("qty-") or not str(value).strip():
            continue
        quantity = int(str(value).strip())  # ValueError for the caller
        if quantity < 0:
            raise ValueError(quantity)
        if quantity:
            lines.append(ReturnLineIn(sku=name[4:], quantity=quantity))
    return lines


# --- the order list ------------------------------------------------------------------------------


def _customer_filter(session: Session, request: Request, value: str) -> list[int] | None:
    """Profile ids for the customer filter: an id, or a phone / email / card in any format."""
    value = value.strip().lstrip("#")
    if value.isdigit() and len(value) <= 9:
        try:
            return customers_service.merged_profile_ids(session, customers_service.get_profile(session, int(value)).id)
        except AppError:
            return []
    rules = request.app.state.identifier_rules
    for type_name in ("phone", "email", "loyalty_card"):
        try:
            profile = customers_service.lookup(session, rules=rules, type_name=type_name, value=value)
        except AppError:
            continue
        return customers_service.merged_profile_ids(session, profile.id)
    return []


@router.get("/console/orders", response_class=HTMLResponse)
def order_list(
    request: Request, staff: Staff = permitted("orders.view"), status: str = "", channel: str = "", fulfilment: str = "",
    store: str = "", customer: str = "", page: int = 1,
) -> HTMLResponse:
    page = max(1, min(page, 10_000))
    store = scope.check_order_list(staff.user, store) or ""  # a clerk: their store's orders only
    store_fixed = scope.bound_store(staff.user) is not None
    filters = {"status": status, "channel": channel, "fulfilment": fulfilment, "store": store, "customer": customer}

    def work(session: Session) -> dict[str, Any]:
        profile_ids = _customer_filter(session, request, customer) if customer.strip() else None
        found = orders.list_orders(
            session, status=status or None, channel=channel or None, fulfilment=fulfilment or None,
            location=store or None, profile_ids=profile_ids, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
        ) if profile_ids != [] else []
        codes = dict(session.execute(select(CommerceLocation.id, CommerceLocation.code)).all())
        locations = [loc for loc in stock.list_locations(session) if loc.kind in ("store", "pickup_point")
                     and (not store_fixed or loc.code == store)]
        who = people.briefs(session, {o.profile_id for o in found[:PAGE_SIZE] if o.profile_id})
        rows = [{"id": o.id, "created_at": o.created_at, "customer_id": o.profile_id, "channel": o.channel,
                 "fulfilment": o.fulfilment, "location": codes.get(o.pickup_location_id), "status": o.status,
                 "total": o.total, "currency": o.currency, "customer": who.get(o.profile_id)} for o in found[:PAGE_SIZE]]
        return {"rows": rows, "more": len(found) > PAGE_SIZE, "locations": locations, "unknown_customer": profile_ids == []}

    context = read(request, work)
    query = {k: v for k, v in filters.items() if v}
    return render(request, "commerce/orders.html", section="orders", filters=filters, page=page, query=query,
                  statuses=STATUSES, fulfilments=FULFILMENTS, channels=CHANNELS, store_fixed=store_fixed, **context)


# --- the order page ------------------------------------------------------------------------------


def _order_context(session: Session, order_id: int, staff: Staff) -> dict[str, Any]:
    order = orders.get_order(session, order_id)
    view = order_views.order_view(session, order)
    if not scope.sees_pickup_codes(staff.user):
        view["pickup_code"] = None
    record_views = returns.return_views(session, returns.returns_of_order(session, order_id))
    left = {line["sku"]: 0 for line in view["lines"]}
    for line in view["lines"]:
        left[line["sku"]] += line["quantity"] - line["returned"]
    status = view["status"]
    can = {
        "ready": status == "confirmed" and view["fulfilment"] in ("click_and_collect", "pickup_point"),
        "handover": status == "ready_for_pickup",
        "ship": status == "confirmed" and view["fulfilment"] == "delivery",
        "complete": status == "shipped",
        "cancel": status in orders.OPEN_STATUSES,
        "return": status in returns.RETURNABLE_STATUSES and any(q > 0 for q in left.values()),
    }
    in_scope = scope.allowed_actions(staff.user, fulfilment=view["fulfilment"], order_store=view["pickup_location"])
    can = {action: allowed and action in in_scope for action, allowed in can.items()}
    into = scope.return_locations(staff.user)
    return_locations = [loc for loc in stock.list_locations(session) if loc.active
                        and loc.kind in returns.RETURN_LOCATION_KINDS and (into is None or loc.code in into)]
    return {"order": view, "returns": record_views, "points": order_points(session, order_id), "left": left,
            "customer": customer_brief(session, view["customer_id"]), "actions": can,
            "return_locations": return_locations, "form_key": form_key()}


def _order_page(request: Request, staff: Staff, order_id: int, *, flash: tuple[str, str] | None = None,
                status_code: int = 200, **extra: Any) -> HTMLResponse:
    try:
        context = read(request, lambda s: _order_context(s, order_id, staff))
    except NotFound:
        return render(request, "error.html", status_code=404, section="orders", title=translate(request, "Not found"),
                      message=translate(request, "No order with this number."))
    template = "commerce/_order.html" if request.headers.get("hx-request") == "true" else "commerce/order.html"
    return render(request, template, section="orders", flash=flash, status_code=status_code, **context, **extra)


@router.get("/console/orders/{order_id}", response_class=HTMLResponse)
def order_page(order_id: RowId, request: Request, staff: Staff = permitted("orders.view")) -> HTMLResponse:
    return _order_page(request, staff, order_id)


def _after(request: Request, staff: Staff, order_id: int, error: str | None, done: str, **extra: Any) -> HTMLResponse:
    if error:
        return _order_page(request, staff, order_id, flash=("error", error), status_code=422, **extra)
    return _order_page(request, staff, order_id, flash=("ok", translate(request, done)), **extra)


def _outside_scope(request: Request, staff: Staff, order_id: int, action: str, *,
                   location: str | None = None) -> HTMLResponse | None:
    """The order page with a 403 and the reason when `action` is outside the person's store scope
    (web/staff/scope.py), before anything is written; None when it may go ahead. The order's
    store and fulfilment never change, so the check holds for the action's own transaction."""
    try:
        read(request, lambda s: scope.check_order_action(s, user=staff.user, order_id=order_id, action=action,
                                                          location=location))
    except scope.OutsideStore as exc:
        return _order_page(request, staff, order_id, flash=("error", explain(request, exc)), status_code=403)
    except NotFound:
        return None  # the action reports it
    return None


def _note(staff: Staff, form: Any) -> str:
    extra = str(form.get("note") or "").strip()
    return "; ".join(filter(None, (f"console {staff.user.email}", extra)))[:500]


@router.post("/console/orders/{order_id}/ready", response_class=HTMLResponse)
async def order_ready(order_id: RowId, request: Request, staff: Staff = permitted("orders.manage")) -> HTMLResponse:
    note, settings = _note(staff, await request.form()), request.app.state.settings
    if refused := _outside_scope(request, staff, order_id, "ready"):
        return refused
    _, error = attempt(request, lambda s: orders.mark_ready(s, settings=settings, order_id=order_id, channel=CONSOLE_CHANNEL,
                                                        note=note))
    return _after(request, staff, order_id, error, "The order is ready for pickup.")


@router.post("/console/orders/{order_id}/pickup", response_class=HTMLResponse)
async def order_pickup(order_id: RowId, request: Request, staff: Staff = permitted("orders.manage")) -> HTMLResponse:
    form = await request.form()
    code, note = str(form.get("code") or "").strip(), _note(staff, form)
    if refused := _outside_scope(request, staff, order_id, "handover"):
        return refused
    if not code:
        return _after(request, staff, order_id, translate(request, "Enter the pickup code the customer gives."), "")
    _, error = attempt(request, lambda s: orders.pick_up(s, order_id=order_id, code=code, channel="store", note=note))
    return _after(request, staff, order_id, error, "The order was handed over.")


@router.post("/console/orders/{order_id}/ship", response_class=HTMLResponse)
async def order_ship(order_id: RowId, request: Request, staff: Staff = permitted("orders.manage")) -> HTMLResponse:
    note = _note(staff, await request.form())
    if refused := _outside_scope(request, staff, order_id, "ship"):
        return refused
    _, error = attempt(request, lambda s: orders.ship(s, order_id=order_id, channel=CONSOLE_CHANNEL, note=note))
    return _after(request, staff, order_id, error, "The order was shipped.")


@router.post("/console/orders/{order_id}/complete", response_class=HTMLResponse)
async def order_complete(order_id: RowId, request: Request, staff: Staff = permitted("orders.manage")) -> HTMLResponse:
    note = _note(staff, await request.form())
    if refused := _outside_scope(request, staff, order_id, "complete"):
        return refused
    _, error = attempt(request, lambda s: orders.complete(s, order_id=order_id, channel=CONSOLE_CHANNEL, note=note))
    return _after(request, staff, order_id, error, "The order was delivered.")


@router.post("/console/orders/{order_id}/cancel", response_class=HTMLResponse)
async def order_cancel(order_id: RowId, request: Request, staff: Staff = permitted("orders.manage")) -> HTMLResponse:
    note, settings = _note(staff, await request.form()), request.app.state.settings
    if refused := _outside_scope(request, staff, order_id, "cancel"):
        return refused
    _, error = attempt(request, lambda s: orders.cancel(s, order_id=order_id, channel=CONSOLE_CHANNEL, note=note))
    if not error:  # as POST /v1/orders/{id}/cancel: what was paid is refunded right after the commit
        try:
            payments.send_requested_refunds(database(request), settings=settings, order_id=order_id)
        except AppError:
            pass  # stays requested; the refunds job resends it
    return _after(request, staff, order_id, error, "The order was cancelled.")


@router.post("/console/orders/{order_id}/returns", response_class=HTMLResponse)
async def order_return(order_id: RowId, request: Request, staff: Staff = permitted("orders.manage")) -> HTMLResponse:
    form = await request.form()
    location = str(form.get("location") or "").strip()
    if refused := _outside_scope(request, staff, order_id, "return", location=location):
        return refused
    try:
        lines = return_lines(form)
    except ValueError:
        return _after(request, staff, order_id, translate(request, "Quantities are whole numbers from 0."), "")
    if not lines:
        return _after(request, staff, order_id, translate(request, "Enter how many of which lines came back."), "")
    kind = read(request, lambda s: s.scalar(select(CommerceLocation.kind).where(CommerceLocation.code == location)))
    try:
        data = ReturnCreate(lines=lines, location=location, channel="store" if kind == "store" else CONSOLE_CHANNEL,
                            reason=str(form.get("reason") or "").strip())
    except ValidationError as exc:
        return _after(request, staff, order_id, form_problem(request, exc), "")
    outcome, error = accept_return(request, order_id=order_id, data=data, key=str(form.get("key") or form_key()))
    return _after(request, staff, order_id, error, "The return was accepted.", return_result=outcome)


# --- stock ---------------------------------------------------------------------------------------


def _stock_rows(session: Session, search: str) -> list[dict[str, Any]]:
    query = (select(CommerceVariant, CommerceProduct).join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id)
             .where(CommerceVariant.active.is_(True)))
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # SQLite's lower() folds ASCII only: names are also matched as typed, lower-case and capitalized.
        needles = {escaped, escaped.lower(), escaped.capitalize()}
        query = query.where(or_(
            func.lower(CommerceVariant.sku).like(f"{escaped.lower()}%", escape="\\"),
            func.lower(CommerceProduct.code).like(f"{escaped.lower()}%", escape="\\"),
            *(column.like(f"%{needle}%", escape="\\") for needle in needles
              for column in (CommerceProduct.name_ru, CommerceProduct.name_en)),
        ))
    rows = []
    for variant, product in session.execute(query.order_by(CommerceVariant.sku).limit(STOCK_ROWS)).all():
        rows.append({"sku": variant.sku, "product_ru": product.name_ru, "product_en": product.name_en,
                     "variant_ru": variant.name_ru, "variant_en": variant.name_en,
                     "stock": {row["location"]: row for row in stock.availability(session, variant.sku)}})
    return rows


@router.get("/console/stock", response_class=HTMLResponse)
def stock_page(request: Request, staff: Staff = permitted("stock.view"), sku: str = "", low: str = "") -> HTMLResponse:
    search = sku.strip()[:100]

    def work(session: Session) -> dict[str, Any]:
        locations = [loc for loc in stock.list_locations(session) if loc.active]
        rows = _stock_rows(session, search)
        if low:
            rows = [r for r in rows if any(row["available"] <= LOW_STOCK for row in r["stock"].values())]
        return {"locations": locations, "rows": rows}

    return render(request, "commerce/stock.html", section="stock", search=search, low=bool(low), low_stock=LOW_STOCK,
                  limit=STOCK_ROWS, **read(request, work))
