"""Earning: percent of what was paid, category multipliers, channel bonuses, tier multipliers,
welcome and birthday bonuses; pending through the hold, then spendable; once per order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from seamline.commerce import events
from seamline.commerce.models import CommerceOrder
from seamline.core.time import utcnow
from seamline.loyalty import service, tasks
from seamline.loyalty.models import LoyaltyEntry
from tests.commerce.conftest import put, receive
from tests.loyalty.conftest import (
    account,
    after_hold,
    balance,
    consistent,
    customer_id,
    handed_over,
    program,
)


def test_the_program_has_working_defaults_and_can_be_changed(client, shop, read_headers):
    headers = shop["headers"]
    defaults = client.get("/v1/loyalty/program", headers=read_headers).json()
    assert (defaults["earn_percent"], defaults["point_value"], defaults["hold_days"], defaults["max_redeem_percent"]) == (5.0, 100, 14, 30)
    changed = program(client, headers, earn_percent=7, points_name_ru="бонусы", tiers=[
        {"code": "gold", "name_ru": "Золото", "name_en": "Gold", "min_spend": 1000000}])
    assert changed["earn_percent"] == 7 and client.get("/v1/loyalty/program", headers=read_headers).json()["points_name_ru"] == "бонусы"
    refused = client.patch("/v1/loyalty/program", json={"earn_percent": 7}, headers=read_headers)
    assert refused.status_code == 403
    bad = client.patch("/v1/loyalty/program", json={"tiers": [{"code": "a", "name_ru": "A", "name_en": "A", "min_spend": 1}] * 2},
                     headers=headers)
    assert bad.status_code == 422


def test_an_empty_put_cannot_reset_the_program(client, shop, read_headers):
    headers = shop["headers"]
    program(client, headers, earn_percent=7, welcome_points=50)
    empty = client.put("/v1/loyalty/program", json={}, headers=headers)
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "incomplete_program"
    assert "earn_percent" in empty.json()["error"]["details"]["missing"]
    assert client.patch("/v1/loyalty/program", json={}, headers=headers).status_code == 200
    kept = client.get("/v1/loyalty/program", headers=read_headers).json()
    assert (kept["earn_percent"], kept["welcome_points"]) == (7, 50)
    whole = client.put("/v1/loyalty/program", json={**kept, "earn_percent": 3}, headers=headers)
    assert whole.status_code == 200 and whole.json()["earn_percent"] == 3
    null = client.patch("/v1/loyalty/program", json={"earn_percent": None}, headers=headers)
    assert null.status_code == 422, null.text


def test_points_earned_at_handover_are_pending_through_the_hold_then_spendable(client, shop, database):
    headers = shop["headers"]
    done = handed_over(client, headers, ("CREAM-50", 1))  # 1990.00 RUB paid at pickup
    cid = done["customer_id"]
    view = account(client, headers, cid)
    assert (view["points"], view["pending"]) == (0, 99)  # 5% of 1990 = 99.5 -> 99 points
    assert view["pending_lots"][0]["order_id"] == done["id"]
    assert view["entries"][0]["kind"] == "earn" and view["entries"][0]["pending"] == 99
    assert after_hold(database, days=13)["released"] == 0
    assert after_hold(database, days=15)["released"] == 1
    assert balance(client, headers, cid) == (99, 0)
    expiring = account(client, headers, cid)["expiring"]
    assert [e["points"] for e in expiring] == [99]
    consistent(database)


def test_an_order_earns_once_however_often_the_handover_is_published(client, shop, database):
    headers = shop["headers"]
    done = handed_over(client, headers, ("CREAM-50", 1))
    for _ in range(2):
        with database.write() as session:
            events.order_handed_over(session, events.OrderHandedOver(session.get(CommerceOrder, done["id"]), "store"))
    assert balance(client, headers, done["customer_id"]) == (0, 99)
    again = client.post(f"/v1/orders/{done['id']}/pickup", json={"code": "000000", "channel": "store"}, headers=headers)
    assert again.status_code == 200  # a completed order's handover is a no-op
    with database.read() as session:
        assert len(list(session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.order_id == done["id"])))) == 1


def test_category_multipliers_channel_bonuses_and_tier_multipliers(client, shop, database):
    headers = shop["headers"]
    put(client, headers, "/v1/catalog/categories/serums", {"name_ru": "Сыворотки", "name_en": "Serums", "parent": "face"})
    put(client, headers, "/v1/catalog/products/serum", {"name_ru": "Сыворотка", "name_en": "Serum", "category": "serums",
                                                       "variants": [{"sku": "SERUM-30", "price": {"amount": 250000, "currency": "RUB"}}]})
    receive(client, headers, "SERUM-30", "store-tverskaya", 2)
    program(client, headers, earn_percent=10, hold_days=0, category_multipliers={"face": 2},
            channel_bonuses=[{"channel": "app", "points": 500, "first_order_only": True}],
            tiers=[{"code": "silver", "name_ru": "Серебро", "name_en": "Silver", "min_spend": 100000, "earn_multiplier": 1.5}])
    # SERUM-30 is under "serums", inside "face": it inherits x2. 10% of 2500 = 250 points, x2 = 500.
    first = handed_over(client, headers, ("SERUM-30", 1), store="store-tverskaya", channel="web",
                        identifiers=[{"type": "phone", "value": "+79160000001"}])
    cid = first["customer_id"]
    assert balance(client, headers, cid) == (500, 0)
    assert account(client, headers, cid)["tier"] == "silver"  # 2500 RUB spent
    # Now silver (x1.5): 10% of 1990 * 2 * 1.5 = 597; the first app order adds 500.
    handed_over(client, headers, ("CREAM-50", 1), channel="app", identifiers=[{"type": "phone", "value": "+79160000001"}])
    assert balance(client, headers, cid) == (500 + 597 + 500, 0)
    # The second app order earns no bonus.
    handed_over(client, headers, ("CREAM-50", 1), channel="app", identifiers=[{"type": "phone", "value": "+79160000001"}])
    assert balance(client, headers, cid) == (500 + 597 + 500 + 597, 0)
    consistent(database)


def test_welcome_bonus_once_at_enrolment(client, shop, database):
    headers = shop["headers"]
    program(client, headers, welcome_points=300)
    cid = customer_id(client, headers)
    first = client.post("/v1/loyalty/accounts", json={"customer_id": cid, "channel": "app"}, headers=headers)
    assert first.status_code == 201 and first.json()["points"] == 300
    again = client.post("/v1/loyalty/accounts", json={"customer_id": cid, "channel": "web"}, headers=headers)
    assert again.status_code == 200 and again.json()["points"] == 300
    assert client.post("/v1/loyalty/accounts", json={"customer_id": 999999}, headers=headers).status_code == 404
    consistent(database)


def test_birthday_bonus_once_a_year(client, shop, database):
    headers = shop["headers"]
    program(client, headers, birthday_points=200)
    today = utcnow().date()
    cid = customer_id(client, headers, birthday=f"1990-{today.month:02d}-{today.day:02d}")
    other = customer_id(client, headers, [{"type": "phone", "value": "+79160000002"}], birthday="1990-01-01" if today.day != 1 or today.month != 1 else "1990-02-02")
    for c in (cid, other):
        client.post("/v1/loyalty/accounts", json={"customer_id": c}, headers=headers)
    assert tasks.run_due(database)["birthdays"] == 1
    assert tasks.run_due(database)["birthdays"] == 0
    assert balance(client, headers, cid) == (200, 0) and balance(client, headers, other) == (0, 0)
    next_year = tasks.run_due(database, now=utcnow().replace(year=today.year + 1) if not (today.month == 2 and today.day == 29)
                              else utcnow() + timedelta(days=366 * 4))
    assert next_year["birthdays"] == 1
    consistent(database)


def test_points_are_earned_on_what_was_paid_not_on_points_spent(client, shop, database):
    headers = shop["headers"]
    program(client, headers, hold_days=0, welcome_points=500)
    cid = customer_id(client, headers)
    client.post("/v1/loyalty/accounts", json={"customer_id": cid}, headers=headers)
    done = handed_over(client, headers, ("CREAM-50", 1), points=500)  # 500 RUB of 1990 paid with points
    assert done["total"] == 149000
    # 5% of 1490 = 74.5 -> 74
    assert balance(client, headers, cid) == (74, 0)
    with database.read() as session:
        assert service.rules.get_program(session).hold_days == 0
    consistent(database)


def test_anonymous_orders_earn_nothing_and_auto_enrolment_can_be_off(client, shop, database):
    headers = shop["headers"]
    handed_over(client, headers, ("CREAM-50", 1), identifiers=[])
    program(client, headers, auto_enroll=False)
    done = handed_over(client, headers, ("CREAM-50", 1))
    assert client.get(f"/v1/customers/{done['customer_id']}/loyalty", headers=headers).status_code == 404
    with database.read() as session:
        assert session.scalar(select(LoyaltyEntry.id)) is None
