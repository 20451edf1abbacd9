"""Journeys end to end through the API: the abandoned cart (a reminder with the cart's lines,
then a personal coupon; an order in another channel stops it and counts as a conversion), and
the engine's guarantees (each step once, waits in the person's time zone, pauses, versions)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from seamline.commerce.models import CommerceCoupon
from seamline.core.time import utcnow
from seamline.inbox.models import InboxMessage
from seamline.marketing.journeys import engine
from seamline.marketing.journeys.models import MarketingEnrollment
from seamline.marketing.messages.models import MarketingMessage
from tests.commerce.conftest import put
from tests.marketing.test_segments_api import react, send

PICKUP = {"kind": "click_and_collect", "location": "store-arbat"}


def anna(client, headers, *, consent: bool = True, **traits) -> int:
    response = client.post("/v1/customers", headers=headers, json={
        "identifiers": [{"type": "user_id", "value": "anna"}, {"type": "email", "value": "anna@example.com"}],
        "traits": {"first_name": "Анна", **traits},
        "consents": [{"channel": "email", "purpose": "marketing", "granted": consent}]})
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def advance(client, *, at) -> int:
    app = client.app
    return app.state.database.run_write(lambda s: engine.advance_due(s, settings=app.state.settings, now=at))


def live(client, journey_id: int) -> MarketingEnrollment | None:
    with client.app.state.database.read() as s:
        return s.scalar(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey_id).order_by(MarketingEnrollment.id.desc()))


def sent_to(client, customer_id: int) -> list[InboxMessage]:
    with client.app.state.database.read() as s:
        ids = s.scalars(select(MarketingMessage.inbox_message_id).where(MarketingMessage.profile_id == customer_id,
                                                                         MarketingMessage.status == "queued")).all()
        return list(s.scalars(select(InboxMessage).where(InboxMessage.id.in_(ids)).order_by(InboxMessage.id)))


def abandoned_cart(client, shop, marketer) -> dict:
    put(client, shop["headers"], "/v1/promotions/COMEBACK10", {"name_ru": "Скидка 10%", "name_en": "10% off", "kind": "percent",
                                                               "value": 10, "requires_coupon": True})
    created = client.post("/v1/marketing/journeys/from-template", headers=marketer,
                          json={"template": "abandoned_cart", "promotion": "COMEBACK10", "channel": "email"})
    assert created.status_code == 201, created.text
    journey = created.json()
    assert journey["status"] == "draft" and journey["template"] == "abandoned_cart"
    started = client.post(f"/v1/marketing/journeys/{journey['id']}/start", headers=marketer)
    assert started.status_code == 200 and started.json()["status"] == "active"
    return journey


def leave_cart(client, shop, server_key, customer_id: int) -> None:
    response = client.put("/v1/carts/current/lines/CREAM-50", headers=shop["headers"], params={"customer_id": customer_id},
                          json={"quantity": 2, "channel": "web"})
    assert response.status_code == 200, response.text
    send(client, server_key, "track", userId="anna", event="Product Added", properties={"sku": "CREAM-50"})
    react(client)


def test_abandoned_cart_reminds_then_a_purchase_in_the_app_converts(client, shop, marketer, server_key):
    journey = abandoned_cart(client, shop, marketer)
    customer_id = anna(client, shop["headers"])
    leave_cart(client, shop, server_key, customer_id)
    enrollment = live(client, journey["id"])  # entered, and the advance job the reactor queued started the wait
    assert enrollment is not None and enrollment.step_id == "still_in_cart"
    assert timedelta(minutes=59) < enrollment.wake_at - enrollment.entered_at <= timedelta(minutes=61)
    now = utcnow()
    assert advance(client, at=now + timedelta(minutes=30)) == 0  # not yet
    advance(client, at=now + timedelta(minutes=61))
    reminder, = sent_to(client, customer_id)
    assert reminder.channel == "email" and reminder.delivery_status == "queued"
    assert reminder.meta["subject"] == "Вы кое-что оставили в корзине" and reminder.meta["purpose"] == "marketing"
    assert "Анна, товары ждут вас" in reminder.text and "Крем для лица" in reminder.text and "3\xa0980,00\xa0₽" in reminder.text
    assert "https://cdn.example/cream.jpg" in reminder.html
    assert live(client, journey["id"]).step_id == "coupon"

    # Anna pays in the app: her journey ends, converted by that order
    order = client.post("/v1/carts/current/checkout", params={"customer_id": customer_id},
                        headers={**shop["headers"], "Idempotency-Key": "app-1"}, json={"channel": "app", "fulfilment": PICKUP})
    assert order.status_code == 201, order.text
    react(client)
    done = live(client, journey["id"])
    assert (done.status, done.exit_reason, done.conversion_order_id) == ("done", "goal", order.json()["id"])
    assert done.conversion_revenue == order.json()["total"]
    advance(client, at=now + timedelta(days=2))
    assert len(sent_to(client, customer_id)) == 1  # no coupon after she bought

    state = client.get(f"/v1/marketing/enrollments/{done.id}", headers=marketer).json()
    assert [s["step_id"] for s in state["steps"]] == ["wait_1h", "still_in_cart", "remind", "wait_24h"]
    counts = client.get(f"/v1/marketing/journeys/{journey['id']}", headers=marketer).json()["counts"]
    assert counts == {"in_journey": 0, "at_step": {}, "left": {"goal": 1}}


def test_no_purchase_gives_a_personal_coupon_once(client, shop, marketer, server_key):
    journey = abandoned_cart(client, shop, marketer)
    customer_id = anna(client, shop["headers"], locale="en")
    leave_cart(client, shop, server_key, customer_id)
    now = utcnow()
    for minutes in (0, 61, 60 * 26, 60 * 26):  # the last pass finds nothing left to do
        advance(client, at=now + timedelta(minutes=minutes))
    reminder, coupon_message = sent_to(client, customer_id)
    assert reminder.meta["subject"] == "You left something in your cart"
    with client.app.state.database.read() as s:
        coupon = s.scalar(select(CommerceCoupon).where(CommerceCoupon.profile_id == customer_id))
    assert coupon is not None and coupon.usage_limit == 1 and coupon.code in coupon_message.text
    done = live(client, journey["id"])
    assert (done.status, done.exit_reason) == ("done", "completed")
    # the coupon is Anna's alone
    boris = client.post("/v1/customers", headers=shop["headers"], json={"identifiers": [{"type": "user_id", "value": "boris"}]}).json()
    quote = client.post("/v1/pricing/quote", headers=shop["headers"], json={"channel": "web",
        "customer_id": boris["customer"]["id"], "lines": [{"sku": "CREAM-50", "quantity": 1}], "coupons": [coupon.code]}).json()
    assert quote["rejected_coupons"] == [{"code": coupon.code, "reason": "the coupon is another customer's"}]
    mine = client.post("/v1/pricing/quote", headers=shop["headers"], json={"channel": "web",
        "customer_id": customer_id, "lines": [{"sku": "CREAM-50", "quantity": 1}], "coupons": [coupon.code]}).json()
    assert mine["rejected_coupons"] == [] and mine["discount"] == 19900


def test_without_consent_nothing_is_sent_and_the_skip_is_recorded(client, shop, marketer, server_key):
    journey = abandoned_cart(client, shop, marketer)
    customer_id = anna(client, shop["headers"], consent=False)
    leave_cart(client, shop, server_key, customer_id)
    now = utcnow()
    advance(client, at=now)
    advance(client, at=now + timedelta(minutes=61))
    assert sent_to(client, customer_id) == []
    state = client.get(f"/v1/marketing/enrollments/{live(client, journey['id']).id}", headers=marketer).json()
    remind = next(step for step in state["steps"] if step["step_id"] == "remind")
    assert remind["outcome"]["status"] == "skipped" and remind["outcome"]["reason"] == "no_marketing_consent"
