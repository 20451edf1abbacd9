"""The demo storefront through HTTP: it calls Seamline only through the public API (in-process),
so these tests drive its pages as a browser would and check the result through the API too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jinja2.ext import babel_extract

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from seamline.web import i18n
from seamline.web.storefront import api as storefront_api
from tests.commerce.conftest import LOCATIONS, put, receive
from tests.conftest import make_key

PHONE = "+79161234567"


@pytest.fixture
def keys(database) -> dict[str, str]:
    with database.write() as session:
        _source, write_key = events_service.create_source(session, name="Shop", channel="web")
        _source, app_write_key = events_service.create_source(session, name="App", channel="app")
    return {"api": make_key(database, Scope.write, name="storefront"), "write": write_key, "app_write": app_write_key}


@pytest.fixture
def settings(database, settings_for, keys):
    return settings_for(database.url, storefront_api_key=keys["api"], storefront_write_key=keys["write"],
                        storefront_app_write_key=keys["app_write"], login_codes_reveal=True, storefront_products=["cream", "serum", "missing"])


@pytest.fixture
def catalog(client, admin_headers) -> dict[str, str]:
    """Two products, two stores with pickup, a pickup point, two warehouses, some stock."""
    put(client, admin_headers, "/v1/catalog/categories/face", {"name_ru": "Лицо", "name_en": "Face"})
    put(client, admin_headers, "/v1/catalog/products/cream", {
        "name_ru": "Крем для лица", "name_en": "Face cream", "category": "face",
        "variants": [{"sku": "CREAM-50", "name_ru": "50 мл", "name_en": "50 ml", "price": {"amount": 199000, "currency": "RUB"}},
                     {"sku": "CREAM-100", "name_ru": "100 мл", "name_en": "100 ml", "price": {"amount": 349000, "currency": "RUB"}}],
    })
    put(client, admin_headers, "/v1/catalog/products/serum", {
        "name_ru": "Сыворотка", "name_en": "Serum", "category": "face",
        "variants": [{"sku": "SERUM-30", "price": {"amount": 250000, "currency": "RUB"}}],
    })
    for code, body in LOCATIONS.items():
        put(client, admin_headers, f"/v1/locations/{code}", body)
    put(client, admin_headers, "/v1/locations/pp-metro", {"kind": "pickup_point", "name_ru": "ПВЗ Метро", "name_en": "Metro point",
                                                         "address": "м. Пушкинская", "pickup_enabled": True})
    receive(client, admin_headers, "CREAM-50", "store-tverskaya", 3)
    receive(client, admin_headers, "CREAM-50", "store-arbat", 5)
    receive(client, admin_headers, "CREAM-50", "wh-south", 10)
    receive(client, admin_headers, "SERUM-30", "wh-north", 4)
    return admin_headers


def data_test(html: str, name: str) -> list[str]:
    """Inner text of the elements with data-test=name (no nested tags in them)."""
    return [m.strip() for m in re.findall(rf'data-test="{name}"[^>]*>([^<]*)<', html)]


def tracking(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="shop-tracking">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def add(client, product: str, sku: str, quantity: int, look: str = "shop"):
    return client.post(f"/{look}/p/{product}", data={"sku": sku, "quantity": str(quantity)}, follow_redirects=False)


def log_in(client, identifier: str, look: str = "shop", next_page: str | None = None) -> str:
    """The two login steps through the forms; returns where the login sent the visitor."""
    page = client.post(f"/{look}/login", data={"action": "send", "identifier": identifier,
                                              **({"next": next_page} if next_page else {})})
    assert page.status_code == 200, page.text
    assert "demo" in page.text.lower()
    code = data_test(page.text, "demo-code")[0]
    assert re.fullmatch(r"\d{6}", code)
    done = client.post(f"/{look}/login", data={"action": "verify", "identifier": identifier, "code": code,
                                              **({"next": next_page} if next_page else {})}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return done.headers["location"]


def api_cart(client, headers, **owner) -> dict:
    response = client.get("/v1/carts/current", params=owner, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_not_configured(database, settings_for):
    with TestClient(create_app(settings_for(database.url), database=database)) as client:
        for path in ("/shop/", "/app/", "/shop/cart", "/app/login"):
            response = client.get(path)
            assert response.status_code == 503
            assert 'data-test="not-configured"' in response.text and "seamline demo" in response.text


def test_catalog_shows_availability_per_store(client, catalog, keys):
    page = client.get("/shop/")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count('data-test="product-card"') == 2  # the unknown code is left out
    assert "Крем для лица" in html and "Сыворотка" in html
    assert "Тверская: 3" in html and "Арбат: 4" in html  # Arbat keeps a safety stock of 1
    assert "1 990,00" in html.replace("\xa0", " ")
    # The tracker and the chat widget, with the event source's write key.
    assert '<script src="/seamline.js"></script>' in html
    assert f'src="/webchat/widget.js" data-write-key="{keys["write"]}" data-lang="ru"' in html
    assert tracking(html)["writeKey"] == keys["write"]
    # The visitor got an anonymous id shared with the tracker (cookie sl_aid), kept on later pages.
    aid = client.cookies.get("sl_aid")
    assert aid and "sl_aid=" in page.headers["set-cookie"] and "samesite=lax" in page.headers["set-cookie"].lower()
    client.get("/shop/p/cream")
    assert client.cookies.get("sl_aid") == aid
    # English on request, then by cookie.
    assert "Face cream" in client.get("/shop/?lang=en").text and "Face cream" in client.get("/shop/").text
    # The product page: per-store availability, and Product Viewed.
    product = client.get("/app/p/cream")
    assert product.status_code == 200 and 'data-test="add-to-cart"' in product.text
    assert 'data-location="store-tverskaya"' in product.text
    assert tracking(product.text)["calls"][0][:2] == ["track", "Product Viewed"]
    assert client.get("/shop/p/nothing").status_code == 404


def test_each_look_tracks_in_its_own_channel(client, catalog, keys, admin_headers, settings):
    """The app look's events are the app's: its pages give the tracker (and the chat widget) the
    app source's write key, so what the browser sends is recorded in channel "app", not "web"."""
    for look, key, channel in (("shop", keys["write"], "web"), ("app", keys["app_write"], "app")):
        page = client.get(f"/{look}/")
        config = tracking(page.text)
        assert config["writeKey"] == key and config["page"] == {"channel": channel}
        assert f'data-write-key="{key}"' in page.text
        # What shop.js does with it: seamline.js sends the page view with that key.
        sent = client.post("/v1/page", json={"writeKey": config["writeKey"], "anonymousId": config["anonymousId"],
                                             "messageId": f"page-{look}", "name": "Catalog", "properties": config["page"]})
        assert sent.status_code == 200, sent.text
    assert client.app.state.event_writer.wait_idle()
    events = client.get("/v1/events", params={"limit": 10}, headers=admin_headers).json()["items"]
    assert {e["message_id"]: e["channel"] for e in events} == {"page-shop": "web", "page-app": "app"}
    # Without an app source of its own, the app look falls back to the website's key.
    alone = settings.model_copy(update={"storefront_app_write_key": None})
    client.app.state.settings = alone
    try:
        assert tracking(client.get("/app/").text)["writeKey"] == keys["write"]
    finally:
        client.app.state.settings = settings


