"""The in-store sale on the store screen (issue 18, item 12): find products by SKU or name, lines
priced as the till will charge them (catalog prices, promotions, coupons, points) with the total
shown before paying, and the payment recorded once, at the total shown."""

from __future__ import annotations

import re

from tests.commerce import conftest as commerce_fixtures
from tests.commerce.conftest import put, receive

shop = commerce_fixtures.shop  # two stores, two warehouses, a cream (CREAM-50, CREAM-100) and a serum
HX = {"HX-Request": "true"}


def lines(page: str) -> dict[str, str]:
    """{sku: quantity} of the sale form's lines."""
    skus = dict(re.findall(r'name="sku-(\d+)" value="([^"]+)"', page))
    quantities = dict(re.findall(r'name="qty-(\d+)" type="number" min="0" value="(\d+)"', page))
    return {sku: quantities[n] for n, sku in skus.items()}


def total(page: str) -> str:
    return re.search(r'data-test="sale-quote-total">([^<]+)<', page).group(1).replace("\xa0", " ")


def key_of(page: str) -> str:
    return re.search(r'id="sale-form".*?name="key" value="([^"]+)"', page, re.DOTALL).group(1)


def test_find_products_by_sku_or_name_with_price_and_stock_here(client, shop, staff_client):  # noqa: F811
    staff_client("clerk", store="store-tverskaya", locale="ru")
    by_name = client.get("/console/store/products", params={"product": "крем"}, headers=HX)
    assert by_name.status_code == 200 and "<html" not in by_name.text
    assert 'data-test="found-CREAM-50"' in by_name.text and 'data-test="found-CREAM-100"' in by_name.text
    row = re.search(r'data-test="found-CREAM-50">(.*?)</tr>', by_name.text, re.DOTALL).group(1)
    assert "Крем для лица 50 мл" in row and "1 990,00" in row.replace("\xa0", " ") and "здесь: 3" in row
    by_sku = client.get("/console/store/products", params={"product": "serum"}, headers=HX)
    assert 'data-test="found-SERUM-30"' in by_sku.text and "здесь: 0" in by_sku.text
    none = client.get("/console/store/products", params={"product": "шампунь"}, headers=HX)
    assert 'data-test="sale-found-none"' in none.text
    page = client.get("/console/store", params={"product": "CREAM"})  # without JavaScript: the whole page
    assert 'data-test="found-CREAM-100"' in page.text and 'data-test="sale-search"' in page.text


def test_lines_are_priced_with_promotions_before_paying(client, shop, staff_client):  # noqa: F811
    headers = shop["headers"]
    put(client, headers, "/v1/promotions/face10", {"name_ru": "Лицо −10%", "name_en": "Face −10%", "kind": "percent",
                                                   "value": 10, "scope": {"categories": ["face"]}})
    csrf = staff_client("clerk", store="store-tverskaya")
    hx = {**HX, "X-CSRF-Token": csrf}
    key = key_of(client.get("/console/store").text)
    base = {"store": "store-tverskaya", "key": key, "method": "card"}

    one = client.post("/console/store/sale/quote", data={**base, "add": "CREAM-50"}, headers=hx)
    assert one.status_code == 200, one.text
    assert lines(one.text) == {"CREAM-50": "1"} and total(one.text) == "1,791.00 RUB"  # 1,990 less 10%
    assert "Face −10%" in one.text and 'data-test="sale-promotion"' in one.text
    assert 'name="expected_total" value="179100"' in one.text and "Pay 1,791.00" in one.text
    assert key_of(one.text) == key  # the same sale: the same key

    two = client.post("/console/store/sale/quote", data={**base, "sku-0": "CREAM-50", "qty-0": "1", "new_sku": "CREAM-50"}, headers=hx)
    assert lines(two.text) == {"CREAM-50": "2"} and total(two.text) == "3,582.00 RUB"
    scanned_wrong = client.post("/console/store/sale/quote", data={**base, "sku-0": "CREAM-50", "qty-0": "2",
                                                                   "new_sku": "NOPE"}, headers=hx)
    assert scanned_wrong.status_code == 422 and "Unknown SKU: NOPE." in scanned_wrong.text
    assert lines(scanned_wrong.text) == {"CREAM-50": "2"} and total(scanned_wrong.text) == "3,582.00 RUB"
    removed = client.post("/console/store/sale/quote", data={**base, "sku-0": "CREAM-50", "qty-0": "2", "sku-1": "SERUM-30",
                                                             "qty-1": "1", "remove": "0"}, headers=hx)
    assert lines(removed.text) == {"SERUM-30": "1"}
    zero = client.post("/console/store/sale/quote", data={**base, "sku-0": "CREAM-50", "qty-0": "0"}, headers=hx)
    assert lines(zero.text) == {} and "sale-quote-total" not in zero.text

    # Paid at the total shown: the order is what the page said.
    sold = client.post("/console/store/sales", data={**base, "sku-0": "CREAM-50", "qty-0": "2", "expected_total": "358200"},
                       headers=hx)
    assert sold.status_code == 200, sold.text
    order_id = int(re.search(r'data-outcome="ok" data-order-id="(\d+)"', sold.text).group(1))
    order = client.get(f"/v1/orders/{order_id}", headers=headers).json()
    assert (order["total"], order["discount"], order["channel"]) == (358200, 39800, "store")
    assert key_of(sold.text) != key  # a new sale starts
    again = client.post("/console/store/sales", data={**base, "sku-0": "CREAM-50", "qty-0": "2", "expected_total": "358200"},
                        headers=hx)
    assert f'data-order-id="{order_id}"' in again.text  # sent twice: one sale
    assert len(client.get("/v1/orders", params={"channel": "store"}, headers=headers).json()["items"]) == 1


