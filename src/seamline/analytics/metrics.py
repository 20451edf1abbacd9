"""Every metric, written once as Ibis expressions over the logical tables (`schema.LOGICAL`).

Each public function takes a `Warehouse` and `Filters` and returns plain JSON-able data; the
definitions are in docs/analytics.md. People are counted through the identity graph as it is now:
every profile id goes through `people` (its merge chain's end) and every event's person key
through `event_people`, so a merge re-attributes history and an unmerge splits it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import ibis
import numpy as np
import pandas as pd
from ibis import _

from seamline.analytics.warehouse import Warehouse

#: Orders that count as a completed purchase (placed, not cancelled, not waiting for payment).
PURCHASED = ("confirmed", "ready_for_pickup", "shipped", "completed")
#: The fulfilment of an order collected in a store (commerce's `FulfilmentIn.kind`).
CLICK_AND_COLLECT = "click_and_collect"


@dataclass(frozen=True)
class Filters:
    """What every metric can be narrowed to. Times are naive UTC, `end` exclusive."""

    start: datetime
    end: datetime
    channel: str | None = None
    store: int | None = None
    #: a segment by traits: ((key, value), ...); `people` are the persons in it (resolved on the
    #: operational database by `service`), None for everyone
    segment: tuple[tuple[str, str], ...] = ()
    people: tuple[int, ...] | None = None


def _rate(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-able rows: NaN/NaT become None, numpy numbers plain ones, times ISO text."""
    rows = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
                clean[key] = None
            elif hasattr(value, "isoformat"):
                clean[key] = value.isoformat()
            elif hasattr(value, "item"):
                clean[key] = value.item()
            else:
                clean[key] = value
        rows.append(clean)
    return rows


# --- people -----------------------------------------------------------------------------------


def _orders(w: Warehouse) -> ibis.Table:
    """Orders with the person each belongs to now (`person_id`; null for anonymous and erased)."""
    orders, people = w.table("orders"), w.table("people")
    joined = orders.left_join(people, orders.profile_id == people.profile_id)
    return joined.select(*[orders[c] for c in orders.columns], person_id=people.person_id)


def _events(w: Warehouse) -> ibis.Table:
    """Events with their person (`person_id`, null when no profile knows the key)."""
    return w.cached("events", lambda: _events_with_people(w))


def _events_with_people(w: Warehouse) -> ibis.Table:
    events, keys = w.table("events"), w.table("event_people")
    joined = events.left_join(keys, events.person_key == keys.person_key)
    return joined.select(*[events[c] for c in events.columns], person_id=keys.person_id)


# --- 1. cross-channel conversion --------------------------------------------------------------


def purchases(w: Warehouse) -> ibis.Table:
    return w.cached("purchases", lambda: _purchases(w))


def _purchases(w: Warehouse) -> ibis.Table:
    """One row per purchase: a cart that got a product (with the carts merged into it), or an
    order placed without a cart (at the till, by the call center). Started where its first
    product was added; completed where its order was placed; handed over where it was."""
    carts, changes, orders = w.table("carts"), w.table("cart_changes"), _orders(w)
    family = carts.select(cart_id=carts.id, root_id=carts.merged_into_id.fill_null(carts.id))
    added = changes.filter(changes.kind == "product_added").join(family, changes.cart_id == family.cart_id)
    ranked = added.select(
        root_id=added.root_id, channel=added.channel, created_at=added.created_at,
        n=ibis.row_number().over(group_by=added.root_id, order_by=[added.created_at, added.id]),
    )
    starts = ranked.filter(ranked.n == 0).drop("n")
    roots = carts.select(root_id=carts.id, cart_order_id=carts.order_id, cart_profile_id=carts.profile_id)
    started = starts.join(roots, "root_id")
    from_carts = started.left_join(orders, started.cart_order_id == orders.id).select(
        purchase=ibis.literal("c") + started.root_id.cast("string"),
        started_channel=started.channel,
        started_at=started.created_at,
        order_id=orders.id,
        profile_id=orders.profile_id.fill_null(started.cart_profile_id),
        person_id=orders.person_id,
        placed_channel=orders.channel,
        status=orders.status,
        fulfilment=orders.fulfilment,
        handed_over=orders.completed_channel,
        pickup_location_id=orders.pickup_location_id,
        total=orders.total,
        ordered_at=orders.created_at,
    )
    with_cart = carts.filter(carts.order_id.notnull()).select(order_id=carts.order_id)
    cartless = orders.anti_join(with_cart, orders.id == with_cart.order_id)
    direct = cartless.select(
        purchase=ibis.literal("o") + cartless.id.cast("string"),
        started_channel=cartless.channel,
        started_at=cartless.created_at,
        order_id=cartless.id,
        profile_id=cartless.profile_id,
        person_id=cartless.person_id,
        placed_channel=cartless.channel,
        status=cartless.status,
        fulfilment=cartless.fulfilment,
        handed_over=cartless.completed_channel,
        pickup_location_id=cartless.pickup_location_id,
        total=cartless.total,
        ordered_at=cartless.created_at,
    )
    both = from_carts.union(direct)
    # Anonymous carts: the person is the one their profile belongs to now.
    people = w.table("people")
    resolved = both.left_join(people, both.profile_id == people.profile_id)
    return resolved.select(
        *[both[c] for c in both.columns if c != "person_id"],
        person_id=both.person_id.fill_null(people.person_id),
        completed=both.status.isin(PURCHASED).fill_null(False),
    )


def _segment(f: Filters, table: ibis.Table, column: str = "person_id") -> ibis.Table:
    """Only the rows of people in the filters' segment (all rows without one)."""
    if f.people is None:
        return table
    members = ibis.memtable({"segment_person": list(f.people)}, schema={"segment_person": "int64"})
    return table.semi_join(members, table[column] == members.segment_person)


def _segment_profiles(w: Warehouse, f: Filters, table: ibis.Table, column: str) -> ibis.Table:
    """`_segment` for a table keyed by profile (conversations, surveys): through `people`."""
    if f.people is None:
        return table
    profiles = _segment(f, w.table("people")).select("profile_id")
    return table.semi_join(profiles, table[column] == profiles.profile_id)


def _in_period(table: ibis.Table, column: str, f: Filters) -> ibis.Table:
    return table.filter(table[column] >= f.start, table[column] < f.end)


def conversion(w: Warehouse, f: Filters) -> dict:
    """Cross-channel conversion: completed purchases / started purchases × 100, overall, per
    channel where purchases started, and as a started -> placed -> handed over matrix."""
    p = _segment(f, _in_period(purchases(w), "started_at", f))
    if f.channel:
        p = p.filter(p.started_channel == f.channel)
    if f.store is not None:
        p = p.filter(p.pickup_location_id == f.store)
    totals = w.execute(p.aggregate(started=_.count(), completed=_.completed.sum()))
    started = int(totals["started"].iloc[0] or 0)
    completed = int(totals["completed"].iloc[0] or 0)
    by_channel = w.execute(
        p.group_by("started_channel").aggregate(started=_.count(), completed=_.completed.sum()).order_by("started_channel")
    )
    matrix = w.execute(
        p.filter(p.completed)
        .group_by(["started_channel", "placed_channel", "handed_over"])
        .aggregate(purchases=_.count(), revenue=_.total.sum())
        .order_by([ibis.desc("purchases"), "started_channel", "placed_channel"])
    )
    rows = _records(by_channel)
    for row in rows:
        row["completed"] = int(row["completed"] or 0)
        row["rate"] = _rate(row["completed"], row["started"])
    cross = int(matrix[matrix["started_channel"] != matrix["placed_channel"]]["purchases"].sum()) if len(matrix) else 0
    return {
        "started": started,
        "completed": completed,
        "rate": _rate(completed, started),
        "cross_channel": cross,
        "cross_channel_share": _rate(cross, completed),
        "by_channel": rows,
        "matrix": _records(matrix),
        "click_and_collect": click_and_collect(w, f),
    }


