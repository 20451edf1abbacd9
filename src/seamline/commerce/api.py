"""HTTP routes of the commerce domain: catalog, locations, stock, orders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from sqlalchemy.orm import Session

from seamline.commerce import catalog, orders, stock
from seamline.commerce.schemas import (
    CategoryPut,
    LocationPut,
    LocationRead,
    MovementCreate,
    MovementRead,
    NearbyStore,
    OrderAction,
    OrderCreate,
    OrderRead,
    PickupIn,
    ProductPut,
    ProductRead,
    StockRead,
)
from seamline.core.deps import (
    AppSettings,
    ReadKey,
    ReadSession,
    WriteKey,
    WriteSession,
    get_database,
)
from seamline.customers.api import Rules

router = APIRouter(prefix="/v1", tags=["commerce"])

CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]
OrderId = Annotated[int, Path(ge=1, le=2**62)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, description="Retries with the same key do the work once"),
]


@router.put("/catalog/categories/{code}", status_code=204)
def put_category(code: CodePath, body: CategoryPut, session: WriteSession, _: WriteKey) -> Response:
    catalog.put_category(session, code=code, data=body)
    return Response(status_code=204)


@router.put("/catalog/products/{code}", response_model=ProductRead)
def put_product(code: CodePath, body: ProductPut, session: WriteSession, settings: AppSettings, _: WriteKey) -> Any:
    """Create or replace a product, its variants (SKUs) and their prices. Safe to repeat."""
    product = catalog.put_product(session, settings=settings, code=code, data=body)
    return catalog.product_view(session, settings=settings, product=product, channel=None)


@router.get("/catalog/products/{code}", response_model=ProductRead)
def get_product(
    code: CodePath, session: ReadSession, settings: AppSettings, _: ReadKey,
    channel: Annotated[str | None, Query(max_length=32, description="Show this channel's prices")] = None,
) -> Any:
    """A product with the prices of a channel: the list price, or the channel's own where one
    is configured (then `override` is true)."""
    return catalog.product_view(session, settings=settings, product=catalog.get_product(session, code), channel=channel)


@router.put("/locations/{code}", response_model=LocationRead)
def put_location(code: CodePath, body: LocationPut, session: WriteSession, _: WriteKey) -> Any:
    """A warehouse, store or pickup point: address, coordinates, hours, pickup, safety stock."""
    return stock.put_location(session, code=code, data=body)


@router.get("/locations", response_model=list[LocationRead])
def list_locations(session: ReadSession, _: ReadKey) -> Any:
    return stock.list_locations(session)


@router.post("/stock/movements", response_model=MovementRead, status_code=201)
def record_movement(
    body: MovementCreate, request: Request, response: Response, _: WriteKey, idempotency_key: IdempotencyKey = None
) -> Any:
    """A receipt, an adjustment (+/-) or a count (the new on-hand). Append-only; with an
    `Idempotency-Key`, a retry returns the first movement (200) and changes nothing."""

    def work(session: Session) -> dict[str, Any]:
        movement, created = stock.record_movement(session, data=body, idempotency_key=idempotency_key)
        if not created:
            response.status_code = 200
        return {**{k: getattr(movement, k) for k in ("id", "kind", "on_hand_delta", "reserved_delta", "reference", "created_at")},
                "sku": body.sku, "location": body.location}

    return get_database(request).run_write(work)


@router.get("/stock/{sku}", response_model=list[StockRead])
def stock_of(sku: CodePath, session: ReadSession, _: ReadKey) -> Any:
    """On hand, reserved and available per location (available leaves out the safety stock)."""
    return stock.availability(session, sku)


@router.get("/stock/{sku}/nearby", response_model=list[NearbyStore])
def nearby(
    sku: CodePath, session: ReadSession, _: ReadKey,
    latitude: Annotated[float, Query(ge=-90, le=90)], longitude: Annotated[float, Query(ge=-180, le=180)],
    quantity: Annotated[int, Query(ge=1, le=100_000)] = 1, limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> Any:
    """Stores and pickup points that hold the SKU, nearest first, and whether pickup is possible today."""
    return stock.nearby_stores(session, sku=sku, latitude=latitude, longitude=longitude, quantity=quantity, limit=limit)


@router.post("/orders", response_model=OrderRead, status_code=201)
def place_order(
    body: OrderCreate, request: Request, response: Response, settings: AppSettings, rules: Rules, _: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Place an order from any channel: priced from the one price list, stock reserved at the
    chosen store (click & collect, pickup point) or the nearest warehouses (delivery). Not
    enough stock is a 409 listing every shortage. Send an `Idempotency-Key`: a retry returns
    the same order (200) and reserves nothing twice."""

    def work(session: Session) -> dict[str, Any]:
        placed = orders.place_order(session, settings=settings, rules=rules, data=body, idempotency_key=idempotency_key)
        if not placed.created:
            response.status_code = 200
        return orders.order_view(session, placed.order)

    return get_database(request).run_write(work)


@router.get("/orders/{order_id}", response_model=OrderRead)
def get_order(order_id: OrderId, session: ReadSession, _: ReadKey) -> Any:
    return orders.order_view(session, orders.get_order(session, order_id))


def _action(request: Request, do) -> Any:  # noqa: ANN001
    return get_database(request).run_write(lambda session: orders.order_view(session, do(session)))


@router.post("/orders/{order_id}/pay", response_model=OrderRead)
def pay(order_id: OrderId, body: OrderAction, request: Request, _: WriteKey) -> Any:
    """The test payment provider: a pending order is paid."""
    return _action(request, lambda s: orders.pay_order(s, order_id=order_id, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/ready", response_model=OrderRead)
def ready(order_id: OrderId, body: OrderAction, request: Request, settings: AppSettings, _: WriteKey) -> Any:
    """Assembled in the store or pickup point: the customer may come (for the hold period)."""
    return _action(request, lambda s: orders.mark_ready(s, settings=settings, order_id=order_id, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/pickup", response_model=OrderRead)
def pickup(order_id: OrderId, body: PickupIn, request: Request, _: WriteKey) -> Any:
    """Handover: the pickup code must match; the stock is sold."""
    return _action(request, lambda s: orders.pick_up(s, order_id=order_id, code=body.code, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/ship", response_model=OrderRead)
def ship(order_id: OrderId, body: OrderAction, request: Request, _: WriteKey) -> Any:
    return _action(request, lambda s: orders.ship(s, order_id=order_id, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/complete", response_model=OrderRead)
def complete(order_id: OrderId, body: OrderAction, request: Request, _: WriteKey) -> Any:
    return _action(request, lambda s: orders.complete(s, order_id=order_id, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/cancel", response_model=OrderRead)
def cancel(order_id: OrderId, body: OrderAction, request: Request, _: WriteKey) -> Any:
    """Cancel an open order; its stock goes back on sale. Cancelling twice is a no-op."""
    return _action(request, lambda s: orders.cancel(s, order_id=order_id, channel=body.channel, note=body.note))