def test_anonymous_add_to_cart(client, catalog, write_headers):
    response = add(client, "cream", "CREAM-50", 2)
    assert response.status_code == 303 and response.headers["location"] == "/shop/cart?added=CREAM-50&qty=2"
    page = client.get(response.headers["location"])
    assert 'data-test="cart-line" data-sku="CREAM-50"' in page.text
    assert data_test(page.text, "cart-count") == ["2"]
    assert ["track", "Product Added"] == tracking(page.text)["calls"][0][:2]
    add(client, "cream", "CREAM-50", 1)  # adds to what is there
    cart = api_cart(client, write_headers, anonymous_id=client.cookies.get("sl_aid"))
    assert [(line["sku"], line["quantity"], line["channel"]) for line in cart["lines"]] == [("CREAM-50", 3, "web")]
    # Quantities change on the cart page; 0 removes the line.
    client.post("/shop/cart", data={"sku": "CREAM-50", "quantity": "0"})
    assert api_cart(client, write_headers, anonymous_id=client.cookies.get("sl_aid"))["lines"] == []


def test_out_of_stock_is_shown_readably(client, catalog):
    response = add(client, "serum", "SERUM-30", 50)
    assert response.status_code == 409
    assert data_test(response.text, "error") == ["Недостаточно товара: доступно только 4."]
    assert "Traceback" not in response.text
    english = client.post("/shop/p/serum?lang=en", data={"sku": "SERUM-30", "quantity": "50"})
    assert data_test(english.text, "error") == ["Not enough in stock: only 4 available."]


