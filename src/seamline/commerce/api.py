"""HTTP routes of the commerce domain: catalog, locations, stock, orders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from seamline.commerce import (
    carts,
    catalog,
    order_views,
    orders,
    payments,
    pos,
    pricing,
    promotions,
    returns,
    stock,
    sync,
)
from seamline.commerce.pricing import price_lines, quantities_of
from seamline.commerce.schemas import (
    NAME_PATTERN,
    CartCheckoutIn,
    CartLinePut,
    CartMergeIn,
    CartRead,
    CategoryPut,
    CouponPut,
    CouponRead,
    LocationPut,
    LocationRead,
    MovementCreate,
    MovementRead,
    NearbyStore,
    OrderAction,
    OrderCreate,
    OrderPage,
    OrderRead,
    OrderStatusName,
    PaymentsRead,
    PickupIn,
    PosCustomerCard,
    PosHandover,
    PosOrderRead,
    PosStockRead,
    ProductPut,
    ProductPromotionsRead,
    ProductRead,
    PromotionPut,
    PromotionRead,
    QuoteIn,
    QuoteRead,
    ReturnCreate,
    ReturnRead,
    SaleCreate,
    StockImportRead,
    StockRead,
    WebhookAck,
)
from seamline.core.config import Settings
from seamline.core.deps import (
    AppSettings,
    IdempotencyKey,
    ReadKey,
    ReadSession,
    WriteKey,
    WriteSession,
    get_database,
)
from seamline.core.limits import read_upload
from seamline.core.openapi import errors, replayed
from seamline.core.pagination import CursorQuery
from seamline.core.schemas import DateTime, path_id, query_id
from seamline.customers import service as customers_service
from seamline.customers.api import Rules
from seamline.customers.identifiers import IdentifierRules

router = APIRouter(prefix="/v1", tags=["commerce"])
#: An order action its status does not allow (`invalid_order_status`, `wrong_payment_provider`, ...).
ORDER_STATE = errors(409, notes={409: "the order's status or payment does not allow it (`invalid_order_status`, "
                                      "`wrong_payment_provider`, `paid_at_pickup`, `order_not_returnable`)"})

CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]
OrderId = Annotated[int, path_id()]
CouponPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")]


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


@router.get("/catalog/products/{code}/promotions", response_model=ProductPromotionsRead, tags=["promotions"])
def product_promotions(
    code: CodePath, session: ReadSession, settings: AppSettings, _: ReadKey,
    channel: Annotated[str | None, Query(max_length=32, pattern=NAME_PATTERN, description="Price as this channel does")] = None,
    customer_id: Annotated[int | None, query_id(description="For this customer (tiers, traits)")] = None,
) -> Any:
    """What the promotions do for a product's active SKUs, for a product page: the price, what
    one unit costs after promotions in a cart of its own (the engine of carts, checkouts and the
    till), and each promotion that can apply without a coupon, `applies_to_one` when it
    discounts that one unit (else the cart needs more: a minimum amount, buy X get Y). Read-only."""
    product = catalog.get_product(session, code)
    profile = customers_service.get_profile(session, customer_id).id if customer_id is not None else None
    skus = catalog.active_skus(session, product)
    return {"product": product.code, "channel": channel, "customer_id": profile,
            "variants": pricing.product_promotions(session, settings=settings, channel=channel, skus=skus,
                                                   customer_id=profile)}


@router.put("/locations/{code}", response_model=LocationRead, responses=errors(409, notes={409: "`external_id_taken`"}))
def put_location(code: CodePath, body: LocationPut, session: WriteSession, _: WriteKey) -> Any:
    """A warehouse, store or pickup point: address, coordinates, hours, pickup, safety stock."""
    return stock.put_location(session, code=code, data=body)


@router.get("/locations", response_model=list[LocationRead])
def list_locations(session: ReadSession, _: ReadKey) -> Any:
    return stock.list_locations(session)


@router.post("/stock/movements", response_model=MovementRead, status_code=201,
             responses={**replayed(MovementRead), **errors(409, notes={409: "`below_reserved`: less stock than is reserved"})})
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


@router.post("/orders", response_model=OrderRead, status_code=201, responses=replayed(OrderRead))
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
        return order_views.placed_view(session, placed)

    return get_database(request).run_write(work)


@router.get("/orders", response_model=OrderPage, responses=errors(401, 403, 404, 410, 422, notes={
    404: "`customer_not_found`", 422: "`unknown_location`, `invalid_cursor`"}))
def list_orders(
    session: ReadSession, _: ReadKey,
    customer_id: Annotated[int | None, query_id(description=(
        "The person's orders: the profile this id now lives in and every profile merged into it"))] = None,
    status: Annotated[list[OrderStatusName] | None, Query(max_length=7, description="One or more (repeat the parameter)")] = None,
    channel: Annotated[str | None, Query(max_length=32, pattern=NAME_PATTERN, description="Where it was placed")] = None,
    store: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$", description=(
        "The code of the location where it is collected, or the store of a till sale (`pickup_location`)"))] = None,
    placed_from: Annotated[DateTime | None, Query(description="Placed at or after (ISO 8601; no zone: UTC)")] = None,
    placed_to: Annotated[DateTime | None, Query(description="Placed before (exclusive; ISO 8601; no zone: UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: CursorQuery = None,
) -> Any:
    """Orders of every channel, newest first, a page at a time: pass `next_cursor` back as
    `cursor` until it is null. An unknown `customer_id` is a 404, an unknown `store` a 422."""
    found, next_cursor = orders.find_orders(
        session, customer_id=customer_id, statuses=status, channel=channel, store=store,
        placed_from=placed_from, placed_to=placed_to, cursor=cursor, limit=limit,
    )
    return {"items": order_views.order_views(session, found), "next_cursor": next_cursor}


@router.get("/orders/{order_id}", response_model=OrderRead)
def get_order(order_id: OrderId, session: ReadSession, _: ReadKey) -> Any:
    return order_views.order_view(session, orders.get_order(session, order_id))


def _action(request: Request, do) -> Any:  # noqa: ANN001
    return get_database(request).run_write(lambda session: order_views.order_view(session, do(session)))


@router.post("/orders/{order_id}/pay", response_model=OrderRead, responses=ORDER_STATE)
def pay(order_id: OrderId, body: OrderAction, request: Request, settings: AppSettings, _: WriteKey) -> Any:
    """The test payment provider's explicit payment: an order waiting for payment through `test`
    is paid (captured in the payment ledger) and confirmed. Paying twice is a no-op."""
    database = get_database(request)
    payments.pay_with_test_provider(database, settings=settings, order_id=order_id, channel=body.channel)
    with database.read() as session:
        return order_views.order_view(session, orders.get_order(session, order_id))


@router.post("/orders/{order_id}/ready", response_model=OrderRead, responses=ORDER_STATE)
def ready(order_id: OrderId, body: OrderAction, request: Request, settings: AppSettings, _: WriteKey) -> Any:
    """Assembled in the store or pickup point: the customer may come (for the hold period)."""
    return _action(request, lambda s: orders.mark_ready(s, settings=settings, order_id=order_id, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/pickup", response_model=OrderRead)
def pickup(order_id: OrderId, body: PickupIn, request: Request, _: WriteKey) -> Any:
    """Handover: the pickup code must match; the stock is sold."""
    return _action(request, lambda s: orders.pick_up(s, order_id=order_id, code=body.code, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/ship", response_model=OrderRead, responses=ORDER_STATE)
def ship(order_id: OrderId, body: OrderAction, request: Request, _: WriteKey) -> Any:
    return _action(request, lambda s: orders.ship(s, order_id=order_id, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/complete", response_model=OrderRead, responses=ORDER_STATE)
def complete(order_id: OrderId, body: OrderAction, request: Request, _: WriteKey) -> Any:
    return _action(request, lambda s: orders.complete(s, order_id=order_id, channel=body.channel, note=body.note))


@router.post("/orders/{order_id}/cancel", response_model=OrderRead, responses=ORDER_STATE)
def cancel(order_id: OrderId, body: OrderAction, request: Request, settings: AppSettings, _: WriteKey) -> Any:
    """Cancel an open order; its stock goes back on sale and what was paid is refunded through
    the provider it was paid with. Cancelling twice is a no-op."""
    database = get_database(request)
    database.run_write(lambda s: orders.cancel(s, order_id=order_id, channel=body.channel, note=body.note))
    payments.send_requested_refunds(database, settings=settings, order_id=order_id)
    with database.read() as session:
        return order_views.order_view(session, orders.get_order(session, order_id))


# --- the store's POS ---------------------------------------------------------------------------

StoreCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$",
                                description="The code of a location of kind store")]
SearchValue = Annotated[str | None, Query(min_length=1, max_length=320)]


@router.get("/pos/stores/{store}/customers", response_model=PosCustomerCard, tags=["pos"])
def pos_find_customer(
    store: StoreCode, session: ReadSession, rules: Rules, _: ReadKey,
    phone: SearchValue = None, email: SearchValue = None,
    card: Annotated[str | None, Query(min_length=1, max_length=320, description="A loyalty card number")] = None,
) -> Any:
    """The customer at the till, by exactly one of phone (any format), email or loyalty card:
    who they are, the orders waiting for them at this store, their recent orders from every
    channel. Read-only: an unknown customer is a 404, not a new profile."""
    location = pos.store_by_code(session, store)
    return pos.find_customer(session, rules=rules, store=location, search={"phone": phone, "email": email, "card": card})


@router.get("/pos/stores/{store}/pickups", response_model=list[PosOrderRead], tags=["pos"])
def pos_pickups(
    store: StoreCode, session: ReadSession, rules: Rules, _: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Orders waiting for pickup at this store (ready first), with lines and customer."""
    return pos.pickups(session, rules=rules, store=pos.store_by_code(session, store), limit=limit)


