"""Each metric on the hand-made world of world.py, on every backend (conftest.py)."""

from __future__ import annotations

import pytest

from seamline.analytics import metrics
from seamline.analytics.metrics import Filters
from tests.analytics import world

PERIOD = Filters(start=world.START, end=world.END)


@pytest.fixture
def w(database, warehouse_for):
    world.build(database)
    with warehouse_for(database) as warehouse:
        yield warehouse


def test_conversion_counts_purchases_from_where_they_started_to_where_they_were_completed(w):
    """Six purchases start: carts 1 (web: Anna's first product), 2 (+ its merged app cart 3,
    whose product came first: app), 4 (web, abandoned), 5 (app, cancelled), and orders 4 (store)
    and 5 (call center) without a cart. Four complete: 4/6 = 66.67 %. Cross-channel: 1 (web ->
    app, handed over in a store) and 2 (app -> web): 2 of 4 = 50 %."""
    result = metrics.conversion(w, PERIOD)
    assert (result["started"], result["completed"], result["rate"]) == (6, 4, 66.67)
    assert (result["cross_channel"], result["cross_channel_share"]) == (2, 50.0)
    by = {row["started_channel"]: (row["started"], row["completed"], row["rate"]) for row in result["by_channel"]}
    assert by == {"web": (2, 1, 50.0), "app": (2, 1, 50.0), "store": (1, 1, 100.0), "call_center": (1, 1, 100.0)}
    paths = {(r["started_channel"], r["placed_channel"], r["handed_over"]): (r["purchases"], r["revenue"])
             for r in result["matrix"]}
    assert paths == {("web", "app", "store"): (1, 1000), ("app", "web", None): (1, 3000),
                     ("store", "store", "store"): (1, 400), ("call_center", "call_center", None): (1, 900)}


def test_conversion_filters_by_started_channel_and_period(w):
    assert metrics.conversion(w, Filters(start=world.START, end=world.END, channel="web"))["started"] == 2
    # only what started in the first day: carts 1 (web, h0) and 3->2 (app, h12)
    first_day = metrics.conversion(w, Filters(start=world.START, end=world.h(13).replace(tzinfo=None)))
    assert (first_day["started"], first_day["completed"]) == (2, 2)


def test_click_and_collect(w):
    """Remote purchased orders 1, 2, 5; pickups 1 and 5: 66.67 %. Ready for pickup: 1 and 5;
    picked up: 1, 24 h after it was ready. Online purchased orders 1, 2, 5; order 1 returned in
    a store: 33.33 %."""
    cc = metrics.click_and_collect(w, PERIOD)
    assert (cc["remote_orders"], cc["pickup_orders"], cc["share"]) == (3, 2, 66.67)
    assert (cc["ready_for_pickup"], cc["picked_up"], cc["pickup_rate"]) == (2, 1, 50.0)
    assert cc["hours_to_pickup_mean"] == 24.0 and cc["hours_to_pickup_median"] == 24.0
    assert (cc["online_orders"], cc["online_orders_returned_in_store"], cc["store_return_rate"]) == (3, 1, 33.33)
    assert cc["store_return_amount"] == 500


def test_nps_and_csat(w):
    """NPS answers 10, 9, 7, 3: 2 promoters, 1 detractor of 4 -> 50 - 25 = 25. By channel:
    telegram 9, 7 -> 50; web 10, 3 -> 0. CSAT 5, 4, 2 in the period: 2 of 3 satisfied."""
    result = metrics.satisfaction(w, PERIOD)
    assert (result["nps"]["answers"], result["nps"]["score"]) == (4, 25.0)
    assert {row["channel"]: row["score"] for row in result["nps"]["by"]} == {"telegram": 50.0, "web": 0.0}
    assert (result["csat"]["answers"], result["csat"]["score"]) == (3, 66.67)
    by_agent = metrics.satisfaction(w, PERIOD, by="agent")
    assert {row["agent"]: row["score"] for row in by_agent["nps"]["by"]} == {"1": 66.67, "2": -100.0}