def test_a_price_changed_after_the_quote_is_not_charged(client, shop, staff_client):  # noqa: F811
    headers = shop["headers"]
    csrf = staff_client("clerk", store="store-tverskaya", locale="ru")
    hx = {**HX, "X-CSRF-Token": csrf}
    base = {"store": "store-tverskaya", "key": "k-price", "method": "cash", "sku-0": "CREAM-50", "qty-0": "1"}
    quoted = client.post("/console/store/sale/quote", data=base, headers=hx)
    expected = re.search(r'name="expected_total" value="(\d+)"', quoted.text).group(1)
    assert expected == "199000"
    put(client, headers, "/v1/promotions/flash", {"name_ru": "Распродажа", "name_en": "Flash sale", "kind": "fixed",
                                                  "value": 10000})
    refused = client.post("/console/store/sales", data={**base, "expected_total": expected}, headers=hx)
    assert refused.status_code == 422
    assert "Сумма теперь 1 890,00 ₽" in refused.text.replace("\xa0", " ")
    assert total(refused.text) == "1 890,00 ₽" and "Распродажа" in refused.text
    assert client.get("/v1/orders", params={"channel": "store"}, headers=headers).json()["items"] == []
    paid = client.post("/console/store/sales", data={**base, "expected_total": "189000"}, headers=hx)
    assert paid.status_code == 200, paid.text


def test_points_and_a_coupon_in_the_quote(client, shop, staff_client):  # noqa: F811
    headers = shop["headers"]
    customer = client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": "+79161234567"}]},
                           headers=headers).json()["customer"]["id"]
    client.post(f"/v1/customers/{customer}/loyalty/adjustments", json={"points": 100, "staff": "olga", "comment": "gift"},
                headers=headers)
    put(client, headers, "/v1/promotions/vip", {"name_ru": "VIP", "name_en": "VIP", "kind": "fixed", "value": 5000,
                                                "requires_coupon": True})
    put(client, headers, "/v1/coupons/VIP500", {"promotion": "vip"})
    receive(client, headers, "SERUM-30", "store-tverskaya", 2)
    csrf = staff_client("clerk", store="store-tverskaya")
    hx = {**HX, "X-CSRF-Token": csrf}
    base = {"store": "store-tverskaya", "key": "k-points", "method": "card", "sku-0": "SERUM-30", "qty-0": "1",
            "customer": "8 916 123-45-67", "points": "40", "coupon": "vip500"}
    quoted = client.post("/console/store/sale/quote", data=base, headers=hx)
    assert quoted.status_code == 200, quoted.text
    assert total(quoted.text) == "2,410.00 RUB"  # 2,500 less 50 (coupon) less 40 points
    assert "Paid with 40 points" in quoted.text and "(coupon VIP500)" in quoted.text
    too_many = client.post("/console/store/sale/quote", data={**base, "points": "500"}, headers=hx)
    assert too_many.status_code == 422 and "Not enough points: 100 available." in too_many.text
    assert lines(too_many.text) == {"SERUM-30": "1"}
    sold = client.post("/console/store/sales", data={**base, "expected_total": "241000"}, headers=hx)
    assert sold.status_code == 200, sold.text
    assert client.get(f"/v1/customers/{customer}/loyalty", headers=headers).json()["points"] == 60


def test_the_sale_screen_is_the_clerks_own_store_only(client, shop, staff_client):  # noqa: F811
    csrf = staff_client("clerk", store="store-arbat")
    hx = {**HX, "X-CSRF-Token": csrf}
    assert client.get("/console/store/products", params={"store": "store-tverskaya", "product": "CREAM"}).status_code == 403
    other = client.post("/console/store/sale/quote", data={"store": "store-tverskaya", "add": "CREAM-50"}, headers=hx)
    assert other.status_code == 403
    assert client.post("/console/store/sale/quote", data={"add": "CREAM-50"}, headers=HX).status_code == 403  # no CSRF token
    own = client.get("/console/store/products", params={"product": "CREAM"}, headers=HX)
    assert own.status_code == 200 and "5 here" in own.text  # Arbat's own stock
    staff_client("marketer")
    assert client.get("/console/store/products", params={"product": "CREAM"}).status_code == 403
