"""Recommendations in the demo storefront: the rows on the product page, the cart and the home
page (catalog), the tracking of a click on one, and an honest page when there is nothing to show.
The world is tests/recommendations' small one (skin buyers take serum + toner together, hair
buyers shampoo + balm), trained with `training.train` as the periodic job would."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from seamline.recommendations import training
from seamline.web.storefront import api as storefront_api
from seamline.web.storefront.client import ApiError, SeamlineClient
from tests.conftest import make_key
from tests.recommendations.conftest import World
from tests.web.test_storefront import data_test, log_in, tracking

PHONE = "+79161234567"


@pytest.fixture
def shop_keys(database) -> dict[str, str]:
    with database.write() as session:
        _source, write_key = events_service.create_source(session, name="Shop", channel="web")
        _source, app_write_key = events_service.create_source(session, name="App", channel="app")
    return {"api": make_key(database, Scope.write, name="storefront"), "write": write_key, "app_write": app_write_key}


@pytest.fixture
def settings(database, settings_for, shop_keys):
    return settings_for(database.url, storefront_api_key=shop_keys["api"], storefront_write_key=shop_keys["write"],
                        storefront_app_write_key=shop_keys["app_write"], login_codes_reveal=True,
                        storefront_products=["serum", "toner", "cream", "shampoo", "balm", "oil"],
                        recommendations_factors=8, recommendations_iterations=8,
                        recommendations_regularization=0.01, recommendations_top_n=20)


@pytest.fixture
def world(database) -> World:
    return World(database).build()


def train(world: World, settings) -> None:
    assert training.train(world.database, settings, now=world.now)["status"] == "active"


def rows(html: str) -> dict[str, dict]:
    """The recommendation rows of a page: list name -> {"reason", "title", "cards": [(code, href)]}."""
    found = {}
    for section in re.findall(r'<section class="recs".*?</section>', html, re.S):
        name = re.search(r'data-list="([^"]+)"', section).group(1)
        cards = re.findall(r'data-test="rec-card" data-code="([^"]+)".*?href="([^"]+)"', section, re.S)
        found[name] = {"reason": re.search(r'data-reason="([^"]+)"', section).group(1),
                       "title": data_test(section, "recommendations-title")[0],
                       "cards": [(code, href.replace("&amp;", "&")) for code, href in cards]}
    return found


def query(href: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}


def test_no_model_yet_no_rows(client, world):
    """Before the first training the pages are as before: no row, no error."""
    world.shoppers()
    for path in ("/shop/", "/app/", "/shop/p/serum", "/app/p/serum"):
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert 'data-test="recommendations"' not in page.text


def test_product_page_bought_together_and_similar(client, world, settings):
    world.shoppers()
    train(world, settings)
    for look in ("shop", "app"):
        page = client.get(f"/{look}/p/serum?lang=en")
        assert page.status_code == 200, page.text
        found = rows(page.text)
        together = found["bought_together"]
        assert together["title"] == "Bought together" and together["reason"] == "bought_together"
        assert together["cards"][0][0] == "toner"  # the seeded pair
        assert 1 <= len(together["cards"]) <= storefront_api.REC_LIMIT
        assert "serum" not in [code for code, _ in together["cards"]]
        assert "mask" not in [code for code, _ in together["cards"]]  # out of stock everywhere
        code, href = together["cards"][0]
        assert href.startswith(f"/{look}/p/toner?")
        assert query(href) == {"rec": "bought_together", "rec_pos": "1", "rec_v": "1"}
        assert [query(h)["rec_pos"] for _, h in together["cards"]] == [str(i) for i in range(1, len(together["cards"]) + 1)]
        # A card: picture, name in the reader's language, price as the shop writes it.
        assert 'src="/img/toner.jpg"' in page.text and ">Toner</span>" in page.text
        assert "100.00\xa0RUB" in page.text
        similar = found.get("similar")
        if similar:  # never what "bought together" already shows
            assert similar["title"] == "Similar" and similar["reason"] == "similar"
            assert not {c for c, _ in similar["cards"]} & {c for c, _ in together["cards"]}
    russian = rows(client.get("/shop/p/serum?lang=ru").text)
    assert russian["bought_together"]["title"] == "Покупают вместе"
    assert ">toner</span>" in client.get("/shop/p/serum").text  # name_ru of this world


def test_cart_row(client, world, settings):
    world.shoppers()
    train(world, settings)
    added = client.post("/shop/p/shampoo", data={"sku": "SHAMPOO", "quantity": "1"}, follow_redirects=False)
    assert added.status_code == 303
    page = client.get("/shop/cart?lang=en")
    cart = rows(page.text)["cart"]
    assert cart["title"] == "Goes with your cart" and cart["cards"][0][0] == "balm"
    assert "shampoo" not in [code for code, _ in cart["cards"]]
    assert query(cart["cards"][0][1])["rec"] == "bought_together"
    assert rows(client.get("/app/cart?lang=ru").text)["cart"]["title"] == "К вашей корзине"


def test_home_for_you_when_logged_in_popular_otherwise(client, world, settings):
    anonymous = TestClient(client.app)
    log_in(client, PHONE, look="app")
    log_in(client, PHONE, look="shop")  # each look has its own login
    me = client.get("/v1/customers/lookup", params={"phone": PHONE},
                    headers={"Authorization": f"Bearer {settings.storefront_api_key}"}).json()["id"]
    world.shoppers()
    world.order(me, ["serum"], days_ago=5)
    train(world, settings)
    for look in ("app", "shop"):
        mine = rows(client.get(f"/{look}/?lang=en").text)["home"]
        assert mine["title"] == "For you" and mine["reason"] == "for_you"
        assert "serum" not in [code for code, _ in mine["cards"]]  # bought days ago
        assert query(mine["cards"][0][1])["rec"] == "for_you"
        theirs = rows(anonymous.get(f"/{look}/?lang=en").text)["home"]
        assert theirs["title"] == "Popular" and theirs["reason"] == "popular"
        assert {query(h)["rec"] for _, h in theirs["cards"]} == {"popular"}
    assert rows(client.get("/app/?lang=ru").text)["home"]["title"] == "Для вас"
    assert rows(anonymous.get("/app/?lang=ru").text)["home"]["title"] == "Популярное"


def test_the_home_heading_follows_the_reason():
    """A person's list topped up with, or made of, a store's best sellers never says "for you"."""
    env = storefront_api.environment("en")
    home = env.get_template("_recommendations.html").make_module({"fmt": None}).home_row
    card = {"code": "x", "name": "X", "image": None, "price": None, "currency": None, "href": "/app/p/x", "reason": ""}
    for reason, title in (("for_you", "For you"), ("popular_in_store", "Popular in your store"), ("popular", "Popular")):
        html = str(home({"reason": reason, "cards": [{**card, "reason": reason}]}))
        assert data_test(html, "recommendations-title") == [title]
    assert str(home(None)).strip() == ""


def test_a_click_on_a_recommendation_is_tracked(client, world, settings):
    world.shoppers()
    train(world, settings)
    href = rows(client.get("/app/p/serum").text)["bought_together"]["cards"][0][1]
    page = client.get(href)
    calls = tracking(page.text)["calls"]
    assert calls[0] == ["track", "Product Clicked", {
        "product_id": "toner", "sku": "TONER", "list_id": "recommendations", "recommendation": "bought_together",
        "position": 1, "model_version": 1, "shown_in": "app"}]
    assert calls[1][:2] == ["track", "Product Viewed"]
    # A link in a marketing message says where the recommendation was shown.
    clicked = tracking(client.get("/shop/p/toner?rec=for_you&rec_pos=3&rec_v=1&rec_channel=email").text)["calls"][0]
    assert clicked[1] == "Product Clicked" and clicked[2]["shown_in"] == "email" and clicked[2]["position"] == 3
    # "Add to cart" keeps where the product came from: Product Added says so.
    assert '<input type="hidden" name="rec" value="bought_together">' in page.text
    added = client.post("/app/p/toner", data={"sku": "TONER", "quantity": "2", "rec": "bought_together"}, follow_redirects=False)
    assert added.headers["location"] == "/app/cart?added=TONER&qty=2&rec=bought_together"
    product_added = tracking(client.get(added.headers["location"]).text)["calls"][0]
    assert product_added[:2] == ["track", "Product Added"] and product_added[2]["recommendation"] == "bought_together"
    assert product_added[2]["sku"] == "TONER" and product_added[2]["quantity"] == 2
    # What the page's tracker sends lands in the look's channel with those properties.
    config = tracking(page.text)
    sent = client.post("/v1/track", json={"writeKey": config["writeKey"], "anonymousId": config["anonymousId"],
                                          "messageId": "rec-click", "event": calls[0][1], "properties": calls[0][2]})
    assert sent.status_code == 200, sent.text
    assert client.app.state.event_writer.wait_idle()
    admin = {"Authorization": f"Bearer {make_key(world.database, Scope.admin, name='admin')}"}
    events = client.get("/v1/events", params={"limit": 10}, headers=admin).json()["items"]
    event = next(e for e in events if e["message_id"] == "rec-click")
    assert event["channel"] == "app" and event["event"] == "Product Clicked" and event["properties"] == calls[0][2]


@pytest.mark.parametrize("params", [
    "rec=evil&rec_pos=1&rec_v=1", "rec=&rec_pos=1", "rec=%3Cscript%3E", "rec_pos=1&rec_v=1",
    "rec=FOR_YOU", "rec=for_you%20", "rec=for_you&rec=similar%0A",
])
def test_bad_rec_params_are_ignored(client, world, params):
    page = client.get(f"/shop/p/serum?{params}")
    assert page.status_code == 200, page.text
    calls = tracking(page.text)["calls"]
    assert [c[1] for c in calls] == ["Product Viewed"]
    assert 'name="rec"' not in page.text


def test_bad_rec_details_are_left_out(client, world):
    for params in ("rec_pos=abc&rec_v=-1&rec_channel=fax", "rec_pos=0&rec_v=1.5&rec_channel=web",
                   "rec_pos=51&rec_v=99999999999999999999&rec_channel=", "rec_pos=%EF%BC%91&rec_v=%C2%B2"):
        clicked = tracking(client.get(f"/shop/p/serum?rec=similar&{params}").text)["calls"][0]
        assert clicked == ["track", "Product Clicked", {"product_id": "serum", "sku": "SERUM", "list_id": "recommendations",
                                                        "recommendation": "similar", "shown_in": "web"}], params
    # A forged form field is not carried to the cart.
    added = client.post("/shop/p/serum", data={"sku": "SERUM", "quantity": "1", "rec": "evil"}, follow_redirects=False)
    assert added.headers["location"] == "/shop/cart?added=SERUM&qty=1"
    assert "recommendation" not in tracking(client.get(added.headers["location"]).text)["calls"][0][2]


def test_an_api_error_leaves_the_rows_out(client, world, settings, monkeypatch, caplog):
    world.shoppers()
    train(world, settings)

    async def failing(self, *args, **kwargs):
        raise ApiError(500, "internal_error", "boom")

    for name in ("recommendations_for_product", "recommendations_for_cart", "recommendations_for_person", "popular"):
        monkeypatch.setattr(SeamlineClient, name, failing)
    client.post("/shop/p/shampoo", data={"sku": "SHAMPOO", "quantity": "1"})
    with caplog.at_level(logging.WARNING, logger="seamline.web.storefront.api"):
        for path in ("/shop/", "/app/p/serum", "/shop/cart"):
            page = client.get(path)
            assert page.status_code == 200 and 'data-test="recommendations"' not in page.text, path
            assert 'data-test="error"' not in page.text
    assert "recommendations left out" in caplog.text
