"""Web push through the inbox's outbound send, against a loopback push service that checks the
VAPID signature and decrypts what it gets with the subscriber's own keys (push_service.py):
the payload read back is exactly what was sent. Subscriptions are registered by a write key
only; 410 revokes, 429 is retried, merged profiles and erasure are followed."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update

from seamline.app import create_app
from seamline.channels.webpush import adapter as webpush
from seamline.channels.webpush.models import WebPushSubscription
from seamline.core.auth.schemas import Scope
from seamline.core.queue.models import Job
from seamline.core.time import utcnow
from seamline.inbox import delivery
from tests.channels.webpush.push_service import PushService, b64url
from tests.conftest import make_key
from tests.inbox.conftest import pause_over

SUBJECT = "mailto:push@shop.example"


def vapid_pem() -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode(), key


@pytest.fixture
def service():
    push_service = PushService()
    yield push_service
    push_service.close()


@pytest.fixture
def vapid():
    return vapid_pem()


@pytest.fixture
def push_settings(settings, service, vapid):
    return settings.model_copy(update={
        "inbox_webpush_vapid_private_key": SecretStr(vapid[0]), "inbox_webpush_vapid_subject": SUBJECT,
        "inbox_webpush_endpoint_hosts": ["http://127.0.0.1"], "inbox_webpush_ttl_seconds": 3600,
        "delivery_backoff_seconds": 30.0})


@pytest.fixture
def client(push_settings, database):
    with TestClient(create_app(push_settings, database=database)) as test_client:
        yield test_client


def customer(client, headers, email: str) -> int:
    response = client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": email}]}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["customer"]["id"]


def subscribe(client, headers, customer_id: int, subscriber, expect: int = 201, **extra) -> dict:
    response = client.post("/v1/channels/webpush/subscriptions", json={
        "customer_id": customer_id, "subscription": subscriber.as_json(), **extra}, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def send(client, headers, customer_id: int, text: str, expect: int = 201, **extra) -> dict:
    response = client.post("/v1/inbox/outbound", json={"customer_id": customer_id, "text": text, "channel": "webpush", **extra},
                           headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def time_passes(database) -> None:
    """The channel's pause and every send's backoff are over."""
    pause_over(database)
    with database.write() as session:
        session.execute(update(Job).where(Job.task == "inbox.send").values(run_at=utcnow()))


def status_of(client, headers, message_id: int) -> dict:
    return client.get(f"/v1/inbox/outbound/{message_id}", headers=headers).json()


def test_the_vapid_public_key_is_derived_from_pem_or_raw(client, settings, vapid):
    pem, key = vapid
    expected = b64url(key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    answer = client.get("/v1/channels/webpush/vapid-public-key")  # public: no key
    assert answer.status_code == 200 and answer.json() == {"public_key": expected}
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    for given in (pem, raw, pem.replace("\n", "\\n")):  # an environment variable often holds the PEM on one line
        assert webpush.public_key(settings.model_copy(update={"inbox_webpush_vapid_private_key": SecretStr(given)})) == expected
    assert len(base64.urlsafe_b64decode(expected + "=")) == 65  # the uncompressed point applicationServerKey takes
    assert webpush.ADAPTER.configured(settings) is False  # no key: off
    assert webpush.ADAPTER.configured(settings.model_copy(update={"inbox_webpush_vapid_private_key": SecretStr("not a key")})) is False


def test_the_vapid_public_key_answers_409_when_web_push_is_off(database, settings):
    with TestClient(create_app(settings, database=database)) as plain:
        answer = plain.get("/v1/channels/webpush/vapid-public-key")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "channel_not_configured"


def test_a_push_reaches_the_browser_signed_and_encrypted(client, write_headers, admin_headers, database, push_settings,
                                                         service, vapid):
    anna = customer(client, write_headers, "anna@example.com")
    browser = service.subscribe()
    subscribe(client, write_headers, anna, browser, user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/140")
    sent = send(client, write_headers, anna, "Ваш заказ 1042 готов к выдаче", push={
        "title": "Заказ готов", "url": "https://shop.example/orders/1042", "icon": "/shop-static/icon.png",
        "tag": "order-1042", "urgency": "high"})
    assert sent["channel"] == "webpush" and sent["delivery_status"] == "queued"
    assert delivery.send_due(database, settings=push_settings) == 1
    assert service.problems == []
    [push] = service.received
    assert push.endpoint == browser.endpoint
    assert push.payload == {"title": "Заказ готов", "body": "Ваш заказ 1042 готов к выдаче",
                            "url": "https://shop.example/orders/1042", "icon": "/shop-static/icon.png", "tag": "order-1042"}
    assert push.claims["aud"] == service.origin and push.claims["sub"] == SUBJECT
    assert push.vapid_key == webpush.public_key(push_settings)  # signed with the key the browser subscribed with
    assert push.headers["ttl"] == "3600" and push.headers["urgency"] == "high" and push.headers["topic"] == "order-1042"
    assert status_of(client, write_headers, sent["id"])["delivery_status"] == "sent"

    # Without push options: the default title, no url; the urgency of the settings.
    second = send(client, write_headers, anna, "Спасибо за покупку!")
    delivery.send_due(database, settings=push_settings)
    assert service.received[-1].payload == {"title": "Seamline", "body": "Спасибо за покупку!", "url": None, "icon": None,
                                            "tag": None}
    assert service.received[-1].headers["urgency"] == "normal" and "topic" not in service.received[-1].headers
    assert status_of(client, write_headers, second["id"])["delivery_status"] == "sent"


def test_a_long_text_is_cut_to_fit_one_push(client, write_headers, database, push_settings, service):
    anna = customer(client, write_headers, "anna@example.com")
    subscribe(client, write_headers, anna, service.subscribe())
    send(client, write_headers, anna, "Очень длинный текст. " * 190)  # about 7 KB of UTF-8
    delivery.send_due(database, settings=push_settings)
    [push] = service.received
    assert push.payload["body"].endswith("…") and push.payload["body"].startswith("Очень длинный текст.")
    assert webpush.MAX_PLAINTEXT - 10 < len(push.plaintext) <= webpush.MAX_PLAINTEXT  # one push holds at most 4096 bytes


def test_a_gone_browser_is_revoked_and_the_others_still_get_it(client, write_headers, admin_headers, database, push_settings,
                                                               service):
    anna = customer(client, write_headers, "anna@example.com")
    laptop, phone = service.subscribe(), service.subscribe()
    old = subscribe(client, write_headers, anna, laptop)
    subscribe(client, write_headers, anna, phone)
    service.fixed[laptop.endpoint] = (410, {})  # the browser unsubscribed
    sent = send(client, write_headers, anna, "Скидка 10% до воскресенья", purpose="service")
    delivery.send_due(database, settings=push_settings)
    assert [p.endpoint for p in service.received] == [phone.endpoint]
    view = status_of(client, write_headers, sent["id"])
    assert view["delivery_status"] == "sent"
    listed = {s["id"]: s for s in client.get("/v1/channels/webpush/subscriptions", params={"customer_id": anna},
                                              headers=write_headers).json()["items"]}
    assert listed[old["id"]]["revoked_at"] is not None and "410" in listed[old["id"]]["revoked_reason"]

    # The last one goes too: the message fails for good (a dead letter), nothing left to reach.
    service.fixed[phone.endpoint] = (404, {})
    last = send(client, write_headers, anna, "Последнее")
    delivery.send_due(database, settings=push_settings)
    failed = status_of(client, write_headers, last["id"])
    assert failed["delivery_status"] == "failed" and failed["attempts"] == 1 and "unsubscribed" in failed["error"]
    dead = client.get("/v1/inbox/dead-letters", params={"channel": "webpush"}, headers=admin_headers).json()["items"]
    assert [m["id"] for m in dead] == [last["id"]]
    refused = send(client, write_headers, anna, "Ещё?", expect=422)
    assert refused["error"]["code"] == "customer_unreachable"
    assert refused["error"]["details"]["reasons"]["webpush"] == "channel_unreachable"


def test_429_is_retried_after_the_services_retry_after(client, write_headers, admin_headers, database, push_settings, service):
    anna = customer(client, write_headers, "anna@example.com")
    subscribe(client, write_headers, anna, service.subscribe())
    service.answers = [(429, {"Retry-After": "120"})]
    sent = send(client, write_headers, anna, "Заказ передан в доставку")
    delivery.send_due(database, settings=push_settings)
    waiting = status_of(client, write_headers, sent["id"])
    assert waiting["delivery_status"] == "queued" and "429" in waiting["error"] and waiting["attempts"] == 1
    channel = next(c for c in client.get("/v1/inbox/channels", headers=admin_headers).json()["items"] if c["channel"] == "webpush")
    assert channel["paused_until"] is not None and channel["failures"] == 1
    assert delivery.send_due(database, settings=push_settings) == 0 and service.received == []  # paused: not sent
    time_passes(database)
    delivery.send_due(database, settings=push_settings)
    assert [p.payload["body"] for p in service.received] == ["Заказ передан в доставку"]
    assert status_of(client, write_headers, sent["id"])["delivery_status"] == "sent"


def test_registration_is_idempotent_and_the_newest_owner_wins(client, write_headers, database):
    anna, boris = customer(client, write_headers, "anna@example.com"), customer(client, write_headers, "boris@example.com")
    service = PushService()
    try:
        browser = service.subscribe()
    finally:
        service.close()
    first = subscribe(client, write_headers, anna, browser)
    again = subscribe(client, write_headers, anna, browser, expect=200)
    assert again["id"] == first["id"] and again["customer_id"] == anna
    moved = subscribe(client, write_headers, boris, browser, expect=200, user_agent="Firefox")
    assert moved["id"] == first["id"] and moved["customer_id"] == boris and moved["user_agent"] == "Firefox"
    mine = client.get("/v1/channels/webpush/subscriptions", params={"customer_id": anna}, headers=write_headers).json()["items"]
    assert mine == []  # the laptop changed hands: Anna's notifications no longer go there
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(WebPushSubscription)) == 1

    removed = client.delete(f"/v1/channels/webpush/subscriptions/{first['id']}", headers=write_headers)
    assert removed.status_code == 204
    [row] = client.get("/v1/channels/webpush/subscriptions", params={"customer_id": boris}, headers=write_headers).json()["items"]
    assert row["revoked_at"] is not None and row["revoked_reason"] == "removed"
    assert subscribe(client, write_headers, boris, browser, expect=200)["revoked_at"] is None  # subscribed again: live
    missing = client.delete("/v1/channels/webpush/subscriptions/999999", headers=write_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "subscription_not_found"


def test_only_a_trusted_server_attaches_a_subscription(client, write_headers, database, write_key, service):
    """The browser's write key is public: whoever holds it could claim Anna's user id and have her
    notifications sent to their own browser. Only a server's write key attaches a subscription."""
    anna = customer(client, write_headers, "anna@example.com")
    client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": "anna@example.com"},
                                                       {"type": "user_id", "value": "anna-1"}]}, headers=write_headers)
    attacker = service.subscribe()
    body = {"customer_id": anna, "subscription": attacker.as_json()}
    as_browser = client.post("/v1/channels/webpush/subscriptions", json=body, headers={"Authorization": f"Bearer {write_key}"})
    assert as_browser.status_code == 403 and as_browser.json()["error"]["code"] == "insufficient_scope"  # a `track` key
    claimed = client.post("/v1/channels/webpush/subscriptions",
                          json={"writeKey": write_key, "userId": "anna-1", "subscription": attacker.as_json()})
    assert claimed.status_code == 401 and claimed.json()["error"]["code"] == "missing_api_key"
    read_only = client.post("/v1/channels/webpush/subscriptions", json=body,
                            headers={"Authorization": f"Bearer {make_key(database, Scope.read)}"})
    assert read_only.status_code == 403 and read_only.json()["error"]["code"] == "insufficient_scope"
    with_claim = client.post("/v1/channels/webpush/subscriptions", json={**body, "userId": "anna-1"}, headers=write_headers)
    assert with_claim.status_code == 422  # a server says whose it is by customer id, nothing else
    assert client.get("/v1/channels/webpush/subscriptions", params={"customer_id": anna}, headers=write_headers).json()["items"] == []


