"""Payments through the API: the test and pay-on-pickup providers, the webhook provider against
a payment service on loopback (signed notifications, replay protection, deduplication, amount
checks, events out of order), and the payment ledger in the order view."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, select

from seamline.commerce import orders as order_service
from seamline.commerce import payments
from seamline.commerce.models import (
    CommercePayment,
    CommercePaymentEvent,
    CommercePaymentTransaction,
)
from seamline.commerce.payment_providers import (
    format_amount,
    parse_amount,
    sign_webhook,
)
from seamline.core.time import utcnow
from tests.commerce import fake_psp
from tests.commerce.fake_psp import SECRET, notification, send
from tests.commerce.test_orders import click_and_collect, order

psp = fake_psp.psp  # the payment service fixture


def ledger(client, headers, order_id: int) -> dict:
    response = client.get(f"/v1/orders/{order_id}/payments", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def counts(database) -> tuple[int, int, int]:
    with database.read() as session:
        return tuple(session.scalar(select(func.count()).select_from(model))
                     for model in (CommercePayment, CommercePaymentTransaction, CommercePaymentEvent))


def webhook_order(client, headers) -> dict:
    placed = order(client, headers, {**click_and_collect("store-arbat", ("CREAM-50", 1)), "payment_method": "webhook"})
    assert placed["status"] == "pending_payment"
    return placed


def start(client, headers, order_id: int, expect: int = 200) -> dict:
    response = client.post(f"/v1/orders/{order_id}/payments", json={"channel": "web"}, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def test_amounts_in_provider_format():
    assert format_amount(199000, "RUB") == "1990.00" and format_amount(5, "RUB") == "0.05"
    assert format_amount(1990, "JPY") == "1990" and format_amount(1990, "KWD") == "1.990"
    assert parse_amount("1990.00", "RUB") == 199000 and parse_amount("0.5", "RUB") == 50
    for bad in ("1.001", "-1.00", "abc", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            parse_amount(bad, "RUB")


def test_the_test_provider_pays_through_the_ledger(client, shop):
    headers = shop["headers"]
    placed = order(client, headers, {**click_and_collect("store-tverskaya", ("CREAM-50", 2)), "payment_method": "test"})
    assert placed["payment"] == {"status": "unpaid", "captured": 0, "refunded": 0, "paid": 0, "payments": []}
    paid = client.post(f"/v1/orders/{placed['id']}/pay", json={"channel": "app"}, headers=headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "confirmed"
    assert paid.json()["payment"]["status"] == "paid" and paid.json()["payment"]["paid"] == 2 * 199000
    again = client.post(f"/v1/orders/{placed['id']}/pay", json={}, headers=headers)
    assert again.status_code == 200 and again.json()["history"] == paid.json()["history"]
    books = ledger(client, headers, placed["id"])
    assert [t["kind"] for p in books["payments"] for t in p["transactions"]] == ["capture"]
    assert books["payments"][0]["provider"] == "test" and books["payments"][0]["status"] == "succeeded"

    on_pickup = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1)))
    wrong = client.post(f"/v1/orders/{on_pickup['id']}/pay", json={}, headers=headers)
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "wrong_payment_provider"
    at_till = client.post(f"/v1/orders/{on_pickup['id']}/payments", json={}, headers=headers)
    assert at_till.status_code == 409 and at_till.json()["error"]["code"] == "paid_at_pickup"
    assert client.post("/v1/orders/999999/pay", json={}, headers=headers).status_code == 404


def test_pay_on_pickup_is_captured_at_the_till_at_handover(client, shop):
    headers = shop["headers"]
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2)))
    assert placed["status"] == "confirmed" and placed["payment"]["status"] == "unpaid"
    client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=headers)
    done = client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"},
                       headers=headers).json()
    assert done["status"] == "completed"
    assert done["payment"]["status"] == "paid" and done["payment"]["captured"] == 2 * 199000
    books = ledger(client, headers, placed["id"])
    assert books["payments"][0]["provider"] == "on_pickup"
    assert [(t["kind"], t["amount"]) for t in books["payments"][0]["transactions"]] == [("capture", 2 * 199000)]


def test_a_method_that_is_not_configured_is_refused(client, shop):
    response = client.post("/v1/orders", json={**click_and_collect("store-arbat", ("CREAM-50", 1)), "payment_method": "webhook"},
                           headers=shop["headers"])
    assert response.status_code == 422 and response.json()["error"]["code"] == "payment_method_not_available"
    assert client.get("/v1/stock/CREAM-50", headers=shop["headers"]).json()[0]["reserved"] == 0


def test_webhook_provider_payment_from_start_to_confirmation(client, shop, psp, database):
    headers = shop["headers"]
    placed = webhook_order(client, headers)
    started = start(client, headers, placed["id"])
    payment = started["payments"][0]
    assert payment["status"] == "pending" and payment["provider_reference"] == "pay-1"
    assert payment["confirmation_url"] == "https://psp.example/confirm/pay-1"
    [call] = psp.calls("/v3/payments")
    assert call["body"]["amount"] == {"value": "1990.00", "currency": "RUB"} and call["body"]["capture"] is True
    assert call["body"]["metadata"] == {"order_id": str(placed["id"]), "payment_id": str(payment["id"])}
    assert call["body"]["confirmation"] == {"type": "redirect", "return_url": "https://shop.example/thanks"}
    assert call["headers"]["Idempotence-Key"] == f"order-{placed['id']}-payment-1"
    # starting again resumes the same payment and asks the provider nothing
    assert start(client, headers, placed["id"])["payments"] == started["payments"]
    assert len(psp.calls("/v3/payments")) == 1

    body = notification("payment.succeeded", id="pay-1", amount=(199000, "RUB"),
                        metadata={"order_id": str(placed["id"]), "payment_id": str(payment["id"])})
    response = send(client, body)
    assert response.status_code == 200 and response.json() == {"status": "applied"}
    view = client.get(f"/v1/orders/{placed['id']}", headers=headers).json()
    assert view["status"] == "confirmed" and view["history"][-1]["note"] == "paid: webhook"
    assert view["payment"]["status"] == "paid" and view["payment"]["captured"] == 199000

    before = counts(database)
    duplicate = send(client, body)  # the provider delivers again
    assert duplicate.status_code == 200 and duplicate.json() == {"status": "duplicate"}
    assert counts(database) == before
    books = ledger(client, headers, placed["id"])
    assert [t["kind"] for t in books["payments"][0]["transactions"]] == ["capture"]
    # a late cancellation of a captured payment changes nothing (a status never goes back)
    late = send(client, notification("payment.canceled", id="pay-1", amount=(199000, "RUB")))
    assert late.status_code == 200 and late.json() == {"status": "ignored"}
    assert ledger(client, headers, placed["id"])["payments"][0]["status"] == "succeeded"


@pytest.mark.parametrize(("case", "code"), [
    ("missing", "missing_signature"),
    ("wrong_secret", "invalid_signature"),
    ("tampered", "invalid_signature"),
    ("malformed", "invalid_signature"),
    ("stale", "stale_signature"),
    ("future", "stale_signature"),
])
def test_bad_signatures_are_refused_and_change_nothing(client, shop, psp, database, case, code):
    headers = shop["headers"]
    placed = webhook_order(client, headers)
    payment = start(client, headers, placed["id"])["payments"][0]
    body = orjson.dumps(notification("payment.succeeded", id=payment["provider_reference"], amount=(199000, "RUB")))
    now = int(time.time())
    before = counts(database)
    if case == "missing":
        response = send(client, body, header="")
    elif case == "wrong_secret":
        response = send(client, body, secret="whsec_someone_else")
    elif case == "tampered":
        response = send(client, body.replace(b"1990.00", b"1.00"), header=sign_webhook(SECRET, now, body))
    elif case == "malformed":
        response = send(client, body, header="v1=" + sign_webhook(SECRET, now, body).split("v1=")[1])
    elif case == "stale":  # well past the 300 s tolerance: a slow machine's second must not decide it
        response = send(client, body, timestamp=now - 330)
    else:
        response = send(client, body, timestamp=now + 330)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert counts(database) == before
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "pending_payment"


@pytest.mark.parametrize("amount", [(100, "RUB"), (199000, "USD")])
def test_an_amount_or_currency_mismatch_is_refused(client, shop, psp, database, amount):
    headers = shop["headers"]
    placed = webhook_order(client, headers)
    payment = start(client, headers, placed["id"])["payments"][0]
    before = counts(database)
    response = send(client, notification("payment.succeeded", id=payment["provider_reference"], amount=amount))
    assert response.status_code == 422 and response.json()["error"]["code"] == "amount_mismatch"
    assert counts(database) == before
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "pending_payment"


def test_provider_down_then_the_webhook_arrives_first(client, shop, psp):
    """The payment request times out on our side but the customer paid: the notification finds
    the payment by our id in its metadata; a later start asks the provider nothing."""
    headers = shop["headers"]
    placed = webhook_order(client, headers)
    psp.fail_next = 1
    down = client.post(f"/v1/orders/{placed['id']}/payments", json={}, headers=headers)
    assert down.status_code == 502 and down.json()["error"]["code"] == "payment_provider_unavailable"
    [payment] = ledger(client, headers, placed["id"])["payments"]
    assert payment["status"] == "created" and payment["provider_reference"] is None

    body = notification("payment.succeeded", id="pay-from-elsewhere", amount=(199000, "RUB"),
                        metadata={"order_id": str(placed["id"]), "payment_id": str(payment["id"])})
    assert send(client, body).json() == {"status": "applied"}
    [payment] = ledger(client, headers, placed["id"])["payments"]
    assert payment["status"] == "succeeded" and payment["provider_reference"] == "pay-from-elsewhere"
    assert start(client, headers, placed["id"])["status"] == "paid"
    assert len(psp.calls("/v3/payments")) == 1  # only the failed attempt


def test_a_canceled_payment_can_be_tried_again(client, shop, psp):
    headers = shop["headers"]
    placed = webhook_order(client, headers)
    first = start(client, headers, placed["id"])["payments"][0]
    canceled = send(client, notification("payment.canceled", id=first["provider_reference"], amount=(199000, "RUB")))
    assert canceled.json() == {"status": "applied"}
    books = ledger(client, headers, placed["id"])
    assert books["status"] == "unpaid" and books["payments"][0]["status"] == "canceled"
    assert [t["kind"] for t in books["payments"][0]["transactions"]] == ["failure"]
    second = start(client, headers, placed["id"])["payments"]
    assert [p["status"] for p in second] == ["canceled", "pending"] and second[1]["provider_reference"] == "pay-2"
    assert psp.calls("/v3/payments")[1]["headers"]["Idempotence-Key"] == f"order-{placed['id']}-payment-2"


def test_events_that_match_nothing_or_come_too_early(client, shop, psp, database):
    headers = shop["headers"]
    unknown = send(client, notification("payment.succeeded", id="pay-unknown", amount=(199000, "RUB"), metadata={}))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_payment"
    placed = webhook_order(client, headers)
    payment = start(client, headers, placed["id"])["payments"][0]
    early = send(client, notification("refund.succeeded", payment_id=payment["provider_reference"], amount=(199000, "RUB")))
    assert early.status_code == 409 and early.json()["error"]["code"] == "payment_not_captured"
    other = send(client, {"type": "notification", "event": "payout.succeeded", "object": {"id": "po-1"}})
    assert other.status_code == 200 and other.json() == {"status": "ignored"}
    garbage = send(client, b"not json")
    assert garbage.status_code == 422 and garbage.json()["error"]["code"] == "invalid_webhook"
    assert send(client, b"{}", provider="test").status_code == 404
    assert send(client, b"{}", provider="nope").json()["error"]["code"] == "unknown_payment_provider"
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(CommercePaymentEvent)) == 1  # the payout, as ignored


def test_a_cancelled_paid_order_gets_its_money_back_once(client, shop):
    headers = shop["headers"]
    placed = order(client, headers, {**click_and_collect("store-tverskaya", ("CREAM-50", 2)), "payment_method": "test"})
    assert client.post(f"/v1/orders/{placed['id']}/pay", json={}, headers=headers).status_code == 200
    cancelled = client.post(f"/v1/orders/{placed['id']}/cancel", json={"channel": "call_center"}, headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["payment"] | {"payments": None} == {
        "status": "refunded", "captured": 2 * 199000, "refunded": 2 * 199000, "paid": 0, "payments": None}
    again = client.post(f"/v1/orders/{placed['id']}/cancel", json={}, headers=headers)
    assert again.status_code == 200 and again.json()["payment"]["refunded"] == 2 * 199000
    books = ledger(client, headers, placed["id"])
    assert [t["kind"] for p in books["payments"] for t in p["transactions"]] == ["capture", "refund"]


def test_a_paid_order_never_collected_is_refunded_when_its_hold_runs_out(client, shop, database, settings):
    headers = shop["headers"]
    placed = order(client, headers, {**click_and_collect("store-tverskaya", ("CREAM-50", 1)), "payment_method": "test"})
    assert client.post(f"/v1/orders/{placed['id']}/pay", json={}, headers=headers).status_code == 200
    # Paid, it waits for the store without a deadline; once ready, the pickup hold runs.
    assert database.run_write(lambda s: order_service.expire_orders(s, now=utcnow() + timedelta(days=30))) == []
    assert client.post(f"/v1/orders/{placed['id']}/ready", json={}, headers=headers).json()["status"] == "ready_for_pickup"
    expired = database.run_write(lambda s: order_service.expire_orders(s, now=utcnow() + timedelta(days=30)))
    assert expired == [placed["id"]]
    waiting = client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["payment"]
    assert waiting["status"] == "paid"  # the refund is requested, not yet sent
    assert payments.send_requested_refunds(database, settings=settings) == 1  # the refunds job
    done = client.get(f"/v1/orders/{placed['id']}", headers=headers).json()
    assert done["status"] == "cancelled" and done["payment"]["status"] == "refunded" and done["payment"]["paid"] == 0