@router.post("/pos/stores/{store}/pickups", response_model=OrderRead, tags=["pos"],
             responses=errors(409, notes={409: "`wrong_store`, or the order is not ready for pickup"}))
def pos_hand_over(store: StoreCode, body: PosHandover, request: Request, settings: AppSettings, _: WriteKey) -> Any:
    """Hand an order over by its pickup code. An order for another store is a 409 `wrong_store`,
    a wrong code a 422 `wrong_pickup_code`; either way nothing changes. Repeating a done
    handover returns the order."""

    def work(session: Session) -> dict[str, Any]:
        order = pos.hand_over(session, settings=settings, store=pos.store_by_code(session, store), data=body)
        return order_views.order_view(session, order)

    return get_database(request).run_write(work)


@router.post("/pos/stores/{store}/sales", response_model=OrderRead, status_code=201, tags=["pos"],
             responses=replayed(OrderRead))
def pos_sale(
    store: StoreCode, body: SaleCreate, request: Request, response: Response, settings: AppSettings, rules: Rules,
    _: WriteKey, idempotency_key: IdempotencyKey = None,
) -> Any:
    """Record a sale at the till: priced like every channel, linked to the customer's profile by
    their identifiers, sold from this store's stock not held for click & collect orders (409
    `insufficient_stock` otherwise). Keyed by the `Idempotency-Key` or else the receipt number:
    a retry returns the same sale (200) and sells nothing twice."""

    def work(session: Session) -> dict[str, Any]:
        placed = pos.record_sale(session, settings=settings, rules=rules, store=pos.store_by_code(session, store),
                                 data=body, idempotency_key=idempotency_key)
        if not placed.created:
            response.status_code = 200
        return order_views.placed_view(session, placed)

    return get_database(request).run_write(work)