def test_login_by_code_moves_the_cart_to_the_person_and_the_app_sees_it(client, catalog, write_headers):
    add(client, "cream", "CREAM-50", 2)
    web_aid = client.cookies.get("sl_aid")
    assert client.get("/shop/checkout", follow_redirects=False).headers["location"] == "/shop/login?next=%2Fshop%2Fcheckout"
    # A wrong code is a readable message, and the login can go on.
    client.post("/shop/login", data={"action": "send", "identifier": "8 (916) 123-45-67"})
    wrong = client.post("/shop/login", data={"action": "verify", "identifier": "8 (916) 123-45-67", "code": "000000x"})
    assert wrong.status_code == 422 and data_test(wrong.text, "error") and 'data-test="login-code"' in wrong.text
    assert log_in(client, "8 (916) 123-45-67", next_page="/shop/checkout") == "/shop/checkout"
    customer = client.get("/v1/customers/lookup", params={"phone": PHONE}, headers=write_headers).json()
    assert client.get("/v1/customers/lookup", params={"anonymous_id": web_aid}, headers=write_headers).json()["id"] == customer["id"]
    cart = api_cart(client, write_headers, customer_id=customer["id"])
    assert [(line["sku"], line["quantity"]) for line in cart["lines"]] == [("CREAM-50", 2)]
    # The next page tells the tracker who this is (identify), once.
    first = tracking(client.get("/shop/cart").text)["calls"]
    assert first[0] == ["identify", None, {"phone": PHONE}]
    assert not [c for c in tracking(client.get("/shop/cart").text)["calls"] if c[0] == "identify"]

    # The app is another device: another anonymous id, its own login.
    phone = TestClient(client.app)
    assert phone.get("/app/").status_code == 200
    assert phone.cookies.get("sl_aid") and phone.cookies.get("sl_aid") != web_aid
    assert 'data-test="cart-line"' not in phone.get("/app/cart").text
    log_in(phone, "+7 916 123 45 67", look="app")
    page = phone.get("/app/cart")
    assert 'data-test="cart-line" data-sku="CREAM-50"' in page.text and data_test(page.text, "cart-count") == ["2"]
    assert phone.get("/v1/customers/lookup", params={"anonymous_id": phone.cookies.get("sl_aid")},
                     headers=write_headers).json()["id"] == customer["id"]
    # Logging out on the phone starts a new visitor there; the website stays logged in.
    phone.post("/app/logout")
    assert phone.get("/app/account", follow_redirects=False).status_code == 303
    assert client.get("/shop/account").status_code == 200