def click_and_collect(w: Warehouse, f: Filters) -> dict:
    """Click & collect: its share of remote orders, pickup rate, time to pickup, and online
    orders returned in a store."""
    orders = _segment(f, _in_period(_orders(w), "created_at", f))
    if f.store is not None:
        orders = orders.filter(orders.pickup_location_id == f.store)
    remote = orders.filter(orders.fulfilment != "in_store", orders.status.isin(PURCHASED))
    shares = w.execute(remote.aggregate(remote=_.count(), pickup=(_.fulfilment == CLICK_AND_COLLECT).sum()))
    statuses = w.table("order_statuses")
    ready = statuses.filter(statuses.status == "ready_for_pickup").group_by("order_id").aggregate(ready_at=_.created_at.min())
    done = statuses.filter(statuses.status == "completed").group_by("order_id").aggregate(done_at=_.created_at.min())
    pickups = orders.filter(orders.fulfilment == CLICK_AND_COLLECT).join(ready, orders.id == ready.order_id)
    pickups = pickups.left_join(done, pickups.id == done.order_id)
    timing = pickups.select(
        picked=pickups.done_at.notnull(),
        hours=(pickups.done_at.epoch_seconds() - pickups.ready_at.epoch_seconds()) / 3600.0,
    )
    picked = w.execute(timing.aggregate(ready=_.count(), picked=_.picked.sum(), mean_hours=_.hours.mean(),
                                        median_hours=_.hours.approx_median()))
    returns = w.table("returns")
    online = orders.filter(orders.channel != "store", orders.status.isin(PURCHASED))
    returned = returns.filter(returns.channel == "store").join(online, returns.order_id == online.id)
    store_returns = w.execute(returned.aggregate(returns=_.count(), orders=_.order_id.nunique(), amount=_.amount.sum()))
    online_count = w.execute(online.count())
    remote_n, pickup_n = int(shares["remote"].iloc[0] or 0), int(shares["pickup"].iloc[0] or 0)
    ready_n, picked_n = int(picked["ready"].iloc[0] or 0), int(picked["picked"].iloc[0] or 0)
    mean, median = picked["mean_hours"].iloc[0], picked["median_hours"].iloc[0]
    returned_orders = int(store_returns["orders"].iloc[0] or 0)
    return {
        "remote_orders": remote_n,
        "pickup_orders": pickup_n,
        "share": _rate(pickup_n, remote_n),
        "ready_for_pickup": ready_n,
        "picked_up": picked_n,
        "pickup_rate": _rate(picked_n, ready_n),
        "hours_to_pickup_mean": None if pd.isna(mean) else round(float(mean), 2),
        "hours_to_pickup_median": None if pd.isna(median) else round(float(median), 2),
        "online_orders": int(online_count),
        "online_orders_returned_in_store": returned_orders,
        "store_returns_of_online_orders": int(store_returns["returns"].iloc[0] or 0),
        "store_return_amount": int(store_returns["amount"].iloc[0] or 0),
        "store_return_rate": _rate(returned_orders, int(online_count)),
    }


# --- 5. NPS and CSAT --------------------------------------------------------------------------


def satisfaction(w: Warehouse, f: Filters, *, by: str = "channel") -> dict:
    """NPS (% promoters 9-10 − % detractors 0-6) and CSAT (% of 4-5 answers on 1-5), overall and
    by channel, agent, store (of the person's latest pickup) or month."""
    surveys = w.table("surveys")
    answered = _segment_profiles(w, f, _in_period(surveys.filter(surveys.score.notnull()), "answered_at", f), "customer_id")
    if f.channel:
        answered = answered.filter(answered.channel == f.channel)
    keys = {"channel": answered.channel, "agent": answered.agent_id.cast("string"),
            "month": answered.answered_at.truncate("M").cast("date").cast("string")}
    if by not in keys:
        raise ValueError(f"unknown breakdown {by}")
    rows = answered.select(kind=answered.kind, score=answered.score, key=keys[by])
    grouped = w.execute(
        rows.group_by(["kind", "key"]).aggregate(
            answers=_.count(),
            promoters=(_.score >= 9).sum(),
            detractors=(_.score <= 6).sum(),
            satisfied=(_.score >= 4).sum(),
            mean=_.score.mean(),
        ).order_by(["kind", "key"])
    )
    result: dict = {"nps": {"answers": 0, "score": None, "by": []}, "csat": {"answers": 0, "score": None, "by": []}}
    for kind, frame in grouped.groupby("kind"):
        if kind not in ("nps", "csat"):
            continue
        entries = []
        for row in _records(frame):
            n = row["answers"]
            entry = {by: row["key"], "answers": n, "mean": round(row["mean"], 2) if row["mean"] is not None else None}
            if kind == "nps":
                entry.update(promoters=row["promoters"], detractors=row["detractors"],
                             score=round(_rate(row["promoters"], n) - _rate(row["detractors"], n), 2))
            else:
                entry.update(satisfied=row["satisfied"], score=_rate(row["satisfied"], n))
            entries.append(entry)
        n = int(frame["answers"].sum())
        if kind == "nps":
            score = _rate(frame["promoters"].sum(), n) - _rate(frame["detractors"].sum(), n)
        else:
            score = _rate(frame["satisfied"].sum(), n)
        result[kind] = {"answers": n, "score": round(float(score), 2), "by": entries}
    return result


# --- 10. contact center -----------------------------------------------------------------------


def contact_center(w: Warehouse, f: Filters, *, by: str = "channel") -> dict:
    """First response and resolution times (minutes), SLA met %, by channel or agent."""
    conversations = w.table("conversations")
    c = _segment_profiles(w, f, _in_period(conversations.filter(conversations.merged_into_id.isnull()), "created_at", f),
                          "customer_id")
    if f.channel:
        c = c.filter(c.channel == f.channel)
    key = c.channel if by == "channel" else c.assignee_id.cast("string")
    rows = c.select(
        key=key,
        first_response=(c.first_response_at.epoch_seconds() - c.created_at.epoch_seconds()) / 60.0,
        resolution=(c.resolved_at.epoch_seconds() - c.created_at.epoch_seconds()) / 60.0,
        resolved=c.resolved_at.notnull(),
        breached=c.sla_breached.fill_null(False),
    )
    aggregates = dict(
        conversations=_.count(),
        answered=_.first_response.count(),
        resolved=_.resolved.sum(),
        first_response_mean=_.first_response.mean(),
        first_response_median=_.first_response.approx_median(),
        resolution_mean=_.resolution.mean(),
        resolution_median=_.resolution.approx_median(),
        breached=_.breached.sum(),
    )
    total = _records(w.execute(rows.aggregate(**aggregates)))[0]
    grouped = _records(w.execute(rows.group_by("key").aggregate(**aggregates).order_by("key")))

    def shape(row: dict) -> dict:
        n = row["conversations"] or 0
        out = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items() if k != "key"}
        out["resolved"] = int(out["resolved"] or 0)
        out["breached"] = int(out["breached"] or 0)
        out["sla_met"] = _rate(n - out["breached"], n)
        return out

    return {**shape(total), "by": [{by: row["key"], **shape(row)} for row in grouped]}