def test_contact_center(w):
    """Conversation 1: answered in 10 min, resolved in 70; 2: answered in 30, SLA breached; 3:
    not answered yet."""
    result = metrics.contact_center(w, PERIOD)
    assert (result["conversations"], result["answered"], result["resolved"], result["breached"]) == (3, 2, 1, 1)
    assert result["first_response_mean"] == 20.0 and result["resolution_mean"] == 70.0
    assert result["sla_met"] == 66.67
    by = {row["channel"]: row["conversations"] for row in result["by"]}
    assert by == {"telegram": 2, "web": 1}


def test_cohorts_and_repeat_purchases(w):
    """Completed purchases of known people: Anna (order 1, app), Boris (2 on the web, then 4 at
    the till), Vera (5, call center). One November cohort of 3; Boris bought twice: 33.33 %."""
    by_month = metrics.cohorts(w, PERIOD)
    assert by_month["cohorts"] == [{"cohort": "2026-11-01", "people": 3,
                                    "retention": [{"offset": 0, "people": 3, "rate": 100.0}]}]
    assert (by_month["people"], by_month["repeat_buyers"], by_month["repeat_purchase_rate"]) == (3, 1, 33.33)
    by_channel = metrics.cohorts(w, PERIOD, by="channel")
    assert {c["cohort"]: c["people"] for c in by_channel["cohorts"]} == {"app": 1, "web": 1, "call_center": 1}
    by_week = metrics.cohorts(w, PERIOD, unit="week")
    assert [c["cohort"] for c in by_week["cohorts"]] == ["2026-11-02"]  # a Monday


def test_historic_clv_is_net_revenue_per_customer(w):
    """Net revenue 1000 - 500 returned + 3000 + 400 + 900 = 4800 over 4 orders of 3 people:
    average order 1200, CLV 1600. Three people cannot fit the predictive models (20 repeat customers needed)."""
    result = metrics.clv(w, PERIOD)
    assert result["customers"] == 3
    assert result["historic"]["average_order_value"] == 1200.0 and result["historic"]["clv"] == 1600.0
    assert result["predictive"]["fitted"] is False


def test_omnichannel_against_single_channel_customers(w):
    """Anna (web -> app -> store) and Boris (app -> web; store) are omnichannel; Vera (call
    center only) is not."""
    result = metrics.omnichannel(w, PERIOD)
    omni, single = result["omnichannel"], result["single_channel"]
    assert (omni["customers"], omni["orders"], omni["revenue"]) == (2, 3, 3900)
    assert omni["average_check"] == 1466.67 and omni["repeat_rate"] == 50.0 and omni["revenue_per_customer"] == 1950.0
    assert (single["customers"], single["orders"], single["average_check"]) == (1, 1, 900.0)


@pytest.fixture
def with_activity(database):
    from seamline.inbox.models import InboxMessage

    world.build(database)
    world.add_events(database, [("u:anna", "web", "Product Viewed", 0), ("a:anon-anna", "web", "Product Viewed", 1),
                                ("u:anna", "app", "Product Viewed", 3), ("u:boris", "web", "Product Viewed", 20),
                                ("a:unknown", "web", "Product Viewed", 30)])
    with database.write() as s:
        for n, direction in enumerate(["in", "out", "in", "out"]):
            s.add(InboxMessage(conversation_id=1, direction=direction, channel="telegram",
                               created_at=world.h(0.05 + n / 10)))


def test_engagement_per_channel(with_activity, database, warehouse_for):
    """Web: Anna (2 events, under her user id and her anonymous id), Boris and an unknown
    visitor: 3 people, 4 events. Active days: Nov 2 {Anna}, Nov 3 {Boris, unknown}: DAU 3/30,
    MAU 3, stickiness 3.33 %. Telegram: Anna wrote twice. Two outbound messages, one answered."""
    with warehouse_for(database) as w:
        result = metrics.engagement(w, PERIOD)
    by = {row["channel"]: row for row in result["channels"]}
    assert (by["web"]["active_people"], by["web"]["events_per_person"]) == (3, 1.333)
    assert (by["web"]["dau"], by["web"]["mau"], by["web"]["stickiness"]) == (0.1, 3.0, 3.33)
    assert (by["app"]["active_people"], by["telegram"]["active_people"], by["telegram"]["messages_per_person"]) == (1, 1, 2.0)
    assert (result["outbound_messages"], result["replied"], result["replies_per_outbound"]) == (2, 1, 0.5)


