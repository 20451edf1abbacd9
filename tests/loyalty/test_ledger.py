"""The ledger: first-in-first-out spending and expiry, audited staff adjustments, tiers by
rolling spend (and promotions for a tier), the consistency check and the rebuild, the customer
360 and the timeline."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from typer.testing import CliRunner

from seamline import cli
from seamline.core.time import utcnow
from seamline.loyalty import rebuild, tasks
from seamline.loyalty.models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from tests.commerce.conftest import put
from tests.commerce.test_orders import click_and_collect, order
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


def test_points_are_spent_and_expire_first_in_first_out(client, shop, database, staff_headers):
    headers = shop["headers"]
    program(client, headers, expiry_days=30, hold_days=14)
    done = handed_over(client, headers, ("CREAM-50", 1))  # 99 pending, spendable in 14 days, expiring 30 days later
    cid = done["customer_id"]
    after_hold(database, days=15)
    adjust(client, staff_headers, cid, 50)  # today: expires in 30 days, after the order's points... no: before them
    view = account(client, headers, cid)
    assert [e["points"] for e in view["expiring"]] == [50, 99]
    # spending 60 takes the 50 that expire first, then 10 of the 99
    order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA, points=60))
    assert [e["points"] for e in account(client, headers, cid)["expiring"]] == [89]
    # 44 days from now (14 + 30) the order's lot has expired: 89 points go
    result = tasks.run_due(database, now=utcnow() + timedelta(days=45))
    assert result["expired"] == 1
    assert balance(client, headers, cid) == (0, 0)
    assert tasks.run_due(database, now=utcnow() + timedelta(days=46))["expired"] == 0
    kinds = [e["kind"] for e in account(client, headers, cid)["entries"]]
    assert kinds[0] == "expire"
    consistent(database)


def test_manual_adjustments_need_the_staff_scope_and_are_audited(client, shop, database, staff_headers, write_headers):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    body = {"points": 100, "staff": "olga", "comment": "goodwill"}
    assert client.post(f"/v1/customers/{cid}/loyalty/adjustments", json=body, headers=write_headers).status_code == 403
    first = adjust(client, staff_headers, cid, 100, key="adj-1")
    again = adjust(client, staff_headers, cid, 100, key="adj-1", expect=200)
    assert first["id"] == again["id"] and balance(client, headers, cid) == (100, 0)
    reused = client.post(f"/v1/customers/{cid}/loyalty/adjustments", json={**body, "points": 5},
                         headers={**staff_headers, "Idempotency-Key": "adj-1"})
    assert reused.status_code == 422
    no_comment = client.post(f"/v1/customers/{cid}/loyalty/adjustments", json={**body, "comment": ""}, headers=staff_headers)
    assert no_comment.status_code == 422
    too_much = client.post(f"/v1/customers/{cid}/loyalty/adjustments", json={**body, "points": -101}, headers=staff_headers)
    assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "insufficient_points"
    adjust(client, staff_headers, cid, -40, comment="ordered twice by mistake")
    adjust(client, staff_headers, cid, 25, reason="campaign", campaign="spring-2026", comment="spring campaign")
    assert balance(client, headers, cid) == (85, 0)
    trail = client.get("/v1/loyalty/adjustments", headers=staff_headers).json()
    assert [(e["kind"], e["points"], e["staff"]) for e in trail["items"]] == [
        ("campaign", 25, "olga"), ("adjust", -40, "olga"), ("adjust", 100, "olga")]
    assert trail["next_cursor"] is None
    # Pages: {items, next_cursor}; the deprecated before_id still works.
    first = client.get("/v1/loyalty/adjustments", params={"limit": 2}, headers=staff_headers).json()
    assert [e["points"] for e in first["items"]] == [25, -40] and first["next_cursor"]
    rest = client.get("/v1/loyalty/adjustments", params={"limit": 2, "cursor": first["next_cursor"]}, headers=staff_headers).json()
    assert [e["points"] for e in rest["items"]] == [100] and rest["next_cursor"] is None
    old_style = client.get("/v1/loyalty/adjustments", params={"before_id": first["items"][1]["id"]}, headers=staff_headers).json()
    assert [e["points"] for e in old_style["items"]] == [100]
    ledger = client.get(f"/v1/customers/{cid}/loyalty/entries", params={"limit": 1}, headers=headers).json()
    older = client.get(f"/v1/customers/{cid}/loyalty/entries", params={"limit": 1, "cursor": ledger["next_cursor"]},
                       headers=headers).json()
    assert older["items"][0]["id"] < ledger["items"][0]["id"]
    assert client.get("/v1/loyalty/adjustments", headers=write_headers).status_code == 403
    with database.read() as session:
        keys = {e.api_key_id for e in session.scalars(select(LoyaltyEntry))}
    assert len(keys) == 1 and None not in keys
    consistent(database)


def test_the_balance_read_follows_a_program_change_at_once_and_merges_and_missing_accounts(
        client, shop, database, staff_headers):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    adjust(client, staff_headers, cid, 100, key="welcome")
    read = lambda who: client.get(f"/v1/customers/{who}/loyalty/balance", headers=headers)  # noqa: E731
    assert read(cid).json()["points_value"] == 100 * 100
    program(client, headers, point_value=50)  # the parsed program is cached per version
    assert read(cid).json()["points_value"] == 100 * 50
    other = customer_id(client, headers, identifiers=[{"type": "email", "value": "anna@example.com"}])
    assert read(other).json()["error"]["code"] == "no_loyalty_account"
    assert read(10**9).json()["error"]["code"] == "customer_not_found"
    both = client.post("/v1/customers", json={"identifiers": [*ANNA, {"type": "email", "value": "anna@example.com"}]},
                       headers=headers).json()["customer"]["id"]
    merged_away = other if both == cid else cid
    assert read(merged_away).json() == read(both).json() and read(both).json()["points"] == 100


def test_tiers_follow_rolling_spend_and_promotions_can_be_for_a_tier(client, shop, database):
    headers = shop["headers"]
    program(client, headers, tier_window_days=30, tiers=[
        {"code": "silver", "name_ru": "Серебро", "name_en": "Silver", "min_spend": 300000},
        {"code": "gold", "name_ru": "Золото", "name_en": "Gold", "min_spend": 500000}])
    put(client, headers, "/v1/promotions/gold-10", {"name_ru": "Золото -10%", "name_en": "Gold -10%", "kind": "percent", "value": 10,
                                                   "conditions": {"tiers": ["gold"]}})
    done = handed_over(client, headers, ("CREAM-50", 2))  # 3980 RUB
    cid = done["customer_id"]
    view = account(client, headers, cid)
    assert (view["tier"], view["tier_spend"], view["next_tier"]["code"], view["next_tier"]["spend_missing"]) == ("silver", 398000, "gold", 102000)
    quote = {"channel": "web", "customer_id": cid, "lines": [{"sku": "SERUM-30", "quantity": 1}]}
    assert client.post("/v1/pricing/quote", json=quote, headers=headers).json()["total"] == 250000
    handed_over(client, headers, ("CREAM-50", 1), store="store-tverskaya")
    assert account(client, headers, cid)["tier"] == "gold"
    assert client.post("/v1/pricing/quote", json=quote, headers=headers).json()["total"] == 225000
    # a month later the spend has left the window: the daily pass takes the tier back
    tasks.run_due(database, now=utcnow() + timedelta(days=31))
    assert account(client, headers, cid)["tier"] is None
    assert client.post("/v1/pricing/quote", json=quote, headers=headers).json()["total"] == 250000


def test_the_check_finds_tampering_and_the_rebuild_repairs_it(client, shop, database, staff_headers):
    headers = shop["headers"]
    program(client, headers, tiers=[{"code": "silver", "name_ru": "Серебро", "name_en": "Silver", "min_spend": 100000}])
    done = handed_over(client, headers, ("CREAM-50", 3))
    cid = done["customer_id"]
    after_hold(database)
    adjust(client, staff_headers, cid, 100)
    order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=ANNA, points=250))
    from tests.commerce.test_returns import give_back
    give_back(client, headers, done["id"], {"location": "store-arbat", "channel": "store", "lines": [{"sku": "CREAM-50", "quantity": 1}]})
    handed_over(client, headers, ("CREAM-50", 1), store="store-tverskaya")  # pending
    consistent(database)
    before = account(client, headers, cid)
    healthy = rebuild.rebuild_accounts(database)
    assert healthy.accounts_corrected == 0 and healthy.entries > 0
    consistent(database)
    with database.write() as session:
        session.execute(update(LoyaltyAccount).values(points_available=10**6, points_pending=0, tier=None, tier_spend=0))
        session.execute(update(LoyaltyLot).values(remaining=0))
    runner = CliRunner()
    broken = runner.invoke(cli.app, ["loyalty", "check", "--database-url", database.url])
    assert broken.exit_code == 1 and '"count": 1' in broken.output
    repaired = runner.invoke(cli.app, ["loyalty", "rebuild", "--database-url", database.url])
    assert repaired.exit_code == 0 and '"accounts_corrected": 1' in repaired.output
    assert runner.invoke(cli.app, ["loyalty", "check", "--database-url", database.url]).exit_code == 0
    after = account(client, headers, cid)
    for field in ("points", "pending", "tier", "tier_spend", "expiring", "pending_lots"):
        assert after[field] == before[field], field


def test_the_360_shows_loyalty_and_the_timeline_shows_each_entry(client, shop, database, staff_headers):
    headers = shop["headers"]
    done = handed_over(client, headers, ("CREAM-50", 1))
    cid = done["customer_id"]
    adjust(client, staff_headers, cid, 10)
    section = client.get(f"/v1/customers/{cid}", headers=headers).json()["sections"]["loyalty"]
    assert (section["points"], section["pending"], section["program"]["points_name_en"]) == (10, 99, "points")
    assert [e["kind"] for e in section["entries"]] == ["adjust", "earn"]
    timeline = client.get(f"/v1/customers/{cid}/timeline", params={"type": "loyalty"}, headers=headers).json()
    assert [(i["type"], i["channel"]) for i in timeline["items"]] == [("loyalty.adjust", "loyalty"), ("loyalty.earn", "web")]
    assert timeline["items"][1]["title"] == f"Points earned: +99 (order {done['id']})"
    only_earn = client.get(f"/v1/customers/{cid}/timeline", params={"type": "loyalty.earn"}, headers=headers).json()
    assert len(only_earn["items"]) == 1
    exported = client.get(f"/v1/customers/{cid}/export", headers=headers).json()
    assert [e["kind"] for e in exported["sections"]["loyalty"][0]["entries"]] == ["adjust", "earn"]
    nobody = customer_id(client, headers, [{"type": "email", "value": "nobody@example.com"}])
    assert client.get(f"/v1/customers/{nobody}", headers=headers).json()["sections"]["loyalty"] is None


def test_two_profiles_found_to_be_one_person_get_one_account(client, shop, database, staff_headers):
    headers = shop["headers"]
    phone = customer_id(client, headers)
    email = customer_id(client, headers, [{"type": "email", "value": "anna@example.com"}])
    adjust(client, staff_headers, phone, 100)
    adjust(client, staff_headers, email, 50)
    client.post(f"/v1/customers/{email}/loyalty/cards", json={"kind": "virtual"}, headers=headers)
    handed_over(client, headers, ("CREAM-50", 1), identifiers=[{"type": "email", "value": "anna@example.com"}])  # 99 pending
    merged = client.post("/v1/customers", json={"identifiers": ANNA + [{"type": "email", "value": "anna@example.com"}]},
                         headers=headers).json()
    survivor = merged["customer"]["id"]
    assert merged["merged_customer_ids"]
    view = account(client, headers, survivor)
    assert (view["points"], view["pending"], len(view["cards"])) == (150, 99, 1)
    assert after_hold(database)["released"] == 1
    assert balance(client, headers, survivor) == (249, 0)
    consistent(database)
    assert rebuild.rebuild_accounts(database).accounts_corrected == 0
