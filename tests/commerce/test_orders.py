"""Orders through the API: pricing, reservation where the stock is, lifecycle, idempotency,
expiry, the ledger, and where orders show in the customer 360."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seamline.commerce import orders
from seamline.commerce import stock as stock_ledger
from seamline.core.time import utcnow
from tests.commerce.conftest import put, receive


def stock(client, headers, sku: str) -> dict[str, dict]:
    response = client.get(f"/v1/stock/{sku}", headers=headers)
    assert response.status_code == 200, response.text
    return {row["location"]: row for row in response.json()}


def order(client, headers, body: dict, key: str | None = None, expect: int = 201) -> dict:
    extra = {"Idempotency-Key": key} if key else {}
    response = client.post("/v1/orders", json=body, headers={**headers, **extra})
    assert response.status_code == expect, response.text
    return response.json()


def click_and_collect(store: str, *lines: tuple[str, int], channel: str = "web", **more) -> dict:
    return {"channel": channel, "lines": [{"sku": s, "quantity": q} for s, q in lines],
            "fulfilment": {"kind": "click_and_collect", "location": store}, **more}


def test_catalog_prices_are_the_same_in_every_channel(client, shop):
    headers = shop["headers"]
    for channel in (None, "web", "app", "store"):
        product = client.get("/v1/catalog/products/cream", params={"channel": channel} if channel else {}, headers=headers).json()
        assert product["variants"][0]["price"] == {"amount": 199000, "currency": "RUB", "channel": None, "override": False}
    assert product["name_ru"] == "Крем для лица" and product["category"] == "face"


def test_a_channel_price_needs_configuration(client, shop, settings):
    headers = shop["headers"]
    body = {"name_ru": "Крем", "name_en": "Cream", "variants": [
        {"sku": "CREAM-APP", "price": {"amount": 100, "currency": "RUB"}, "channel_prices": {"app": {"amount": 90, "currency": "RUB"}}}]}
    refused = client.put("/v1/catalog/products/cream-app", json=body, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "price_override_not_allowed"
    wrong_currency = client.put("/v1/catalog/products/x", json={**body, "variants": [
        {"sku": "X-1", "price": {"amount": 100, "currency": "USD"}}]}, headers=headers)
    assert wrong_currency.status_code == 422 and wrong_currency.json()["error"]["code"] == "wrong_currency"

    settings.commerce_price_override_channels = ["app"]
    put(client, headers, "/v1/catalog/products/cream-app", body)
    app_price = client.get("/v1/catalog/products/cream-app", params={"channel": "app"}, headers=headers).json()
    web_price = client.get("/v1/catalog/products/cream-app", params={"channel": "web"}, headers=headers).json()
    assert app_price["variants"][0]["price"] == {"amount": 90, "currency": "RUB", "channel": "app", "override": True}
    assert web_price["variants"][0]["price"]["override"] is False and web_price["variants"][0]["price"]["amount"] == 100


def test_click_and_collect_reserves_in_the_chosen_store_and_hands_over_by_code(client, shop):
    headers = shop["headers"]
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2), ("CREAM-50", 1), channel="app",
                                                      identifiers=[{"type": "phone", "value": "8 916 123-45-67"}]))
    assert placed["status"] == "confirmed" and placed["channel"] == "app"
    assert placed["total"] == 3 * 199000 and placed["currency"] == "RUB"
    assert placed["lines"] == [{"sku": "CREAM-50", "name": "Крем для лица 50 мл", "quantity": 3, "unit_price": 199000, "discount": 0,
                                "total": 597000, "allocations": [{"location": "store-arbat", "quantity": 3, "status": "active"}],
                                "returned": 0}]
    assert len(placed["pickup_code"]) == 6 and placed["customer_id"]
    levels = stock(client, headers, "CREAM-50")
    assert levels["store-arbat"] == {"location": "store-arbat", "kind": "store", "on_hand": 5, "reserved": 3, "available": 1}
    assert levels["store-tverskaya"]["reserved"] == 0  # not "the first store of the channel"

    order_id = placed["id"]
    early = client.post(f"/v1/orders/{order_id}/pickup", json={"code": placed["pickup_code"], "channel": "store"}, headers=headers)
    assert early.status_code == 409 and early.json()["error"]["code"] == "invalid_order_status"
    ready = client.post(f"/v1/orders/{order_id}/ready", json={"channel": "store"}, headers=headers).json()
    assert ready["status"] == "ready_for_pickup"
    wrong = client.post(f"/v1/orders/{order_id}/pickup", json={"code": "000000" if placed["pickup_code"] != "000000" else "111111",
                                                               "channel": "store"}, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "wrong_pickup_code"
    done = client.post(f"/v1/orders/{order_id}/pickup", json={"code": placed["pickup_code"], "channel": "store"}, headers=headers).json()
    assert done["status"] == "completed" and done["completed_channel"] == "store"
    assert [h["status"] for h in done["history"]] == ["confirmed", "ready_for_pickup", "completed"]
    assert stock(client, headers, "CREAM-50")["store-arbat"] == {
        "location": "store-arbat", "kind": "store", "on_hand": 2, "reserved": 0, "available": 1}

    customer = client.get(f"/v1/customers/{placed['customer_id']}", headers=headers).json()
    assert customer["sections"]["orders"][0]["id"] == order_id
    timeline = client.get(f"/v1/customers/{placed['customer_id']}/timeline", params={"type": "order"}, headers=headers).json()
    assert [(i["type"], i["channel"]) for i in timeline["items"]] == [
        ("order.completed", "store"), ("order.ready_for_pickup", "store"), ("order.confirmed", "app")]


def test_not_enough_stock_lists_every_shortage_and_changes_nothing(client, shop):
    headers = shop["headers"]
    receive(client, headers, "SERUM-30", "store-tverskaya", 1)
    before = stock(client, headers, "CREAM-50")
    response = client.post("/v1/orders", json=click_and_collect("store-tverskaya", ("CREAM-50", 4), ("SERUM-30", 2)), headers=headers)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert {(s["sku"], s["requested"], s["available"]) for s in error["details"]["shortages"]} == {("CREAM-50", 4, 3), ("SERUM-30", 2, 1)}
    assert stock(client, headers, "CREAM-50") == before
    # the safety stock of a store is not sold online
    arbat = client.post("/v1/orders", json=click_and_collect("store-arbat", ("CREAM-50", 5)), headers=headers)
    assert arbat.status_code == 409 and arbat.json()["error"]["details"]["shortages"][0]["available"] == 4


def test_delivery_takes_the_nearest_warehouse_with_everything_else_splits(client, shop):
    headers = shop["headers"]
    near_north = {"city": "Москва", "latitude": 55.88, "longitude": 37.56}
    whole = order(client, headers, {"channel": "web", "lines": [{"sku": "CREAM-50", "quantity": 2}, {"sku": "SERUM-30", "quantity": 1}],
                                    "fulfilment": {"kind": "delivery", "address": near_north}, "payment_method": "test"})
    assert whole["status"] == "pending_payment"
    assert [a["location"] for line in whole["lines"] for a in line["allocations"]] == ["wh-north", "wh-north"]
    # North has no cream left: the south warehouse has all of it
    south = order(client, headers, {"channel": "web", "lines": [{"sku": "CREAM-50", "quantity": 3}],
                                    "fulfilment": {"kind": "delivery", "address": near_north}})
    assert south["lines"][0]["allocations"] == [{"location": "wh-south", "quantity": 3, "status": "active"}]
    # 4 serums: north has 3 left, south 1: split, nearest first
    split = order(client, headers, {"channel": "call_center", "lines": [{"sku": "SERUM-30", "quantity": 4}],
                                    "fulfilment": {"kind": "delivery", "address": near_north}})
    assert [(a["location"], a["quantity"]) for a in split["lines"][0]["allocations"]] == [("wh-north", 3), ("wh-south", 1)]
    shipped = client.post(f"/v1/orders/{split['id']}/ship", json={"channel": "call_center"}, headers=headers).json()
    assert shipped["status"] == "shipped"
    assert stock(client, headers, "SERUM-30")["wh-south"] == {"location": "wh-south", "kind": "warehouse", "on_hand": 0,
                                                              "reserved": 0, "available": 0}
    assert client.post(f"/v1/orders/{split['id']}/complete", json={}, headers=headers).json()["status"] == "completed"


def test_idempotency_key_returns_the_same_order_and_reserves_once(client, shop):
    headers = shop["headers"]
    body = click_and_collect("store-tverskaya", ("CREAM-50", 1))
    first = order(client, headers, body, key="checkout-42")
    again = order(client, headers, body, key="checkout-42", expect=200)
    assert again["id"] == first["id"] and again["pickup_code"] == first["pickup_code"]
    assert stock(client, headers, "CREAM-50")["store-tverskaya"]["reserved"] == 1
    other = client.post("/v1/orders", json=click_and_collect("store-tverskaya", ("CREAM-50", 2)),
                        headers={**headers, "Idempotency-Key": "checkout-42"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_cancel_and_expiry_release_the_stock(client, shop, database):
    headers = shop["headers"]
    kept = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1)))
    unpaid = order(client, headers, {**click_and_collect("store-tverskaya", ("CREAM-50", 1)), "payment_method": "test"})
    cancelled = client.post(f"/v1/orders/{kept['id']}/cancel", json={"channel": "call_center", "note": "asked by phone"}, headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/v1/orders/{kept['id']}/cancel", json={}, headers=headers).json()["status"] == "cancelled"  # retry: no-op
    assert stock(client, headers, "CREAM-50")["store-tverskaya"]["reserved"] == 1

    with database.write() as session:
        assert orders.expire_orders(session, now=utcnow() + timedelta(minutes=5)) == []
        assert orders.expire_orders(session, now=utcnow() + timedelta(minutes=31)) == [unpaid["id"]]
    paid = order(client, headers, {**click_and_collect("store-tverskaya", ("CREAM-50", 1)), "payment_method": "test"})
    assert client.post(f"/v1/orders/{paid['id']}/pay", json={}, headers=headers).json()["status"] == "confirmed"
    with database.write() as session:  # a paid order waiting for the store is never cancelled by the payment window
        assert orders.expire_orders(session, now=utcnow() + timedelta(days=3)) == []
    assert client.post(f"/v1/orders/{paid['id']}/cancel", json={}, headers=headers).json()["status"] == "cancelled"
    assert client.get(f"/v1/orders/{unpaid['id']}", headers=headers).json()["status"] == "cancelled"
    assert stock(client, headers, "CREAM-50")["store-tverskaya"] == {
        "location": "store-tverskaya", "kind": "store", "on_hand": 3, "reserved": 0, "available": 3}
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


def test_movements_are_idempotent_and_never_below_reserved(client, shop):
    headers = shop["headers"]
    body = {"sku": "CREAM-100", "location": "wh-north", "kind": "receipt", "quantity": 7, "reference": "invoice 17"}
    first = client.post("/v1/stock/movements", json=body, headers={**headers, "Idempotency-Key": "inv-17"})
    again = client.post("/v1/stock/movements", json=body, headers={**headers, "Idempotency-Key": "inv-17"})
    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert stock(client, headers, "CREAM-100")["wh-north"]["on_hand"] == 7

    order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 2)))
    count = client.post("/v1/stock/movements", json={"sku": "CREAM-50", "location": "store-tverskaya", "kind": "count", "quantity": 1},
                        headers=headers)
    assert count.status_code == 409 and count.json()["error"]["code"] == "below_reserved"
    ok = client.post("/v1/stock/movements", json={"sku": "CREAM-50", "location": "store-tverskaya", "kind": "count", "quantity": 2},
                     headers=headers)
    assert ok.status_code == 201 and ok.json()["on_hand_delta"] == -1 and ok.json()["kind"] == "sync"


@pytest.mark.parametrize(("body", "code"), [
    ({"sku": "NOPE", "location": "wh-north", "kind": "receipt", "quantity": 1}, "unknown_sku"),
    ({"sku": "CREAM-50", "location": "nowhere", "kind": "receipt", "quantity": 1}, "unknown_location"),
    ({"sku": "CREAM-50", "location": "wh-north", "kind": "receipt", "quantity": -1}, "invalid_quantity"),
])
def test_bad_movements_are_refused(client, shop, body, code):
    response = client.post("/v1/stock/movements", json=body, headers=shop["headers"])
    assert response.status_code == 422 and response.json()["error"]["code"] == code


@pytest.mark.parametrize(("body", "status", "code"), [
    (click_and_collect("store-arbat", ("NOPE", 1)), 422, "unknown_sku"),
    (click_and_collect("nowhere", ("CREAM-50", 1)), 422, "unknown_location"),
    (click_and_collect("wh-north", ("CREAM-50", 1)), 422, "pickup_not_available"),
    ({"channel": "web", "lines": [{"sku": "CREAM-50", "quantity": 1}], "fulfilment": {"kind": "delivery"}}, 422, "address_required"),
    (click_and_collect("store-arbat", ("CREAM-50", 0)), 422, "validation_error"),
    (click_and_collect("store-arbat", ("CREAM-50", -2)), 422, "validation_error"),
])
def test_bad_orders_are_refused_and_change_nothing(client, shop, body, status, code):
    headers = shop["headers"]
    response = client.post("/v1/orders", json=body, headers=headers)
    assert response.status_code == status and response.json()["error"]["code"] == code, response.text
    assert all(row["reserved"] == 0 for row in stock(client, headers, "CREAM-50").values())


def test_nearby_stores_with_stock_nearest_first(client, shop):
    headers = shop["headers"]
    near_arbat = {"latitude": 55.7500, "longitude": 37.5900}
    found = client.get("/v1/stock/CREAM-50/nearby", params={**near_arbat, "quantity": 2}, headers=headers).json()
    assert [f["location"] for f in found] == ["store-arbat", "store-tverskaya"]
    assert found[0]["available"] == 4 and found[0]["distance_km"] < 1 < found[1]["distance_km"]
    assert [f["location"] for f in client.get("/v1/stock/CREAM-50/nearby", params={**near_arbat, "quantity": 4},
                                              headers=headers).json()] == ["store-arbat"]


def test_erasure_keeps_the_books_but_not_the_person(client, shop):
    headers = shop["headers"]
    placed = order(client, headers, {"channel": "web", "lines": [{"sku": "CREAM-50", "quantity": 1}],
                                     "identifiers": [{"type": "email", "value": "anna@example.com"}],
                                     "fulfilment": {"kind": "delivery", "address": {"street": "Тверская, 1"}}})
    exported = client.get(f"/v1/customers/{placed['customer_id']}/export", headers=headers).json()
    assert exported["sections"]["orders"][0]["delivery_address"] == {"street": "Тверская, 1"}
    erased = client.post(f"/v1/customers/{placed['customer_id']}/erase", json={"reason": "request"}, headers=headers)
    assert erased.status_code in (200, 201), erased.text
    kept = client.get(f"/v1/orders/{placed['id']}", headers=headers).json()
    assert kept["customer_id"] is None and kept["delivery_address"] is None and kept["total"] == 199000
