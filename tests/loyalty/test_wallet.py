"""The stored-value wallet: top-ups in any channel (once per key), paying an order from it (also
as the order's `payment_method` through `POST /v1/orders/{id}/payments`: issue 18, the wallet
must never answer "paid" without being debited), refunds of such payments back into it (a
return, a cancellation), each once, and the check of the wallet against the payment ledger."""

from __future__ import annotations

from sqlalchemy import func, select
from typer.testing import CliRunner

from seamline import cli
from seamline.commerce import orders as order_service
from seamline.commerce import payments
from seamline.commerce.models import CommercePayment, CommercePaymentTransaction, CommerceRefund
from seamline.loyalty import ledger
from seamline.loyalty.models import LoyaltyWalletEntry
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
    assert [(w["kind"], w["amount"], w["channel"]) for w in history["items"]] == [("topup", 50000, "store"), ("topup", 300000, "web")]
    first = client.get(f"/v1/customers/{cid}/loyalty/wallet", params={"limit": 1}, headers=headers).json()
    rest = client.get(f"/v1/customers/{cid}/loyalty/wallet", params={"cursor": first["next_cursor"]}, headers=headers).json()
    assert [w["amount"] for w in first["items"] + rest["items"]] == [50000, 300000] and rest["next_cursor"] is None
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


def _wallet_shop(settings) -> None:
    settings.commerce_payment_methods = ["on_pickup", "test", "wallet"]


def test_issue_18_a_wallet_order_paid_through_the_payments_api_cannot_create_money(client, shop, database, settings,
                                                                                  write_headers):
    """The attack: an order placed with `payment_method: "wallet"` by a customer whose wallet is
    empty, `POST /v1/orders/{id}/payments`, collected, returned: the wallet must not end richer."""
    _wallet_shop(settings)
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _top_up(client, headers, cid, 1000, "t-1")  # an account with next to nothing in it
    placed = order(client, write_headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA,
                                                            payment_method="wallet"))
    assert placed["status"] == "pending_payment"
    paid = client.post(f"/v1/orders/{placed['id']}/payments", json={"channel": "app"}, headers=write_headers)
    if paid.status_code == 200:  # the hole: collect and return the goods to be refunded into the wallet
        client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=write_headers)
        client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"},
                    headers=write_headers)
        give_back(client, write_headers, placed["id"], {"location": "store-arbat", "channel": "store", "all": True}, key="r-1")
    assert _wallet(client, headers, cid) <= 1000, "the wallet was refunded money it never paid"
    assert paid.status_code == 409 and paid.json()["error"]["code"] == "insufficient_funds", paid.text
    assert paid.json()["error"]["details"] == {"balance": 1000, "needed": 199000, "currency": "RUB"}
    # nothing was written: no payment, no ledger row, no wallet entry; the order still waits
    assert _rows(database) == (0, 0, 1)
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "pending_payment"
    assert client.get(f"/v1/orders/{placed['id']}/payments", headers=headers).json()["payments"] == []
    # a customer without a wallet (or an order without a customer) cannot pay with it either
    for identifiers in ([{"type": "phone", "value": "+79160000000"}], None):
        more = {"identifiers": identifiers} if identifiers else {}
        other = order(client, write_headers, click_and_collect("store-arbat", ("CREAM-50", 1), payment_method="wallet", **more))
        refused = client.post(f"/v1/orders/{other['id']}/payments", json={}, headers=write_headers)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_wallet", refused.text
    assert _rows(database) == (0, 0, 1)
    consistent(database)


def _rows(database) -> tuple[int, int, int]:
    """(payments, payment ledger rows, wallet entries)."""
    with database.read() as session:
        return tuple(session.scalar(select(func.count()).select_from(model))
                     for model in (CommercePayment, CommercePaymentTransaction, LoyaltyWalletEntry))


def test_a_wallet_order_paid_through_the_payments_api_is_debited_and_refunded_once(client, shop, database, settings,
                                                                                   write_headers):
    _wallet_shop(settings)
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _top_up(client, headers, cid, 500000, "t-1")
    placed = order(client, write_headers, click_and_collect("store-arbat", ("CREAM-50", 2), identifiers=ANNA,
                                                            payment_method="wallet"))
    paid = client.post(f"/v1/orders/{placed['id']}/payments", json={"channel": "app"}, headers=write_headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["paid"] == 398000
    again = client.post(f"/v1/orders/{placed['id']}/payments", json={"channel": "app"}, headers=write_headers)
    assert again.status_code == 200 and again.json()["payments"] == paid.json()["payments"]
    assert client.post("/v1/loyalty/wallet/payments", json={"order_id": placed["id"]}, headers=headers).status_code == 201
    assert _wallet(client, headers, cid) == 102000  # debited once, whichever way it is asked again
    history = client.get(f"/v1/customers/{cid}/loyalty/wallet", headers=headers).json()["items"]
    assert [(w["kind"], w["amount"], w["order_id"], w["channel"]) for w in history][0] == ("payment", -398000, placed["id"], "app")
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "confirmed"
    consistent(database)

    client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=write_headers)
    client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"},
                headers=write_headers)
    body = {"location": "store-tverskaya", "channel": "store", "lines": [{"sku": "CREAM-50", "quantity": 1}]}
    returned = give_back(client, write_headers, placed["id"], body, key="r-1")
    assert [r["status"] for r in returned["refunds"]] == ["succeeded"]
    give_back(client, write_headers, placed["id"], body, key="r-1", expect=200)
    assert _wallet(client, headers, cid) == 102000 + 199000
    books = client.get(f"/v1/orders/{placed['id']}/payments", headers=headers).json()
    assert [(t["kind"], t["amount"]) for t in books["payments"][0]["transactions"]] == [("capture", 398000), ("refund", 199000)]
    consistent(database)


