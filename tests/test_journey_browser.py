"""The journey of ../shared/DESIGN.md, end to end in a real browser (Debian's Chromium driven by
Playwright), against one live Seamline server, on SQLite and on PostgreSQL.

Anna's browser is known to the shop from an earlier login (the tracker's `sl_aid` cookie outlives
the shop's login). Today she browses the cream on the website without logging in and puts two
tubes in her cart. In the evening she logs in on the app look (another device: its own browser
context, its own anonymous id) with her phone and a one-time code: the cart is there. She pays
with points and a card and picks click & collect in the store near her office, which has the
cream. The clerk of that store hands the order over by its pickup code in the console. She writes
in Telegram (a fixture update through the adapter: her shared contact joins the same profile) and
asks in the website's chat whether she can return one tube. The agent sees, in one window, the
order and the points beside the chat, and answers; the answer appears in her chat. She returns
one tube in another store. Stock and points are then right in the API, the app and the console,
and the marketer's analytics show the purchase started on the website and finished in the app,
picked up in a store.

Screenshots of the key screens go to `$SEAMLINE_SCREENSHOTS` (the README's come from
`SEAMLINE_SCREENSHOTS=docs/screenshots pytest tests/test_journey_browser.py -k sqlite`), else to
the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from seamline.analytics.tasks import sync
from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from seamline.web.staff import create_staff_user
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key

skip_without_chromium()

FIXTURES = Path(__file__).parent / "fixtures"
PHONE, PHONE_AS_TYPED = "+79161234567", "8 916 123-45-67"  # the Telegram fixture shares this number
TG_SECRET = "journey-telegram-secret"
PASSWORD = "journey-password"
WAIT = 15_000  # ms


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def world(database, settings_for, tmp_path) -> Iterator[dict]:
    """A shop with the cream in two stores, a loyalty program, staff, and the live server."""
    admin_key = make_key(database, Scope.admin, name="journey admin")
    with database.write() as session:
        _, write_key = events_service.create_source(session, name="Website", channel="web")
        for email, role, store in (("clerk-office@shop.example", "clerk", "store-office"),
                                   ("clerk-home@shop.example", "clerk", "store-home"),
                                   ("agent@shop.example", "agent", None), ("marketer@shop.example", "marketer", None)):
            create_staff_user(session, email=email, name=email.split("@")[0], password=PASSWORD, role=role,
                              locale="ru", store=store, skills=["returns"] if role == "agent" else None)
    settings = settings_for(
        database.url, storefront_api_key=make_key(database, Scope.write, name="storefront"), storefront_write_key=write_key,
        storefront_products=["cream"], login_codes_reveal=True, inbox_telegram_webhook_secret=SecretStr(TG_SECRET),
        inbox_telegram_bot_token=SecretStr("123456:journey"), inbox_telegram_api_base="http://127.0.0.1:9",
        serve_worker=True,  # as `seamline serve` on its own: the provider's messages are processed after the answer
        analytics_mirror_path=str(tmp_path / "analytics.duckdb"),
    )
    with live_server(create_app(settings, database=database)) as url:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)

        def put(path: str, body: dict) -> None:
            assert api.put(path, json=body).status_code in (200, 204), path

        put("/v1/catalog/categories/care", {"name_ru": "Уход", "name_en": "Care"})
        put("/v1/catalog/products/cream", {
            "name_ru": "Крем для рук", "name_en": "Hand cream", "category": "care",
            "variants": [{"sku": "CREAM-50", "name_ru": "50 мл", "name_en": "50 ml", "price": {"amount": 100000, "currency": "RUB"}}],
        })
        hours = {d: ["00:00", "23:59"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        for code, ru, en in (("store-office", "У офиса", "Office"), ("store-home", "У дома", "Home")):
            put(f"/v1/locations/{code}", {"kind": "store", "name_ru": ru, "name_en": en, "address": f"Москва, {ru}",
                                          "opening_hours": hours, "pickup_enabled": True})
        for location, quantity in (("store-office", 3), ("store-home", 4)):
            moved = api.post("/v1/stock/movements", json={"sku": "CREAM-50", "location": location, "kind": "receipt",
                                                         "quantity": quantity, "reference": "journey"})
            assert moved.status_code == 201, moved.text
        changed = api.patch("/v1/loyalty/program", json={"earn_percent": 5, "max_redeem_percent": 30, "point_value": 100,
                                                          "hold_days": 14})
        assert changed.status_code == 200, changed.text
        yield {"url": url, "api": api, "settings": settings}
        api.close()


class Shots:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str) -> None:  # noqa: ANN001
        page.screenshot(path=str(self.folder / f"{name}.png"))


def _stock(api: httpx.Client) -> dict[str, int]:
    rows = api.get("/v1/stock/CREAM-50").json()
    return {row["location"]: row["on_hand"] for row in rows}


def _console_login(page, url: str, email: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/console/login")
    page.fill("[data-test=login-email]", email)
    page.fill("[data-test=login-password]", PASSWORD)
    page.click("[data-test=login-submit]")
    page.wait_for_selector("[data-test=staff-name]", timeout=WAIT)


def test_the_journey(browser, world, database, tmp_path):  # noqa: PLR0915 - one story, told in order
    url, api = world["url"], world["api"]
    shots = Shots(Path(os.environ.get("SEAMLINE_SCREENSHOTS") or tmp_path / "screenshots"))
    website = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ru-RU")
    app = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="ru-RU")
    staff_office = browser.new_context(viewport={"width": 1280, "height": 860})
    staff_home = browser.new_context(viewport={"width": 1280, "height": 860})
    agent = browser.new_context(viewport={"width": 1366, "height": 900})

    # Anna's browser is known from an earlier login; she had 200 points already.
    web = website.new_page()
    web.goto(f"{url}/shop/")
    anonymous_id = next(c["value"] for c in website.cookies() if c["name"] == "sl_aid")
    known = api.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": PHONE}, {"type": "anonymous_id", "value": anonymous_id}],
                                           "traits": {"first_name": "Анна", "last_name": "Петрова"}, "source": "web"})
    assert known.status_code in (200, 201), known.text
    anna = known.json()["customer"]["id"]
    assert api.post("/v1/loyalty/accounts", json={"customer_id": anna}).status_code in (200, 201)
    gift = api.post(f"/v1/customers/{anna}/loyalty/adjustments", json={"points": 200, "staff": "journey", "comment": "welcome back"},
                    headers={"Idempotency-Key": "journey-gift"})
    assert gift.status_code == 201, gift.text

    # 1. The website, not logged in: two tubes of the cream into the cart.
    web.goto(f"{url}/shop/p/cream")
    web.wait_for_selector("text=У офиса")  # availability per store
    web.click("[data-test=add-to-cart]")
    web.goto(f"{url}/shop/p/cream")
    web.click("[data-test=add-to-cart]")
    web.goto(f"{url}/shop/cart")
    web.wait_for_selector("[data-test=cart-line][data-sku=CREAM-50]", timeout=WAIT)
    shots(web, "1-website-cart")

    # 2. The app look, another device: log in with the phone and a one-time code; the cart is there.
    phone = app.new_page()
    phone.goto(f"{url}/app/login")
    phone.fill("[data-test=login-identifier]", PHONE_AS_TYPED)
    phone.click("[data-test=login-send]")
    code = phone.locator("[data-test=demo-code]").inner_text(timeout=WAIT).strip()
    assert re.fullmatch(r"\d{6}", code), code
    phone.fill("[data-test=login-code]", code)
    phone.click("[data-test=login-verify]")
    phone.goto(f"{url}/app/cart")
    line = phone.locator("[data-test=cart-line][data-sku=CREAM-50]")
    line.wait_for(timeout=WAIT)
    assert "2" in line.inner_text()
    shots(phone, "2-app-cart-after-login")

    # 3. Checkout in the app: click & collect in the office store, 100 points and a card.
    phone.goto(f"{url}/app/checkout")
    phone.check("[data-test=fulfilment-click_collect]")
    phone.select_option("[data-test=store-select]", "store-office")
    phone.fill("[data-test=points]", "100")
    phone.check("[data-test=pay-card]")
    shots(phone, "3-app-checkout")
    phone.click("[data-test=place-order]")
    pickup_code = phone.locator("[data-test=pickup-code]").inner_text(timeout=WAIT).strip()
    order_id = int(re.search(r"/orders/(\d+)", phone.url).group(1))
    order = api.get(f"/v1/orders/{order_id}").json()
    assert order["customer_id"] == anna and order["fulfilment"] == "click_and_collect" and order["pickup_location"] == "store-office"
    assert order["channel"] == "app"
    assert api.get(f"/v1/customers/{anna}/loyalty/balance").json()["points"] == 100  # 200 - 100 spent
    shots(phone, "4-app-order")

    # 4. The clerk of the office store hands it over by the pickup code.
    clerk = staff_office.new_page()
    _console_login(clerk, url, "clerk-office@shop.example")
    clerk.goto(f"{url}/console/store")
    clerk.fill("[data-test=pickup-code-input]", pickup_code)
    clerk.click("[data-test=pickup-submit]")
    clerk.locator("[data-test=pickup-result]").wait_for(timeout=WAIT)
    shots(clerk, "5-console-store-pickup")
    assert api.get(f"/v1/orders/{order_id}").json()["status"] in ("picked_up", "completed")
    balance = api.get(f"/v1/customers/{anna}/loyalty/balance").json()
    assert balance["pending"] > 0  # earned at handover, pending through the return window
    assert _stock(api)["store-office"] == 1

    # 5. Telegram: she shares her contact with the shop's bot; the chat joins her profile.
    for name in ("text_message", "contact_message"):
        update = json.loads((FIXTURES / "telegram" / f"{name}.json").read_text())
        accepted = httpx.post(f"{url}/v1/channels/telegram/webhook", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
        assert accepted.status_code == 200, accepted.text
    deadline = time.monotonic() + WAIT / 1000  # acknowledged once stored: the server's worker processes them
    while api.get("/v1/inbox/inbound", params={"status": "received"}).json()["items"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.get("/v1/customers/lookup", params={"telegram_id": "111111111"}).json()["id"] == anna

    # 6. The agent goes online; Anna asks in the website's chat.
    desk = agent.new_page()
    _console_login(desk, url, "agent@shop.example")
    desk.goto(f"{url}/console/inbox")
    with desk.expect_navigation():  # the availability switch reloads the page
        desk.select_option("[data-test=agent-status]", "online")
    web.goto(f"{url}/shop/")
    web.evaluate("window.seamlineChat.open()")
    web.fill("[data-sl=input]", "Можно вернуть один тюбик крема?")
    web.click("[data-sl=send]")

    web.locator("[data-sl=messages]", has_text="Можно вернуть один тюбик крема?").wait_for(timeout=WAIT)
    deadline = time.monotonic() + WAIT / 1000  # the widget has sent it: wait until the server has it too
    while not api.get("/v1/inbox/conversations", params={"customer_id": anna, "channel": "webchat"}).json()["items"]:
        assert time.monotonic() < deadline, "the web chat message never reached the inbox"
        time.sleep(0.1)

    # 7. The agent sees the order and the points beside the chat, and answers.
    desk.goto(f"{url}/console/inbox?view=mine")
    # Her two conversations (Telegram, web chat) are both under her name; the chat is the web one.
    desk.locator("[data-test=conversation-list] a[data-channel=webchat]", has_text="Анна").first.click(timeout=WAIT)
    desk.locator("[data-test=thread]", has_text="Можно вернуть один тюбик крема?").wait_for(timeout=WAIT)
    side = desk.locator("[data-test=side-panel]")
    assert f"#{order_id}" in side.locator("[data-test=side-orders]").inner_text()
    assert side.locator("[data-test=side-points]").inner_text().strip() == "100"
    assert "telegram" in side.inner_text().lower()  # her other conversation, and her Telegram id among the identities
    desk.fill("[data-test=reply-text]", "Да, вернуть можно в любом нашем магазине.")
    desk.click("[data-test=send]")
    desk.locator("[data-test=thread]", has_text="Да, вернуть можно").wait_for(timeout=WAIT)
    shots(desk, "6-console-inbox-360")
    web.locator("[data-sl=messages]", has_text="Да, вернуть можно в любом нашем магазине.").wait_for(timeout=WAIT)
    shots(web, "7-website-chat-answer")

    # 8. The return of one tube in the other store.
    other = staff_home.new_page()
    _console_login(other, url, "clerk-home@shop.example")
    other.goto(f"{url}/console/store")
    other.fill("[data-test=return-order]", str(order_id))
    other.click("[data-test=return-find]")
    other.fill("[data-test=return-qty-CREAM-50]", "1")
    other.click("[data-test=return-submit]")
    other.locator("[data-test=return-result]").wait_for(timeout=WAIT)
    shots(other, "8-console-return-other-store")

    # 9. Stock and points are right everywhere.
    assert _stock(api) == {"store-office": 1, "store-home": 5}
    returns = api.get(f"/v1/orders/{order_id}/returns").json()
    assert len(returns) == 1 and returns[0]["location"] == "store-home"
    after = api.get(f"/v1/customers/{anna}/loyalty/balance").json()
    assert after["points"] == 150  # half of the 100 spent points came back with one of two tubes
    assert 0 < after["pending"] < balance["pending"]  # half of what the order earned was taken back
    phone.goto(f"{url}/app/account")
    assert phone.locator("[data-test=points-balance]").inner_text().strip().replace("\xa0", " ").startswith("150")
    clerk.goto(f"{url}/console/loyalty/customers/{anna}")
    assert "150" in clerk.locator("main").inner_text()
    shots(phone, "9-app-account")

    # 10. The next month the marketer sees, in the cross-channel conversion report, that her
    # purchase started on the website and finished in the app, picked up in a store.
    sync(database, world["settings"])
    marketer = staff_office.new_page()
    _console_login(marketer, url, "marketer@shop.example")
    marketer.goto(f"{url}/console/analytics")
    matrix = marketer.locator("[data-test=table-conversion-matrix]")
    matrix.wait_for(timeout=WAIT)
    rows = [[cell.strip() for cell in row.split("\t")] for row in matrix.locator("tbody tr").all_inner_texts()]
    assert ["Сайт", "Мобильное приложение", "Магазин", "1"] in [row[:4] for row in rows], rows
    shots(marketer, "10-console-analytics")
    for context in (website, app, staff_office, staff_home, agent):
        context.close()
