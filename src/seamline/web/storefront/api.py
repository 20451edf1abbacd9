"""The demo storefront's pages (see the package docstring for the pages and data-test names).

Each page is the shop's backend at work: it reads the visitor's cookies, calls the Seamline API
through `client.SeamlineClient` with the shop's server key, and renders HTML. The browser gets
the tracker (`/seamline.js`, initialised with the event source's write key) and the chat widget.

Cookies:
- `sl_aid`: the visitor's anonymous id, shared with the tracker (which reads the cookie first).
  Minted here on the first request (path `/`, 1 year, SameSite=Lax) so server and tracker agree.
- `shop_session_web` / `shop_session_app`: the login, one per look (two devices), HttpOnly,
  SameSite=Lax (so another site cannot post forms with it), signed with HMAC-SHA256 of
  `storefront_session_secret` (or a per-process random key): `{"cid", "type", "value"}`.
- `shop_lang`: ru or en, set by `?lang=`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from seamline.core.config import Settings
from seamline.core.schemas import MAX_ID
from seamline.customers import signing
from seamline.web import i18n
from seamline.web.storefront.client import ApiError, SeamlineClient

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_FILES = {"shop.css": "text/css; charset=utf-8", "shop.js": "application/javascript; charset=utf-8"}
#: URL prefix -> the channel its orders, carts and events are recorded in.
LOOKS = {"shop": "web", "app": "app"}
AID_COOKIE = "sl_aid"
LANG_COOKIE = "shop_lang"
YEAR = 365 * 24 * 3600
_AID_OK = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_NONCE_OK = re.compile(r"^[0-9a-f]{32}$")
_PROCESS_SECRET = secrets.token_bytes(32)

STATUS_TEXT = {
    "pending_payment": "Waiting for payment",
    "confirmed": "Accepted: we are preparing your order",
    "ready_for_pickup": "Ready: come and collect it",
    "shipped": "On its way to you",
    "completed": "Received. Thank you!",
    "cancelled": "Cancelled",
    "returned": "The order was returned",
}
FULFILMENT_TEXT = {"click_and_collect": "Click & collect", "pickup_point": "Pickup point", "delivery": "Delivery"}
#: The lists a recommendation can come from (the API's `reason` codes).
REC_REASONS = frozenset({"for_you", "popular_in_store", "popular", "bought_together", "similar"})
#: Channels whose messages may link to a product with `rec_channel` (the recommendation was shown there).
REC_CHANNELS = frozenset({"email", "sms", "telegram", "whatsapp", "vk", "viber", "webpush", "mobilepush", "webchat"})
#: Cards in one recommendation row; a link's `rec_pos` is 1 to REC_MAX_POSITION (the API's most).
REC_LIMIT, REC_MAX_POSITION = 6, 50
_CODE_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_NUMBER_OK = re.compile(r"^[0-9]{1,12}$")


@lru_cache(maxsize=None)
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)
    return env


def _json_for_script(value: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no `<`, `>` or `&` to end the element."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


# --- the signed login cookie ---------------------------------------------------------------------


def _secret(settings: Settings) -> bytes:
    return settings.storefront_session_secret.encode() if settings.storefront_session_secret else _PROCESS_SECRET


def sign(payload: dict[str, Any], settings: Settings) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(_secret(settings), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def unsign(value: str | None, settings: Settings) -> dict[str, Any] | None:
    if not value or "." not in value or len(value) > 4000:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, hmac.new(_secret(settings), body.encode(), hashlib.sha256).hexdigest()):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("cid"), int) else None


# --- one page request ------------------------------------------------------------------------------


class NotConfigured(Exception):
    pass


class Shop:
    """What a page handler needs: the look, language, visitor, login, the API, and the cookies
    to set on the way out."""

    api: SeamlineClient

    def __init__(self, request: Request, look: str):
        self.request = request
        self.settings: Settings = request.app.state.settings
        if not self.settings.storefront_api_key or not self.settings.storefront_write_key:
            raise NotConfigured
        self.look, self.channel = look, LOOKS[look]
        # The browser's events are recorded in the channel of the source whose write key sent them:
        # the app look has its own source (channel "app") when configured.
        self.write_key = (self.settings.storefront_app_write_key if look == "app" else None) or self.settings.storefront_write_key
        self.cookies: dict[str, tuple[str | None, dict[str, Any]]] = {}
        chosen = request.query_params.get("lang")
        self.lang = i18n.pick_locale(chosen, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
        if chosen and chosen == self.lang:
            self.set_cookie(LANG_COOKIE, self.lang, max_age=YEAR, httponly=False)
        aid = request.cookies.get(AID_COOKIE) or ""
        if not _AID_OK.match(aid):
            aid = str(uuid.uuid4())
            self.set_cookie(AID_COOKIE, aid, max_age=YEAR, httponly=False)
        self.aid = aid
        self.session_cookie = f"shop_session_{self.channel}"
        self.session = unsign(request.cookies.get(self.session_cookie), self.settings)
        self.fmt = i18n.Formats(self.lang, region=self.settings.default_region)
        self.tracking: list[list[Any]] = []
        self.reset_tracker = False

    # cookies
    def set_cookie(self, name: str, value: str | None, *, max_age: int | None = None, httponly: bool = True) -> None:
        self.cookies[name] = (value, {"max_age": max_age, "httponly": httponly})

    def login(self, customer_id: int, identifier_type: str, value: str, user_id: str | None) -> None:
        self.session = {"cid": customer_id, "type": identifier_type, "value": value, "uid": user_id, "new": True}
        self.set_cookie(self.session_cookie, sign(self.session, self.settings), max_age=30 * 24 * 3600)

    def logout(self) -> None:
        self.session = None
        self.set_cookie(self.session_cookie, None)
        self.aid = str(uuid.uuid4())  # a new visitor on this device, as the tracker's reset() does
        self.set_cookie(AID_COOKIE, self.aid, max_age=YEAR, httponly=False)
        self.reset_tracker = True

    def finish(self, response: Response) -> Response:
        secure = self.request.url.scheme == "https"
        for name, (value, options) in self.cookies.items():
            if value is None:
                response.delete_cookie(name, path="/", samesite="lax", secure=secure)
            else:
                response.set_cookie(name, value, path="/", samesite="lax", secure=secure, **options)
        return response

    # who the cart belongs to
    @property
    def customer_id(self) -> int | None:
        return self.session["cid"] if self.session else None

    @property
    def owner(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id} if self.session else {"anonymous_id": self.aid}

    # urls and text
    def url(self, path: str = "/", **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"/{self.look}{path}" + (f"?{query}" if query else "")

    def _(self, message: str, **values: Any) -> str:
        return i18n.gettext(self.lang, message, **values)

    def name(self, thing: dict[str, Any] | None) -> str:
        if not thing:
            return ""
        return thing.get(f"name_{self.lang}") or thing.get("name_ru") or thing.get("name_en") or thing.get("code", "")

    def major(self, minor: int, currency: str) -> float:
        return minor / 10 ** get_currency_precision(currency)

    def track(self, event: str, properties: dict[str, Any]) -> None:
        self.tracking.append(["track", event, properties])

    # responses
    def redirect(self, path: str, **params: Any) -> Response:
        return RedirectResponse(self.url(path, **params), status_code=303)

    async def render(self, template: str, status: int = 200, *, cart: dict[str, Any] | None = None,
                     **context: Any) -> Response:
        if cart is None:
            try:
                cart = await self.api.cart(self.owner, self.channel)
            except ApiError:
                cart = {"lines": []}
        calls = list(self.tracking)
        user_hash = None
        secret = self.settings.inbox_webchat_identity_secret.get_secret_value()
        if self.session and self.session.get("uid") and secret:
            user_hash = signing.user_hash(secret, self.session["uid"])
        if self.session and self.session.get("new"):
            traits = {self.session["type"]: self.session["value"]}
            calls.insert(0, ["identify", self.session.get("uid"), traits, *([{"userHash": user_hash}] if user_hash else [])])
            self.session = {k: v for k, v in self.session.items() if k != "new"}
            self.set_cookie(self.session_cookie, sign(self.session, self.settings), max_age=30 * 24 * 3600)
        tracking = {"writeKey": self.write_key, "calls": calls, "reset": self.reset_tracker,
                    "anonymousId": self.aid, "page": {"channel": self.channel}}
        alternate = "app" if self.look == "shop" else "shop"
        values = {
            "shop": self, "cart": cart, "look": self.look, "lang": self.lang, "fmt": self.fmt, "session": self.session,
            "cart_count": sum(line["quantity"] for line in cart.get("lines", [])),
            "asset_base": (self.settings.storefront_api_url or "").rstrip("/"),
            "write_key": self.write_key, "user_hash": user_hash,
            "tracking_json": _json_for_script(tracking), "path": self.request.url.path,
            "other_lang": "en" if self.lang == "ru" else "ru",
            "alternate_url": f"/{alternate}{self.request.url.path[len(self.look) + 1:]}",
            **context,
        }
        html = environment(self.lang).get_template(template).render(**values)
        return HTMLResponse(html, status_code=status)

    async def error_page(self, message: str, status: int) -> Response:
        return await self.render("error.html", status=status, error=message)


Handler = Callable[[Shop], Awaitable[Response]]


def page(path: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[Handler], Handler]:
    """Register a page under both looks; errors become readable pages, never a stack trace."""

    def register(handler: Handler) -> Handler:
        for look in LOOKS:
            endpoint = _endpoint(handler, look)
            router.add_api_route(f"/{look}{path}", endpoint, methods=list(methods), include_in_schema=False)
        return handler

    return register


def _endpoint(handler: Handler, look: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            shop = Shop(request, look)
        except NotConfigured:
            return not_configured(request)
        async with SeamlineClient(shop.settings, request.app) as api:
            shop.api = api
            try:
                response = await handler(shop)
            except ApiError as exc:
                status = exc.status if 400 <= exc.status < 600 else 502
                response = await shop.error_page(exc.message or exc.code, status)
            except Exception:  # a bug: logged with its traceback, the visitor sees a plain message
                log.exception("storefront page %s failed", request.url.path)
                response = await shop.error_page(shop._("Something went wrong. Please try again."), 500)
        return shop.finish(response)

    endpoint.__name__ = f"storefront_{look}_{handler.__name__}"
    return endpoint


def not_configured(request: Request) -> Response:
    lang = i18n.pick_locale(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                            request.headers.get("accept-language"))
    html = environment(lang).get_template("not_configured.html").render(lang=lang)
    return HTMLResponse(html, status_code=503)


@router.get("/shop", include_in_schema=False)
@router.get("/app", include_in_schema=False)
async def to_home(request: Request) -> Response:
    return RedirectResponse(f"{request.url.path}/", status_code=307)


@router.get("/shop/sw.js", include_in_schema=False)
@router.get("/app/sw.js", include_in_schema=False)
async def service_worker(request: Request) -> Response:
    """The service worker that shows the shop's web push notifications, served from the look's
    own folder so that its scope covers the look's pages."""
    look = request.url.path.split("/")[1]
    return FileResponse(STATIC / "sw.js", media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": f"/{look}/"})


@router.get("/shop-static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "public, max-age=300"})


# --- helpers ---------------------------------------------------------------------------------------


async def _form(shop: Shop) -> dict[str, str]:
    form = await shop.request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _int(value: str | None, default: int = 0, low: int = 0, high: int = 100_000) -> int:
    try:
        number = int((value or "").strip())
    except ValueError:
        return default
    return max(low, min(high, number))


def _availability(shop: Shop, stock_rows: list[dict[str, Any]], locations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per SKU: stores and pickup points holding it (name, available), and what warehouses hold."""
    places, warehouse = [], 0
    for row in stock_rows:
        location = locations.get(row["location"])
        if location is None:
            continue
        if location["kind"] == "warehouse":
            warehouse += max(0, row["available"])
        else:
            places.append({"code": row["location"], "name": shop.name(location), "kind": location["kind"],
                           "address": location.get("address", ""), "available": max(0, row["available"]),
                           "pickup": location.get("pickup_enabled", False)})
    places.sort(key=lambda p: (-p["available"], p["name"]))
    return {"places": places, "warehouse": warehouse,
            "total": warehouse + sum(p["available"] for p in places)}


def _variant_price(variant: dict[str, Any]) -> int | None:
    price = variant.get("price")
    return price["amount"] if price else None


def _product_summary(shop: Shop, product: dict[str, Any], stock: dict[str, list[dict[str, Any]]],
                     locations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    variants = [v for v in product["variants"] if v.get("active", True) and v.get("price")]
    prices = [_variant_price(v) for v in variants]
    stores: dict[str, dict[str, Any]] = {}
    warehouse = 0
    for variant in variants:
        found = _availability(shop, stock.get(variant["sku"], []), locations)
        warehouse += found["warehouse"]
        for place in found["places"]:
            entry = stores.setdefault(place["code"], {**place, "available": 0})
            entry["available"] += place["available"]
    places = sorted(stores.values(), key=lambda p: (-p["available"], p["name"]))
    currency = variants[0]["price"]["currency"] if variants else shop.settings.commerce_currency
    return {
        "code": product["code"], "name": shop.name(product), "image": (product.get("image_urls") or [None])[0],
        "price": min(prices) if prices else None, "several_prices": len(set(prices)) > 1, "currency": currency,
        "places": places, "warehouse": warehouse,
        "in_stock": warehouse + sum(p["available"] for p in places) > 0, "sellable": bool(variants),
    }


def _line_properties(shop: Shop, line: dict[str, Any], currency: str) -> dict[str, Any]:
    return {"sku": line["sku"], "product_id": line["sku"], "name": line["name"], "quantity": line["quantity"],
            "price": shop.major(line["unit_price"], currency), "currency": currency}


def _safe_next(shop: Shop, target: str | None) -> str | None:
    prefix = f"/{shop.look}/"
    if target and target.startswith(prefix) and "//" not in target and "\\" not in target and "\n" not in target:
        return target
    return None


def _identifier_of(raw: str) -> tuple[str, str]:
    raw = raw.strip()
    return ("email", raw) if "@" in raw else ("phone", raw)


def _login_redirect(shop: Shop, target: str) -> Response:
    return RedirectResponse(shop.url("/login", next=target), status_code=303)


async def _recommended(shop: Shop, call: Awaitable[Any], what: str, *, skip: Collection[str] = (),
                       limit: int = REC_LIMIT) -> dict[str, Any] | None:
    """A recommendation row: {"reason" (of the first card), "cards"}, or None when there is nothing
    to show (no model trained yet gives an empty list). The row only decorates the page: when the
    API errs (a refusal, a bad answer, an unreachable server) it is left out with a warning,
    never an error page."""
    try:
        found = await call
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the page renders without the row
        log.warning("storefront: %s recommendations left out (%s)", what, exc)
        return None
    items = found.get("items") if isinstance(found, dict) else None
    cards: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("reason") not in REC_REASONS:
            continue
        code = item.get("code")
        if not isinstance(code, str) or not _CODE_OK.match(code) or code in skip:
            continue
        version = item.get("model_version")
        price = item.get("price") if isinstance(item.get("price"), dict) else None
        cards.append({
            "code": code, "name": shop.name(item), "image": item.get("image"), "reason": item["reason"],
            "price": price.get("amount") if price else None, "currency": price.get("currency") if price else None,
            "href": shop.url(f"/p/{code}", rec=item["reason"], rec_pos=len(cards) + 1,
                             rec_v=version if isinstance(version, int) else None),
        })
        if len(cards) == limit:
            break
    return {"reason": cards[0]["reason"], "cards": cards} if cards else None


def _number(value: str | None, high: int) -> int | None:
    """A positive whole number from a query parameter, None when it is not one (or too big)."""
    if value is None or not _NUMBER_OK.match(value):
        return None
    number = int(value)
    return number if 0 < number <= high else None


def _rec_reason(value: str | None) -> str | None:
    return value if value in REC_REASONS else None


def _rec_click(shop: Shop) -> dict[str, Any] | None:
    """What a product page opened from a recommendation link says about it (`rec`, `rec_pos`,
    `rec_v`, `rec_channel`); None without a valid `rec`. Bad position or version are left out, a
    bad channel is the look's own."""
    query = shop.request.query_params
    reason = _rec_reason(query.get("rec"))
    if reason is None:
        return None
    click: dict[str, Any] = {"list_id": "recommendations", "recommendation": reason}
    position, version = _number(query.get("rec_pos"), REC_MAX_POSITION), _number(query.get("rec_v"), MAX_ID)
    if position is not None:
        click["position"] = position
    if version is not None:
        click["model_version"] = version
    channel = query.get("rec_channel")
    click["shown_in"] = channel if channel in REC_CHANNELS else shop.channel
    return click


# --- pages --------------------------------------------------------------------------------------


@page("/")
async def catalog(shop: Shop) -> Response:
    products = await shop.api.products(shop.channel)
    skus = [v["sku"] for p in products for v in p["variants"] if v.get("active", True)]
    stock, locations = await shop.api.stock_many(skus), await shop.api.locations()
    items = [_product_summary(shop, p, stock, locations) for p in products]
    if shop.request.query_params.get("logged_out"):
        shop.reset_tracker = True
    # "For you" for a logged-in person (their usual store is the API's); else what sells.
    if shop.session:
        recs = await _recommended(shop, shop.api.recommendations_for_person(shop.customer_id), "person")
    else:
        recs = await _recommended(shop, shop.api.popular(), "popular")
    return await shop.render("catalog.html", items=[i for i in items if i["sellable"]], recs=recs)


@page("/p/{code}", methods=("GET", "POST"))
async def product_page(shop: Shop) -> Response:
    code = shop.request.path_params["code"]
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", code):
        return await shop.error_page(shop._("No such product."), 404)
    product = await shop.api.product(code, shop.channel)
    variants = [v for v in product["variants"] if v.get("active", True) and v.get("price")]
    if not product.get("active", True) or not variants:
        return await shop.error_page(shop._("This product is not sold at the moment."), 404)
    error, status, chosen, quantity = None, 200, variants[0]["sku"], 1
    click = _rec_click(shop) if shop.request.method == "GET" else None
    rec = click["recommendation"] if click else None  # kept through the add-to-cart post (Product Added)
    if shop.request.method == "POST":
        form = await _form(shop)
        chosen = form.get("sku") if form.get("sku") in {v["sku"] for v in variants} else chosen
        quantity = _int(form.get("quantity"), 1, 1, 999)
        rec = _rec_reason(form.get("rec"))
        try:
            cart = await shop.api.cart(shop.owner, shop.channel)
            already = next((line["quantity"] for line in cart["lines"] if line["sku"] == chosen), 0)
            await shop.api.set_line(shop.owner, chosen, already + quantity, shop.channel)
            return shop.redirect("/cart", added=chosen, qty=quantity, rec=rec)
        except ApiError as exc:
            error, status = _stock_message(shop, exc), exc.status
    stock, locations = await shop.api.stock_many([v["sku"] for v in variants]), await shop.api.locations()
    # Recommendation rows (no store is chosen on this page: the API's stock rule alone); "similar"
    # leaves out what "bought together" shows.
    together = await _recommended(shop, shop.api.recommendations_for_product(code, "bought_together"), "bought_together")
    shown = {card["code"] for card in together["cards"]} if together else set()
    similar = await _recommended(shop, shop.api.recommendations_for_product(code, "similar", limit=2 * REC_LIMIT),
                                 "similar", skip=shown)
    # What the cart's promotions do for each SKU (the engine's answer, not worked out here).
    offers = await shop.api.product_promotions(code, shop.channel, shop.customer_id)
    rows = [{"sku": v["sku"], "name": shop.name(v) or v["sku"], "price": v["price"]["amount"],
             "currency": v["price"]["currency"], **_availability(shop, stock.get(v["sku"], []), locations),
             "price_now": offers.get(v["sku"], {}).get("price_now", v["price"]["amount"]),
             "promotions": offers.get(v["sku"], {}).get("promotions", [])}
            for v in variants]
    first = rows[0]
    if click is not None:
        shop.track("Product Clicked", {"product_id": product["code"], "sku": first["sku"], **click})
    if shop.request.method == "GET":
        shop.track("Product Viewed", {"product_id": product["code"], "sku": first["sku"], "name": shop.name(product),
                                      "category": product.get("category"),
                                      "price": shop.major(first["price"], first["currency"]), "currency": first["currency"]})
    description = product.get(f"description_{shop.lang}") or product.get("description_ru") or ""
    return await shop.render("product.html", status, product=product, name=shop.name(product), description=description,
                             variants=rows, chosen=chosen, quantity=quantity, error=error,
                             image=(product.get("image_urls") or [None])[0], rec=rec, together=together,
                             similar=similar)


def _stock_message(shop: Shop, exc: ApiError) -> str:
    if exc.code == "insufficient_stock":
        short = exc.details.get("shortages") or exc.details.get("lines") or []
        available = [s.get("available") for s in short if isinstance(s, dict) and s.get("available") is not None]
        if available:
            return shop._("Not enough in stock: only %(n)s available.", n=min(available))
        return shop._("Not enough in stock.")
    return exc.message


@page("/cart", methods=("GET", "POST"))
async def cart_page(shop: Shop) -> Response:
    error, status = None, 200
    if shop.request.method == "POST":
        form = await _form(shop)
        sku = form.get("sku", "")
        if re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", sku):
            try:
                await shop.api.set_line(shop.owner, sku, _int(form.get("quantity"), 1, 0, 999), shop.channel)
                return shop.redirect("/cart")
            except ApiError as exc:
                error, status = _stock_message(shop, exc), exc.status
    cart = await shop.api.cart(shop.owner, shop.channel)
    added = shop.request.query_params.get("added")
    if added and shop.request.method == "GET":
        line = next((line for line in cart["lines"] if line["sku"] == added), None)
        if line is not None:
            props = _line_properties(shop, line, cart["currency"])
            props["quantity"] = _int(shop.request.query_params.get("qty"), 1, 1, 999)
            reason = _rec_reason(shop.request.query_params.get("rec"))
            shop.track("Product Added", {**props, "cart_id": cart.get("id"), **({"recommendation": reason} if reason else {})})
    recs = None
    if cart["lines"]:
        recs = await _recommended(shop, shop.api.recommendations_for_cart([line["sku"] for line in cart["lines"]]), "cart")
    return await shop.render("cart.html", status, cart=cart, error=error, recs=recs)


@page("/login", methods=("GET", "POST"))
async def login_page(shop: Shop) -> Response:
    target = _safe_next(shop, shop.request.query_params.get("next")) or shop.url("/account")
    if shop.request.method == "GET":
        if shop.session:
            return RedirectResponse(target, status_code=303)
        return await shop.render("login.html", step="identifier", identifier="", next=target, error=None, sent=None)
    form = await _form(shop)
    target = _safe_next(shop, form.get("next")) or target
    raw = form.get("identifier", "")[:320]
    identifier_type, value = _identifier_of(raw)
    if form.get("action") == "verify":
        code = "".join(form.get("code", "").split())[:16]
        try:
            result = await shop.api.verify_login_code(identifier_type, value, code, anonymous_id=shop.aid,
                                                      channel=shop.channel)
        except ApiError as exc:
            if exc.code == "code_expired":
                return await shop.render("login.html", 422, step="identifier", identifier=raw, next=target,
                                         error=exc.message, sent=None)
            return await shop.render("login.html", 422, step="code", identifier=raw, next=target,
                                     error=exc.message, sent=None)
        customer_id = result["customer_id"]
        await shop.api.merge_carts(anonymous_id=shop.aid, customer_id=customer_id, channel=shop.channel)
        customer = await shop.api.customer(customer_id)
        user_ids = [i["value"] for i in customer.get("sections", {}).get("identities", []) if i.get("type") == "user_id"]
        normalized = next((i["value"] for i in customer.get("sections", {}).get("identities", [])
                           if i.get("type") == identifier_type and _same(identifier_type, i["value"], value)), value)
        shop.login(customer["id"], identifier_type, normalized, user_ids[0] if user_ids else None)
        return RedirectResponse(target, status_code=303)
    if not raw.strip():
        return await shop.render("login.html", 422, step="identifier", identifier=raw, next=target,
                                 error=shop._("Enter your phone number or email."), sent=None)
    try:
        sent = await shop.api.request_login_code(identifier_type, value)
    except ApiError as exc:
        return await shop.render("login.html", exc.status, step="identifier", identifier=raw, next=target,
                                 error=exc.message, sent=None)
    return await shop.render("login.html", step="code", identifier=raw, next=target, error=None, sent=sent)


def _same(identifier_type: str, stored: str, typed: str) -> bool:
    if identifier_type == "email":
        return stored == typed.strip().lower()
    digits = re.sub(r"\D", "", typed)
    return stored.endswith(digits[-10:]) if len(digits) >= 10 else False


@page("/logout", methods=("GET", "POST"))
async def logout_page(shop: Shop) -> Response:
    shop.logout()
    return shop.redirect("/", logged_out=1)


async def _checkout_context(shop: Shop, cart: dict[str, Any]) -> dict[str, Any]:
    locations = await shop.api.locations()
    stock = await shop.api.stock_many([line["sku"] for line in cart["lines"]])
    wanted = {line["sku"]: line["quantity"] for line in cart["lines"]}
    stores, points_of_pickup = [], []
    for code, location in locations.items():
        if not location.get("pickup_enabled") or location["kind"] == "warehouse":
            continue
        have = {row["sku"]: 0 for row in cart["lines"]}
        for sku in wanted:
            for row in stock.get(sku, []):
                if row["location"] == code:
                    have[sku] = max(0, row["available"])
        ready = sum(1 for sku, quantity in wanted.items() if have[sku] >= quantity)
        entry = {"code": code, "name": shop.name(location), "address": location.get("address", ""),
                 "ready": ready, "lines": len(wanted), "all": ready == len(wanted), "have": have}
        (stores if location["kind"] == "store" else points_of_pickup).append(entry)
    stores.sort(key=lambda s: (not s["all"], -s["ready"], s["name"]))
    points_of_pickup.sort(key=lambda s: (not s["all"], s["name"]))
    account = await shop.api.loyalty_account(shop.customer_id)
    program = await shop.api.loyalty_program()
    balance = account["points"] if account else 0
    cap = cart["total"] * program.get("max_redeem_percent", 0) // 100 // max(1, program.get("point_value", 100))
    return {"stores": stores, "pickup_points": points_of_pickup, "balance": balance, "max_points": max(0, min(balance, cap)),
            "point_value": program.get("point_value", 100),
            "payment_methods": shop.settings.commerce_payment_methods}


@page("/checkout", methods=("GET", "POST"))
async def checkout_page(shop: Shop) -> Response:
    if not shop.session:
        return _login_redirect(shop, shop.url("/checkout"))
    cart = await shop.api.cart(shop.owner, shop.channel)
    form = await _form(shop) if shop.request.method == "POST" else {}
    nonce = form.get("nonce") if _NONCE_OK.match(form.get("nonce", "")) else uuid.uuid4().hex
    choice = {"fulfilment": form.get("fulfilment", "click_and_collect"), "store": form.get("store", ""),
              "pickup_point": form.get("pickup_point", ""), "city": form.get("city", ""),
              "street": form.get("street", ""), "flat": form.get("flat", ""), "points": form.get("points", "0"),
              "payment": form.get("payment", "card")}
    error, status = None, 200
    if shop.request.method == "POST":
        kind = choice["fulfilment"] if choice["fulfilment"] in FULFILMENT_TEXT else "click_and_collect"
        fulfilment: dict[str, Any] = {"kind": kind}
        if kind == "click_and_collect":
            fulfilment["location"] = choice["store"] or None
        elif kind == "pickup_point":
            fulfilment["location"] = choice["pickup_point"] or None
        else:
            address = {k: choice[k].strip()[:200] for k in ("city", "street", "flat") if choice[k].strip()}
            fulfilment["address"] = address or None
        method = "test" if choice["payment"] == "card" else "on_pickup"
        body = {"channel": shop.channel, "fulfilment": fulfilment, "payment_method": method,
                "points": _int(choice["points"], 0, 0, 10**9)}
        try:
            order = await shop.api.checkout(shop.customer_id, body, f"storefront-{shop.channel}-{shop.customer_id}-{nonce}")
        except ApiError as exc:
            error, status = _checkout_message(shop, exc), exc.status
        else:
            params: dict[str, Any] = {"placed": 1}
            if method == "test" and order["status"] == "pending_payment":
                try:
                    await shop.api.pay(order["id"], shop.channel)
                except ApiError:
                    params["pay_error"] = 1
            return shop.redirect(f"/orders/{order['id']}", **params)
    if not cart["lines"]:
        if shop.request.method == "GET":
            return shop.redirect("/cart")
    context = await _checkout_context(shop, cart)
    if shop.request.method == "GET":
        shop.track("Checkout Started", {"value": shop.major(cart["total"], cart["currency"]), "revenue":
                                        shop.major(cart["total"], cart["currency"]), "currency": cart["currency"],
                                        "products": [_line_properties(shop, line, cart["currency"]) for line in cart["lines"]]})
    return await shop.render("checkout.html", status, cart=cart, nonce=nonce, choice=choice, error=error, **context)


def _checkout_message(shop: Shop, exc: ApiError) -> str:
    if exc.code == "insufficient_stock":
        return shop._("Some items are not available in the chosen place in that quantity. Choose another store or change the cart.")
    if exc.code == "points_over_cap":
        return shop._("Too many points: at most %(n)s can be spent on this order.", n=exc.details.get("max_points", 0))
    if exc.code == "location_required":
        return shop._("Choose the store or pickup point.")
    if exc.code == "address_required":
        return shop._("Enter the delivery address.")
    return exc.message


async def _own_order(shop: Shop, order_id: int) -> dict[str, Any] | None:
    order = await shop.api.order(order_id)
    if order.get("customer_id") == shop.customer_id:
        return order
    if order.get("customer_id") is None:
        return None
    owner = await shop.api.customer(order["customer_id"])
    me = await shop.api.customer(shop.customer_id)
    return order if owner["id"] == me["id"] else None


@page("/orders/{order_id}", methods=("GET", "POST"))
async def order_page(shop: Shop) -> Response:
    if not shop.session:
        return _login_redirect(shop, shop.request.url.path)
    raw = shop.request.path_params["order_id"]
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        return await shop.error_page(shop._("No such order."), 404)
    try:
        order = await _own_order(shop, int(raw))
    except ApiError as exc:
        if exc.status != 404:
            raise
        order = None
    if order is None:
        return await shop.error_page(shop._("No such order."), 404)
    error = None
    if shop.request.method == "POST":
        try:
            await shop.api.pay(order["id"], shop.channel)
            return shop.redirect(f"/orders/{order['id']}")
        except ApiError as exc:
            error = exc.message
    elif shop.request.query_params.get("pay_error"):
        error = shop._("The payment did not go through. Try again.")
    locations = await shop.api.locations()
    pickup = locations.get(order.get("pickup_location") or "")
    points = sum(p.get("points") or 0 for p in order.get("promotions", []) if p.get("code") == "LOYALTY_POINTS")
    if shop.request.query_params.get("placed") and shop.request.method == "GET":
        currency = order["currency"]
        shop.track("Order Completed", {
            "order_id": str(order["id"]), "total": shop.major(order["total"], currency),
            "revenue": shop.major(order["total"], currency), "discount": shop.major(order["discount"], currency),
            "currency": currency, "products": [_line_properties(shop, line, currency) for line in order["lines"]],
        })
    return await shop.render("order.html", order=order, pickup=pickup, points=points, error=error,
                             push_key=await shop.api.vapid_public_key(),
                             status_text=shop._(STATUS_TEXT.get(order["status"], order["status"])),
                             fulfilment_text=shop._(FULFILMENT_TEXT.get(order["fulfilment"], order["fulfilment"])))


@page("/account")
async def account_page(shop: Shop) -> Response:
    if not shop.session:
        return _login_redirect(shop, shop.url("/account"))
    customer = await shop.api.customer(shop.customer_id)
    account = await shop.api.loyalty_account(customer["id"])
    cards = [c for c in (account or {}).get("cards", []) if c.get("status") == "active"]
    orders = customer.get("sections", {}).get("orders", [])
    return await shop.render("account.html", customer=customer, account=account, card=cards[0] if cards else None,
                             orders=orders, status_texts={k: shop._(v) for k, v in STATUS_TEXT.items()},
                             push_key=await shop.api.vapid_public_key())


# --- push notifications: the "Notify me" control ----------------------------------------------------
# The browser subscribes (web push) or the app's native shell hands over its FCM token (mobile
# push); the shop's backend registers it with its server key for the customer of the signed
# login cookie. Nothing the page sends says whose it is. The cookie is SameSite=Lax, as for the
# shop's forms, and these JSON posts must also come from the shop's own origin.


async def _push_body(shop: Shop) -> dict[str, Any] | Response:
    """The posted JSON object, or the refusal: 401 without a login, 403 from another origin."""
    if not shop.session:
        return JSONResponse({"error": {"code": "login_required", "message": shop._("Log in first.")}}, status_code=401)
    origin, host = shop.request.headers.get("origin", ""), shop.request.headers.get("host", "")
    if not origin or not host or urlsplit(origin).netloc != host:
        return JSONResponse({"error": {"code": "cross_site_request", "message": "Not from this shop's pages"}}, status_code=403)
    if shop.request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"error": {"code": "unsupported_media_type", "message": "JSON only"}}, status_code=415)
    try:
        body = json.loads(await shop.request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": {"code": "validation_error", "message": "A JSON object"}}, status_code=422)
    return body


async def _registered(call: Awaitable[dict[str, Any]], shop: Shop, offers_channel: str | bool) -> Response:
    """The registration's answer; with the customer's tick on "also offers", their marketing
    consent on that push channel (the browser's permission alone is for their orders)."""
    try:
        row = await call
        if offers_channel:
            await shop.api.grant_marketing(shop.customer_id, offers_channel)
    except ApiError as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)
    return JSONResponse({"id": row["id"]})


@page("/push/subscription", methods=("POST",))
async def push_subscription(shop: Shop) -> Response:
    """The browser's `PushSubscription.toJSON()`, for the logged-in customer."""
    body = await _push_body(shop)
    if isinstance(body, Response):
        return body
    offers = body.pop("offers", False) is True
    user_agent = re.sub(r"[\x00-\x1f\x7f]", "", shop.request.headers.get("user-agent", ""))[:500] or None
    return await _registered(shop.api.register_web_push(shop.customer_id, body, user_agent), shop, offers and "web_push")


@page("/push/device", methods=("POST",))
async def push_device(shop: Shop) -> Response:
    """The app's FCM token (`{"token", "platform"}` from the native shell), for the logged-in customer."""
    body = await _push_body(shop)
    if isinstance(body, Response):
        return body
    offers = body.pop("offers", False) is True
    token, platform = body.get("token"), body.get("platform")
    if not isinstance(token, str) or not isinstance(platform, str) or set(body) - {"token", "platform"}:
        return JSONResponse({"error": {"code": "validation_error", "message": "token and platform"}}, status_code=422)
    return await _registered(shop.api.register_device(shop.customer_id, token, platform), shop, offers and "push")

