"""The demo storefront's "Notify me" through HTTP: the browser's subscription (or the app shell's
FCM token) is registered by the shop's backend for the customer of its login cookie, only from
the shop's own pages, never for a customer the request names."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.channels.webpush.adapter import public_key
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from tests.channels.webpush.push_service import PushService
from tests.conftest import make_key
from tests.web.test_storefront import PHONE, log_in

ORIGIN = "http://testserver"


@pytest.fixture
def service():
    push_service = PushService()
    yield push_service
    push_service.close()


@pytest.fixture
def keys(database) -> dict[str, str]:
    with database.write() as session:
        _source, write_key = events_service.create_source(session, name="Shop", channel="web")
        _source, app_write_key = events_service.create_source(session, name="App", channel="app")
    return {"api": make_key(database, Scope.write, name="storefront"), "write": write_key, "app_write": app_write_key}


@pytest.fixture
def settings(database, settings_for, keys):
    vapid = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return settings_for(database.url, storefront_api_key=keys["api"], storefront_write_key=keys["write"],
                        storefront_app_write_key=keys["app_write"], login_codes_reveal=True,
                        inbox_webpush_vapid_private_key=SecretStr(vapid), inbox_webpush_endpoint_hosts=["http://127.0.0.1"],
                        rate_limits={"shop_push": {"ip": 8}})


def post(client, path: str, body, origin: str | None = ORIGIN, **headers):
    return client.post(path, json=body, headers={**({"Origin": origin} if origin else {}), **headers})


def subscriptions(client, headers, customer_id: int) -> list[dict]:
    response = client.get("/v1/channels/webpush/subscriptions", params={"customer_id": customer_id}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _marketing_consents(client, headers, customer_id: int) -> dict[str, bool]:
    consents = client.get(f"/v1/customers/{customer_id}/consents", headers=headers).json()
    return {c["channel"]: c["granted"] for c in consents if c["purpose"] == "marketing" and c["channel"] in ("web_push", "push")}


def test_the_account_page_offers_notifications_with_the_vapid_key(client, settings):
    log_in(client, PHONE)
    page = client.get("/shop/account")
    assert page.status_code == 200 and 'data-test="push-notify"' in page.text
    assert f'data-key="{public_key(settings)}"' in page.text and 'data-sw="/shop/sw.js"' in page.text
    assert "Получать уведомления" in page.text
    assert "Notify me" in client.get("/shop/account?lang=en").text
    worker = client.get("/shop/sw.js")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("application/javascript")
    assert worker.headers["service-worker-allowed"] == "/shop/" and "showNotification" in worker.text
    assert client.get("/app/sw.js").headers["service-worker-allowed"] == "/app/"


def test_without_web_push_there_is_no_control(database, settings_for, keys):
    plain = settings_for(database.url, storefront_api_key=keys["api"], storefront_write_key=keys["write"], login_codes_reveal=True)
    with TestClient(create_app(plain, database=database)) as client:
        log_in(client, PHONE)
        page = client.get("/shop/account")
    assert page.status_code == 200 and 'data-test="push-notify"' not in page.text


def test_a_subscription_is_registered_for_the_logged_in_customer_only(client, write_headers, service):
    browser = service.subscribe()
    refused = post(client, "/shop/push/subscription", browser.as_json())
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "login_required"
    log_in(client, PHONE)
    anna = client.get("/v1/customers/lookup", params={"phone": PHONE}, headers=write_headers).json()["id"]
    boris = client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": "boris@example.com"}]},
                        headers=write_headers).json()["customer"]["id"]

    # Another site's page cannot post with the visitor's cookie (SameSite=Lax keeps it from
    # cross-site posts; the Origin check keeps it from same-site ones and from clients that send none).
    for origin in ("https://evil.example", None):
        cross = post(client, "/shop/push/subscription", browser.as_json(), origin=origin)
        assert cross.status_code == 403 and cross.json()["error"]["code"] == "cross_site_request"
    as_form = client.post("/shop/push/subscription", data={"endpoint": browser.endpoint}, headers={"Origin": ORIGIN})
    assert as_form.status_code == 415
    # The page cannot name whose subscription it is.
    claimed = post(client, "/shop/push/subscription", {**browser.as_json(), "customer_id": boris})
    assert claimed.status_code == 422
    assert subscriptions(client, write_headers, boris) == []

    done = post(client, "/shop/push/subscription", browser.as_json(), **{"User-Agent": "Mozilla/5.0 Chrome/140"})
    assert done.status_code == 200, done.text
    [row] = subscriptions(client, write_headers, anna)
    assert row["id"] == done.json()["id"] and row["endpoint"] == browser.endpoint and row["user_agent"] == "Mozilla/5.0 Chrome/140"
    assert _marketing_consents(client, write_headers, anna) == {}  # the browser's permission is for her orders
    again = post(client, "/shop/push/subscription", {**browser.as_json(), "offers": True})  # "also offers" ticked
    assert again.json()["id"] == row["id"] and len(subscriptions(client, write_headers, anna)) == 1
    assert _marketing_consents(client, write_headers, anna) == {"web_push": True}
    bad = post(client, "/shop/push/subscription", {**browser.as_json(), "endpoint": "https://169.254.169.254/x"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "endpoint_not_allowed"
    limited = post(client, "/shop/push/subscription", browser.as_json())  # the ninth this minute from this address
    assert limited.status_code == 429 and limited.headers["retry-after"]


def test_the_app_shell_registers_its_fcm_token(client, write_headers):
    log_in(client, PHONE, look="app")
    anna = client.get("/v1/customers/lookup", params={"phone": PHONE}, headers=write_headers).json()["id"]
    token = "cF1a2b3c4d:APA91bTestTokenFromTheNativeShell"
    done = post(client, "/app/push/device", {"token": token, "platform": "ios"})
    assert done.status_code == 200, done.text
    [device] = client.get("/v1/channels/mobilepush/devices", params={"customer_id": anna}, headers=write_headers).json()["items"]
    assert device["id"] == done.json()["id"] and device["platform"] == "ios"
    assert post(client, "/app/push/device", {"token": token, "platform": "ios", "offers": True}).status_code == 200
    assert _marketing_consents(client, write_headers, anna) == {"push": True}
    assert post(client, "/app/push/device", {"token": token, "platform": "ios", "customer_id": 1}).status_code == 422
    assert post(client, "/app/push/device", {"token": token, "platform": "ios"}, origin="https://evil.example").status_code == 403
