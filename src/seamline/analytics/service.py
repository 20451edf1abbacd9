"""Analytics for callers: the metrics by name, run on the configured backend, with the
period and filters checked, timings and the mirror's freshness; the dashboard (every metric
at once) and the people behind a number (drill-down)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from seamline.analytics import metrics, mirror
from seamline.analytics.metrics import Filters
from seamline.analytics.warehouse import Warehouse, mirror_path, open_warehouse
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import Unprocessable
from seamline.customers import service as customers_service

#: Metric name -> function(warehouse, filters, **params). The dashboard runs them in this order.
METRICS: dict[str, Callable[..., dict]] = {
    "conversion": metrics.conversion,
    "journeys": metrics.journeys,
    "funnel": metrics.funnel,
    "cohorts": metrics.cohorts,
    "satisfaction": metrics.satisfaction,
    "clv": metrics.clv,
    "engagement": metrics.engagement,
    "attribution": metrics.attribution,
    "omnichannel": metrics.omnichannel,
    "contact_center": metrics.contact_center,
    "recommendations": metrics.recommendations,
}

#: The funnel the dashboard shows when none is asked for: the storefront's own events.
DEFAULT_FUNNEL = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
MAX_DAYS = 3 * 366
MAX_TRAITS = 5


def filters(*, start: date | None, end: date | None, channel: str | None = None, store: int | None = None,
            traits: dict[str, str] | None = None, today: date | None = None) -> Filters:
    """The period [start, end] in whole UTC days (the last 30 days by default); `traits`: only
    the people whose traits have these values (a segment, resolved when the metric runs)."""
    today = today or datetime.utcnow().date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise Unprocessable("The period starts after it ends", code="analytics_bad_period")
    if (end - start).days >= MAX_DAYS:
        raise Unprocessable(f"The period may be at most {MAX_DAYS} days", code="analytics_bad_period")
    if traits and len(traits) > MAX_TRAITS:
        raise Unprocessable(f"A segment has at most {MAX_TRAITS} traits", code="analytics_bad_parameter")
    return Filters(start=datetime.combine(start, datetime.min.time()),
                   end=datetime.combine(end + timedelta(days=1), datetime.min.time()), channel=channel, store=store,
                   segment=tuple(sorted((traits or {}).items())))


def parse_traits(values: list[str]) -> dict[str, str]:
    """`key:value` pairs (the API's and the console's `trait` parameter) as a dict."""
    traits = {}
    for value in values:
        key, sep, wanted = value.partition(":")
        if not sep or not key.strip() or not wanted.strip():
            raise Unprocessable(f"A trait is given as key:value, not {value!r}", code="analytics_bad_parameter")
        traits[key.strip()] = wanted.strip()
    return traits


def with_trait_values(database: Database, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """A funnel's `breakdown=trait:<key>`: each person's value of the trait (as the 360 shows it)."""
    breakdown = params.get("breakdown") or ""
    if name != "funnel" or not breakdown.startswith("trait:"):
        return params
    key = breakdown.removeprefix("trait:")
    if not key or len(key) > 128:
        raise Unprocessable("breakdown=trait:<key> names a trait", code="analytics_bad_parameter")
    with database.read() as session:
        values = customers_service.trait_values(session, key)
    return {**params, "trait_values": values}


def resolved(database: Database, f: Filters) -> Filters:
    """`f` with its segment's people: the profiles whose traits match, live from the operational
    database (as the 360 shows traits), each standing for its person."""
    if not f.segment or f.people is not None:
        return f
    with database.read() as session:
        profiles = customers_service.profiles_with_traits(session, dict(f.segment))
    return replace(f, people=tuple(profiles))


def run_metric(warehouse: Warehouse, name: str, f: Filters, **params: Any) -> dict:
    """`name` over `f` (whose segment is resolved, `resolved`); a funnel broken down by a trait
    gets the trait's values passed as `trait_values` (`with_trait_values`)."""
    try:
        return METRICS[name](warehouse, f, **params)
    except ValueError as exc:  # a parameter out of its range
        raise Unprocessable(str(exc), code="analytics_bad_parameter") from exc


def _filters_view(f: Filters) -> dict[str, Any]:
    view: dict[str, Any] = {"channel": f.channel, "store": f.store}
    if f.segment:
        view["traits"] = dict(f.segment)
        view["segment_people"] = len(f.people or ())
    return view


def freshness(settings: Settings) -> dict[str, Any]:
    if settings.analytics_backend == "postgres":
        return {"backend": "postgres", "live": True}
    return {"backend": settings.analytics_backend, **mirror.lag_seconds(mirror_path(settings))}


def compute(settings: Settings, database: Database, name: str, f: Filters, **params: Any) -> dict:
    """One metric, with the period it covers, the backend and how long it took."""
    started = time.perf_counter()
    f = resolved(database, f)
    params = with_trait_values(database, name, params)
    with open_warehouse(settings, database) as warehouse:
        data = run_metric(warehouse, name, f, **params)
    return {
        "metric": name,
        "period": {"from": f.start.date().isoformat(), "to": (f.end - timedelta(days=1)).date().isoformat()},
        "filters": _filters_view(f),
        "backend": settings.analytics_backend,
        "seconds": round(time.perf_counter() - started, 3),
        "data": data,
    }


def dashboard(settings: Settings, database: Database, f: Filters, *, funnel_steps: list[str] | None = None) -> dict:
    """Every metric over one period, in one warehouse session (what the console and the report show)."""
    started = time.perf_counter()
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    f = resolved(database, f)
    with open_warehouse(settings, database) as warehouse:
        for name in METRICS:
            began = time.perf_counter()
            params = {"steps": funnel_steps or DEFAULT_FUNNEL} if name == "funnel" else {}
            results[name] = run_metric(warehouse, name, f, **params)
            seconds[name] = round(time.perf_counter() - began, 3)
    return {
        "period": {"from": f.start.date().isoformat(), "to": (f.end - timedelta(days=1)).date().isoformat()},
        "filters": _filters_view(f),
        "backend": settings.analytics_backend,
        "freshness": freshness(settings),
        "seconds": {**seconds, "total": round(time.perf_counter() - started, 3)},
        "metrics": results,
    }


def drill(settings: Settings, database: Database, f: Filters, *, metric: str, selector: dict[str, str],
          limit: int = 1000) -> dict:
    f = resolved(database, f)
    with open_warehouse(settings, database) as warehouse:
        try:
            return metrics.people_behind(warehouse, f, metric=metric, selector=selector, limit=limit)
        except ValueError as exc:
            raise Unprocessable(str(exc), code="analytics_bad_parameter") from exc