# --- people's purchases: the base of cohorts, CLV and omni vs single ---------------------------


def _bought(w: Warehouse, f: Filters) -> ibis.Table:
    """Completed purchases of known people placed before the period's end (history included:
    a first purchase is the first one ever)."""
    p = purchases(w)
    p = _segment(f, p.filter(p.completed, p.person_id.notnull(), p.order_id.notnull(), p.ordered_at < f.end))
    returns = w.table("returns").group_by("order_id").aggregate(returned=_.amount.sum())
    joined = p.left_join(returns, p.order_id == returns.order_id)
    return joined.select(*[p[c] for c in p.columns], net=p.total - joined.returned.fill_null(0))


# --- 4. retention cohorts ---------------------------------------------------------------------


def cohorts(w: Warehouse, f: Filters, *, unit: str = "month", by: str = "period") -> dict:
    """People by their first purchase's month or week (or, `by="channel"`, by the channel of that
    first purchase), and the share of each cohort that bought again in each later period."""
    if unit not in ("month", "week") or by not in ("period", "channel"):
        raise ValueError("unit: month|week; by: period|channel")
    bought = _bought(w, f)
    first = bought.select(
        person_id=bought.person_id, ordered_at=bought.ordered_at, placed_channel=bought.placed_channel,
        n=ibis.row_number().over(group_by=bought.person_id, order_by=[bought.ordered_at, bought.order_id]),
    )
    first = first.filter(first.n == 0).select(person_id=_.person_id, first_at=_.ordered_at, channel=_.placed_channel)
    first = first.filter(first.first_at >= f.start)
    truncate = "M" if unit == "month" else "W"
    joined = bought.join(first, "person_id")
    cohort_start = joined.first_at.truncate(truncate)
    period_start = joined.ordered_at.truncate(truncate)
    if unit == "month":
        offset = (period_start.year() - cohort_start.year()) * 12 + period_start.month() - cohort_start.month()
    else:
        offset = ((period_start.epoch_seconds() - cohort_start.epoch_seconds()) / (7 * 86400)).round().cast("int64")
    key = cohort_start.cast("date").cast("string") if by == "period" else joined.channel
    activity = joined.select(cohort=key, offset=offset, person_id=joined.person_id)
    sizes = w.execute(activity.filter(activity.offset == 0).group_by("cohort").aggregate(people=_.person_id.nunique()))
    active = w.execute(activity.group_by(["cohort", "offset"]).aggregate(people=_.person_id.nunique()))
    repeat = bought.join(first, "person_id").group_by("person_id").aggregate(orders=_.order_id.nunique())
    repeat_row = w.execute(repeat.aggregate(people=_.count(), repeaters=(_.orders >= 2).sum()))
    size_of = dict(zip(sizes["cohort"], sizes["people"]))
    rows = []
    for cohort in sorted(size_of):
        periods = active[active["cohort"] == cohort].sort_values("offset")
        size = int(size_of[cohort])
        rows.append({"cohort": cohort, "people": size,
                     "retention": [{"offset": int(o), "people": int(n), "rate": _rate(int(n), size)}
                                   for o, n in zip(periods["offset"], periods["people"])]})
    people, repeaters = int(repeat_row["people"].iloc[0] or 0), int(repeat_row["repeaters"].iloc[0] or 0)
    return {"unit": unit, "by": by, "cohorts": rows, "people": people, "repeat_buyers": repeaters,
            "repeat_purchase_rate": _rate(repeaters, people)}


# --- 6. CLV -----------------------------------------------------------------------------------

WEEK = 7 * 86400.0
FIT_SAMPLE = 20_000
MIN_REPEATERS = 20  # fewer repeat customers than this cannot pin four parameters


def _customer_summary(w: Warehouse, f: Filters) -> ibis.Table:
    """Per person: orders, net revenue, first and last purchase, and the RFM summary BG/NBD and
    Gamma-Gamma are fitted on (in weeks; a repeat purchase is one on a later day)."""
    bought = _bought(w, f)
    days = bought.group_by([bought.person_id, bought.ordered_at.truncate("D").name("day")]).aggregate(
        value=_.net.sum(), orders=_.order_id.nunique(), channels=_.placed_channel.nunique())
    first = days.group_by("person_id").aggregate(first_day=_.day.min())
    joined = days.join(first, "person_id")
    end = ibis.literal(f.end).epoch_seconds()
    return joined.group_by("person_id").aggregate(
        orders=joined.orders.sum(),
        revenue=joined.value.sum(),
        first_day=joined.first_day.min(),
        last_day=joined.day.max(),
        frequency=joined.day.count() - 1,
        recency=(joined.day.max().epoch_seconds() - joined.first_day.min().epoch_seconds()) / WEEK,
        age=(end - joined.first_day.min().epoch_seconds()) / WEEK,
        repeat_value=ibis.cases((joined.day > joined.first_day, joined.value), else_=ibis.null("int64")).mean(),
    )


def clv(w: Warehouse, f: Filters, *, horizon_months: int = 12) -> dict:
    """Historic CLV (average order value × purchase frequency per customer-year × average
    customer lifetime in years, which is net revenue per customer so far) and predictive CLV
    (BG/NBD × Gamma-Gamma over the next `horizon_months`, fitted on every customer's history)."""
    from seamline.analytics import clv as models  # scipy: imported when used

    summary = w.execute(_customer_summary(w, f))
    people = len(summary)
    result: dict = {"customers": people, "historic": None, "predictive": None}
    if not people:
        return result
    orders, revenue = float(summary["orders"].sum()), float(summary["revenue"].sum())
    years = summary["age"].astype(float) * 7 / 365.25
    aov = revenue / orders
    frequency = orders / float(years.sum()) if years.sum() else None
    lifetime = float(years.mean())
    result["historic"] = {
        "average_order_value": round(aov, 2), "orders": int(orders), "revenue": int(revenue),
        "purchase_frequency_per_year": round(frequency, 4) if frequency else None,
        "average_lifetime_years": round(lifetime, 4),
        "clv": round(revenue / people, 2),
    }
    x = summary["frequency"].to_numpy(dtype=float)
    t_x, big_t = summary["recency"].to_numpy(dtype=float), summary["age"].to_numpy(dtype=float)
    repeaters = x > 0
    if repeaters.sum() < MIN_REPEATERS:
        result["predictive"] = {"fitted": False, "reason": f"too few repeat customers to fit ({int(repeaters.sum())} of "
                                                           f"the {MIN_REPEATERS} needed)"}
        return result
    values = summary["repeat_value"].to_numpy(dtype=float)
    # The fit needs a sample, not everyone: 20,000 customers pin the four parameters far tighter
    # than the data's own noise, at a fixed cost (a seeded sample: the same data, the same fit).
    fit = np.sort(np.random.default_rng(0).choice(people, FIT_SAMPLE, replace=False)) if people > FIT_SAMPLE else slice(None)
    try:
        purchases_model = models.fit_bgnbd(x[fit], t_x[fit], big_t[fit])
        sampled = repeaters[fit]
        value_model = models.fit_gamma_gamma(x[fit][sampled], values[fit][sampled])
    except Exception as exc:  # noqa: BLE001 - a fit that does not converge is reported, not raised
        result["predictive"] = {"fitted": False, "reason": str(exc)}
        return result
    if not all(1e-6 < v < 1e6 for v in (value_model.p, value_model.q, value_model.v)):
        # a shape of a million: the spend of one purchase does not vary across people in these data
        result["predictive"] = {"fitted": False, "reason": "the spend model does not fit these data (degenerate parameters)"}
        return result
    average = summary["repeat_value"].fillna(0).to_numpy(dtype=float)
    predicted = models.predicted_clv(purchases_model, value_model, frequency=x, recency=t_x, age=big_t,
                                     average_value=average, periods=horizon_months)
    alive = purchases_model.probability_alive(x, t_x, big_t)
    result["predictive"] = {
        "fitted": True,
        "horizon_months": horizon_months,
        "bgnbd": {k: round(float(v), 6) for k, v in vars(purchases_model).items() if isinstance(v, float)},
        "gamma_gamma": {k: round(float(v), 6) for k, v in vars(value_model).items() if isinstance(v, float)},
        "fitted_on": int(min(people, FIT_SAMPLE)),
        "clv_mean": round(float(predicted.mean()), 2),
        "clv_total": round(float(predicted.sum()), 2),
        "probability_alive_mean": round(float(alive.mean()), 4),
        "top": [{"person_id": int(p), "clv": round(float(v), 2)}
                for p, v in sorted(zip(summary["person_id"], predicted), key=lambda pv: -pv[1])[:20]],
    }
    return result