def test_endpoints_and_keys_are_checked(client, write_headers, service):
    anna = customer(client, write_headers, "anna@example.com")
    browser = service.subscribe()
    for endpoint in ("https://169.254.169.254/latest/meta-data", "http://localhost:8000/v1/customers",
                     "https://fcm.googleapis.com.evil.example/x", "ftp://127.0.0.1/x"):
        response = client.post("/v1/channels/webpush/subscriptions", json={
            "customer_id": anna, "subscription": {**browser.as_json(), "endpoint": endpoint}}, headers=write_headers)
        assert response.status_code == 422, endpoint
        assert response.json()["error"]["code"] in ("endpoint_not_allowed", "validation_error"), response.text
    bad_key = {**browser.as_json()["keys"], "p256dh": b64url(b"\x04" + b"\x01" * 64)}  # not a point on P-256
    response = client.post("/v1/channels/webpush/subscriptions", json={
        "customer_id": anna, "subscription": {**browser.as_json(), "keys": bad_key}}, headers=write_headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_subscription_keys"
    assert webpush.endpoint_allowed("https://fcm.googleapis.com/fcm/send/abc", ["fcm.googleapis.com"])
    assert webpush.endpoint_allowed("https://wns2-par02p.notify.windows.com/w/?token=x", ["*.notify.windows.com"])
    assert not webpush.endpoint_allowed("http://fcm.googleapis.com/fcm/send/abc", ["fcm.googleapis.com"])
    assert not webpush.endpoint_allowed("https://user:pw@fcm.googleapis.com/x", ["fcm.googleapis.com"])
    unknown = client.post("/v1/channels/webpush/subscriptions", json={"customer_id": 999999, "subscription": browser.as_json()},
                          headers=write_headers)
    assert unknown.status_code == 404


def test_the_person_is_reached_across_merged_profiles_and_erasure_removes_it(client, write_headers, admin_headers, database,
                                                                             push_settings, service):
    phone_profile = client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": "+79161234567"}]},
                                headers=write_headers).json()["customer"]["id"]
    anna = customer(client, write_headers, "anna@example.com")
    subscribe(client, write_headers, phone_profile, service.subscribe())
    merged = client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": "anna@example.com"},
                                                                {"type": "phone", "value": "+79161234567"}]},
                         headers=write_headers).json()
    assert merged["merged_customer_ids"]
    survivor = merged["customer"]["id"]
    assert survivor in (anna, phone_profile)
    send(client, write_headers, survivor, "Вам начислено 120 баллов")
    delivery.send_due(database, settings=push_settings)
    assert [p.payload["body"] for p in service.received] == ["Вам начислено 120 баллов"]

    export = client.get(f"/v1/customers/{survivor}/export", headers=admin_headers).json()
    [exported] = export["sections"]["webpush_subscriptions"]
    assert exported["endpoint"] == service.received[0].endpoint
    erased = client.post(f"/v1/customers/{survivor}/erase", json={"reason": "request"}, headers=admin_headers)
    assert erased.status_code in (200, 201), erased.text
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(WebPushSubscription)) == 0


def test_consent_rules_web_push_out(client, write_headers, database, push_settings, service):
    anna = customer(client, write_headers, "anna@example.com")
    subscribe(client, write_headers, anna, service.subscribe())
    promo = send(client, write_headers, anna, "Скидки недели", purpose="marketing", expect=409)
    assert promo["error"]["code"] == "no_marketing_consent"
    consent = client.post(f"/v1/customers/{anna}/consents", json=[{"channel": "web_push", "purpose": "service", "granted": False}],
                          headers=write_headers)
    assert consent.status_code in (200, 201), consent.text
    withdrawn = send(client, write_headers, anna, "Заказ готов", expect=409)
    assert withdrawn["error"]["code"] == "consent_withdrawn"
