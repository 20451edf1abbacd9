"""Web push in a real Chromium (Debian's, driven by Playwright), against a live server.

Anna logs in to the demo shop and presses "Notify me": the page registers the shop's service
worker, subscribes with the server's VAPID key and the shop's backend registers the
subscription for her. Chromium cannot reach Google's push service from here, so the browser's
`pushManager.subscribe()` answers with a subscription on the loopback push service
(push_service.py) whose keys the test holds; everything else is the real thing. Seamline then
sends a message on the webpush channel: the loopback service checks its VAPID signature and
decrypts it, and the plaintext is handed to the service worker as the push service would, by
the DevTools protocol (`ServiceWorker.deliverPushMessage`). The notification is shown
(`registration.getNotifications()`), and clicking it opens its link. The app look registers
the native shell's FCM token instead. Screenshots of the control at 1280 and 390 px wide.
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from seamline.app import create_app
from seamline.channels.webpush.adapter import public_key
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from seamline.inbox import delivery
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.channels.webpush.push_service import PushService
from tests.conftest import make_key

skip_without_chromium()

WAIT = 15_000
PHONE = "+79161234567"

#: Stands in for the push service Chromium cannot reach: `subscribe()` gives the loopback
#: service's subscription (kept for the tab's session, as a browser keeps it) and records the
#: options it was called with; `unsubscribe()` is recorded too.
FAKE_PUSH_MANAGER = """
(() => {
  const fake = %s;
  const current = () => sessionStorage.getItem("fake-push") === "1" ? subscription() : null;
  function subscription() {
    return {endpoint: fake.endpoint, expirationTime: null, toJSON: () => fake,
            unsubscribe: () => { sessionStorage.removeItem("fake-push"); sessionStorage.setItem("fake-unsubscribed", "1");
                                 return Promise.resolve(true); }};
  }
  PushManager.prototype.subscribe = function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    sessionStorage.setItem("fake-subscribe", JSON.stringify({userVisibleOnly: options.userVisibleOnly,
      key: btoa(String.fromCharCode.apply(null, key)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "")}));
    sessionStorage.setItem("fake-push", "1");
    return Promise.resolve(subscription());
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current()); };
})();
"""

NOTIFICATIONS = """() => navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => ns.map(n =>
    ({title: n.title, body: n.body, tag: n.tag, icon: n.icon, url: n.data && n.data.url})))"""

#: A click on the notification, as the system would deliver it to the worker (with the window
#: opening recorded instead of done: a headless browser opens no window for a synthetic click).
CLICK = """async () => {
  const [notification] = await self.registration.getNotifications();
  let opened = null, waiting = null;
  self.clients.openWindow = (url) => { opened = url; return Promise.resolve(null); };
  self.clients.matchAll = () => Promise.resolve([]);
  const event = new NotificationEvent("notificationclick", {notification});
  event.waitUntil = (promise) => { waiting = promise; };
  self.dispatchEvent(event);
  await waiting;
  return {opened, left: (await self.registration.getNotifications()).length};
}"""


@pytest.fixture
def browser() -> Iterator:
    """A browser of each test's own: in a headless Chromium, a push to a second browser context's
    worker was sometimes not shown (1 run in 3), never to the first context's."""
    yield from launch_chromium()


@pytest.fixture
def service():
    push_service = PushService()
    yield push_service
    push_service.close()


@pytest.fixture
def shop(database, settings_for, service) -> Iterator[dict]:
    with database.write() as session:
        _, write_key = events_service.create_source(session, name="Website", channel="web")
    vapid = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    settings = settings_for(
        database.url, storefront_api_key=make_key(database, Scope.write, name="storefront"), storefront_write_key=write_key,
        login_codes_reveal=True, inbox_webpush_vapid_private_key=SecretStr(vapid),
        inbox_webpush_endpoint_hosts=["http://127.0.0.1"], inbox_webpush_vapid_subject="mailto:push@shop.example")
    admin = make_key(database, Scope.admin, name="browser admin")
    with live_server(create_app(settings, database=database)) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=10) as api:
            yield {"url": url, "api": api, "settings": settings}


def log_in(page, url: str, look: str) -> None:
    page.goto(f"{url}/{look}/login")
    page.fill("[data-test=login-identifier]", "8 916 123-45-67")
    page.click("[data-test=login-send]")
    code = page.locator("[data-test=demo-code]").inner_text(timeout=WAIT).strip()
    page.fill("[data-test=login-code]", code)
    page.click("[data-test=login-verify]")
    page.wait_for_url(re.compile(rf"/{look}/account"), timeout=WAIT)


def registration_id(cdp, scope: str) -> str:
    """The service worker registration of `scope`, as DevTools names it."""
    found: dict[str, str] = {}
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: found.update({r["scopeURL"]: r["registrationId"] for r in event["registrations"] if not r["isDeleted"]}))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + WAIT / 1000
    while scope not in found:
        assert time.monotonic() < deadline, f"no service worker registration for {scope}: {found}"
        cdp.send("Runtime.evaluate", {"expression": "1"})  # lets the session deliver its events
        time.sleep(0.05)
    return found[scope]


def shown(page, title: str) -> list[dict]:
    """The notifications shown, once one has `title` (or the wait is over)."""
    deadline = time.monotonic() + WAIT / 1000
    while True:
        notes = page.evaluate(NOTIFICATIONS)
        if any(n["title"] == title for n in notes) or time.monotonic() > deadline:
            return notes
        time.sleep(0.1)