@router.get("/pos/stores/{store}/stock/{sku}", response_model=PosStockRead, tags=["pos"])
def pos_stock(
    store: StoreCode, sku: CodePath, session: ReadSession, _: ReadKey,
    quantity: Annotated[int, Query(ge=1, le=100_000)] = 1, limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Any:
    """This store's stock of a SKU, and the other stores holding `quantity` of it, nearest first,
    with whether click & collect there is possible today."""
    return pos.stock_check(session, store=pos.store_by_code(session, store), sku=sku, quantity=quantity, limit=limit)


# --- promotions and coupons ---------------------------------------------------------------------


@router.put("/promotions/{code}", response_model=PromotionRead, tags=["promotions"])
def put_promotion(code: CodePath, body: PromotionPut, session: WriteSession, _: WriteKey) -> Any:
    """Create or replace a promotion (percent, fixed, buy X get Y). Safe to repeat."""
    return promotions.promotion_view(promotions.put_promotion(session, code=code, data=body))


@router.get("/promotions", response_model=list[PromotionRead], tags=["promotions"])
def list_promotions(session: ReadSession, _: ReadKey) -> Any:
    return [promotions.promotion_view(p) for p in promotions.list_promotions(session)]


@router.put("/coupons/{code}", response_model=CouponRead, tags=["promotions"])
def put_coupon(code: CouponPath, body: CouponPut, session: WriteSession, _: WriteKey) -> Any:
    """Create or change a coupon code of a promotion, with its usage limits. Codes are case-insensitive."""
    promotions.put_coupon(session, code=code, data=body)
    return promotions.coupon_view(session, code)


@router.get("/coupons/{code}", response_model=CouponRead, tags=["promotions"])
def get_coupon(code: CouponPath, session: ReadSession, _: ReadKey) -> Any:
    return promotions.coupon_view(session, code)


@router.post("/pricing/quote", response_model=QuoteRead, tags=["promotions"])
def quote(body: QuoteIn, session: ReadSession, settings: AppSettings, _: ReadKey) -> Any:
    """What these lines cost in this channel for this customer, with promotions and coupons:
    the same engine as carts, checkouts and the till. Nothing is reserved or redeemed."""
    customer_id = customers_service.get_profile(session, body.customer_id).id if body.customer_id else None
    priced = price_lines(session, settings=settings, channel=body.channel, quantities=quantities_of(body.lines),
                         customer_id=customer_id, coupons=body.coupons, points=body.points)
    return priced.view()


# --- carts ----------------------------------------------------------------------------------------

CustomerQuery = Annotated[int | None, query_id(description="The customer's cart")]
AnonymousQuery = Annotated[str | None, Query(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f\x7f]+$",
                                             description="Or the cart of a visitor not known yet")]