# --- 9. omnichannel vs single-channel customers -------------------------------------------------


def omnichannel(w: Warehouse, f: Filters) -> dict:
    """Customers who bought in the period, split by how many channels their purchases touched
    (started, placed or handed over; two or more: omnichannel): average check, orders per
    customer, repeat rate and net revenue per customer side by side."""
    p = _in_period(_bought(w, f), "ordered_at", f)
    touched = (
        p.select(person_id=p.person_id, channel=p.started_channel)
        .union(p.select(person_id=p.person_id, channel=p.placed_channel))
        .union(p.filter(p.handed_over.notnull()).select(person_id=p.person_id, channel=p.handed_over))
    )
    breadth = touched.group_by("person_id").aggregate(channels=_.channel.nunique())
    per_person = p.group_by("person_id").aggregate(orders=_.order_id.nunique(), revenue=_.net.sum(),
                                                  gross=_.total.sum())
    joined = per_person.join(breadth, "person_id")
    kind = ibis.cases((joined.channels >= 2, "omnichannel"), else_="single_channel")
    grouped = w.execute(
        joined.select(kind=kind, orders=joined.orders, revenue=joined.revenue, gross=joined.gross).group_by("kind").aggregate(
            customers=_.count(), orders=_.orders.sum(), revenue=_.revenue.sum(), gross=_.gross.sum(),
            repeaters=(_.orders >= 2).sum())
    )
    out = {}
    for row in _records(grouped):
        n, orders = row["customers"], row["orders"]
        out[row["kind"]] = {
            "customers": n, "orders": orders, "revenue": row["revenue"],
            "average_check": round(row["gross"] / orders, 2) if orders else None,
            "orders_per_customer": round(orders / n, 3) if n else None,
            "repeat_rate": _rate(row["repeaters"], n),
            "revenue_per_customer": round(row["revenue"] / n, 2) if n else None,
        }
    empty = {"customers": 0, "orders": 0, "revenue": 0, "average_check": None, "orders_per_customer": None,
             "repeat_rate": None, "revenue_per_customer": None}
    return {"omnichannel": out.get("omnichannel", empty), "single_channel": out.get("single_channel", empty)}


# --- 7. engagement ----------------------------------------------------------------------------

#: Extra activity sources (marketing's opens and clicks, later): callables `(warehouse) -> table of
#: (person_id: int64, person_key: string, channel: string, ts: timestamp, kind: string)`,
#: counted by engagement like events.
TOUCH_SOURCES: list = []


def register_touch_source(source) -> None:  # noqa: ANN001
    if source not in TOUCH_SOURCES:
        TOUCH_SOURCES.append(source)


def _activity(w: Warehouse) -> ibis.Table:
    """Every action of a person: events (by the person, else by the event's own key) and the
    messages they wrote (kind "message"). A known person is their `person_id`; an unknown one
    their `person_key`."""
    events = _events(w)
    acts = events.filter(events.type.isin(("track", "page", "screen"))).select(
        person_id=events.person_id, person_key=events.person_key, channel=events.channel, ts=events.ts,
        kind=ibis.literal("event"))
    messages, conversations, people = w.table("messages"), w.table("conversations"), w.table("people")
    inbound = messages.filter(messages.direction == "in")
    joined = inbound.join(conversations, inbound.conversation_id == conversations.id).left_join(
        people, conversations.customer_id == people.profile_id)
    wrote = joined.select(person_id=joined.person_id.fill_null(joined.customer_id), person_key=ibis.null("string"),
                          channel=inbound.channel, ts=inbound.created_at, kind=ibis.literal("message"))
    union = acts.union(wrote)
    for source in TOUCH_SOURCES:
        union = union.union(source(w))
    return union


def engagement(w: Warehouse, f: Filters) -> dict:
    """Per channel: active people, events and messages per active person, DAU / WAU / MAU (means
    over the period's days, weeks and months) and stickiness (DAU / MAU); replies per outbound
    message."""
    acts = _segment(f, _in_period(_activity(w), "ts", f))
    if f.channel:
        acts = acts.filter(acts.channel == f.channel)
    counts = w.execute(acts.group_by("channel").aggregate(events=(acts.kind == "event").sum(),
                                                         messages=(acts.kind == "message").sum()))
    # One row per channel, day and person (a known person once, whichever key they used): every
    # count below is a plain count of distinct rows of it, far smaller than the activity itself.
    who = acts.select(channel=acts.channel, day=acts.ts.truncate("D"), person_id=acts.person_id,
                      person_key=ibis.cases((acts.person_id.isnull(), acts.person_key), else_=ibis.null("string")))
    daily_rows = w.cached(("active days", f.start, f.end, f.channel, f.segment), lambda: who.distinct())

    def active(unit: str | None) -> dict:
        columns = [daily_rows.channel, daily_rows.person_id, daily_rows.person_key]
        if unit == "D":
            rows = daily_rows
        else:
            rows = daily_rows.select(*columns, *([daily_rows.day.truncate(unit).name("bucket")] if unit else [])).distinct()
        frame = w.execute(rows.group_by("channel").aggregate(total=_.count()))
        return dict(zip(frame["channel"], frame["total"]))

    people_of = active(None)
    per_channel = counts.assign(people=counts["channel"].map(people_of).fillna(0).astype(int))

    days = max((f.end - f.start).total_seconds() / 86400, 1.0)
    daily, weekly, monthly = active("D"), active("W"), active("M")
    weeks, months = max(days / 7, 1.0), max(days / 30.4375, 1.0)
    channels = []
    for row in _records(per_channel.sort_values("channel")):
        channel, people = row["channel"], row["people"]
        dau, wau, mau = daily.get(channel, 0) / days, weekly.get(channel, 0) / weeks, monthly.get(channel, 0) / months
        channels.append({
            "channel": channel, "active_people": people,
            "events_per_person": round(row["events"] / people, 3) if people else None,
            "messages_per_person": round(row["messages"] / people, 3) if people else None,
            "dau": round(dau, 3), "wau": round(wau, 3), "mau": round(mau, 3),
            "stickiness": _rate(dau, mau),
        })
    messages = _in_period(w.table("messages"), "created_at", f).filter(_.kind == "message")
    if f.people is not None:
        conversations = _segment_profiles(w, f, w.table("conversations"), "customer_id").select("id")
        messages = messages.semi_join(conversations, messages.conversation_id == conversations.id)
    if f.channel:
        messages = messages.filter(messages.channel == f.channel)
    ordered = messages.select(
        direction=messages.direction,
        next_direction=messages.direction.lead().over(group_by=messages.conversation_id,
                                                      order_by=[messages.created_at, messages.id]),
    )
    replies = w.execute(ordered.filter(ordered.direction == "out").aggregate(
        outbound=_.count(), replied=(_.next_direction == "in").sum()))
    outbound, replied = int(replies["outbound"].iloc[0] or 0), int(replies["replied"].iloc[0] or 0)
    return {"channels": channels, "outbound_messages": outbound, "replied": replied,
            "replies_per_outbound": round(replied / outbound, 4) if outbound else None}


