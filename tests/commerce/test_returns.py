"""Returns through the API: partial and whole, in another store than the pickup store or by
courier to a warehouse; stock back where the goods came back; refunds through each provider;
the OrderReturned event exactly once; refusals that change nothing; the timeline and the 360."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from seamline import cli
from seamline.commerce import events
from seamline.commerce import stock as stock_ledger
from seamline.commerce.models import CommerceOrderLine, CommerceReturn
from seamline.commerce.returns import refund_share
from seamline.core.config import get_settings
from tests.commerce import fake_psp
from tests.commerce.conftest import receive
from tests.commerce.fake_psp import notification, send
from tests.commerce.test_orders import click_and_collect, order, stock

psp = fake_psp.psp  # the payment service fixture


def picked_up(client, headers, store: str, *lines: tuple[str, int], **more) -> dict:
    placed = order(client, headers, click_and_collect(store, *lines, **more))
    if placed["status"] == "pending_payment":
        assert client.post(f"/v1/orders/{placed['id']}/pay", json={}, headers=headers).status_code == 200
    client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=headers)
    done = client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"},
                       headers=headers)
    assert done.json()["status"] == "completed", done.text
    return done.json()


def give_back(client, headers, order_id: int, body: dict, key: str | None = None, expect: int = 201) -> dict:
    extra = {"Idempotency-Key": key} if key else {}
    response = client.post(f"/v1/orders/{order_id}/returns", json=body, headers={**headers, **extra})
    assert response.status_code == expect, response.text
    return response.json()


def test_refund_shares_add_up_to_the_line_total_however_it_is_split():
    for total, quantity in [(500000, 3), (100, 7), (1, 2), (0, 4), (199000, 1)]:
        for split in ([1] * quantity, [quantity], [1, quantity - 1] if quantity > 1 else [1]):
            returned, refunded = 0, 0
            for q in split:
                refunded += refund_share(total, quantity, returned, q)
                returned += q
            assert refunded == total, (total, quantity, split)
    assert refund_share(500000, 3, 0, 1) == 166666 and refund_share(500000, 3, 1, 1) == 166667


def test_partial_then_whole_return_in_another_store(client, shop, database):
    headers = shop["headers"]
    sold = picked_up(client, headers, "store-arbat", ("CREAM-50", 3), identifiers=[{"type": "phone", "value": "+79161234567"}])
    # as if a promotion took 97 000 off the line: refunds follow what was paid, not the list price
    with database.write() as session:
        session.execute(update(CommerceOrderLine).where(CommerceOrderLine.order_id == sold["id"]).values(total=500000))
    before = stock(client, headers, "CREAM-50")

    first = give_back(client, headers, sold["id"], {"lines": [{"sku": "CREAM-50", "quantity": 1}], "location": "store-tverskaya",
                                                    "channel": "store", "reason": "wrong size"})
    assert first["amount"] == 166666 and first["full"] is False and first["location"] == "store-tverskaya"
    assert first["lines"] == [{"sku": "CREAM-50", "quantity": 1, "amount": 166666}]
    assert [(r["amount"], r["status"]) for r in first["refunds"]] == [(166666, "succeeded")]  # paid out at the till
    after = stock(client, headers, "CREAM-50")
    assert after["store-tverskaya"]["on_hand"] == before["store-tverskaya"]["on_hand"] + 1
    assert after["store-arbat"] == before["store-arbat"]
    view = client.get(f"/v1/orders/{sold['id']}", headers=headers).json()
    assert view["status"] == "completed" and view["lines"][0]["returned"] == 1
    assert view["history"][-1]["status"] == "partially_returned"
    assert view["payment"]["status"] == "partially_refunded" and view["payment"]["refunded"] == 166666

    rest = give_back(client, headers, sold["id"], {"location": "store-tverskaya", "channel": "store", "all": True})
    assert rest["full"] is True and rest["lines"] == [{"sku": "CREAM-50", "quantity": 2, "amount": 333334}]
    view = client.get(f"/v1/orders/{sold['id']}", headers=headers).json()
    assert view["status"] == "returned" and view["lines"][0]["returned"] == 3
    assert view["payment"]["refunded"] == 500000 and view["payment"]["captured"] == 3 * 199000  # captured at the list price
    assert stock(client, headers, "CREAM-50")["store-tverskaya"]["on_hand"] == before["store-tverskaya"]["on_hand"] + 3
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []
    again = client.post(f"/v1/orders/{sold['id']}/returns", json={"location": "store-arbat", "channel": "store", "all": True}, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "order_not_returnable"
    assert [r["id"] for r in client.get(f"/v1/orders/{sold['id']}/returns", headers=headers).json()] == [first["id"], rest["id"]]

    customer = client.get(f"/v1/customers/{sold['customer_id']}", headers=headers).json()
    assert [r["id"] for r in customer["sections"]["orders"][0]["returns"]] == [first["id"], rest["id"]]
    timeline = client.get(f"/v1/customers/{sold['customer_id']}/timeline", params={"type": "return"}, headers=headers).json()
    assert [(i["type"], i["channel"], i["data"]["amount"]) for i in timeline["items"]] == [
        ("return.accepted", "store", 333334), ("return.accepted", "store", 166666)]
    orders_timeline = client.get(f"/v1/customers/{sold['customer_id']}/timeline", params={"type": "order"}, headers=headers).json()
    assert [i["type"] for i in orders_timeline["items"]][:2] == ["order.returned", "order.partially_returned"]


def test_courier_return_to_a_warehouse_that_never_held_the_sku(client, shop, database):
    headers = shop["headers"]
    receive(client, headers, "CREAM-100", "wh-south", 4)
    placed = order(client, headers, {"channel": "app", "lines": [{"sku": "CREAM-100", "quantity": 2}],
                                     "fulfilment": {"kind": "delivery", "address": {"city": "Москва"}}, "payment_method": "test"})
    client.post(f"/v1/orders/{placed['id']}/pay", json={}, headers=headers)
    shipped = client.post(f"/v1/orders/{placed['id']}/ship", json={"channel": "web"}, headers=headers).json()
    assert shipped["status"] == "shipped"
    assert "wh-north" not in stock(client, headers, "CREAM-100")

    back = give_back(client, headers, placed["id"], {"location": "wh-north", "channel": "courier", "all": True, "reason": "refused at the door"})
    assert back["full"] is True and back["amount"] == 2 * 349000
    assert [(r["amount"], r["status"], r["provider_reference"].startswith("test:")) for r in back["refunds"]] == [
        (698000, "succeeded", True)]
    levels = stock(client, headers, "CREAM-100")
    assert levels["wh-north"]["on_hand"] == 2 and levels["wh-south"]["on_hand"] == 2
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "returned"
    assert client.get(f"/v1/orders/{placed['id']}/payments", headers=headers).json()["status"] == "refunded"
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"lines": [{"sku": "CREAM-50", "quantity": 3}], "location": "store-tverskaya", "channel": "store"}, 409, "over_return"),
    ({"lines": [{"sku": "CREAM-50", "quantity": 1}, {"sku": "CREAM-50", "quantity": 2}], "location": "store-tverskaya",
      "channel": "store"}, 409, "over_return"),
    ({"lines": [{"sku": "SERUM-30", "quantity": 1}], "location": "store-tverskaya", "channel": "store"}, 422, "not_in_order"),
    ({"lines": [{"sku": "CREAM-50", "quantity": 0}], "location": "store-tverskaya", "channel": "store"}, 422, "validation_error"),
    ({"lines": [{"sku": "CREAM-50", "quantity": -1}], "location": "store-tverskaya", "channel": "store"}, 422, "validation_error"),
    ({"location": "nowhere", "channel": "store", "all": True}, 422, "unknown_location"),
    ({"location": "store-tverskaya", "channel": "store", "all": True, "reason": "bad\x00"}, 422, "validation_error"),
    # A client that forgot the lines must not refund the whole order.
    ({"location": "store-tverskaya", "channel": "store"}, 422, "return_lines_required"),
    ({"location": "store-tverskaya", "channel": "store", "lines": []}, 422, "return_lines_required"),
    ({"location": "store-tverskaya", "channel": "store", "all": False}, 422, "return_lines_required"),
    ({"lines": [{"sku": "CREAM-50", "quantity": 1}], "all": True, "location": "store-tverskaya", "channel": "store"}, 422,
     "return_lines_required"),
])
def test_bad_returns_are_refused_and_change_nothing(client, shop, database, body, status, code):
    headers = shop["headers"]
    sold = picked_up(client, headers, "store-arbat", ("CREAM-50", 2))
    before = stock(client, headers, "CREAM-50")
    response = client.post(f"/v1/orders/{sold['id']}/returns", json=body, headers=headers)
    assert response.status_code == status and response.json()["error"]["code"] == code, response.text
    assert stock(client, headers, "CREAM-50") == before
    assert client.get(f"/v1/orders/{sold['id']}", headers=headers).json()["lines"][0]["returned"] == 0
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(CommerceReturn)) == 0


def test_only_goods_handed_over_can_come_back(client, shop):
    headers = shop["headers"]
    waiting = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1)))
    refused = client.post(f"/v1/orders/{waiting['id']}/returns", json={"location": "store-arbat", "channel": "store", "all": True}, headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "order_not_returnable"
    assert refused.json()["error"]["details"]["status"] == "confirmed"
    missing = client.post("/v1/orders/987654/returns", json={"location": "store-arbat", "channel": "store", "all": True}, headers=headers)
    assert missing.status_code == 404
    receive(client, headers, "CREAM-50", "store-tverskaya", 1)
    sold = picked_up(client, headers, "store-tverskaya", ("CREAM-50", 1))
    client.put("/v1/locations/pp-1", json={"kind": "pickup_point", "name_ru": "ПВЗ", "name_en": "PP"}, headers=headers)
    pickup_point = client.post(f"/v1/orders/{sold['id']}/returns", json={"location": "pp-1", "channel": "store", "all": True}, headers=headers)
    assert pickup_point.status_code == 422 and pickup_point.json()["error"]["code"] == "return_location_not_accepted"


def test_a_retry_returns_the_same_return_and_the_event_fires_once(client, shop, database):
    headers = shop["headers"]
    heard: list[events.OrderReturned] = []
    stop = events.on_order_returned(lambda session, event: heard.append(event))
    try:
        sold = picked_up(client, headers, "store-arbat", ("CREAM-50", 2), identifiers=[{"type": "email", "value": "a@example.com"}])
        body = {"lines": [{"sku": "CREAM-50", "quantity": 1}], "location": "store-tverskaya", "channel": "store"}
        first = give_back(client, headers, sold["id"], body, key="return-7")
        again = give_back(client, headers, sold["id"], body, key="return-7", expect=200)
        assert again == first
        assert stock(client, headers, "CREAM-50")["store-tverskaya"]["on_hand"] == 3 + 1
        assert len(heard) == 1
        event = heard[0]
        assert (event.return_id, event.order_id, event.profile_id, event.amount, event.full, event.location) == (
            first["id"], sold["id"], sold["customer_id"], 199000, False, "store-tverskaya")
        assert event.lines == (events.ReturnedLine(sku="CREAM-50", variant_id=event.lines[0].variant_id, quantity=1, amount=199000),)
        other = client.post(f"/v1/orders/{sold['id']}/returns", json={**body, "channel": "courier"},
                            headers={**headers, "Idempotency-Key": "return-7"})
        assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    finally:
        stop()


def test_a_failing_listener_rolls_the_return_back(client, shop, database):
    headers = shop["headers"]
    sold = picked_up(client, headers, "store-arbat", ("CREAM-50", 1))
    before = stock(client, headers, "CREAM-50")

    def broken(session, event):
        raise RuntimeError("loyalty is down")

    stop = events.on_order_returned(broken)
    try:
        with pytest.raises(RuntimeError):
            client.post(f"/v1/orders/{sold['id']}/returns", json={"location": "store-tverskaya", "channel": "store", "all": True}, headers=headers)
    finally:
        stop()
    assert stock(client, headers, "CREAM-50") == before
    assert client.get(f"/v1/orders/{sold['id']}", headers=headers).json()["status"] == "completed"


def paid_through_the_webhook_and_collected(client, headers, quantity: int) -> tuple[dict, dict]:
    """An order of CREAM-50 paid through the webhook provider and picked up: (order, payment)."""
    placed = order(client, headers, {**click_and_collect("store-arbat", ("CREAM-50", quantity)), "payment_method": "webhook"})
    payment = client.post(f"/v1/orders/{placed['id']}/payments", json={}, headers=headers).json()["payments"][0]
    send(client, notification("payment.succeeded", id=payment["provider_reference"], amount=(199000 * quantity, "RUB")))
    client.post(f"/v1/orders/{placed['id']}/ready", json={}, headers=headers)
    client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"}, headers=headers)
    return placed, payment


def test_refund_through_the_webhook_provider(client, shop, psp, database):
    headers = shop["headers"]
    placed, payment = paid_through_the_webhook_and_collected(client, headers, 2)

    psp.fail_next = 1  # the provider is down when the customer comes back
    body = {"lines": [{"sku": "CREAM-50", "quantity": 1}], "location": "store-tverskaya", "channel": "store"}
    back = give_back(client, headers, placed["id"], body, key="ret-1")
    assert [(r["amount"], r["status"]) for r in back["refunds"]] == [(199000, "requested")]
    retried = give_back(client, headers, placed["id"], body, key="ret-1", expect=200)  # the retry sends it
    [refund] = retried["refunds"]
    assert (refund["status"], refund["provider_reference"]) == ("pending", "rfd-2")
    calls = psp.calls("/v3/refunds")
    assert len(calls) == 2 and calls[0]["headers"]["Idempotence-Key"] == calls[1]["headers"]["Idempotence-Key"]
    assert calls[1]["body"] == {"payment_id": payment["provider_reference"], "amount": {"value": "1990.00", "currency": "RUB"},
                                "metadata": {"refund_id": str(refund["id"])}}
    assert client.get(f"/v1/orders/{placed['id']}/payments", headers=headers).json()["refunded"] == 0  # not yet

    wrong = send(client, notification("refund.succeeded", id="rfd-2", payment_id=payment["provider_reference"],
                                      amount=(100, "RUB"), metadata={}))
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "amount_mismatch"
    done = send(client, notification("refund.succeeded", id="rfd-2", payment_id=payment["provider_reference"],
                                     amount=(199000, "RUB"), metadata={}))
    assert done.json() == {"status": "applied"}
    books = client.get(f"/v1/orders/{placed['id']}/payments", headers=headers).json()
    assert (books["status"], books["captured"], books["refunded"], books["paid"]) == ("partially_refunded", 398000, 199000, 199000)
    assert [t["kind"] for t in books["payments"][0]["transactions"]] == ["capture", "refund"]
    assert books["payments"][0]["refunds"][0]["status"] == "succeeded"
    assert send(client, notification("refund.succeeded", id="rfd-2", payment_id=payment["provider_reference"],
                                     amount=(199000, "RUB"), metadata={})).json() == {"status": "duplicate"}


def test_refunds_left_requested_are_sent_by_the_cli(client, shop, psp, settings, database, monkeypatch):
    headers = shop["headers"]
    placed, payment = paid_through_the_webhook_and_collected(client, headers, 1)
    psp.fail_next = 1
    back = give_back(client, headers, placed["id"], {"location": "store-tverskaya", "channel": "store", "all": True})
    assert [r["status"] for r in back["refunds"]] == ["requested"]

    for name in ("commerce_psp_url", "commerce_psp_account"):
        monkeypatch.setenv(f"SEAMLINE_{name.upper()}", getattr(settings, name))
    for name in ("commerce_psp_api_key", "commerce_psp_webhook_secret"):
        monkeypatch.setenv(f"SEAMLINE_{name.upper()}", getattr(settings, name).get_secret_value())
    get_settings.cache_clear()  # the command reads the environment set above
    try:
        result = CliRunner().invoke(cli.app, ["commerce", "send-refunds", "--database-url", database.url])
        again = CliRunner().invoke(cli.app, ["commerce", "send-refunds", "--database-url", database.url])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == {"sent": 1}
    [refund] = client.get(f"/v1/orders/{placed['id']}/returns", headers=headers).json()[0]["refunds"]
    assert refund["status"] == "pending" and refund["provider_reference"] == "rfd-2"
    assert orjson.loads(again.output) == {"sent": 0}