def test_journeys_before_each_purchase(with_activity, database, warehouse_for):
    """Order 1 (Anna, h5): web h0, telegram h0.05 and h0.25, web h1, app h3, the app order h5 ->
    web, telegram, web, app (6 raw touches, 5 h). Order 2 (Boris, h24): web h20, the web order
    -> web. Order 4 (Boris at the till, h100): web, web order, store -> web, store (80 h).
    Order 5 (Vera by phone): call_center."""
    with warehouse_for(database) as w:
        result = metrics.journeys(w, PERIOD)
    assert result["purchases"] == 4
    assert (result["touches_to_purchase_mean"], result["raw_touches_to_purchase_mean"]) == (2.0, 3.0)
    assert result["hours_to_purchase_mean"] == 22.25
    assert sorted(tuple(p["path"]) for p in result["top_paths"]) == sorted(
        [("web", "telegram", "web", "app"), ("web",), ("web", "store"), ("call_center",)])
    links = {(link["source"], link["target"]): link["value"] for link in result["sankey"]}
    assert links == {("1. web", "2. telegram"): 1, ("1. web", "(purchase)"): 1, ("1. web", "2. store"): 1,
                     ("1. call_center", "(purchase)"): 1, ("2. telegram", "3. web"): 1, ("2. store", "(purchase)"): 1,
                     ("3. web", "4. app"): 1, ("4. app", "(purchase)"): 1}


def test_attribution_models(with_activity, database, warehouse_for):
    """The journeys above. First touch: web 3 (4400), call center 1. Last touch: one each to
    app, web, store, call center. Linear: web 0.5 + 1 + 0.5 = 2, telegram and app 0.25, store
    0.5, call center 1."""
    with warehouse_for(database) as w:
        result = metrics.attribution(w, PERIOD)
    models = {name: {row["touch"]: (row["conversions"], row["revenue"]) for row in rows}
              for name, rows in result["models"].items()}
    assert (result["purchases"], result["revenue"]) == (4, 5300)
    assert models["first_touch"]["web"] == (3.0, 4400.0) and models["first_touch"]["call_center"] == (1.0, 900.0)
    assert {k: v[0] for k, v in models["last_touch"].items() if v[0]} == {"app": 1.0, "web": 1.0, "store": 1.0,
                                                                        "call_center": 1.0}
    assert models["linear"]["web"] == (2.0, 3700.0)
    assert models["linear"]["telegram"][0] == 0.25 and models["linear"]["store"][0] == 0.5
    for name in ("time_decay", "position_based", "markov"):
        assert sum(v[0] for v in models[name].values()) == pytest.approx(4.0, abs=1e-3)
        assert sum(v[1] for v in models[name].values()) == pytest.approx(5300.0, abs=0.1)
    assert result["markov"]["conversion_probability"] == 1.0  # everyone who touched bought


@pytest.fixture
def funnel_world(database):
    world.build(database)
    world.add_events(database, [
        ("a:anon-anna", "web", "Product Viewed", 0), ("u:anna", "web", "Product Added", 1),
        ("u:anna", "web", "Page X", 1.5), ("u:anna", "web", "Checkout Started", 2),
        ("u:boris", "web", "Product Viewed", 20), ("u:boris", "web", "Checkout Started", 21),
        ("u:boris", "web", "Product Added", 22),
        ("u:vera", "web", "Product Added", 30),
        ("a:x", "app", "Product Viewed", 40), ("a:x", "app", "Product Added", 40 + 200),
    ])


STEPS = ["Product Viewed", "Product Added", "Checkout Started"]