ChannelQuery = Annotated[str | None, Query(max_length=32, pattern=NAME_PATTERN,
                                           description="Price as this channel does (the same unless overrides are configured)")]
#: The channel a cart change is made in (its timeline entry records it).
ActingChannelQuery = Annotated[str, Query(min_length=1, max_length=32, pattern=NAME_PATTERN)]


def _cart_write(request: Request, settings: Settings, rules: IdentifierRules, customer_id: int | None,
                anonymous_id: str | None, channel: str | None, change) -> Any:  # noqa: ANN001
    """Apply `change(session, owner)` to the person's cart and answer the cart priced for `channel`."""

    def work(session: Session) -> dict[str, Any]:
        owner = carts.owner_of(session, rules=rules, customer_id=customer_id, anonymous_id=anonymous_id)
        change(session, owner)
        return carts.cart_view(session, settings=settings, owner=owner, channel=channel)

    return get_database(request).run_write(work)


@router.get("/carts/current", response_model=CartRead, tags=["carts"])
def get_cart(
    request: Request, settings: AppSettings, rules: Rules, _: ReadKey,
    customer_id: CustomerQuery = None, anonymous_id: AnonymousQuery = None, channel: ChannelQuery = None,
) -> Any:
    """The person's one cart, whatever channel filled it, priced now (current prices and
    promotions). A visitor's cart whose anonymous id has since been identified is the person's."""
    database = get_database(request)
    with database.read() as session:
        owner = carts.owner_of(session, rules=rules, customer_id=customer_id, anonymous_id=anonymous_id)
        if not carts.needs_merge(session, owner):
            return carts.cart_view(session, settings=settings, owner=owner, channel=channel)
    # A merge is due (the visitor was identified since): do it now, recorded in the reading channel.
    return _cart_write(request, settings, rules, customer_id, anonymous_id, channel,
                       lambda s, o: carts.merge_strays(s, o, channel=channel or "web"))


@router.put("/carts/current/lines/{sku}", response_model=CartRead, tags=["carts"],
            responses=errors(409, notes={409: "`insufficient_stock`"}))
def set_cart_line(
    sku: CodePath, body: CartLinePut, request: Request, settings: AppSettings, rules: Rules, _: WriteKey,
    customer_id: CustomerQuery = None, anonymous_id: AnonymousQuery = None,
) -> Any:
    """Set the quantity of a SKU in the cart (0 removes it); repeating it changes nothing."""
    return _cart_write(request, settings, rules, customer_id, anonymous_id, body.channel,
                       lambda s, o: carts.set_line(s, o, sku=sku, quantity=body.quantity, channel=body.channel))


