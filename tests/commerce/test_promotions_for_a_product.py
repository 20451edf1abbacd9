"""GET /v1/catalog/products/{code}/promotions: what the promotions do for a product page, read
from the engine that prices carts (promotions.applicable, pricing.price_lines), never a second
copy of its rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.commerce.conftest import put


def promotion(client, headers, code: str, **body) -> None:
    put(client, headers, f"/v1/promotions/{code}", {"name_ru": f"{code} ru", "name_en": f"{code} en", **body})


def offers(client, headers, code: str = "cream", **params) -> dict[str, dict]:
    response = client.get(f"/v1/catalog/products/{code}/promotions", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {v["sku"]: v for v in response.json()["variants"]}


def test_what_applies_to_each_sku(client, shop):
    headers = shop["headers"]
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    promotion(client, headers, "face10", kind="percent", value=10, scope={"categories": ["face"]}, ends_at=soon)
    promotion(client, headers, "big3for2", kind="buy_x_get_y", buy_quantity=2, get_quantity=1, scope={"skus": ["CREAM-100"]},
              priority=200)
    promotion(client, headers, "from5000", kind="fixed", value=50000, min_subtotal=500000, priority=300)
    promotion(client, headers, "apponly", kind="percent", value=5, channels=["app"])
    promotion(client, headers, "coupon", kind="percent", value=50, requires_coupon=True)
    promotion(client, headers, "serum", kind="percent", value=20, scope={"skus": ["SERUM-30"]})
    promotion(client, headers, "over", kind="percent", value=30, ends_at=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
              starts_at=(datetime.now(UTC) - timedelta(days=9)).isoformat())

    web = offers(client, headers, channel="web")
    assert list(web) == ["CREAM-50", "CREAM-100"]
    small, big = web["CREAM-50"], web["CREAM-100"]
    assert (small["price"], small["price_now"], small["currency"]) == (199000, 179100, "RUB")
    assert [(p["code"], p["applies_to_one"]) for p in small["promotions"]] == [("face10", True), ("from5000", False)]
    assert small["promotions"][0]["name_en"] == "face10 en" and small["promotions"][0]["ends_at"] is not None
    assert [(p["code"], p["applies_to_one"]) for p in big["promotions"]] == [
        ("face10", True), ("big3for2", False), ("from5000", False)]
    assert big["promotions"][1]["buy_quantity"] == 2 and big["price_now"] == 314100

    app = offers(client, headers, channel="app")
    assert [p["code"] for p in app["CREAM-50"]["promotions"]] == ["apponly", "face10", "from5000"]
    assert app["CREAM-50"]["price_now"] == 199000 - 9950 - 18905  # 5 %, then 10 % of what is left


def test_a_promotion_for_some_customers_shows_only_to_them(client, shop):
    headers = shop["headers"]
    promotion(client, headers, "vip", kind="percent", value=15, conditions={"traits": {"vip": True}})
    vip = client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": "vip@example.com"}],
                                             "traits": {"vip": True}}, headers=headers).json()["customer"]["id"]
    anyone = client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": "a@example.com"}]},
                         headers=headers).json()["customer"]["id"]
    assert offers(client, headers, channel="web")["CREAM-50"]["promotions"] == []
    assert offers(client, headers, channel="web", customer_id=anyone)["CREAM-50"]["promotions"] == []
    mine = offers(client, headers, channel="web", customer_id=vip)["CREAM-50"]
    assert [p["code"] for p in mine["promotions"]] == ["vip"] and mine["price_now"] == 169150
    assert client.get("/v1/catalog/products/cream/promotions", params={"customer_id": 999999},
                      headers=headers).status_code == 404
    assert client.get("/v1/catalog/products/nothing/promotions", headers=headers).status_code == 404
