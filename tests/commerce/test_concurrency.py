"""Stock is never sold twice: 100 checkouts from the web, the app and a store's POS at once,
against a real `seamline serve` with two worker processes, competing for 10 units."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from seamline.commerce import stock
from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from tests.commerce.conftest import LOCATIONS


def test_hundred_checkouts_for_ten_units_make_exactly_ten_orders(server, database):
    with database.write() as session:
        _, key = auth_service.create_api_key(session, name="shop", scopes=[Scope.write, Scope.read])
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        for sku in ("HOT-1", "HOT-2"):
            assert http.put(f"/v1/catalog/products/{sku.lower()}", json={
                "name_ru": "Хит", "name_en": "Hit", "variants": [{"sku": sku, "price": {"amount": 100, "currency": "RUB"}}],
            }).status_code == 200
        assert http.put("/v1/locations/store-tverskaya", json=LOCATIONS["store-tverskaya"]).status_code == 200
        for sku in ("HOT-1", "HOT-2"):
            assert http.post("/v1/stock/movements", json={"sku": sku, "location": "store-tverskaya", "kind": "receipt",
                                                          "quantity": 10}).status_code == 201

    def checkout(n: int) -> tuple[int, str]:
        # Two SKUs in opposite orders: row locks are taken in one order, so no deadlock.
        lines = [{"sku": "HOT-1", "quantity": 1}, {"sku": "HOT-2", "quantity": 1}]
        body = {"channel": ("web", "app", "store")[n % 3], "lines": lines if n % 2 else lines[::-1],
                "fulfilment": {"kind": "click_and_collect", "location": "store-tverskaya"}}
        with httpx.Client(base_url=server.base_url, headers={**headers, "Idempotency-Key": f"checkout-{n}"}, timeout=60) as http:
            response = http.post("/v1/orders", json=body)
        return response.status_code, response.json().get("error", {}).get("code", "")

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(checkout, range(100)))
    assert sorted(set(outcomes)) == [(201, ""), (409, "insufficient_stock")], outcomes
    assert outcomes.count((201, "")) == 10

    with database.read() as session:
        for row in stock.availability(session, "HOT-1") + stock.availability(session, "HOT-2"):
            assert (row["on_hand"], row["reserved"], row["available"]) == (10, 10, 0)
        assert stock.check_stock(session) == []
