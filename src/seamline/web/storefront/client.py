"""The storefront's Seamline API client: what a retailer's shop backend would hold.

It speaks only the public HTTP API, with the shop's server API key. By default the requests go
in-process to the same application (`httpx.ASGITransport`, no socket); with
`storefront_api_url` they go over the network to that Seamline server. Errors come back as
`ApiError` carrying the API's JSON error (`code`, `message`, `details`), which the pages show.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from seamline.core.config import Settings

TIMEOUT = 15.0


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class SeamlineClient:
    """One per page request (cheap: in-process it is a function call through ASGI)."""

    def __init__(self, settings: Settings, app: Any = None):
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.storefront_api_key}", "User-Agent": "seamline-storefront"}
        if settings.storefront_api_url:
            self.http = httpx.AsyncClient(base_url=settings.storefront_api_url.rstrip("/"), headers=headers, timeout=TIMEOUT)
        else:
            self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://seamline",
                                          headers=headers, timeout=TIMEOUT)

    async def __aenter__(self) -> SeamlineClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Any:
        try:
            response = await self.http.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(503, "api_unreachable", f"The shop cannot reach Seamline now ({type(exc).__name__})") from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise ApiError(response.status_code, error.get("code", "error"), error.get("message", ""),
                               error.get("details") or {})
            except (ValueError, KeyError, TypeError):
                raise ApiError(response.status_code, "http_error", response.text[:200] or response.reason_phrase) from None
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- catalog and stock -------------------------------------------------------------------

    async def product(self, code: str, channel: str) -> dict[str, Any]:
        return await self.call("GET", f"/v1/catalog/products/{code}", params={"channel": channel})

    async def product_promotions(self, code: str, channel: str, customer_id: int | None) -> dict[str, dict[str, Any]]:
        """{sku: what the promotions do for it} (GET /v1/catalog/products/{code}/promotions): the
        price, one unit after promotions, the promotions that can apply. Empty when the server
        cannot say (an older Seamline): the page then shows plain prices."""
        params: dict[str, Any] = {"channel": channel, **({"customer_id": customer_id} if customer_id else {})}
        try:
            found = await self.call("GET", f"/v1/catalog/products/{code}/promotions", params=params)
        except ApiError as exc:
            if customer_id and exc.code in ("customer_not_found", "customer_erased"):
                return await self.product_promotions(code, channel, None)  # what anyone gets
            return {}  # promotions only decorate the page: it shows plain prices
        return {v["sku"]: v for v in found["variants"]}

    async def products(self, channel: str) -> list[dict[str, Any]]:
        """The catalog page's products: `storefront_products` in order; without it, a listing
        endpoint if the server has one. Unknown or inactive products are left out."""
        codes = list(self.settings.storefront_products)
        if not codes:
            try:
                listed = await self.call("GET", "/v1/catalog/products", params={"channel": channel})
            except ApiError:
                return []
            items = listed.get("items", []) if isinstance(listed, dict) else listed
            return [p for p in items if isinstance(p, dict) and p.get("active", True)]
        found = await asyncio.gather(*(self.product(code, channel) for code in codes), return_exceptions=True)
        return [p for p in found if isinstance(p, dict) and p.get("active", True)]

    async def locations(self) -> dict[str, dict[str, Any]]:
        return {loc["code"]: loc for loc in await self.call("GET", "/v1/locations") if loc.get("active", True)}

    async def stock(self, sku: str) -> list[dict[str, Any]]:
        try:
            return await self.call("GET", f"/v1/stock/{sku}")
        except ApiError as exc:
            if exc.status == 404:
                return []
            raise

    async def stock_many(self, skus: list[str]) -> dict[str, list[dict[str, Any]]]:
        unique = list(dict.fromkeys(skus))
        rows = await asyncio.gather(*(self.stock(sku) for sku in unique))
        return dict(zip(unique, rows, strict=True))

    # --- the cart ------------------------------------------------------------------------------

    async def cart(self, owner: dict[str, Any], channel: str) -> dict[str, Any]:
        return await self.call("GET", "/v1/carts/current", params={**owner, "channel": channel})

    async def set_line(self, owner: dict[str, Any], sku: str, quantity: int, channel: str) -> dict[str, Any]:
        return await self.call("PUT", f"/v1/carts/current/lines/{sku}", params=owner,
                               json={"quantity": quantity, "channel": channel})

    async def merge_carts(self, *, anonymous_id: str, customer_id: int, channel: str) -> dict[str, Any]:
        return await self.call("POST", "/v1/carts/merge",
                               json={"anonymous_id": anonymous_id, "customer_id": customer_id, "channel": channel})

    async def checkout(self, customer_id: int, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return await self.call("POST", "/v1/carts/current/checkout", params={"customer_id": customer_id}, json=body,
                               headers={"Idempotency-Key": idempotency_key})

    # --- orders and payments -------------------------------------------------------------------

    async def order(self, order_id: int) -> dict[str, Any]:
        return await self.call("GET", f"/v1/orders/{order_id}")

    async def pay(self, order_id: int, channel: str) -> dict[str, Any]:
        return await self.call("POST", f"/v1/orders/{order_id}/payments", json={"channel": channel})

    # --- customers, login and loyalty ----------------------------------------------------------

    async def customer(self, customer_id: int) -> dict[str, Any]:
        return await self.call("GET", f"/v1/customers/{customer_id}")

    async def request_login_code(self, identifier_type: str, value: str) -> dict[str, Any]:
        return await self.call("POST", "/v1/auth/login-codes", json={"identifier": {"type": identifier_type, "value": value}})

    async def verify_login_code(self, identifier_type: str, value: str, code: str, *, anonymous_id: str,
                                channel: str) -> dict[str, Any]:
        return await self.call("POST", "/v1/auth/login-codes/verify", json={
            "identifier": {"type": identifier_type, "value": value}, "code": code, "anonymous_id": anonymous_id,
            "channel": channel,
        })

    async def loyalty_account(self, customer_id: int) -> dict[str, Any] | None:
        """Balance, cards, tier; None while the person has no account (opened at the first purchase)."""
        try:
            return await self.call("GET", f"/v1/customers/{customer_id}/loyalty")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def loyalty_program(self) -> dict[str, Any]:
        return await self.call("GET", "/v1/loyalty/program")

    # --- recommendations (read scope: a person's list reveals what they bought) ------------------

    async def recommendations_for_person(self, customer_id: int, *, location: str | None = None,
                                         limit: int = 6) -> dict[str, Any]:
        """"for_you" topped up with popular_in_store / popular (GET /v1/recommendations/people/{id})."""
        return await self.call("GET", f"/v1/recommendations/people/{customer_id}",
                               params=_without_none(location=location, limit=limit))

    async def recommendations_for_product(self, code: str, kind: str, *, location: str | None = None,
                                          limit: int = 6) -> dict[str, Any]:
        """bought_together or similar (GET /v1/recommendations/products/{code})."""
        return await self.call("GET", f"/v1/recommendations/products/{code}",
                               params=_without_none(kind=kind, location=location, limit=limit))

    async def popular(self, *, location: str | None = None, limit: int = 6) -> dict[str, Any]:
        """popular_in_store (with a location) topped up with popular (GET /v1/recommendations/popular)."""
        return await self.call("GET", "/v1/recommendations/popular", params=_without_none(location=location, limit=limit))

    async def recommendations_for_cart(self, skus: list[str], *, location: str | None = None,
                                       limit: int = 6) -> dict[str, Any]:
        """Bought together with the cart's SKUs (POST /v1/recommendations/cart)."""
        return await self.call("POST", "/v1/recommendations/cart",
                               json=_without_none(skus=list(dict.fromkeys(skus))[:100], location=location, limit=limit))

    # --- push notifications --------------------------------------------------------------------

    async def vapid_public_key(self) -> str | None:
        """The key the browser subscribes with; None when the server has no web push."""
        try:
            return (await self.call("GET", "/v1/channels/webpush/vapid-public-key"))["public_key"]
        except ApiError as exc:
            if exc.status in (404, 409):
                return None
            raise

    async def register_web_push(self, customer_id: int, subscription: dict[str, Any], user_agent: str | None) -> dict[str, Any]:
        return await self.call("POST", "/v1/channels/webpush/subscriptions", json={
            "customer_id": customer_id, "subscription": subscription, **({"user_agent": user_agent} if user_agent else {})})

    async def grant_marketing(self, customer_id: int, channel: str) -> None:
        """The customer agreed, on the shop's page, to offers on this channel."""
        await self.call("POST", f"/v1/customers/{customer_id}/consents",
                        json=[{"channel": channel, "purpose": "marketing", "granted": True, "source": "shop"}])

    async def register_device(self, customer_id: int, token: str, platform: str) -> dict[str, Any]:
        return await self.call("POST", "/v1/channels/mobilepush/devices",
                               json={"customer_id": customer_id, "token": token, "platform": platform})


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
