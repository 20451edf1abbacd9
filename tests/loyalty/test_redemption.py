"""Spending points at checkout in every channel (capped, priced by the one engine), and giving
them back: returns reverse earned points in proportion and restore spent ones, cancellations
give everything back; each exactly once."""

from __future__ import annotations

from sqlalchemy import select

from seamline.commerce import events
from seamline.commerce.models import CommerceOrder, CommerceReturn
from seamline.loyalty.models import LoyaltyEntry
from tests.commerce.test_orders import click_and_collect, order
from tests.commerce.test_returns import give_back
from tests.loyalty.conftest import (
    ANNA,
    account,
    adjust,
    after_hold,
    balance,
    consistent,
    customer_id,
    handed_over,
    program,
)


def _with_points(client, headers, staff_headers, points: int) -> int:
    cid = customer_id(client, headers)
    adjust(client, staff_headers, cid, points)
    return cid


def test_points_pay_part_of_an_order_up_to_the_cap_in_every_channel(client, shop, database, staff_headers):
    headers = shop["headers"]
    cid = _with_points(client, headers, staff_headers, 2000)
    quote = client.post("/v1/pricing/quote", json={"channel": "app", "customer_id": cid, "lines": [{"sku": "CREAM-50", "quantity": 1}],
                                                   "points": 500}, headers=headers).json()
    assert (quote["total"], quote["points"]) == (149000, 500)
    assert quote["promotions"][-1] == {"code": "LOYALTY_POINTS", "name": "Оплата баллами", "amount": 50000, "coupon": None, "points": 500}
    # 30% of 1990 = 597 RUB: 598 points are too many
    over = client.post("/v1/orders", json=click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=598), headers=headers)
    assert over.status_code == 422 and over.json()["error"]["details"] == {"requested": 598, "max_points": 597}
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=597), key="o-1")
    assert placed["total"] == 199000 - 59700 and placed["customer_id"] == cid
    assert balance(client, headers, cid) == (2000 - 597, 0)
    # a retry of the same checkout spends nothing again
    again = client.post("/v1/orders", json=click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=597),
                        headers={**headers, "Idempotency-Key": "o-1"})
    assert again.status_code == 200 and balance(client, headers, cid) == (2000 - 597, 0)
    consistent(database)


def test_spending_more_than_the_balance_or_without_a_customer_is_refused_and_changes_nothing(client, shop, database, staff_headers):
    headers = shop["headers"]
    cid = _with_points(client, headers, staff_headers, 100)
    short = client.post("/v1/orders", json=click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=101), headers=headers)
    assert short.status_code == 409 and short.json()["error"]["code"] == "insufficient_points"
    anonymous = client.post("/v1/orders", json=click_and_collect("store-arbat", ("CREAM-50", 1), points=10), headers=headers)
    assert anonymous.status_code == 422 and anonymous.json()["error"]["code"] == "customer_required"
    with database.read() as session:
        assert session.scalar(select(CommerceOrder.id)) is None
    assert balance(client, headers, cid) == (100, 0)


def test_a_cancelled_order_gives_its_points_back_once(client, shop, database, staff_headers):
    headers = shop["headers"]
    cid = _with_points(client, headers, staff_headers, 300)
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=300))
    assert balance(client, headers, cid) == (0, 0)
    for _ in range(2):
        assert client.post(f"/v1/orders/{placed['id']}/cancel", json={"channel": "call_center"}, headers=headers).status_code == 200
    with database.write() as session:  # the event delivered again changes nothing
        events.order_cancelled(session, events.OrderCancelled(order_id=placed["id"], profile_id=cid, currency="RUB",
                                                              total=placed["total"], channel=None))
    assert balance(client, headers, cid) == (300, 0)
    kinds = [e["kind"] for e in account(client, headers, cid)["entries"]]
    assert kinds.count("restore") == 1
    consistent(database)


