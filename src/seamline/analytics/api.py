"""HTTP routes of analytics: each metric, the dashboard, the people behind a number, and the
mirror's freshness. Read scope; the period is whole UTC days (`from`, `to`, the last 30 days by
default)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from seamline.analytics import metrics, service
from seamline.core.deps import ReadKey, get_database, get_settings
from seamline.core.openapi import errors
from seamline.core.schemas import IsoDate

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], responses=errors(401, 403, 422, 503))

From = Annotated[IsoDate | None, Query(alias="from", description="First day (UTC) of the period; default: 29 days before `to`")]
To = Annotated[IsoDate | None, Query(alias="to", description="Last day (UTC) of the period, included; default: today")]
Channel = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$", description="Only this channel")]
Store = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only orders picked up in this store (location id)")]
Dimension = Annotated[Literal["channel", "source"], Query(description="Touches by channel or by UTM source")]
Lookback = Annotated[int, Query(ge=1, le=365, description="Days of touches before a purchase that count")]
Traits = Annotated[list[Annotated[str, Query(min_length=3, max_length=400, pattern=r"^[^:\x00]{1,128}:[^\x00]+$")]] | None,
                   Query(max_length=5, description="A segment: only people whose trait has this value, as key:value "
                         "(repeat for several, all must hold; e.g. tier:gold)")]


def _run(request: Request, name: str, start: date | None, end: date | None, channel: str | None, store: int | None,
         traits: list[str] | None, **params: Any) -> dict:
    f = service.filters(start=start, end=end, channel=channel, store=store, traits=service.parse_traits(traits or []))
    return service.compute(get_settings(request), get_database(request), name, f, **params)


@router.get("/conversion")
def conversion(request: Request, _: ReadKey, start: From = None, end: To = None, channel: Channel = None,
               store: Store = None, trait: Traits = None) -> dict:
    """Cross-channel conversion: completed / started purchases, by the channel they started in, the
    started -> placed -> handed-over matrix, and click & collect (docs/analytics.md)."""
    return _run(request, "conversion", start, end, channel, store, trait)


@router.get("/journeys")
def journeys(request: Request, _: ReadKey, start: From = None, end: To = None, channel: Channel = None,
             store: Store = None, dimension: Dimension = "channel", lookback_days: Lookback = 30, trait: Traits = None) -> dict:
    """The touches before each purchase: top paths, a Sankey of transitions, time and touches to purchase."""
    return _run(request, "journeys", start, end, channel, store, trait, dimension=dimension, lookback_days=lookback_days)


@router.get("/funnel")
def funnel(
    request: Request, _: ReadKey,
    steps: Annotated[list[Annotated[str, Query(min_length=1, max_length=200)]], Query(min_length=2, max_length=20,
                     description="Event names in order (repeat the parameter)")],
    start: From = None, end: To = None, channel: Channel = None,
    window_hours: Annotated[float, Query(gt=0, le=24 * 90)] = 168.0,
    order: Literal["ordered", "strict", "any"] = "ordered",
    breakdown: Annotated[str | None, Query(pattern=r"^(channel|utm_source|utm_medium|utm_campaign|trait:[^\x00]{1,128})$",
                                           description="channel, utm_source, utm_medium, utm_campaign or trait:<key> "
                                           "(by the person's trait)")] = None,
    dropped_after: Annotated[int | None, Query(ge=1, le=19)] = None,
    trait: Traits = None,
) -> dict:
    """People through ordered steps within a conversion window; breakdown by channel or UTM; who dropped out."""
    return _run(request, "funnel", start, end, channel, None, trait, steps=steps, window_hours=window_hours, order=order,
                breakdown=breakdown, dropped_after=dropped_after)


@router.get("/cohorts")
def cohorts(request: Request, _: ReadKey, start: From = None, end: To = None,
            unit: Literal["month", "week"] = "month", by: Literal["period", "channel"] = "period", trait: Traits = None) -> dict:
    """Retention by first purchase month or week (or first purchase channel); repeat purchase rate."""
    return _run(request, "cohorts", start, end, None, None, trait, unit=unit, by=by)


@router.get("/satisfaction")
def satisfaction(request: Request, _: ReadKey, start: From = None, end: To = None, channel: Channel = None,
                 by: Literal["channel", "agent", "month"] = "channel", trait: Traits = None) -> dict:
    """NPS and CSAT, overall and by channel, agent or month."""
    return _run(request, "satisfaction", start, end, channel, None, trait, by=by)


@router.get("/clv")
def clv(request: Request, _: ReadKey, start: From = None, end: To = None,
        horizon_months: Annotated[int, Query(ge=1, le=60)] = 12, trait: Traits = None) -> dict:
    """Historic CLV and predictive CLV (BG/NBD and Gamma-Gamma fitted on the data)."""
    return _run(request, "clv", start, end, None, None, trait, horizon_months=horizon_months)


@router.get("/engagement")
def engagement(request: Request, _: ReadKey, start: From = None, end: To = None, channel: Channel = None, trait: Traits = None) -> dict:
    """Per channel: active people, events and messages per person, DAU/WAU/MAU, stickiness; replies per outbound message."""
    return _run(request, "engagement", start, end, channel, None, trait)


@router.get("/attribution")
def attribution(request: Request, _: ReadKey, start: From = None, end: To = None, channel: Channel = None,
                store: Store = None, dimension: Dimension = "channel", lookback_days: Lookback = 30,
                half_life_days: Annotated[float, Query(gt=0, le=365)] = 7.0, trait: Traits = None) -> dict:
    """Purchases and revenue credited to channels or UTM sources by six models."""
    return _run(request, "attribution", start, end, channel, store, trait, dimension=dimension, lookback_days=lookback_days,
                half_life_days=half_life_days)


@router.get("/omnichannel")
def omnichannel(request: Request, _: ReadKey, start: From = None, end: To = None, trait: Traits = None) -> dict:
    """Omnichannel against single-channel customers: average check, frequency, repeat rate, revenue per customer."""
    return _run(request, "omnichannel", start, end, None, None, trait)


@router.get("/contact-center")
def contact_center(request: Request, _: ReadKey, start: From = None, end: To = None, channel: Channel = None,
                   by: Literal["channel", "agent"] = "channel", trait: Traits = None) -> dict:
    """First response and resolution times, SLA met, by channel or agent."""
    return _run(request, "contact_center", start, end, channel, None, trait, by=by)


@router.get("/recommendations")
def recommendations(request: Request, _: ReadKey, start: From = None, end: To = None,
                    channel: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$",
                                                         description="Only recommendations shown in this channel")] = None,
                    store: Store = None,
                    window_days: Annotated[int, Query(ge=1, le=90, description="Days a recommendation click keeps "
                                                      "the credit for buying the product clicked")] = 7,
                    trait: Traits = None) -> dict:
    """Revenue from recommendations: clicks, people who clicked, orders and revenue attributed (the
    latest click on the product within `window_days` before the order), by the channel the
    recommendation was shown in and by its reason, and the share of all revenue (docs/analytics.md)."""
    return _run(request, "recommendations", start, end, channel, store, trait, window_days=window_days)


@router.get("/dashboard")
def dashboard(request: Request, _: ReadKey, start: From = None, end: To = None, channel: Channel = None,
              store: Store = None, trait: Traits = None) -> dict:
    """Every metric over one period at once, with each one's time and the mirror's freshness."""
    f = service.filters(start=start, end=end, channel=channel, store=store, traits=service.parse_traits(trait or []))
    return service.dashboard(get_settings(request), get_database(request), f)


@router.get("/people")
def people(
    request: Request, _: ReadKey,
    metric: Literal["conversion", "cohorts", "satisfaction", "omnichannel", "engagement"],
    start: From = None, end: To = None,
    started_channel: Channel = None, placed_channel: Channel = None, handed_over: Channel = None,
    completed: Literal["true", "false"] | None = None,
    cohort: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None, unit: Literal["month", "week"] = "month",
    kind: Literal["nps", "csat", "omnichannel", "single_channel"] | None = None, channel: Channel = None,
    group: Literal["promoters", "passives", "detractors", "satisfied", "unsatisfied"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    trait: Traits = None,
) -> dict:
    """The people counted in one number of a metric (customer ids; unknown visitors by their event key)."""
    selector = {k: v for k, v in dict(started_channel=started_channel, placed_channel=placed_channel,
                                      handed_over=handed_over, completed=completed, cohort=cohort, unit=unit, kind=kind,
                                      channel=channel, group=group).items() if v is not None}
    f = service.filters(start=start, end=end, traits=service.parse_traits(trait or []))
    return service.drill(get_settings(request), get_database(request), f, metric=metric, selector=selector, limit=limit)


@router.get("/status")
def status(request: Request, _: ReadKey) -> dict:
    """The backend and, for the mirror, how fresh it is."""
    return service.freshness(get_settings(request))


assert set(metrics.DRILLS) <= set(service.METRICS)
