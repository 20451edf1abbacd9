"""The stored-value wallet: top-ups in any channel (once per key), paying an order from it, and
refunds of such payments back into it (a return, a cancellation), each once."""

from __future__ import annotations

from tests.commerce.test_orders import click_and_collect, order
from tests.commerce.test_returns import give_back
from tests.loyalty.conftest import ANNA, consistent, customer_id


def _top_up(client, headers, cid: int, amount: int, key: str | None, expect: int = 201, channel: str = "web") -> dict:
    extra = {"Idempotency-Key": key} if key else {}
    response = client.post(f"/v1/customers/{cid}/loyalty/wallet/topups", json={"amount": amount, "channel": channel,
                                                                               "reference": "psp:123"},
                           headers={**headers, **extra})
    assert response.status_code == expect, response.text
    return response.json()


def _wallet(client, headers, cid: int) -> int:
    return client.get(f"/v1/customers/{cid}/loyalty/balance", headers=headers).json()["wallet"]


def test_top_ups_are_applied_once_per_key(client, shop, database):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    first = _top_up(client, headers, cid, 300000, "t-1")
    again = _top_up(client, headers, cid, 300000, "t-1")
    assert first["id"] == again["id"] and _wallet(client, headers, cid) == 300000
    _top_up(client, headers, cid, 50000, "t-2", channel="store")
    assert _wallet(client, headers, cid) == 350000
    assert _top_up(client, headers, cid, 1, None, expect=422)["error"]["code"] == "idempotency_key_required"
    assert _top_up(client, headers, cid, 999, "t-1", expect=422)["error"]["code"] == "idempotency_key_reused"
    assert _top_up(client, headers, cid, 0, "t-3", expect=422)
    history = client.get(f"/v1/customers/{cid}/loyalty/wallet", headers=headers).json()
    assert [(w["kind"], w["amount"], w["channel"]) for w in history] == [("topup", 50000, "store"), ("topup", 300000, "web")]
    consistent(database)


def test_an_order_paid_from_the_wallet_is_refunded_into_it(client, shop, database):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _top_up(client, headers, cid, 500000, "t-1")
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2), identifiers=ANNA, payment_method="test"))
    paid = client.post("/v1/loyalty/wallet/payments", json={"order_id": placed["id"], "channel": "app"}, headers=headers)
    assert paid.status_code == 201 and paid.json()["amount"] == -398000
    again = client.post("/v1/loyalty/wallet/payments", json={"order_id": placed["id"], "channel": "app"}, headers=headers)
    assert again.json()["id"] == paid.json()["id"]
    assert _wallet(client, headers, cid) == 102000
    payments = client.get(f"/v1/orders/{placed['id']}/payments", headers=headers).json()
    assert [(p["provider"], p["status"]) for p in payments["payments"]] == [("wallet", "succeeded")]
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "confirmed"
    client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=headers)
    client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"}, headers=headers)
    give_back(client, headers, placed["id"], {"location": "store-tverskaya", "channel": "store", "lines": [{"sku": "CREAM-50", "quantity": 1}]},
              key="r-1")
    give_back(client, headers, placed["id"], {"location": "store-tverskaya", "channel": "store", "lines": [{"sku": "CREAM-50", "quantity": 1}]},
              key="r-1", expect=200)
    assert _wallet(client, headers, cid) == 102000 + 199000
    consistent(database)


def test_a_cancelled_wallet_order_gives_the_money_back_and_a_short_wallet_pays_nothing(client, shop, database):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _top_up(client, headers, cid, 250000, "t-1")
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, payment_method="test"))
    client.post("/v1/loyalty/wallet/payments", json={"order_id": placed["id"]}, headers=headers)
    assert _wallet(client, headers, cid) == 51000
    for _ in range(2):
        client.post(f"/v1/orders/{placed['id']}/cancel", json={"channel": "call_center"}, headers=headers)
    assert _wallet(client, headers, cid) == 250000
    big = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2), identifiers=ANNA, payment_method="test"))
    short = client.post("/v1/loyalty/wallet/payments", json={"order_id": big["id"]}, headers=headers)
    assert short.status_code == 409 and short.json()["error"]["code"] == "insufficient_funds"
    assert client.get(f"/v1/orders/{big['id']}", headers=headers).json()["status"] == "pending_payment"
    stranger = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), payment_method="test"))
    assert client.post("/v1/loyalty/wallet/payments", json={"order_id": stranger["id"]}, headers=headers).json()["error"]["code"] == "no_wallet"
    consistent(database)
