"""Every metric, written once as Ibis expressions over the logical tables (`schema.LOGICAL`).

Each public function takes a `Warehouse` and `Filters` and returns plain JSON-able data; the
definitions are in docs/analytics.md. People are counted through the identity graph as it is now:
every profile id goes through `people` (its merge chain's end) and every event's person key
through `event_people`, so a merge re-attributes history and an unmerge splits it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import ibis
import pandas as pd
from ibis import _

from seamline.analytics.warehouse import Warehouse

#: Orders that count as a completed purchase (placed, not cancelled, not waiting for payment).
PURCHASED = ("confirmed", "ready_for_pickup", "shipped", "completed")


@dataclass(frozen=True)
class Filters:
    """What every metric can be narrowed to. Times are naive UTC, `end` exclusive."""

    start: datetime
    end: datetime
    channel: str | None = None
    store: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


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
    events, keys = w.table("events"), w.table("event_people")
    joined = events.left_join(keys, events.person_key == keys.person_key)
    return joined.select(*[events[c] for c in events.columns], person_id=keys.person_id)


# --- 1. cross-channel conversion --------------------------------------------------------------


def purchases(w: Warehouse) -> ibis.Table:
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


def _in_period(table: ibis.Table, column: str, f: Filters) -> ibis.Table:
    return table.filter(table[column] >= f.start, table[column] < f.end)


def conversion(w: Warehouse, f: Filters) -> dict:
    """Cross-channel conversion: completed purchases / started purchases × 100, overall, per
    channel where purchases started, and as a started -> placed -> handed over matrix."""
    p = _in_period(purchases(w), "started_at", f)
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
    orders = _in_period(w.table("orders"), "created_at", f)
    if f.store is not None:
        orders = orders.filter(orders.pickup_location_id == f.store)
    remote = orders.filter(orders.fulfilment != "in_store", orders.status.isin(PURCHASED))
    shares = w.execute(remote.aggregate(remote=_.count(), pickup=(_.fulfilment == "pickup").sum()))
    statuses = w.table("order_statuses")
    ready = statuses.filter(statuses.status == "ready_for_pickup").group_by("order_id").aggregate(ready_at=_.created_at.min())
    done = statuses.filter(statuses.status == "completed").group_by("order_id").aggregate(done_at=_.created_at.min())
    pickups = orders.filter(orders.fulfilment == "pickup").join(ready, orders.id == ready.order_id)
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
    answered = _in_period(surveys.filter(surveys.score.notnull()), "answered_at", f)
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
    c = _in_period(conversations.filter(conversations.merged_into_id.isnull()), "created_at", f)
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
