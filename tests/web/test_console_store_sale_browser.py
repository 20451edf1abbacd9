"""The in-store sale in a real Chromium (issue 18, item 12): find a product by name, add it, scan
a SKU with Enter (which re-prices and never pays), see the total with the promotion, then pay
once. Needs Debian's chromium (tests/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from seamline.app import create_app
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.commerce.conftest import LOCATIONS
from tests.conftest import make_key
from tests.web.conftest import PASSWORD, add_staff

skip_without_chromium()

WAIT = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def served(database, settings_for) -> Iterator[dict]:
    from seamline.core.auth.schemas import Scope

    add_staff(database, email="clerk@example.com", role="clerk", locale="en", store="store-tverskaya")
    headers = {"Authorization": f"Bearer {make_key(database, Scope.admin)}"}
    with live_server(create_app(settings_for(database.url), database=database)) as url:
        api = httpx.Client(base_url=url, headers=headers)
        for code, body in LOCATIONS.items():
            assert api.put(f"/v1/locations/{code}", json=body).status_code == 200
        api.put("/v1/catalog/categories/face", json={"name_ru": "Лицо", "name_en": "Face"})
        assert api.put("/v1/catalog/products/cream", json={
            "name_ru": "Крем для лица", "name_en": "Face cream", "category": "face",
            "variants": [{"sku": "CREAM-50", "name_ru": "50 мл", "name_en": "50 ml", "price": {"amount": 199000, "currency": "RUB"}},
                         {"sku": "CREAM-100", "name_ru": "100 мл", "name_en": "100 ml",
                          "price": {"amount": 349000, "currency": "RUB"}}]}).status_code == 200
        api.post("/v1/stock/movements", json={"sku": "CREAM-50", "location": "store-tverskaya", "kind": "receipt",
                                              "quantity": 5, "reference": "test"})
        api.put("/v1/promotions/face10", json={"name_ru": "Лицо −10%", "name_en": "Face −10%", "kind": "percent", "value": 10})
        yield {"url": url, "api": api}


def test_find_add_scan_see_the_total_then_pay(browser, served):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(WAIT)
    url = served["url"]
    page.goto(f"{url}/console/login")
    page.fill("[data-test=login-email]", "clerk@example.com")
    page.fill("[data-test=login-password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-test=staff-name]")
    page.goto(f"{url}/console/store")

    page.fill("[data-test=sale-product]", "face cream")  # typing searches (HTMX, no button)
    page.click("[data-test=add-CREAM-50]")
    page.wait_for_selector("[data-test=sale-quote-total]")
    page.fill("[data-test=sale-new-sku]", "CREAM-50")
    page.keyboard.press("Enter")  # a scanner's Enter: one more, re-priced, not paid
    page.wait_for_function("document.querySelector('[data-test=\"sale-qty-CREAM-50\"]').value === '2'")
    assert page.locator("[data-test=sale-quote-total]").inner_text().replace("\xa0", " ") == "3,582.00 RUB"
    assert page.locator("[data-test=sale-promotion]").inner_text().startswith("Face −10%")
    assert page.locator("[data-test=found-CREAM-100]").is_visible()  # the search results stay for the next product
    assert served["api"].get("/v1/orders", params={"channel": "store"}).json()["items"] == []

    page.click("[data-test=sale-submit]")
    page.wait_for_selector("[data-test=sale-result][data-outcome=ok]")
    (order,) = served["api"].get("/v1/orders", params={"channel": "store"}).json()["items"]
    assert order["total"] == 358200 and order["lines"][0]["quantity"] == 2
    assert page.locator("[data-test=sale-lines] tbody tr").count() == 1  # a new, empty sale