def test_returns_reverse_earned_points_in_proportion_and_restore_spent_ones(client, shop, database, staff_headers):
    headers = shop["headers"]
    program(client, headers, earn_percent=10, hold_days=14)
    cid = _with_points(client, headers, staff_headers, 900)
    done = handed_over(client, headers, ("CREAM-50", 3), points=900)  # 5970 - 900 = 5070 paid
    assert done["total"] == 507000
    assert balance(client, headers, cid) == (0, 507)  # 10% of 5070, pending
    first = give_back(client, headers, done["id"], {"location": "store-tverskaya", "channel": "store",
                                                   "lines": [{"sku": "CREAM-50", "quantity": 1}]}, key="r-1")
    # a third came back: a third of the earned points go, a third of the spent ones come back
    assert first["amount"] == 169000
    assert balance(client, headers, cid) == (300, 507 - 169)
    # the same return sent again, and the event published again: nothing changes
    give_back(client, headers, done["id"], {"location": "store-tverskaya", "channel": "store",
                                            "lines": [{"sku": "CREAM-50", "quantity": 1}]}, key="r-1", expect=200)
    with database.write() as session:
        record = session.scalar(select(CommerceReturn))
        events.order_returned(session, events.OrderReturned(
            return_id=record.id, order_id=done["id"], profile_id=cid, currency="RUB", amount=record.amount, lines=(),
            full=False, channel="store", location="store-tverskaya"))
    assert balance(client, headers, cid) == (300, 338)
    give_back(client, headers, done["id"], {"location": "store-arbat", "channel": "store", "all": True})  # the rest
    assert balance(client, headers, cid) == (900, 0)
    with database.read() as session:
        entries = list(session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.order_id == done["id"])))
    assert sum(e.available_delta + e.pending_delta for e in entries if e.kind in ("earn", "reverse")) == 0
    assert sum(e.spend_delta for e in entries) == 0  # the tier spend of a fully returned order is gone too
    consistent(database)


def test_points_already_spent_are_taken_back_as_a_debt_that_later_credits_pay_off(client, shop, database, staff_headers):
    headers = shop["headers"]
    program(client, headers, hold_days=0)
    done = handed_over(client, headers, ("CREAM-50", 1))
    cid = done["customer_id"]
    assert balance(client, headers, cid) == (99, 0)
    order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=99))
    give_back(client, headers, done["id"], {"location": "store-arbat", "channel": "store", "all": True})
    assert balance(client, headers, cid) == (-99, 0)
    short = client.post("/v1/orders", json=click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=1), headers=headers)
    assert short.status_code == 409
    adjust(client, staff_headers, cid, 150)
    assert balance(client, headers, cid) == (51, 0)
    consistent(database)


def test_a_return_inside_the_hold_takes_from_the_pending_points(client, shop, database):
    headers = shop["headers"]
    done = handed_over(client, headers, ("CREAM-50", 2))
    cid = done["customer_id"]
    assert balance(client, headers, cid) == (0, 199)
    give_back(client, headers, done["id"], {"location": "store-arbat", "channel": "store", "lines": [{"sku": "CREAM-50", "quantity": 1}]})
    assert balance(client, headers, cid) == (0, 100)
    after_hold(database)
    assert balance(client, headers, cid) == (100, 0)
    consistent(database)


def test_a_cart_checkout_spends_points_like_any_order(client, shop, database, staff_headers):
    headers = shop["headers"]
    cid = _with_points(client, headers, staff_headers, 200)
    assert client.put("/v1/carts/current/lines/CREAM-50", params={"customer_id": cid}, headers=headers,
                      json={"quantity": 1, "channel": "app"}).status_code == 200
    placed = client.post("/v1/carts/current/checkout", params={"customer_id": cid}, headers={**headers, "Idempotency-Key": "c-1"},
                         json={"channel": "app", "points": 200,
                               "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}})
    assert placed.status_code == 201, placed.text
    assert placed.json()["total"] == 199000 - 20000 and balance(client, headers, cid) == (0, 0)
    consistent(database)