def test_a_cancelled_wallet_order_is_credited_when_its_refund_is_given_back_once(client, shop, database, settings):
    """The expiry job's cancellation writes the refund `requested`; the refunds pass (or the
    cancel endpoint) gives it back in one transaction with the wallet's credit, once."""
    _wallet_shop(settings)
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _top_up(client, headers, cid, 199000, "t-1")
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, payment_method="wallet"))
    assert client.post(f"/v1/orders/{placed['id']}/payments", json={}, headers=headers).status_code == 200
    assert _wallet(client, headers, cid) == 0
    database.run_write(lambda s: order_service.cancel(s, order_id=placed["id"], channel=None, note="expired"))
    assert _wallet(client, headers, cid) == 0  # requested: nothing moved in either ledger yet
    consistent(database)
    assert payments.send_requested_refunds(database, settings=settings) == 1
    assert payments.send_requested_refunds(database, settings=settings) == 0
    assert client.post(f"/v1/orders/{placed['id']}/cancel", json={}, headers=headers).status_code == 200
    assert _wallet(client, headers, cid) == 199000
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["payment"]["status"] == "refunded"
    consistent(database)


def test_the_check_proves_the_wallet_against_the_payment_ledger(client, shop, database, settings):
    """Tampering either ledger alone (a wallet payment without its debit, as issue 18 wrote them; a
    credit without its refund) is a difference `seamline loyalty check` and the API report."""
    _wallet_shop(settings)
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _top_up(client, headers, cid, 500000, "t-1")
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, payment_method="wallet"))
    assert client.post(f"/v1/orders/{placed['id']}/payments", json={}, headers=headers).status_code == 200
    other = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, payment_method="wallet"))
    runner = CliRunner()
    assert runner.invoke(cli.app, ["loyalty", "check", "--database-url", database.url]).exit_code == 0
    assert client.get("/v1/loyalty/check", headers=headers).json() == {"ok": True, "problems": []}

    with database.write() as session:  # a wallet capture the wallet never paid (what the hole wrote)
        forged = CommercePayment(order_id=other["id"], provider="wallet", amount=199000, currency="RUB", status="succeeded",
                                 provider_reference="wallet:forged", idempotency_key="forged")
        session.add(forged)
        session.flush()
        session.add(CommercePaymentTransaction(payment_id=forged.id, kind="capture", amount=199000, currency="RUB",
                                               idempotency_key="forged-capture"))
    with database.read() as session:  # every account agrees with its own ledger, but not with the payments
        assert ledger.check(session) == [{"order_id": other["id"], "expected": {"wallet_paid": 199000, "wallet_refunded": 0},
                                          "found": {"wallet_paid": 0, "wallet_refunded": 0}}]
    with database.write() as session:  # a credit for the paid order that no refund wrote
        account = ledger.find_account(session, cid)
        session.add(LoyaltyWalletEntry(account_id=account.id, kind="refund", amount=50000, currency="RUB", order_id=placed["id"]))
        account.wallet_balance += 50000
    broken = runner.invoke(cli.app, ["loyalty", "check", "--database-url", database.url])
    assert broken.exit_code == 1 and '"count": 2' in broken.output, broken.output
    problems = client.get("/v1/loyalty/check", headers=headers).json()
    assert problems["ok"] is False
    assert {"order_id": placed["id"], "expected": {"wallet_paid": 199000, "wallet_refunded": 0},
            "found": {"wallet_paid": 199000, "wallet_refunded": 50000}} in problems["problems"]


def test_a_wallet_refund_never_gives_back_more_than_the_wallet_paid(client, shop, database, settings):
    """A refund of a wallet payment with no debit behind it (one the hole recorded before the
    fix) fails in the payment ledger instead of crediting money never taken; the return itself
    is accepted."""
    _wallet_shop(settings)
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _top_up(client, headers, cid, 1000, "t-1")
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, payment_method="wallet"))
    with database.write() as session:  # paid the old way: captured, the wallet untouched
        order_row = order_service.get_order(session, placed["id"], lock=True)
        forged = CommercePayment(order_id=order_row.id, provider="wallet", amount=199000, currency="RUB", status="created",
                                 idempotency_key="legacy")
        session.add(forged)
        session.flush()
        payments._apply_payment_status(session, order_row, forged, "succeeded", key="legacy-capture", reference="wallet:legacy")
    client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=headers)
    client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"}, headers=headers)
    returned = give_back(client, headers, placed["id"], {"location": "store-arbat", "channel": "store", "all": True}, key="r-1")
    assert [r["status"] for r in returned["refunds"]] == ["failed"]
    assert _wallet(client, headers, cid) == 1000
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(CommerceRefund)) == 1
        assert [p["order_id"] for p in ledger.check(session)] == [placed["id"]]  # the forged capture, still reported