def test_funnel_in_order_strict_and_any_order(funnel_world, database, warehouse_for):
    """Anna: viewed, added, (another page), checkout. Boris: viewed, checkout, added. Vera only
    added. A visitor viewed in the app and added 200 h later (outside the 168 h window).
    In order: 3, 2 (Anna, Boris), 1 (Anna). Strict: Boris's next event after viewing is the
    checkout, Anna's after adding is another page: 3, 1, 0. Any order: 3, 2, 2."""
    with warehouse_for(database) as w:
        ordered = metrics.funnel(w, PERIOD, steps=STEPS, dropped_after=1)
        strict = metrics.funnel(w, PERIOD, steps=STEPS, order="strict")
        any_order = metrics.funnel(w, PERIOD, steps=STEPS, order="any")
        by_channel = metrics.funnel(w, PERIOD, steps=STEPS, breakdown="channel")
        after_two = metrics.funnel(w, PERIOD, steps=STEPS, dropped_after=2)
    assert [s["people"] for s in ordered["steps"]] == [3, 2, 1]
    assert [s["rate"] for s in ordered["steps"]] == [100.0, 66.67, 33.33]
    assert ordered["steps"][2]["hours_from_first_mean"] == 2.0
    assert [s["people"] for s in strict["steps"]] == [3, 1, 0]
    assert [s["people"] for s in any_order["steps"]] == [3, 2, 2]
    assert {g["key"]: [s["people"] for s in g["steps"]] for g in by_channel["groups"]} == {"app": [1, 0, 0], "web": [2, 2, 1]}
    assert ordered["dropped"] == {"after_step": 1, "people": ["a:x"]}
    from seamline.analytics import service

    with warehouse_for(database) as w:
        by_tier = service.run_metric(w, "funnel", PERIOD, **service.with_trait_values(
            database, "funnel", {"steps": STEPS, "breakdown": "trait:tier"}))
    assert {g["key"]: [s["people"] for s in g["steps"]] for g in by_tier["groups"]} == {
        "gold": [1, 1, 1], "silver": [1, 1, 0], "(none)": [1, 0, 0]}  # Anna, Boris, the visitor
    assert after_two["dropped"] == {"after_step": 2, "people": [2]}  # Boris


def test_the_people_behind_a_number(w):
    """Purchases started on the web: Anna's (completed) and Vera's abandoned cart; NPS
    detractors: the answer 3 (Anna's conversation); omnichannel customers: Anna and Boris."""
    web = metrics.people_behind(w, PERIOD, metric="conversion", selector={"started_channel": "web"})
    assert (web["total"], web["people"]) == (2, [1, 3])
    done = metrics.people_behind(w, PERIOD, metric="conversion", selector={"started_channel": "web", "completed": "true"})
    assert done["people"] == [1]
    detractors = metrics.people_behind(w, PERIOD, metric="satisfaction", selector={"kind": "nps", "group": "detractors"})
    assert detractors["people"] == [1]
    assert metrics.people_behind(w, PERIOD, metric="omnichannel", selector={"kind": "omnichannel"})["people"] == [1, 2]
    assert metrics.people_behind(w, PERIOD, metric="cohorts", selector={"cohort": "2026-11-01"})["total"] == 3
    not_handed = metrics.people_behind(w, PERIOD, metric="conversion", selector={
        "started_channel": "app", "placed_channel": "web", "handed_over": "none", "completed": "true"})
    assert not_handed["people"] == [2]  # Boris's shipped order
    in_store = Filters(start=world.START, end=world.END, store=1)  # narrowed like the metric: picked up in S1
    assert metrics.people_behind(w, in_store, metric="conversion", selector={})["people"] == [1]


def test_a_segment_by_traits_narrows_every_metric(database, warehouse_for):
    """tier:gold is Anna alone (her browser's unverified "silver" is not her tier): her cart-1
    purchase, her conversation, the surveys about it, one omnichannel customer."""
    from seamline.analytics import service

    world.build(database)
    gold = service.resolved(database, service.filters(start=world.START.date(), end=world.END.date(),
                                                      traits={"tier": "gold"}))
    silver = service.resolved(database, service.filters(start=world.START.date(), end=world.END.date(),
                                                        traits={"tier": "silver"}))
    assert (gold.people, silver.people) == ((1,), (2,))
    with warehouse_for(database) as w:
        conversion = metrics.conversion(w, gold)
        assert (conversion["started"], conversion["completed"]) == (1, 1)
        assert metrics.contact_center(w, gold)["conversations"] == 1
        assert metrics.satisfaction(w, gold)["nps"]["answers"] == 4  # all the answers are about Anna's conversation
        assert metrics.omnichannel(w, gold)["omnichannel"]["customers"] == 1
        assert metrics.omnichannel(w, silver)["omnichannel"]["customers"] == 1  # Boris
        assert metrics.cohorts(w, silver)["people"] == 1
        assert metrics.people_behind(w, gold, metric="conversion", selector={})["people"] == [1]