def test_checkout_click_and_collect_with_points_and_card(client, catalog, admin_headers, write_headers):
    assert client.patch("/v1/loyalty/program", json={"welcome_points": 100}, headers=admin_headers).status_code == 200
    add(client, "cream", "CREAM-50", 1)
    log_in(client, PHONE)
    customer_id = client.get("/v1/customers/lookup", params={"phone": PHONE}, headers=write_headers).json()["id"]
    opened = client.post("/v1/loyalty/accounts", json={"customer_id": customer_id, "channel": "web"}, headers=write_headers)
    assert opened.status_code == 201, opened.text

    page = client.get("/shop/checkout")
    assert page.status_code == 200, page.text
    html = page.text
    for name in ("fulfilment-click_collect", "fulfilment-delivery", "fulfilment-pickup_point", "store-select", "points",
                 "pay-card", "place-order"):
        assert f'data-test="{name}"' in html, name
    assert data_test(html, "points-max") == ["100"]  # the balance; the cap (30% of 1 990 ₽) would allow 597
    assert 'value="store-tverskaya"' in html and 'value="wh-north"' not in html
    calls = tracking(html)["calls"]
    assert calls[0][:2] == ["identify", None] and calls[1][:2] == ["track", "Checkout Started"]  # first page after login
    nonce = re.search(r'name="nonce" value="([0-9a-f]{32})"', html).group(1)
    form = {"nonce": nonce, "fulfilment": "click_and_collect", "store": "store-tverskaya", "points": "50", "payment": "card"}
    placed = client.post("/shop/checkout", data=form, follow_redirects=False)
    assert placed.status_code == 303, placed.text
    location = placed.headers["location"]
    order_id = int(re.match(r"/shop/orders/(\d+)\?placed=1$", location).group(1))
    # A double submit of the same form is the same order.
    again = client.post("/shop/checkout", data=form, follow_redirects=False)
    assert again.headers["location"] == location

    order = client.get(f"/v1/orders/{order_id}", headers=write_headers).json()
    assert order["customer_id"] == customer_id and order["channel"] == "web" and order["fulfilment"] == "click_and_collect"
    assert order["pickup_location"] == "store-tverskaya" and order["payment_method"] == "test"
    assert order["total"] == 199000 - 50 * 100 and order["status"] == "confirmed" and order["payment"]["status"] == "paid"
    page = client.get(location)
    assert data_test(page.text, "pickup-code") == [order["pickup_code"]]
    assert 'data-status="confirmed"' in page.text and data_test(page.text, "order-points") == ["50"]
    assert "Тверская" in page.text
    completed = tracking(page.text)["calls"][0]
    assert completed[:2] == ["track", "Order Completed"] and completed[2]["order_id"] == str(order_id)
    assert completed[2]["total"] == 1940.0
    # The cart is empty now; the account shows the points left and the order.
    assert api_cart(client, write_headers, customer_id=customer_id)["lines"] == []
    account = client.get("/shop/account").text
    assert data_test(account, "points-balance") == ["50"]
    assert f'data-test="account-order" data-order-id="{order_id}"' in account
    # Someone else cannot see the order.
    stranger = TestClient(client.app)
    log_in(stranger, "+79160000001")
    assert stranger.get(f"/shop/orders/{order_id}").status_code == 404


def test_checkout_errors_are_readable(client, catalog, write_headers):
    add(client, "cream", "CREAM-50", 4)
    log_in(client, PHONE)
    html = client.get("/shop/checkout").text
    nonce = re.search(r'name="nonce" value="([0-9a-f]{32})"', html).group(1)
    # Tverskaya holds 3: the order cannot be collected there.
    short = client.post("/shop/checkout", data={"nonce": nonce, "fulfilment": "click_and_collect", "store": "store-tverskaya",
                                                "points": "0", "payment": "on_pickup"})
    assert short.status_code == 409 and data_test(short.text, "error")
    assert "Traceback" not in short.text
    # Points without an account: the API's refusal, readable.
    points = client.post("/shop/checkout", data={"nonce": nonce, "fulfilment": "click_and_collect", "store": "store-arbat",
                                                 "points": "10", "payment": "on_pickup"})
    assert points.status_code in (409, 422) and data_test(points.text, "error")
    # Pay on pickup at Arbat works; the order waits there with its code.
    done = client.post("/shop/checkout", data={"nonce": nonce, "fulfilment": "click_and_collect", "store": "store-arbat",
                                               "points": "0", "payment": "on_pickup"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    page = client.get(done.headers["location"])
    assert 'data-status="confirmed"' in page.text and re.fullmatch(r"\d{6}", data_test(page.text, "pickup-code")[0])


def _storefront_msgids() -> set[str]:
    folder = Path(storefront_api.__file__).parent
    found: set[str] = set()
    options = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
    for template in (folder / "templates").glob("*.html"):
        with template.open("rb") as fh:
            for _line, _func, message, _comments in babel_extract(fh, ("_", "gettext", "ngettext"), [], options):
                found.update([message] if isinstance(message, str) else [m for m in (message or ())[:1] if m])
    source = (folder / "api.py").read_text()
    found.update(re.findall(r'shop\._\(\s*"([^"]+)"', source))
    found.update(storefront_api.STATUS_TEXT.values())
    found.update(storefront_api.FULFILMENT_TEXT.values())
    return found


def test_every_storefront_string_has_a_russian_translation():
    catalog = i18n.translations("ru")._catalog  # noqa: SLF001 - gettext's own mapping
    missing = sorted(m for m in _storefront_msgids() if m not in catalog)
    assert not missing, "add these to web/locale/ru/LC_MESSAGES/storefront.po:\n" + "\n".join(missing)
