"""The storefront's product page shows the promotion the cart applies (issue 18, item 12): the
price after it, its name and terms, read from GET /v1/catalog/products/{code}/promotions (the
engine that prices the cart), and the cart then charges exactly that."""

from __future__ import annotations

import html
import re

from tests.commerce.conftest import put
from tests.web.test_storefront import add, catalog, keys, log_in, settings  # noqa: F401 - the fixtures


def promotions(page: str, sku: str) -> list[str]:
    found = re.search(rf'data-test="promotions-{sku}">(.*?)</p>', page, re.DOTALL)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", m)).split())
            for m in re.findall(r'data-test="promotion"[^>]*>(.*?)</span>', found.group(1), re.DOTALL)] if found else []


def test_the_product_page_shows_what_the_cart_will_take_off(client, catalog):  # noqa: F811
    put(client, catalog, "/v1/promotions/face10", {"name_ru": "Неделя ухода", "name_en": "Skincare week", "kind": "percent",
                                                   "value": 10, "scope": {"categories": ["face"]}, "channels": ["web"]})
    put(client, catalog, "/v1/promotions/big", {"name_ru": "Два плюс один", "name_en": "Two plus one", "kind": "buy_x_get_y",
                                                "buy_quantity": 2, "get_quantity": 1, "scope": {"skus": ["CREAM-100"]}})
    put(client, catalog, "/v1/promotions/secret", {"name_ru": "Секрет", "name_en": "Secret", "kind": "percent", "value": 50,
                                                   "requires_coupon": True})
    page = client.get("/shop/p/cream")
    assert page.status_code == 200, page.text
    text = page.text.replace("\xa0", " ")
    assert re.search(r'<s class="was">1 990,00 ₽</s> <strong class="now" data-test="price-now">1 791,00 ₽</strong>', text)
    assert promotions(page.text, "CREAM-50") == ["Неделя ухода: −10 %"]
    assert promotions(page.text, "CREAM-100") == ["Два плюс один: 2 + 1 в подарок", "Неделя ухода: −10 %"]  # engine order
    assert "Секрет" not in page.text  # a coupon's promotion is not announced

    english = client.get("/shop/p/cream?lang=en").text
    assert promotions(english, "CREAM-100") == ["Two plus one: 2 + 1 free", "Skincare week: −10 %"]
    app = client.get("/app/p/cream").text  # limited to the website
    assert "Неделя ухода" not in app and 'data-test="price-now"' not in app

    # What the page said is what the cart charges.
    assert add(client, "cream", "CREAM-50", 1).status_code == 303
    cart = client.get("/v1/carts/current", params={"anonymous_id": client.cookies.get("sl_aid"), "channel": "web"},
                      headers=catalog).json()
    assert cart["total"] == 179100


def test_a_customers_own_promotion_shows_once_they_are_signed_in(client, catalog):  # noqa: F811
    put(client, catalog, "/v1/promotions/vip", {"name_ru": "Для своих", "name_en": "Insiders", "kind": "fixed", "value": 20000,
                                                "min_subtotal": 300000, "conditions": {"traits": {"vip": True}}})
    client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": "+79161234567"}],
                                       "traits": {"vip": True}}, headers=catalog)
    assert promotions(client.get("/shop/p/serum").text, "SERUM-30") == []
    log_in(client, "+7 916 123-45-67")
    page = client.get("/shop/p/serum").text
    assert promotions(page, "SERUM-30") == ["Для своих: −200,00 ₽ при заказе от 3 000,00 ₽"]
    assert 'data-test="price-now"' not in page  # one serum (2 500 ₽) does not reach 3 000 ₽