def test_notify_me_then_a_push_from_seamline_is_shown_and_opens_its_link(browser, shop, service, database, tmp_path):
    url, api, settings = shop["url"], shop["api"], shop["settings"]
    shots = Path(os.environ.get("SEAMLINE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    browser_side = service.subscribe()
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ru-RU")
    context.grant_permissions(["notifications"], origin=url)
    context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(browser_side.as_json()))
    page = context.new_page()
    log_in(page, url, "shop")
    anna = api.get("/v1/customers/lookup", params={"phone": PHONE}).json()["id"]

    box = page.locator("[data-test=push-notify]")
    box.wait_for(timeout=WAIT)
    assert page.locator("[data-test=push-enable]").inner_text() == "Получать уведомления"
    page.screenshot(path=str(shots / "push-notify-desktop-ru.png"), full_page=True)
    page.check("[data-test=push-offers]")  # and offers: her marketing consent for web push
    page.click("[data-test=push-enable]")
    page.wait_for_selector("[data-test=push-notify][data-state=on]", timeout=WAIT)
    assert page.locator("[data-test=push-status]").inner_text() == "Уведомления на этом устройстве включены."
    page.screenshot(path=str(shots / "push-on-desktop-ru.png"), full_page=True)
    asked = json.loads(page.evaluate("sessionStorage.getItem('fake-subscribe')"))
    assert asked == {"userVisibleOnly": True, "key": public_key(settings)}  # subscribed with the server's VAPID key
    [row] = api.get("/v1/channels/webpush/subscriptions", params={"customer_id": anna}).json()["items"]
    assert row["endpoint"] == browser_side.endpoint and "Chrome" in row["user_agent"]
    consents = api.get(f"/v1/customers/{anna}/consents").json()
    assert [c["granted"] for c in consents if (c["channel"], c["purpose"]) == ("web_push", "marketing")] == [True]

    # Seamline sends; the push service checks and decrypts it; the worker gets what it got.
    cdp = context.new_cdp_session(page)
    worker = registration_id(cdp, f"{url}/shop/")
    page.wait_for_function("navigator.serviceWorker.ready.then(r => r.active && r.active.state === 'activated')",
                           timeout=WAIT)  # a push for a worker still installing is dropped
    [sw] = context.service_workers
    for text, title, link in (("Ваш заказ 1042 готов к выдаче", "Заказ готов", "/shop/orders/1042"),
                              ("Your order 1042 is ready for pickup", "Order ready", f"{url}/shop/account?lang=en")):
        sent = api.post("/v1/inbox/outbound", json={"customer_id": anna, "text": text, "channel": "webpush",
                                                   "push": {"title": title, "url": link, "tag": "order-1042"}})
        assert sent.status_code == 201, sent.text
        assert delivery.send_due(database, settings=settings) == 1
        assert service.problems == []
        for _ in range(3):  # a worker that was busy starting may drop a push (a real push service retries too)
            cdp.send("ServiceWorker.deliverPushMessage", {"origin": url, "registrationId": worker,
                                                           "data": service.received[-1].plaintext.decode()})
            notes = shown(page, title)
            if notes:
                break
        assert [(n["title"], n["body"]) for n in notes] == [(title, text)], notes
        assert notes[0]["tag"] == "order-1042" and notes[0]["url"] == link  # the same tag: English replaced Russian

    clicked = sw.evaluate(CLICK)
    assert clicked == {"opened": f"{url}/shop/account?lang=en", "left": 0}

    # The same control in English, on a phone-sized screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en-US")
    phone.grant_permissions(["notifications"], origin=url)
    phone.add_init_script(FAKE_PUSH_MANAGER % json.dumps(service.subscribe().as_json()))
    small = phone.new_page()
    log_in(small, url, "shop")
    small.goto(f"{url}/shop/account?lang=en")
    small.wait_for_selector("[data-test=push-notify]", timeout=WAIT)
    assert small.locator("[data-test=push-enable]").inner_text() == "Notify me"
    small.screenshot(path=str(shots / "push-notify-phone-en.png"), full_page=True)
    small.click("[data-test=push-enable]")
    small.wait_for_selector("[data-test=push-notify][data-state=on]", timeout=WAIT)
    assert small.locator("[data-test=push-status]").inner_text() == "Notifications are turned on for this device."
    assert len(api.get("/v1/channels/webpush/subscriptions", params={"customer_id": anna}).json()["items"]) == 2

    # Logging out drops this browser's subscription before the form goes.
    small.click("[data-test=logout]")
    small.wait_for_url(re.compile(r"/shop/\?logged_out=1"), timeout=WAIT)
    assert small.evaluate("sessionStorage.getItem('fake-unsubscribed')") == "1"
    phone.close()
    context.close()


def test_the_app_look_registers_the_native_shells_fcm_token(browser, shop, tmp_path):
    url, api = shop["url"], shop["api"]
    shots = Path(os.environ.get("SEAMLINE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    token = "eHh4eHh4eHh4eA:APA91bFromTheNativeShell"
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="ru-RU")
    context.add_init_script(f"window.SeamlineNative = {{pushToken: () => Promise.resolve({{token: '{token}', platform: 'android'}})}};")
    page = context.new_page()
    log_in(page, url, "app")
    anna = api.get("/v1/customers/lookup", params={"phone": PHONE}).json()["id"]
    page.wait_for_selector("[data-test=push-notify]", timeout=WAIT)
    page.screenshot(path=str(shots / "push-app-phone-ru.png"), full_page=True)
    page.click("[data-test=push-enable]")
    page.wait_for_selector("[data-test=push-notify][data-state=on]", timeout=WAIT)
    [device] = api.get("/v1/channels/mobilepush/devices", params={"customer_id": anna}).json()["items"]
    assert device["platform"] == "android" and device["revoked_at"] is None
    context.close()
