"""One cart per person, shared by every channel; an anonymous cart merges at login."""

from __future__ import annotations

import pytest

from tests.commerce.conftest import put, receive

PICKUP = {"kind": "click_and_collect", "location": "store-arbat"}


def set_line(client, headers, sku: str, quantity: int, channel: str, **owner):
    return client.put(f"/v1/carts/current/lines/{sku}", headers=headers, params=owner,
                      json={"quantity": quantity, "channel": channel})


def cart(client, headers, **params) -> dict:
    response = client.get("/v1/carts/current", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def customer(client, headers, *identifiers: tuple[str, str]) -> int:
    response = client.post("/v1/customers", headers=headers,
                           json={"identifiers": [{"type": t, "value": v} for t, v in identifiers]})
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def test_added_in_the_app_seen_on_the_site_finished_in_a_store(client, shop):
    headers = shop["headers"]
    anna = customer(client, headers, ("phone", "+79161234567"))
    assert set_line(client, headers, "CREAM-50", 2, "app", customer_id=anna).status_code == 200
    assert set_line(client, headers, "SERUM-30", 1, "app", customer_id=anna).status_code == 200
    assert set_line(client, headers, "CREAM-50", 2, "app", customer_id=anna).status_code == 200  # a retry: no change

    on_site = cart(client, headers, customer_id=anna, channel="web")
    assert [(line["sku"], line["quantity"], line["channel"]) for line in on_site["lines"]] == [
        ("CREAM-50", 2, "app"), ("SERUM-30", 1, "app")]
    assert on_site["total"] == 2 * 199000 + 250000 and on_site["channel"] == "app"
    assert on_site["lines"][1]["available"] == 5
    assert cart(client, headers, customer_id=anna, channel="store")["total"] == on_site["total"]

    # Re-priced on read: a new list price shows at once.
    put(client, headers, "/v1/catalog/products/serum", {
        "name_ru": "Сыворотка", "name_en": "Serum", "category": "face",
        "variants": [{"sku": "SERUM-30", "price": {"amount": 240000, "currency": "RUB"}}],
    })
    assert cart(client, headers, customer_id=anna)["lines"][1]["unit_price"] == 240000

    receive(client, headers, "SERUM-30", "store-arbat", 3)
    response = client.post("/v1/carts/current/checkout", params={"customer_id": anna},
                           headers={**headers, "Idempotency-Key": "pos-1"}, json={"channel": "store", "fulfilment": PICKUP})
    assert response.status_code == 201, response.text
    placed = response.json()
    assert placed["customer_id"] == anna and placed["channel"] == "store" and placed["total"] == 2 * 199000 + 240000
    again = client.post("/v1/carts/current/checkout", params={"customer_id": anna},
                        headers={**headers, "Idempotency-Key": "pos-1"}, json={"channel": "store", "fulfilment": PICKUP})
    assert again.status_code == 200 and again.json()["id"] == placed["id"]
    assert cart(client, headers, customer_id=anna)["lines"] == []
    empty = client.post("/v1/carts/current/checkout", params={"customer_id": anna}, headers=headers,
                        json={"channel": "web", "fulfilment": PICKUP})
    assert empty.status_code == 409 and empty.json()["error"]["code"] == "cart_empty"

    timeline = client.get(f"/v1/customers/{anna}/timeline", headers=headers, params={"type": "cart"}).json()["items"]
    assert [(i["type"], i["channel"]) for i in timeline] == [
        ("cart.ordered", "store"), ("cart.product_added", "app"), ("cart.product_added", "app")]
    section = client.get(f"/v1/customers/{anna}", headers=headers).json()["sections"]["cart"]
    assert section["lines"] == []


def test_anonymous_cart_merges_at_login_quantities_summed_and_capped(client, shop):
    headers = shop["headers"]
    anna = customer(client, headers, ("phone", "+79161234567"))
    put(client, headers, "/v1/promotions/welcome", {"name_ru": "w", "name_en": "w", "kind": "percent", "value": 5,
                                                    "requires_coupon": True})
    put(client, headers, "/v1/coupons/HELLO", {"promotion": "welcome"})
    # Anna's own cart (from the app): 4 serums. Then, not logged in on the site: 3 serums, 1 cream, a coupon.
    set_line(client, headers, "SERUM-30", 4, "app", customer_id=anna)
    set_line(client, headers, "SERUM-30", 3, "web", anonymous_id="visitor-1")
    set_line(client, headers, "CREAM-50", 1, "web", anonymous_id="visitor-1")
    assert client.put("/v1/carts/current/coupons/hello", headers=headers,
                      params={"anonymous_id": "visitor-1", "channel": "web"}).status_code == 200
    assert cart(client, headers, anonymous_id="visitor-1")["customer_id"] is None

    response = client.post("/v1/carts/merge", headers=headers, json={
        "anonymous_id": "visitor-1", "identifiers": [{"type": "phone", "value": "8 916 123-45-67"}], "channel": "web"})
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["customer_id"] == anna
    # SERUM-30: 4 + 3 = 7, but only 5 can be sold anywhere -> 5; CREAM-50 joins as it was.
    assert {line["sku"]: line["quantity"] for line in merged["lines"]} == {"SERUM-30": 5, "CREAM-50": 1}
    assert merged["coupons"] == ["HELLO"] and merged["discount"] > 0
    # The visitor's id now leads to Anna's cart, on any channel.
    assert cart(client, headers, anonymous_id="visitor-1")["id"] == merged["id"]
    types = [i["type"] for i in client.get(f"/v1/customers/{anna}/timeline", headers=headers,
                                           params={"type": "cart"}).json()["items"]]
    assert types.count("cart.merged") == 1 and types.count("cart.product_added") == 3


def test_an_identify_that_links_the_anonymous_id_is_enough(client, shop):
    """No explicit merge call: the identity graph linked the visitor (here through the
    customers API, as an `identify` with userId and anonymousId would), so the next read
    shows the person's one cart."""
    headers = shop["headers"]
    set_line(client, headers, "CREAM-50", 2, "web", anonymous_id="visitor-2")
    anna = customer(client, headers, ("phone", "+79161234567"), ("anonymous_id", "visitor-2"))
    mine = cart(client, headers, customer_id=anna)
    assert [(line["sku"], line["quantity"]) for line in mine["lines"]] == [("CREAM-50", 2)]
    assert cart(client, headers, anonymous_id="visitor-2")["id"] == mine["id"]


def test_merged_customers_share_one_cart(client, shop):
    headers = shop["headers"]
    by_phone = customer(client, headers, ("phone", "+79161234567"))
    by_email = customer(client, headers, ("email", "anna@example.com"))
    set_line(client, headers, "CREAM-50", 1, "app", customer_id=by_phone)
    set_line(client, headers, "SERUM-30", 1, "web", customer_id=by_email)
    survivor = customer(client, headers, ("phone", "+79161234567"), ("email", "anna@example.com"))
    lines = cart(client, headers, customer_id=survivor)["lines"]
    assert sorted(line["sku"] for line in lines) == ["CREAM-50", "SERUM-30"]


def test_an_anonymous_checkout_links_the_order_to_the_visitor(client, shop):
    headers = shop["headers"]
    set_line(client, headers, "CREAM-50", 1, "web", anonymous_id="visitor-3")
    response = client.post("/v1/carts/current/checkout", params={"anonymous_id": "visitor-3"}, headers=headers,
                           json={"channel": "web", "fulfilment": PICKUP})
    assert response.status_code == 201, response.text
    profile = response.json()["customer_id"]
    assert profile and cart(client, headers, anonymous_id="visitor-3")["customer_id"] == profile


@pytest.mark.parametrize("params, body, status, code", [
    ({"customer_id": 1, "anonymous_id": "v"}, {"quantity": 1, "channel": "web"}, 422, "cart_owner_required"),
    ({}, {"quantity": 1, "channel": "web"}, 422, "cart_owner_required"),
    ({"anonymous_id": "v"}, {"quantity": -1, "channel": "web"}, 422, "validation_error"),
    ({"anonymous_id": "v"}, {"quantity": 6, "channel": "web"}, 409, "insufficient_stock"),
    ({"customer_id": 999999}, {"quantity": 1, "channel": "web"}, 404, "customer_not_found"),
])
def test_bad_cart_changes_are_refused(client, shop, params, body, status, code):
    response = client.put("/v1/carts/current/lines/SERUM-30", headers=shop["headers"], params=params, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_unknown_sku_and_coupon(client, shop):
    headers = shop["headers"]
    response = set_line(client, headers, "NOPE-1", 1, "web", anonymous_id="v")
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_sku"
    response = client.put("/v1/carts/current/coupons/NOPE", headers=headers, params={"anonymous_id": "v", "channel": "web"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_coupon"
    assert cart(client, headers, anonymous_id="v")["id"] is None  # nothing was created
