"""Layout in a real Chromium, in Russian, at 1280x800 and on a 390 px phone (issue 18, items 10
and 11): no page wider than the window (the stock matrix at 1280 px, the app look's catalog at
390 px), the timeline's channel names beside their text, not over it, channel icons drawn
without an emoji font, the console's WebSocket opened only where the inbox's notices are wanted,
and the inbox: the customer's messages on the left in grey, the agent's on the right in blue,
the load counter right after a take.
Needs Debian's chromium (tests/browser.py). Layout does not depend on the database: SQLite only."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import pytest

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key
from tests.web.conftest import PASSWORD, add_staff

skip_without_chromium()

WAIT = 10_000
SIZES = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
#: Locations with long Russian names: the stock matrix is 3 columns per location.
PLACES = [(f"store-{n}", f"Санкт-Петербург, Невский проспект {n}") for n in range(1, 8)]
LONG_NAMES = ["Бальзам-ополаскиватель восстанавливающий", "Солнцезащитный флюид SPF 50",
              "Мицеллярная вода для чувствительной кожи"]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def sqlite_only(database):
    if not database.url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database")
    return database


def _put(api: httpx.Client, path: str, body: dict) -> None:
    response = api.put(path, json=body)
    assert response.status_code in (200, 204), f"{path}: {response.text}"


@pytest.fixture
def world(sqlite_only, settings_for) -> Iterator[dict]:
    """Staff of every role (Russian), a customer whose timeline is the app's, long location and
    product names with stock, and the storefront; the app served on a loopback port."""
    database = sqlite_only
    for email, role in (("agent@example.com", "agent"), ("marketer@example.com", "marketer")):
        add_staff(database, email=email, role=role, locale="ru")
    admin_key = make_key(database, Scope.admin)
    with database.write() as session:
        _, web_key = events_service.create_source(session, name="Сайт", channel="web")
        _, app_key = events_service.create_source(session, name="Приложение", channel="app")
        # The app's backend: what it says about who is who is vouched for.
        _, app_server_key = events_service.create_source(session, name="Приложение (сервер)", channel="app",
                                                         server_side=True)
    settings = settings_for(database.url, storefront_api_key=make_key(database, Scope.write, name="storefront"),
                            storefront_write_key=web_key, storefront_app_write_key=app_key,
                            storefront_products=["p0", "p1", "p2"], login_codes_reveal=True)
    app = create_app(settings, database=database)
    with live_server(app) as url:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
        _put(api, "/v1/catalog/categories/care", {"name_ru": "Уход", "name_en": "Care"})
        for n, name in enumerate(LONG_NAMES):
            _put(api, f"/v1/catalog/products/p{n}", {"name_ru": name, "name_en": f"Product {n}", "category": "care", "variants": [
                {"sku": f"SKU-{n}", "name_ru": "250 мл", "name_en": "250 ml", "price": {"amount": 64000, "currency": "RUB"}}]})
        for code, name in PLACES:
            _put(api, f"/v1/locations/{code}", {"kind": "store", "name_ru": name, "name_en": code, "pickup_enabled": True})
            for n in range(len(LONG_NAMES)):
                moved = api.post("/v1/stock/movements", json={"sku": f"SKU-{n}", "location": code, "kind": "receipt",
                                                               "quantity": 5 + n, "reference": "test"})
                assert moved.status_code == 201, moved.text
        auth = {"Authorization": "Basic " + base64.b64encode(f"{app_server_key}:".encode()).decode()}
        sent = httpx.post(f"{url}/v1/batch", headers=auth, json={"batch": [
            {"type": "identify", "userId": "anna-1", "messageId": "i1", "traits": {"email": "anna@example.com", "first_name": "Анна"}},
            *({"type": "track", "userId": "anna-1", "messageId": f"t{n}", "event": "Product Viewed"} for n in range(3)),
        ]})
        assert sent.status_code == 200, sent.text
        assert app.state.event_writer.wait_idle()
        deadline = time.monotonic() + 10
        while (found := api.get("/v1/customers/lookup", params={"user_id": "anna-1"})).status_code != 200:
            assert time.monotonic() < deadline, found.text
            time.sleep(0.1)
        yield {"url": url, "customer_id": found.json()["id"], "web_key": web_key}


def _signed_in(browser, url: str, email: str, viewport: dict):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport=viewport, locale="ru-RU")
    page = context.new_page()
    page.goto(f"{url}/console/login")
    page.fill("[data-test=login-email]", email)
    page.fill("[data-test=login-password]", PASSWORD)
    with page.expect_navigation():
        page.click("[data-test=login-submit]")
    return context, page


def _overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_console_pages_fit_the_window_and_the_timeline_keeps_its_labels_apart(browser, world):
    url = world["url"]
    for viewport in SIZES:
        context, page = _signed_in(browser, url, "agent@example.com", viewport)
        page.goto(f"{url}/console/customers/{world['customer_id']}")
        items = page.locator("[data-test=timeline-item]")
        items.first.wait_for(timeout=WAIT)
        assert "Мобильное приложение" in items.first.inner_text()
        for n in range(items.count()):
            label = items.nth(n).locator(".tl-chan .chan").bounding_box()
            text = items.nth(n).locator(".tl-body").bounding_box()
            assert not _overlaps(label, text), (viewport, label, text)
        # The channel's icon is an inline SVG (no emoji font needed), its name written beside it.
        assert items.first.locator(".tl-chan svg.icon").count() == 1
        assert page.evaluate(NO_OVERFLOW), (viewport, "customer")
        for path in ("/console/stock", "/console/dashboard", "/console/inbox"):
            page.goto(f"{url}{path}")
            assert page.evaluate(NO_OVERFLOW), (viewport, path, page.evaluate("document.documentElement.scrollWidth"))
        context.close()


def test_the_app_looks_catalog_fits_a_phone(browser, world):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ru-RU")
    page = context.new_page()
    for look in ("app", "shop"):
        page.goto(f"{world['url']}/{look}/?lang=ru")
        assert page.locator("[data-test=product-card]").count() == len(LONG_NAMES)
        assert page.evaluate(NO_OVERFLOW), (look, page.evaluate("document.documentElement.scrollWidth"))
    context.close()


def test_the_websocket_is_opened_only_for_the_inbox(browser, world):
    url = world["url"]
    context = browser.new_context(viewport=SIZES[0], locale="ru-RU")
    page = context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"{url}/console/login")
    page.wait_for_timeout(500)
    assert sockets == []  # the login page
    context.close()

    context, page = _signed_in(browser, url, "marketer@example.com", SIZES[0])
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"{url}/console/dashboard")
    page.wait_for_timeout(500)
    assert sockets == []  # a marketer has no inbox: no socket, no retries
    # The loyalty rules are in the marketer's menu (the page itself: test_console_layout.py).
    assert page.get_attribute("[data-test=nav-loyalty-rules]", "href") == "/console/settings?tab=loyalty"
    context.close()

    context, page = _signed_in(browser, url, "agent@example.com", SIZES[0])
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"{url}/console/dashboard")
    page.wait_for_function("document.body.dataset.live === '1'", timeout=WAIT)
    # One socket, the inbox's (a busy machine may make the page reconnect it: still the same one).
    assert sockets and set(sockets) == {f"{url.replace('http', 'ws')}/console/ws"}
    context.close()


def test_the_inbox_tells_the_agent_from_the_customer(browser, world):
    url = world["url"]
    chat = httpx.post(f"{url}/v1/webchat/sessions", json={"writeKey": world["web_key"], "anonymousId": "visitor-9"}).json()
    said = httpx.post(f"{url}/v1/webchat/messages", json={"text": "Где мой заказ?", "clientMessageId": "m-1"},
                      headers={"Authorization": f"Bearer {chat['token']}"})
    assert said.status_code == 201, said.text
    for n, viewport in enumerate(SIZES):
        context, page = _signed_in(browser, url, "agent@example.com", viewport)
        page.goto(f"{url}/console/inbox?view={'queue' if n == 0 else 'mine'}")
        item = page.locator("[data-test=conversation-list] a.conv").first
        item.wait_for(timeout=WAIT)
        # Whose it is, in words, and the last message (after the answer: the agent's own, "Вы: ...").
        assert ("В очереди" if n == 0 else "Мой") in item.inner_text()
        assert ("Где мой заказ?" if n == 0 else "Вы: Сейчас посмотрю.") in item.inner_text()
        item.click()
        page.locator("[data-test=thread]").wait_for(timeout=WAIT)
        if n == 0:  # take it (the load counter follows at once), then answer
            assert page.inner_text("[data-test=my-load]") == "Нагрузка 0/10"
            page.click("[data-test=take]")
            page.wait_for_function("document.querySelector('[data-test=my-load]').textContent.trim() === 'Нагрузка 1/10'",
                                   timeout=WAIT)
            page.locator("[data-test=thread]", has_text="Взят в работу оператором Agent").wait_for(timeout=WAIT)
            page.fill("[data-test=reply-text]", "Сейчас посмотрю.")
            page.click("[data-test=send]")
            page.locator("[data-test=thread] .msg.outbound", has_text="Сейчас посмотрю.").wait_for(timeout=WAIT)
        sides = page.evaluate("""() => {
            const box = (sel) => { const el = document.querySelector(sel), r = el.getBoundingClientRect();
                                   return {left: r.left, right: r.right, bg: getComputedStyle(el).backgroundColor}; };
            const thread = document.querySelector('[data-test=thread]').getBoundingClientRect();
            return {thread: {left: thread.left, right: thread.right},
                    customer: box('[data-test=message][data-direction=in]'), agent: box('[data-test=message][data-direction=out]')};
        }""")
        customer, agent, thread = sides["customer"], sides["agent"], sides["thread"]
        assert customer["left"] - thread["left"] < 12 and thread["right"] - agent["right"] < 12, sides  # left and right
        assert agent["left"] > customer["left"] + 20, sides
        assert customer["bg"] != agent["bg"], sides
        assert page.evaluate(NO_OVERFLOW), (viewport, page.evaluate("document.documentElement.scrollWidth"))
        context.close()