# --- 2. journeys and 8. attribution -------------------------------------------------------------

SEP = "\x1f"  # between touches in a path (no channel or UTM value holds it)
LOOKBACK_DAYS = 30
DIMENSIONS = ("channel", "source")


def _touches(w: Warehouse, dimension: str) -> ibis.Table:
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension: one of {DIMENSIONS}")
    return _all_touches(w, dimension)


def _all_touches(w: Warehouse, dimension: str) -> ibis.Table:
    """Every touch of a known person: events (page, screen, track), messages they wrote
    (calls included) and orders they placed (a store or call-center purchase is a touch too).
    `label` is the channel, or (`dimension="source"`) the event's UTM source, "(direct)" without."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension: one of {DIMENSIONS}")
    events = _events(w)
    events = events.filter(events.type.isin(("track", "page", "screen")), events.person_id.notnull())
    direct = ibis.literal("(direct)")
    from_events = events.select(person_id=events.person_id, ts=events.ts, last=ibis.literal(0),
                                label=events.channel if dimension == "channel" else events.utm_source.fill_null(direct))
    messages, conversations, people = w.table("messages"), w.table("conversations"), w.table("people")
    inbound = messages.filter(messages.direction == "in")
    joined = inbound.join(conversations, inbound.conversation_id == conversations.id).join(
        people, conversations.customer_id == people.profile_id)
    from_messages = joined.select(person_id=joined.person_id, ts=inbound.created_at, last=ibis.literal(0),
                                  label=inbound.channel if dimension == "channel" else direct)
    orders = _orders(w)
    orders = orders.filter(orders.person_id.notnull(), orders.status.isin(PURCHASED))
    from_orders = orders.select(person_id=orders.person_id, ts=orders.created_at, last=ibis.literal(1),
                                label=orders.channel if dimension == "channel" else direct)
    union = from_events.union(from_messages).union(from_orders)
    return union.mutate(label=union.label.cast("string"))


def _collapse(table: ibis.Table, group: str) -> ibis.Table:
    """Touches in a row with the same label become one (at the first one's time), numbered."""
    marked = table.mutate(previous=table.label.lag().over(group_by=table[group], order_by=[table.ts, table.last]))
    kept = marked.filter(marked.previous.isnull() | (marked.previous != marked.label)).drop("previous")
    return kept.mutate(step=ibis.row_number().over(group_by=kept[group], order_by=[kept.ts, kept.last]))


def _path_of(w: Warehouse, table: ibis.Table, group: str) -> ibis.Table:
    """One row per `group` with its touches' labels joined in step order (`path`)."""
    if w.backend == "spark":  # Spark cannot order an aggregation: sort (step, label) pairs instead
        pairs = ibis.struct({"step": table.step, "label": table.label}).collect()
        aggregated = table.group_by(group).aggregate(pairs=pairs, touches=_.count())
        return aggregated.select(group, "touches", path=ibis.literal(SEP).join(aggregated.pairs.sort().map(lambda p: p.label)))
    aggregated = table.group_by(group).aggregate(labels=table.label.collect(order_by=table.step), touches=_.count())
    return aggregated.select(group, "touches", path=ibis.literal(SEP).join(aggregated.labels))


def _journeys(w: Warehouse, f: Filters, dimension: str, lookback_days: int) -> tuple[ibis.Table, ibis.Table]:
    """(collapsed touches of each purchase in the period, one row per purchase with its path),
    both kept for the warehouse session; the second is made from the first, not again from the
    touches (on PostgreSQL that made a plan forty times slower)."""
    key = ("journeys", dimension, lookback_days, f.start, f.end, f.channel, f.store, f.segment)
    collapsed = w.cached((*key, "collapsed"), lambda: _purchase_touches(w, f, dimension, lookback_days))

    def per_order() -> ibis.Table:
        base = collapsed.group_by("order_id").aggregate(total=_.total.max(), ordered_at=_.ordered_at.max(),
                                                        raw_touches=_.raw_touches.max(), first_ts=_.first_ts.min())
        return base.join(_path_of(w, collapsed, "order_id"), "order_id")

    return collapsed, w.cached((*key, "per_order"), per_order)


def _purchase_touches(w: Warehouse, f: Filters, dimension: str, lookback_days: int) -> ibis.Table:
    """Each purchase's touches in the lookback, collapsed, with the purchase's total and time and
    its raw (uncollapsed) touch count and first touch time."""
    p = _segment(f, _in_period(purchases(w), "ordered_at", f))
    p = p.filter(p.completed, p.person_id.notnull(), p.order_id.notnull())
    if f.channel:
        p = p.filter(p.placed_channel == f.channel)
    if f.store is not None:
        p = p.filter(p.pickup_location_id == f.store)
    t = _touches(w, dimension)
    window = ibis.interval(days=lookback_days)
    joined = p.join(t, [p.person_id == t.person_id, t.ts <= p.ordered_at, t.ts > p.ordered_at - window])
    touches = joined.select(order_id=p.order_id, ordered_at=p.ordered_at, total=p.total, label=t.label, ts=t.ts,
                            last=t.last)
    touches = touches.mutate(raw_touches=touches.count().over(group_by=touches.order_id),
                             first_ts=touches.ts.min().over(group_by=touches.order_id))
    return _collapse(touches, "order_id")


def journeys(w: Warehouse, f: Filters, *, dimension: str = "channel", lookback_days: int = LOOKBACK_DAYS,
             top: int = 20, sankey_steps: int = 5) -> dict:
    """The touches before each purchase (`lookback_days`, runs in one channel collapsed): top
    paths, a Sankey of transitions between steps, time and touches to purchase."""
    collapsed, per_order = _journeys(w, f, dimension, lookback_days)
    hours = (per_order.ordered_at.epoch_seconds() - per_order.first_ts.epoch_seconds()) / 3600.0
    summary = _records(w.execute(per_order.aggregate(
        purchases=_.count(), touches_mean=_.touches.mean(), raw_touches_mean=_.raw_touches.mean(),
        hours_mean=hours.mean(), hours_median=hours.approx_median())))[0]
    paths = w.execute(per_order.group_by("path").aggregate(purchases=_.count(), revenue=_.total.sum(),
                                                          hours_mean=hours.mean())
                      .order_by([ibis.desc("purchases"), "path"]).limit(top))
    last_step = collapsed.step.max().over(group_by=collapsed.order_id)
    steps = collapsed.mutate(final=last_step)
    nxt = steps.label.lead().over(group_by=steps.order_id, order_by=steps.step)
    links = steps.select(step=steps.step, source=steps.label, target=nxt.fill_null("(purchase)"), final=steps.final)
    links = links.filter(links.step < sankey_steps)
    flows = w.execute(links.group_by(["step", "source", "target"]).aggregate(value=_.count()).order_by(["step", "source", "target"]))
    sankey = []
    for row in _records(flows):
        step = row["step"] + 1  # 1-based in what people read
        target = row["target"] if row["target"] == "(purchase)" else f"{step + 1}. {row['target']}"
        sankey.append({"source": f"{step}. {row['source']}", "target": target, "value": row["value"]})
    return {
        "dimension": dimension, "lookback_days": lookback_days,
        "purchases": summary["purchases"],
        "touches_to_purchase_mean": None if summary["touches_mean"] is None else round(summary["touches_mean"], 3),
        "raw_touches_to_purchase_mean": None if summary["raw_touches_mean"] is None else round(summary["raw_touches_mean"], 3),
        "hours_to_purchase_mean": None if summary["hours_mean"] is None else round(summary["hours_mean"], 2),
        "hours_to_purchase_median": None if summary["hours_median"] is None else round(summary["hours_median"], 2),
        "top_paths": [{"path": row["path"].split(SEP), "purchases": row["purchases"], "revenue": row["revenue"],
                       "hours_mean": None if row["hours_mean"] is None else round(row["hours_mean"], 2)}
                      for row in _records(paths)],
        "sankey": sankey,
    }


def attribution(w: Warehouse, f: Filters, *, dimension: str = "channel", lookback_days: int = LOOKBACK_DAYS,
                half_life_days: float = 7.0) -> dict:
    """Purchases and revenue in the period credited to channels (or UTM sources) by every model:
    first touch, last touch, linear, time decay, position based, and the Markov chain's removal
    effect (over converted journeys and the paths of people who did not buy)."""
    from seamline.analytics import attribution as models

    collapsed, per_order = _journeys(w, f, dimension, lookback_days)
    converted = w.execute(per_order.group_by("path").aggregate(purchases=_.count(), revenue=_.total.sum()))
    journeys_ = [models.Journey(tuple(path.split(SEP)), people=float(n), conversions=float(n), revenue=float(revenue or 0))
                 for path, n, revenue in zip(converted["path"], converted["purchases"], converted["revenue"])]
    credit: dict[str, dict] = {}
    for model in ("first_touch", "last_touch", "linear", "position_based"):
        credit[model] = models.rule_based(journeys_, model) if journeys_ else models.Credit()
    # time decay in the database: a touch's weight halves every `half_life_days` before the purchase
    age_days = (collapsed.ordered_at.epoch_seconds() - collapsed.ts.epoch_seconds()) / 86400.0
    weighted = collapsed.mutate(weight=ibis.literal(0.5).pow(age_days / half_life_days))
    weighted = weighted.mutate(share=weighted.weight / weighted.weight.sum().over(group_by=weighted.order_id))
    decay = w.execute(weighted.group_by("label").aggregate(conversions=_.share.sum(), revenue=(_.share * _.total).sum()))
    credit["time_decay"] = models.Credit(dict(zip(decay["label"], decay["conversions"].astype(float))),
                                         dict(zip(decay["label"], decay["revenue"].astype(float))))
    # people who touched but did not buy in the period: their last `lookback_days` of touches
    buyers = _in_period(purchases(w), "ordered_at", f)
    buyers = buyers.filter(buyers.completed, buyers.person_id.notnull()).select("person_id").distinct()
    t = _touches(w, dimension)
    t = t.filter(t.ts < f.end, t.ts >= max(f.start, f.end - timedelta(days=lookback_days)))
    lost = _segment(f, t.anti_join(buyers, "person_id"))
    lost_paths = _path_of(w, _collapse(lost, "person_id"), "person_id")
    unconverted = w.execute(lost_paths.group_by("path").aggregate(people=_.count()))
    chain = journeys_ + [models.Journey(tuple(path.split(SEP)), people=float(n))
                         for path, n in zip(unconverted["path"], unconverted["people"])]
    markov = models.markov(chain) if chain else models.MarkovCredit()
    credit["markov"] = markov
    labels = sorted({label for c in credit.values() for label in c.conversions})
    return {
        "dimension": dimension, "lookback_days": lookback_days, "half_life_days": half_life_days,
        "purchases": int(converted["purchases"].sum()) if len(converted) else 0,
        "revenue": int(converted["revenue"].sum()) if len(converted) else 0,
        "models": {name: [{"touch": label, "conversions": round(c.conversions.get(label, 0.0), 4),
                           "revenue": round(c.revenue.get(label, 0.0), 2)} for label in labels]
                   for name, c in credit.items()},
        "markov": {"conversion_probability": round(markov.conversion_probability, 6),
                   "removal_effects": {k: round(v, 6) for k, v in sorted(markov.removal_effects.items())}},
    }


# --- 3. funnels -------------------------------------------------------------------------------

FUNNEL_ORDERS = ("ordered", "strict", "any")
BREAKDOWNS = ("channel", "utm_source", "utm_medium", "utm_campaign")


def funnel(w: Warehouse, f: Filters, *, steps: list[str], window_hours: float = 168.0, order: str = "ordered",
           breakdown: str | None = None, dropped_after: int | None = None, limit: int = 1000,
           trait_values: dict[int, str] | None = None) -> dict:
    """People through ordered steps (event names) within `window_hours` of their first step in
    the period. `ordered`: each step after the one before, others may come between; `strict`:
    each step the very next event; `any`: step k counts people who did any k of the steps.
    `breakdown` by the first step's channel or UTM, or (`trait:<key>`) by the person's trait, whose
    values `trait_values` gives ({person id: value}, `service` reads them; people without one and
    unknown visitors are "(none)"); `dropped_after=k`: who reached step k and not k + 1 (up to
    `limit` people)."""
    by_trait = bool(breakdown and breakdown.startswith("trait:"))
    if not 1 <= len(steps) <= 20 or order not in FUNNEL_ORDERS or (breakdown and breakdown not in BREAKDOWNS
                                                                    and not by_trait):
        raise ValueError("2 to 20 steps; order: ordered|strict|any; "
                         "breakdown: channel|utm_source|utm_medium|utm_campaign|trait:<key>")
    if dropped_after is not None and not 1 <= dropped_after < len(steps):
        raise ValueError("dropped_after: a step number from 1 to the number of steps - 1")
    window = window_hours * 3600.0
    events = _events(w)
    events = _segment(f, events.filter(events.type.isin(("track", "page", "screen")), events.ts >= f.start,
                                       events.ts < f.end + timedelta(hours=window_hours)))
    if by_trait:
        values = trait_values or {}
        table = ibis.memtable({"trait_person": list(values), "trait_value": [str(v) for v in values.values()]},
                              schema={"trait_person": "int64", "trait_value": "string"})
        joined = events.left_join(table, events.person_id == table.trait_person)
        events = joined.select(*[events[c] for c in events.columns], key=table.trait_value.fill_null("(none)"))
        key = events.key
    else:
        key = events[breakdown].cast("string") if breakdown else ibis.literal("(all)")
    events = events.select(who=events.person_id.cast("string").fill_null(events.person_key), id=events.id, name=events.name,
                           ts=events.ts, key=key, channel=events.channel)
    first_step = events.filter(events.name == steps[0], events.ts < f.end)
    if f.channel:
        first_step = first_step.filter(first_step.channel == f.channel)
    ranked = first_step.mutate(n=ibis.row_number().over(group_by=first_step.who, order_by=[first_step.ts, first_step.id]))
    entry = ranked.filter(ranked.n == 0).select(who=_.who, key=_.key, t1=_.ts, at=_.ts, id=_.id)
    reached: list[ibis.Table] = [entry]
    if order == "any":
        anchor = entry.select("who", "key", "t1")
        relevant = events.filter(events.name.isin(steps))
        inside = relevant.join(anchor, [relevant.who == anchor.who, relevant.ts >= anchor.t1,
                                        relevant.ts.epoch_seconds() <= anchor.t1.epoch_seconds() + window])
        done = inside.group_by([anchor.who, anchor.key, anchor.t1]).aggregate(k=inside.name.nunique(), last=inside.ts.max())
        reached = [done.filter(done.k >= k).select(who=_.who, key=_.key, t1=_.t1, at=_.last) for k in range(1, len(steps) + 1)]
    elif order == "ordered":
        for name in steps[1:]:
            previous = reached[-1]
            candidates = events.filter(events.name == name)
            joined = candidates.join(previous, [candidates.who == previous.who, candidates.ts > previous.at,
                                                candidates.ts.epoch_seconds() <= previous.t1.epoch_seconds() + window])
            reached.append(joined.group_by([previous.who, previous.key, previous.t1]).aggregate(at=candidates.ts.min()))
    else:  # strict: the very next event of the person is the next step
        sequence = events.mutate(
            next_name=events.name.lead().over(group_by=events.who, order_by=[events.ts, events.id]),
            next_ts=events.ts.lead().over(group_by=events.who, order_by=[events.ts, events.id]),
            next_id=events.id.lead().over(group_by=events.who, order_by=[events.ts, events.id]),
        )
        for name in steps[1:]:
            previous = reached[-1]
            joined = sequence.join(previous, sequence.id == previous.id)
            joined = joined.filter(joined.next_name == name,
                                   joined.next_ts.epoch_seconds() <= joined.t1.epoch_seconds() + window)
            reached.append(joined.select(who=previous.who, key=previous.key, t1=previous.t1, at=joined.next_ts,
                                         id=joined.next_id))
    counted = None
    for k, table in enumerate(reached, start=1):
        step = table.group_by("key").aggregate(
            people=_.who.nunique(), hours=((_.at.epoch_seconds() - _.t1.epoch_seconds()) / 3600.0).mean()
        ).mutate(step=ibis.literal(k))
        counted = step if counted is None else counted.union(step)
    frame = w.execute(counted)
    groups = sorted(set(frame["key"].fillna("(none)")))
    result_groups = []
    for key in groups:
        rows = frame[frame["key"].fillna("(none)") == key].set_index("step")
        first = int(rows["people"].get(1, 0))
        out, before = [], first
        for k, name in enumerate(steps, start=1):
            people = int(rows["people"].get(k, 0))
            hours = rows["hours"].get(k) if k in rows.index else None
            out.append({"step": k, "name": name, "people": people, "rate": _rate(people, first),
                        "rate_from_previous": _rate(people, before),
                        "hours_from_first_mean": None if hours is None or pd.isna(hours) else round(float(hours), 2)})
            before = people
        result_groups.append({"key": key, "steps": out})
    result: dict = {"order": order, "window_hours": window_hours, "breakdown": breakdown, "groups": result_groups}
    if len(result_groups) and breakdown is None:
        result["steps"] = result_groups[0]["steps"]
    elif not result_groups:
        result["steps"] = [{"step": k, "name": n, "people": 0, "rate": None, "rate_from_previous": None,
                            "hours_from_first_mean": None} for k, n in enumerate(steps, start=1)]
    if dropped_after is not None:
        stayed = reached[dropped_after].select("who")
        gone = reached[dropped_after - 1].anti_join(stayed, "who").select("who").distinct().order_by("who").limit(limit)
        who = list(w.execute(gone)["who"])
        result["dropped"] = {"after_step": dropped_after,
                             "people": [int(x) if x.isdigit() else x for x in who]}
    return result


# --- 11. recommendations -------------------------------------------------------------------------

#: How long a recommendation click keeps the credit for buying the product clicked.
RECOMMENDATION_WINDOW_DAYS = 7
#: The Segment e-commerce event of a click on a product in a list, and the list of recommendations.
PRODUCT_CLICKED = "Product Clicked"
RECOMMENDATIONS_LIST = "recommendations"
NONE = "(none)"


def _recommendation_clicks(w: Warehouse) -> ibis.Table:
    """Every click on a recommended product (any time), with its person, product code, reason and
    the channel the list was shown in ("(none)" when the tracker did not say)."""
    events = _events(w)
    clicks = events.filter(events.type == "track", events.name == PRODUCT_CLICKED,
                           events.list_id == RECOMMENDATIONS_LIST, events.product_code.notnull())
    return clicks.select(click_id=clicks.id, person_id=clicks.person_id, person_key=clicks.person_key,
                         product_code=clicks.product_code, ts=clicks.ts,
                         channel=clicks.shown_in.fill_null(NONE), reason=clicks.rec_reason.fill_null(NONE))


def _period_orders(w: Warehouse, f: Filters) -> ibis.Table:
    """Purchased orders placed in the period, of the segment's people, picked up in the store."""
    orders = _segment(f, _in_period(_orders(w), "created_at", f))
    orders = orders.filter(orders.status.isin(PURCHASED))
    if f.store is not None:
        orders = orders.filter(orders.pickup_location_id == f.store)
    return orders


def _recommended_lines(w: Warehouse, f: Filters, window_days: int) -> ibis.Table:
    """The order lines attributed to recommendations: each line of a purchased order in the period
    with the person's latest recommendation click on the line's product in the `window_days`
    before the order (its channel and reason); lines without one are not here."""
    orders = _period_orders(w, f).filter(_.person_id.notnull())
    lines, variants, products = w.table("order_lines"), w.table("variants"), w.table("products")
    joined = (lines.join(orders, lines.order_id == orders.id)
              .join(variants, lines.variant_id == variants.id)
              .join(products, variants.product_id == products.id))
    bought = joined.select(line_id=lines.id, order_id=orders.id, person_id=orders.person_id,
                           ordered_at=orders.created_at, total=lines.total, product_code=products.code)
    clicks = _recommendation_clicks(w)
    clicks = clicks.filter(clicks.person_id.notnull(), clicks.ts < f.end,
                           clicks.ts >= f.start - timedelta(days=window_days))
    window = ibis.interval(days=window_days)
    matched = bought.join(clicks, [bought.person_id == clicks.person_id, bought.product_code == clicks.product_code,
                                   clicks.ts <= bought.ordered_at, clicks.ts >= bought.ordered_at - window])
    matched = matched.select(line_id=bought.line_id, order_id=bought.order_id, person_id=bought.person_id,
                             total=bought.total, channel=clicks.channel, reason=clicks.reason, ts=clicks.ts,
                             click_id=clicks.click_id)
    latest = matched.mutate(n=ibis.row_number().over(group_by=matched.line_id,
                                                     order_by=[ibis.desc(matched.ts), ibis.desc(matched.click_id)]))
    return latest.filter(latest.n == 0).drop("n", "ts", "click_id")


def recommendations(w: Warehouse, f: Filters, *, window_days: int = RECOMMENDATION_WINDOW_DAYS) -> dict:
    """Revenue from recommendations, by the channel the recommendation was shown in (`shown_in`
    of the "Product Clicked" event with `list_id` "recommendations") and by its reason.

    Clicks and people who clicked: the recommendation clicks in the period (a known person once,
    an unknown visitor by their event key). The rule: a line of a purchased order (`PURCHASED`)
    placed in the period, of product P (its variant's product code) by person X, is attributed to
    recommendations when X clicked a recommendation of P in the `window_days` (7) before the
    order (the click at or before the order time); the line's total goes to the latest such
    click's channel and reason (last touch), so each line counts once. Orders: those with an
    attributed line (one order may count in two channels, each with its own lines). Share: the
    attributed revenue over the revenue of every purchased order in the period (their totals).
    Money in minor units; the price list has one currency (`commerce_currency`), so amounts add
    up as in the other metrics.

    Filters: the segment narrows clicks and orders to its people, the store the orders (picked up
    there; clicks are not narrowed), the channel the recommendations to those shown in it (the
    share stays over all revenue in the period)."""
    if not 1 <= window_days <= 90:
        raise ValueError("window_days: 1 to 90")
    clicks = _segment(f, _in_period(_recommendation_clicks(w), "ts", f))
    # kept for the session, without the segment (Spark caches no in-memory table): narrowed after
    everyone = replace(f, segment=(), people=None)
    lines = w.cached(("recommended lines", f.start, f.end, f.store, window_days),
                     lambda: _recommended_lines(w, everyone, window_days))
    lines = _segment(f, lines)
    if f.channel:
        clicks = clicks.filter(clicks.channel == f.channel)
        lines = lines.filter(lines.channel == f.channel)
    clicks = clicks.mutate(who=clicks.person_id.cast("string").fill_null(clicks.person_key))
    click_sums = dict(clicks=_.count(), people=_.who.nunique())
    line_sums = dict(orders=_.order_id.nunique(), lines=_.count(), buyers=_.person_id.nunique(), revenue=_.total.sum())
    all_revenue = w.execute(_period_orders(w, f).aggregate(revenue=_.total.sum()))["revenue"].iloc[0]
    all_revenue = 0 if all_revenue is None or pd.isna(all_revenue) else int(all_revenue)

    def counted(row: dict) -> dict:
        out = {key: int(row.get(key) or 0) for key in ("clicks", "people", "orders", "lines", "buyers", "revenue")}
        out["share"] = _rate(out["revenue"], all_revenue)
        return out

    def by(key: str) -> list[dict]:
        tapped = {r[key]: r for r in _records(w.execute(clicks.group_by(key).aggregate(**click_sums)))}
        bought = {r[key]: r for r in _records(w.execute(lines.group_by(key).aggregate(**line_sums)))}
        rows = [{key: name, **counted({**tapped.get(name, {}), **bought.get(name, {})})}
                for name in set(tapped) | set(bought)]
        return sorted(rows, key=lambda r: (-r["revenue"], -r["clicks"], r[key]))

    total = {**_records(w.execute(clicks.aggregate(**click_sums)))[0],
             **_records(w.execute(lines.aggregate(**line_sums)))[0]}
    return {"window_days": window_days, **counted(total), "all_revenue": all_revenue,
            "by_channel": by("channel"), "by_reason": by("reason")}


# --- drill-down: the people behind a number -----------------------------------------------------

DRILLS = ("conversion", "cohorts", "satisfaction", "omnichannel", "engagement")


def people_behind(w: Warehouse, f: Filters, *, metric: str, selector: dict[str, str], limit: int = 1000) -> dict:
    """The people counted in one cell of a metric: `selector` names the cell with the metric's own
    keys (conversion: started_channel, placed_channel, handed_over (`none`: not handed over),
    completed=true|false, narrowed by the filters' channel and store as the metric is;
    cohorts: cohort (a month or week start) and unit; satisfaction: kind, channel, group
    (promoters|passives|detractors|satisfied|unsatisfied); omnichannel: kind; engagement:
    channel). Known people by id; unknown visitors (engagement) by their event key."""
    if metric == "conversion":
        p = _segment(f, _in_period(purchases(w), "started_at", f))
        if f.channel:  # narrowed as `conversion` is
            p = p.filter(p.started_channel == f.channel)
        if f.store is not None:
            p = p.filter(p.pickup_location_id == f.store)
        for key in ("started_channel", "placed_channel", "handed_over"):
            if selector.get(key) == "none":  # not handed over (yet)
                p = p.filter(p[key].isnull())
            elif selector.get(key):
                p = p.filter(p[key] == selector[key])
        if selector.get("completed") in ("true", "false"):
            p = p.filter(p.completed == (selector["completed"] == "true"))
        who = p.filter(p.person_id.notnull()).select(who=p.person_id.cast("string"))
    elif metric == "cohorts":
        bought = _bought(w, f)
        first = bought.group_by("person_id").aggregate(first_at=_.ordered_at.min())
        first = first.filter(first.first_at >= f.start)
        unit = "W" if selector.get("unit") == "week" else "M"
        first = first.filter(first.first_at.truncate(unit).cast("date").cast("string") == selector.get("cohort", ""))
        who = first.select(who=first.person_id.cast("string"))
    elif metric == "satisfaction":
        surveys, people = w.table("surveys"), w.table("people")
        s = _segment_profiles(w, f, _in_period(surveys.filter(surveys.score.notnull()), "answered_at", f), "customer_id")
        if selector.get("kind"):
            s = s.filter(s.kind == selector["kind"])
        if selector.get("channel"):
            s = s.filter(s.channel == selector["channel"])
        groups = {"promoters": s.score >= 9, "passives": (s.score >= 7) & (s.score <= 8), "detractors": s.score <= 6,
                  "satisfied": s.score >= 4, "unsatisfied": s.score <= 3}
        if selector.get("group") in groups:
            s = s.filter(groups[selector["group"]])
        joined = s.join(people, s.customer_id == people.profile_id)
        who = joined.select(who=joined.person_id.cast("string"))
    elif metric == "omnichannel":
        p = _in_period(_bought(w, f), "ordered_at", f)
        touched = (p.select(person_id=p.person_id, channel=p.started_channel)
                   .union(p.select(person_id=p.person_id, channel=p.placed_channel))
                   .union(p.filter(p.handed_over.notnull()).select(person_id=p.person_id, channel=p.handed_over)))
        breadth = touched.group_by("person_id").aggregate(channels=_.channel.nunique())
        omni = selector.get("kind", "omnichannel") == "omnichannel"
        breadth = breadth.filter(breadth.channels >= 2 if omni else breadth.channels < 2)
        who = breadth.select(who=breadth.person_id.cast("string"))
    elif metric == "engagement":
        acts = _segment(f, _in_period(_activity(w), "ts", f))
        if selector.get("channel"):
            acts = acts.filter(acts.channel == selector["channel"])
        who = acts.select(who=acts.person_id.cast("string").fill_null(acts.person_key))
    else:
        raise ValueError(f"drill-down exists for {', '.join(DRILLS)}")
    distinct = who.distinct()
    total = int(w.execute(distinct.count()))
    listed = list(w.execute(distinct.order_by("who").limit(limit))["who"])
    return {"metric": metric, "selector": selector, "total": total,
            "people": [int(x) if str(x).isdigit() else x for x in listed]}
