"""The demo's marketing story end to end, with real protocol peers: a cart left on the website,
the ready-made abandoned-cart journey (no channel named) reminds by web push (delivered to a
loopback push service that checks the VAPID signature and decrypts the payload) and by email
(delivered to an SMTP server, with one-click unsubscribe headers); the push's link is a tracked
click that opens the cart; the purchase in the app stops the journey and counts as its
conversion, in the journey's results."""

from __future__ import annotations

import email
import json
from datetime import timedelta
from email import policy
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from seamline.app import create_app
from seamline.core.time import utcnow
from seamline.events import service as events_service
from seamline.events.models import EventRecord
from seamline.inbox import delivery
from tests.channels.email.test_adapter import smtp  # noqa: F401 - a fixture: a real SMTP server (aiosmtpd)
from tests.channels.webpush.test_adapter import SUBJECT, service, vapid_pem  # noqa: F401 - `service`: the loopback push service
from tests.marketing.test_journeys import PICKUP, advance, live, sent_to
from tests.marketing.test_segments_api import react, send


@pytest.fixture
def settings(database, settings_for, smtp, service):
    return settings_for(database.url, inbox_smtp_host="127.0.0.1", inbox_smtp_port=smtp[1], inbox_smtp_security="none",
                        inbox_email_address="shop@example.com", marketing_quiet_hours="", marketing_cap_messages=0,
                        marketing_public_url="https://shop.example", inbox_webpush_vapid_private_key=SecretStr(vapid_pem()[0]),
                        inbox_webpush_vapid_subject=SUBJECT, inbox_webpush_endpoint_hosts=["http://127.0.0.1"])


@pytest.fixture
def client(settings, database):
    with TestClient(create_app(settings, database=database)) as test_client:
        yield test_client


def test_a_cart_left_on_the_website_is_reminded_by_push_and_email_and_the_app_purchase_converts(
        client, database, settings, shop, marketer, smtp, service):  # noqa: F811
    from tests.commerce.conftest import put

    put(client, shop["headers"], "/v1/promotions/COMEBACK10", {"name_ru": "Скидка 10%", "name_en": "10% off", "kind": "percent",
                                                               "value": 10, "requires_coupon": True})
    journey = client.post("/v1/marketing/journeys/from-template", headers=marketer,
                          json={"template": "abandoned_cart", "promotion": "COMEBACK10"}).json()
    assert [s["id"] for s in journey["definition"]["steps"]][:4] == ["wait_1h", "still_in_cart", "remind_push", "remind"]
    assert client.post(f"/v1/marketing/journeys/{journey['id']}/start", headers=marketer).status_code == 200

    anna = client.post("/v1/customers", headers=shop["headers"], json={
        "identifiers": [{"type": "user_id", "value": "anna"}, {"type": "email", "value": "anna@example.com"}],
        "traits": {"first_name": "Анна", "latitude": 55.7620, "longitude": 37.6090},  # near the Tverskaya store
        "consents": [{"channel": "email", "purpose": "marketing", "granted": True},
                     {"channel": "web_push", "purpose": "marketing", "granted": True}]}).json()["customer"]["id"]
    browser = service.subscribe()  # "Notify me" in the shop: the shop's server registers her browser
    registered = client.post("/v1/channels/webpush/subscriptions", headers=shop["headers"],
                             json={"customer_id": anna, "subscription": browser.as_json()})
    assert registered.status_code == 201, registered.text

    # On the website: two creams into the cart, and the website's backend tells Seamline
    assert client.put("/v1/carts/current/lines/CREAM-50", headers=shop["headers"], params={"customer_id": anna},
                      json={"quantity": 2, "channel": "web"}).status_code == 200
    with database.write() as session:
        _source, website = events_service.create_source(session, name="Website backend", channel="web", server_side=True)
    send(client, website, "track", userId="anna", event="Product Added", properties={"sku": "CREAM-50"})
    react(client)
    now = utcnow()
    advance(client, at=now + timedelta(minutes=61))

    push_message, mail_message = sent_to(client, anna)
    assert (push_message.channel, mail_message.channel) == ("webpush", "email")
    assert delivery.send_due(database, settings=settings) == 2

    assert service.problems == []
    [push] = service.received
    assert push.endpoint == browser.endpoint
    assert push.payload["title"] == "Вы кое-что оставили в корзине" and push.payload["body"].startswith("Анна, товары ждут вас:")
    tracked = urlsplit(push.payload["url"])
    assert (tracked.scheme, tracked.netloc) == ("https", "shop.example") and tracked.path.startswith("/t/c/")

    [raw] = smtp[0].received
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert mail["To"] == "anna@example.com" and mail["Subject"] == "Вы кое-что оставили в корзине"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and "https://shop.example/u/" in mail["List-Unsubscribe"]
    assert "Крем для лица" in mail.get_body(("plain",)).get_content()
    assert "Всё есть в магазине «Тверская» (Тверская ул., 10)" in mail.get_body(("plain",)).get_content()  # holds both creams
    assert "<p>Всё есть в магазине «Тверская»" in mail.get_body(("html",)).get_content()

    # She taps the notification: a click, and on to her cart
    opened = client.get(tracked.path, follow_redirects=False)
    assert opened.status_code in (302, 303, 307) and "/cart" in opened.headers["location"]

    # ... and pays in the app: the journey ends there, converted by that order
    order = client.post("/v1/carts/current/checkout", params={"customer_id": anna},
                        headers={**shop["headers"], "Idempotency-Key": "app-1"}, json={"channel": "app", "fulfilment": PICKUP})
    assert order.status_code == 201, order.text
    react(client)
    done = live(client, journey["id"])
    assert (done.status, done.exit_reason, done.conversion_order_id) == ("done", "goal", order.json()["id"])
    advance(client, at=now + timedelta(days=2))
    assert len(sent_to(client, anna)) == 2  # no coupon after she bought

    results = client.get(f"/v1/marketing/journeys/{journey['id']}/results", headers=marketer).json()
    assert results["summary"] | {"rate": None} == {"entered": 1, "in_journey": 0, "converted": 1,
                                                  "revenue": order.json()["total"], "rate": None}
    sends = {s["step_id"]: s for s in results["sends"]}
    assert sends["remind_push"]["queued"] == sends["remind"]["queued"] == 1
    # taken by the push service and the SMTP server (neither reports receipts: none is "delivered")
    assert [(sends[s]["sent"], sends[s]["delivered"], sends[s]["clicked"]) for s in ("remind_push", "remind")] == [(1, 0, 1), (1, 0, 0)]
    with database.read() as session:  # the click is on her timeline
        clicks = session.scalars(select(EventRecord.payload).where(EventRecord.person == "u:anna",
                                                                      EventRecord.name == "Message Clicked")).all()
    assert [json.loads(click)["properties"]["channel"] for click in clicks] == ["webpush"]