@router.put("/carts/current/coupons/{code}", response_model=CartRead, tags=["carts"])
def add_cart_coupon(
    code: CouponPath, request: Request, settings: AppSettings, rules: Rules, _: WriteKey,
    channel: ActingChannelQuery,
    customer_id: CustomerQuery = None, anonymous_id: AnonymousQuery = None,
) -> Any:
    """Add a coupon; whether it applies is shown on every read (`rejected_coupons` says why not)."""
    return _cart_write(request, settings, rules, customer_id, anonymous_id, channel,
                       lambda s, o: carts.add_coupon(s, o, code=code, channel=channel))


@router.delete("/carts/current/coupons/{code}", response_model=CartRead, tags=["carts"])
def remove_cart_coupon(
    code: CouponPath, request: Request, settings: AppSettings, rules: Rules, _: WriteKey,
    channel: ActingChannelQuery,
    customer_id: CustomerQuery = None, anonymous_id: AnonymousQuery = None,
) -> Any:
    return _cart_write(request, settings, rules, customer_id, anonymous_id, channel,
                       lambda s, o: carts.remove_coupon(s, o, code=code, channel=channel))


@router.post("/carts/merge", response_model=CartRead, tags=["carts"])
def merge_carts(body: CartMergeIn, request: Request, settings: AppSettings, rules: Rules, _: WriteKey) -> Any:
    """Login: the visitor's anonymous id joins the person (as an `identify` would) and the
    visitor's cart merges into theirs now (rule: docs/commerce.md)."""

    def work(session: Session) -> dict[str, Any]:
        owner = carts.link_and_merge(
            session, rules=rules, anonymous_id=body.anonymous_id, customer_id=body.customer_id,
            identifiers=[(i.type, i.value) for i in body.identifiers], channel=body.channel,
        )
        return carts.cart_view(session, settings=settings, owner=owner, channel=body.channel)

    return get_database(request).run_write(work)


@router.post("/carts/current/checkout", response_model=OrderRead, status_code=201, tags=["carts"],
             responses={**replayed(OrderRead), **errors(409, notes={409: "`cart_empty`, or the stock or prices changed"})})
def checkout_cart(
    body: CartCheckoutIn, request: Request, response: Response, settings: AppSettings, rules: Rules, _: WriteKey,
    customer_id: CustomerQuery = None, anonymous_id: AnonymousQuery = None, idempotency_key: IdempotencyKey = None,
) -> Any:
    """Turn the cart into an order, in any channel (a store, the call center, the app...).
    Send an `Idempotency-Key`: a retry returns the same order."""

    def work(session: Session) -> dict[str, Any]:
        owner = carts.owner_of(session, rules=rules, customer_id=customer_id, anonymous_id=anonymous_id)
        placed = carts.checkout(session, settings=settings, rules=rules, owner=owner, data=body,
                                idempotency_key=idempotency_key)
        if not placed.created:
            response.status_code = 200
        return order_views.placed_view(session, placed)

    return get_database(request).run_write(work)


# --- payments and returns ------------------------------------------------------------------------

ProviderPath = Annotated[str, Path(min_length=1, max_length=32, pattern=NAME_PATTERN)]


@router.post("/orders/{order_id}/payments", response_model=PaymentsRead, tags=["payments"], responses=ORDER_STATE)
def start_payment(order_id: OrderId, body: OrderAction, request: Request, settings: AppSettings, _: WriteKey) -> Any:
    """Start the payment of an order waiting for it, through the order's provider: `test` pays
    at once; `webhook` answers with the `confirmation_url` to send the customer to, and the
    outcome arrives by webhook. Safe to repeat: an open or paid payment is returned, not a new one.
    A provider that cannot be reached is a 502 (try again; nothing is paid twice)."""
    database = get_database(request)
    payments.start_payment(database, settings=settings, order_id=order_id, channel=body.channel)
    with database.read() as session:
        return payments.payments_view(session, orders.get_order(session, order_id))


@router.get("/orders/{order_id}/payments", response_model=PaymentsRead, tags=["payments"])
def order_payments(order_id: OrderId, session: ReadSession, _: ReadKey) -> Any:
    """The order's payments, their ledger (authorizations, captures, refunds, failures) and refunds."""
    return payments.payments_view(session, orders.get_order(session, order_id))


