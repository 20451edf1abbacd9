"""One real click on a recommendation in Chromium (390 px, the app look): the row fits the phone
and the page's tracker sends "Product Clicked" with the link's details, recorded in channel app.
SQLite only: the HTTP tests (test_storefront_recommendations.py) cover both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key
from tests.recommendations.conftest import World
from tests.web import test_storefront_recommendations as recommendations

# The shop's keys and settings, as in the HTTP tests (fixtures found as this module's names).
shop_keys, settings, train = recommendations.shop_keys, recommendations.settings, recommendations.train

skip_without_chromium()

NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


def test_a_click_in_the_app_reaches_the_events(browser, database, settings):
    if not database.url.startswith("sqlite"):
        pytest.skip("the browser's part does not depend on the database")
    world = World(database).build()
    world.shoppers()
    train(world, settings)
    admin = {"Authorization": f"Bearer {make_key(database, Scope.admin, name='admin')}"}
    with live_server(create_app(settings, database=database)) as url:
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(f"{url}/app/p/serum?lang=en")
        row = page.locator("[data-test=recommendations][data-list=bought_together]")
        assert row.locator("h2").inner_text() == "Bought together"
        assert page.evaluate(NO_OVERFLOW), "the row widens the page on a phone"
        first = row.locator("[data-test=rec-card]").first
        assert first.get_attribute("data-code") == "toner"
        first.locator("a").click()
        page.wait_for_url("**/app/p/toner?rec=bought_together&rec_pos=1&rec_v=1")
        deadline, clicked = time.monotonic() + 10, []
        while not clicked and time.monotonic() < deadline:
            events = httpx.get(f"{url}/v1/events", params={"limit": 50}, headers=admin).json()["items"]
            clicked = [e for e in events if e["event"] == "Product Clicked"]
            time.sleep(0.2)
        context.close()
    assert clicked, "the tracker sent no Product Clicked"
    assert clicked[0]["channel"] == "app"
    assert clicked[0]["properties"] == {"product_id": "toner", "sku": "TONER", "list_id": "recommendations",
                                        "recommendation": "bought_together", "position": 1, "model_version": 1,
                                        "shown_in": "app"}