@router.post("/payments/webhooks/{provider}", response_model=WebhookAck, tags=["payments"])
async def payment_webhook(provider: ProviderPath, request: Request, settings: AppSettings) -> Any:
    """A payment provider's notification. No API key: the provider's signature authenticates it
    (bad, missing or stale: 401, nothing changed). Each event is applied once; a redelivery
    answers `duplicate`."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > payments.MAX_WEBHOOK_BYTES:
            break
    event = payments.parse_webhook(settings, provider_name=provider, body=bytes(body), headers=request.headers)
    database = get_database(request)
    outcome = await run_in_threadpool(
        database.run_write, lambda session: payments.apply_webhook(session, provider_name=provider, event=event)
    )
    return {"status": outcome}


@router.post("/orders/{order_id}/returns", response_model=ReturnRead, status_code=201, tags=["returns"],
             responses={**replayed(ReturnRead), **ORDER_STATE})
def create_return(
    order_id: OrderId, body: ReturnCreate, request: Request, response: Response, settings: AppSettings, _: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Goods of a completed or shipped order came back, in any store or (by courier) at a
    warehouse: some lines, or everything left when `lines` is empty. The stock goes back at that
    location, the refund goes through the order's provider. Send an `Idempotency-Key`: a retry
    returns the same return (200) and changes nothing."""
    database = get_database(request)

    def work(session: Session) -> int:
        accepted = returns.accept_return(session, settings=settings, order_id=order_id, data=body,
                                         idempotency_key=idempotency_key)
        if not accepted.created:
            response.status_code = 200
        return accepted.record.id

    return_id = database.run_write(work)
    payments.send_requested_refunds(database, settings=settings, order_id=order_id)
    with database.read() as session:
        return returns.return_view(session, returns.get_return(session, order_id, return_id))


@router.get("/orders/{order_id}/returns", response_model=list[ReturnRead], tags=["returns"])
def order_returns(order_id: OrderId, session: ReadSession, _: ReadKey) -> Any:
    return returns.return_views(session, returns.returns_of_order(session, order_id))


_STOCK_FILE_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/xml": {"schema": {"type": "string", "description": "CommerceML 2 offers package (offers.xml)"}},
    },
}
ImportId = Annotated[int, path_id()]


@router.post("/stock/imports", response_model=StockImportRead, status_code=201, tags=["stock sync"],
             openapi_extra={"requestBody": _STOCK_FILE_BODY},
             responses={200: {"description": "The same content was applied before: nothing done (status unchanged)"},
                        **errors(415, 422, notes={
                            415: "a file that is neither CSV nor CommerceML XML",
                            422: "rejected: `import_rejected` (bad rows) or `malformed_file`, with the run and its "
                                 "report in `details`; nothing applied"})})
async def import_stock_file(
    request: Request, response: Response, settings: AppSettings, _: WriteKey,
    file_name: Annotated[str, Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f/\\]+$",
                                    description="Recorded with the run")] = "upload",
) -> Any:
    """Import a stock and price file from the accounting system: the raw body, `text/csv` or
    `application/xml` (1C CommerceML 2 offers). The whole file is checked first; any bad row
    rejects it (422, every problem listed) and nothing changes. Then, in one transaction, on
    hand is set through `sync` movements and list prices are updated. The same content again:
    200, status `unchanged`."""
    file_format, data = await read_upload(
        request, formats={"text/csv": "csv", "application/csv": "csv", "application/xml": "commerceml", "text/xml": "commerceml"},
        expected="text/csv or application/xml", limit=settings.commerce_sync_max_bytes)
    run = await run_in_threadpool(
        sync.import_data, get_database(request), settings=settings, data=data, file_name=file_name,
        format=file_format, source="http",
    )
    if run["status"] == "rejected":
        file_level = any(p.get("field") == "file" for p in run["report"]["problems"])
        raise sync.ImportRejected(
            f"{'Malformed file' if file_level else 'Rejected'}: {run['report']['problems_total']} problem(s), "
            "nothing applied", code="malformed_file" if file_level else "import_rejected", details={"run": run},
        )
    if run["status"] == "unchanged":
        response.status_code = 200
    return run


@router.get("/stock/imports/{import_id}", response_model=StockImportRead, tags=["stock sync"])
def get_stock_import(import_id: ImportId, session: ReadSession, _: ReadKey) -> Any:
    return sync.get_run(session, import_id)
