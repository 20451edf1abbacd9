"""The Analytics area: every metric of `seamline.analytics` over a period (whole UTC days) and
channel / store filters, with charts (Apache ECharts, vendored in static/), the tables behind them
as CSV, and the people behind a number.

The page itself computes nothing: each metric's section is an HTMX fragment
(`/console/analytics/sections/<metric>`) loaded once the page is shown, so a slow metric does
not hold the others up. What is shown is built by `web/reports/charts.py`, which the HTML report
(`seamline analytics report`) shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from seamline.analytics import service
from seamline.analytics.metrics import Filters
from seamline.analytics.warehouse import AnalyticsUnavailable
from seamline.commerce import stock
from seamline.core.errors import NotFound, Unprocessable
from seamline.web.console import people
from seamline.web.console.actions import read
from seamline.web.console.deps import Staff, permitted
from seamline.web.console.templating import render, translate
from seamline.web.reports import charts

router = APIRouter(prefix="/console/analytics")

#: The channels the filter offers (a purchase's, an event's, a conversation's).
CHANNELS = ("web", "app", "store", "call_center", "telegram", "whatsapp", "vk", "viber", "webchat", "email", "sms")
FUNNEL_ORDERS = ("ordered", "strict", "any")
BREAKDOWNS = ("channel", "utm_source", "utm_medium", "utm_campaign")
MAX_STEPS = 8
#: Selector keys of the people behind a number (`analytics.metrics.people_behind`).
SELECTOR_KEYS = ("started_channel", "placed_channel", "handed_over", "completed", "cohort", "unit", "kind", "channel",
                 "group")
PEOPLE_LIMIT = 500


@dataclass
class Query:
    """What the page was asked for: the period and filters, and each metric's own options."""

    start: date | None = None
    end: date | None = None
    channel: str | None = None
    store: int | None = None
    #: a segment: key:value of traits the people must have
    traits: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=lambda: list(service.DEFAULT_FUNNEL))
    order: str = "ordered"
    window_hours: float = 168.0
    breakdown: str | None = None
    unit: str = "month"
    dimension: str = "channel"
    error: str | None = None
    filters: Filters | None = None

    @property
    def first(self) -> str:
        """The period's first day as the form shows it."""
        return self.filters.start.date().isoformat() if self.filters else (self.start.isoformat() if self.start else "")

    @property
    def last(self) -> str:
        if self.filters:
            return (self.filters.end - timedelta(days=1)).date().isoformat()
        return self.end.isoformat() if self.end else ""

    @property
    def first_day(self) -> date | None:
        return self.filters.start.date() if self.filters else None

    @property
    def last_day(self) -> date | None:
        return (self.filters.end - timedelta(days=1)).date() if self.filters else None

    def drill(self, selector: dict[str, Any]) -> str:
        """The address of the people behind a cell (`charts.Row.drill`)."""
        pairs = self.pairs("funnel" if selector.get("metric") == "funnel" else None)
        pairs += [(k, str(v)) for k, v in selector.items() if v is not None and v != ""]
        return f"/console/analytics/people?{urlencode(pairs)}"

    def params(self, metric: str) -> dict[str, Any]:
        """The metric's own parameters (`service.compute`)."""
        if metric == "funnel":
            return {"steps": self.steps, "order": self.order, "window_hours": self.window_hours,
                    "breakdown": self.breakdown}
        if metric == "cohorts":
            return {"unit": self.unit}
        if metric in ("journeys", "attribution"):
            return {"dimension": self.dimension}
        return {}

    def pairs(self, metric: str | None = None) -> list[tuple[str, str]]:
        """The query string's pairs: the period and filters, and `metric`'s options."""
        out: list[tuple[str, str]] = []
        if self.filters is not None:
            out += [("from", self.filters.start.date().isoformat()),
                    ("to", (self.filters.end - timedelta(days=1)).date().isoformat())]
        if self.channel:
            out.append(("channel", self.channel))
        if self.store is not None:
            out.append(("store", str(self.store)))
        out += [("trait", t) for t in self.traits]
        if metric == "funnel":
            out += [("step", s) for s in self.steps] + [("order", self.order), ("window_hours", f"{self.window_hours:g}")]
            if self.breakdown:
                out.append(("breakdown", self.breakdown))
        elif metric == "cohorts":
            out.append(("unit", self.unit))
        elif metric in ("journeys", "attribution"):
            out.append(("dimension", self.dimension))
        return out

    def url(self, path: str, options_of: str | None = None, **extra: Any) -> str:
        """`path` with the period and filters, `options_of`'s options and `extra`."""
        pairs = self.pairs(options_of) + [(k, str(v)) for k, v in extra.items() if v is not None and v != ""]
        return f"{path}?{urlencode(pairs)}" if pairs else path


def parse(request: Request) -> Query:
    """The query string, checked: a wrong value becomes `error` (said on the page), not a 422."""
    params = request.query_params
    q = Query()
    problems = []
    try:
        q.start = date.fromisoformat(params["from"]) if params.get("from") else None
        q.end = date.fromisoformat(params["to"]) if params.get("to") else None
    except ValueError:
        problems.append(translate(request, "Dates are written as YYYY-MM-DD."))
    channel = params.get("channel") or None
    q.channel = channel if channel in CHANNELS else None
    if params.get("store"):
        try:
            q.store = int(params["store"])
        except ValueError:
            q.store = None
    q.traits = [t.strip()[:400] for t in params.getlist("trait") if t.strip()][:service.MAX_TRAITS]
    steps = [s.strip()[:200] for s in params.getlist("step") if s.strip()]
    if steps:
        q.steps = steps[:MAX_STEPS]
    q.order = params.get("order") if params.get("order") in FUNNEL_ORDERS else "ordered"
    try:
        q.window_hours = min(max(float(params.get("window_hours") or 168), 1.0), 24 * 90.0)
    except ValueError:
        q.window_hours = 168.0
    q.breakdown = params.get("breakdown") if params.get("breakdown") in BREAKDOWNS else None
    trait_key = (params.get("breakdown_trait") or "").strip() or (
        params["breakdown"][6:].strip() if (params.get("breakdown") or "").startswith("trait:") else "")
    if trait_key:  # the person's trait (a typed key wins over the list)
        q.breakdown = f"trait:{trait_key[:128]}"
    q.unit = "week" if params.get("unit") == "week" else "month"
    q.dimension = "source" if params.get("dimension") == "source" else "channel"
    traits: dict[str, str] = {}
    try:
        traits = service.parse_traits(q.traits)
    except Unprocessable:
        problems.append(translate(request, "A segment is written as trait:value, e.g. tier:gold."))
    if not problems:
        try:
            q.filters = service.filters(start=q.start, end=q.end, channel=q.channel, store=q.store, traits=traits)
        except Unprocessable as exc:
            problems.append(translate(request, "The period starts after it ends.") if "after" in exc.message
                            else translate(request, "The period may be at most %(days)s days.", days=service.MAX_DAYS))
    if len(q.steps) < 2:
        problems.append(translate(request, "A funnel needs at least two steps."))
    q.error = " ".join(problems) or None
    return q


def _locale(request: Request) -> str:
    staff = getattr(request.state, "staff", None)
    return staff.user.locale if staff else "ru"


def _stores(session: Session) -> list[Any]:
    return [loc for loc in stock.list_locations(session) if loc.kind in ("store", "pickup_point")]


def words_for(request: Request, stores: list[Any] | None = None) -> charts.Words:
    settings = request.app.state.settings
    locale = _locale(request)
    places = {loc.id: (loc.name_ru if locale == "ru" else loc.name_en) or loc.code for loc in stores or []}
    return charts.Words(locale, currency=settings.commerce_currency, timezone=settings.console_timezone,
                        region=settings.default_region, places=places)


def _freshness(request: Request) -> dict[str, Any]:
    return service.freshness(request.app.state.settings)


@router.get("")
def analytics_page(request: Request, staff: Staff = permitted("analytics")) -> HTMLResponse:
    q = parse(request)
    stores = read(request, _stores)
    freshness = _freshness(request)
    words = words_for(request, stores)
    return render(request, "analytics/page.html", section="analytics", q=q, stores=stores, channels=CHANNELS,
                  metrics=charts.METRICS, titles={m: words.t(charts.TITLES[m]) for m in charts.METRICS},
                  freshness=freshness, unavailable=freshness.get("synced") is False)


def _event_names() -> list[str]:
    from seamline.web.console.labels import VOCABULARIES

    return list(VOCABULARIES["event_name"])


def _compute(request: Request, metric: str, q: Query, **extra: Any) -> dict[str, Any]:
    assert q.filters is not None
    return service.compute(request.app.state.settings, request.app.state.database, metric, q.filters,
                           **{**q.params(metric), **extra})


def _known(metric: str) -> str:
    if metric not in charts.METRICS:
        raise NotFound("No such metric", code="not_found")
    return metric


@router.get("/sections/{metric}")
def section_fragment(request: Request, metric: str, staff: Staff = permitted("analytics")) -> HTMLResponse:
    """One metric's section: its figures, charts and tables (the page loads each with HTMX)."""
    _known(metric)
    q = parse(request)
    words = words_for(request, read(request, _stores))
    context: dict[str, Any] = {"metric": metric, "q": q, "sections": [], "problem": None, "seconds": None,
                               "title": words.t(charts.TITLES[metric]),
                               "event_names": _event_names(), "orders": FUNNEL_ORDERS, "breakdowns": BREAKDOWNS,
                               "max_steps": MAX_STEPS}
    if q.error:
        context["problem"] = q.error
    else:
        try:
            result = _compute(request, metric, q)
        except AnalyticsUnavailable:
            context["problem"] = translate(request, "There is no analytics data yet: the mirror has not been synced.")
        except Unprocessable:
            context["problem"] = translate(request, "These options cannot be used for this metric.")
        else:
            context["sections"] = charts.sections(metric, result["data"], words)
            context["seconds"] = result["seconds"]
    return render(request, "analytics/_section.html", heat=charts.heat, words=words, **context)


@router.get("/{metric}.csv")
def table_csv(request: Request, metric: str, table: str = "", staff: Staff = permitted("analytics")) -> Response:
    """A table behind a chart as CSV (`table`: its name, `section:name` for click & collect)."""
    _known(metric)
    q = parse(request)
    if q.error:
        raise Unprocessable(q.error, code="analytics_bad_period")
    words = words_for(request, read(request, _stores))
    result = _compute(request, metric, q)
    found = charts.find_table(metric, result["data"], words, table or "")
    if found is None:
        raise NotFound(translate(request, "There is no such table."), code="not_found")
    period = f"{result['period']['from']}_{result['period']['to']}"
    name = f"seamline-{metric}-{found.name}-{period}.csv".replace("_", "-")
    return Response(charts.csv_bytes(found, words), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/people")
def people_page(request: Request, metric: str = "", staff: Staff = permitted("analytics")) -> HTMLResponse:
    """The people behind a number: a conversion cell, a cohort, an NPS or CSAT group, omnichannel
    or single-channel customers, a channel's active people, those who dropped out of a funnel."""
    if metric not in charts.DRILLS:
        raise NotFound(translate(request, "There is no such list."), code="not_found")
    q = parse(request)
    params = request.query_params
    words = words_for(request, read(request, _stores))
    context: dict[str, Any] = {"metric": metric, "q": q, "ids": [], "total": 0, "who": {}, "problem": q.error,
                               "title": words.t(charts.TITLES[metric]), "selector": [], "back": q.url("/console/analytics")}
    if not q.error:
        try:
            if metric == "funnel":
                try:
                    after = int(params.get("dropped_after", ""))
                except ValueError:
                    after = 0
                if not 1 <= after < len(q.steps):
                    raise Unprocessable("dropped_after", code="analytics_bad_parameter")
                result = _compute(request, "funnel", q, dropped_after=after, limit=PEOPLE_LIMIT)
                ids = result["data"]["dropped"]["people"]
                total = len(ids)
                context["selector"] = [(words.t("Dropped after step %(step)s", step=after),
                                        words.event(q.steps[after - 1]))]
            else:
                selector = {k: params[k] for k in SELECTOR_KEYS if params.get(k)}
                assert q.filters is not None
                found = service.drill(request.app.state.settings, request.app.state.database, q.filters, metric=metric,
                                      selector=selector, limit=PEOPLE_LIMIT)
                ids, total = found["people"], found["total"]
                context["selector"] = _describe(selector, words)
        except AnalyticsUnavailable:
            context["problem"] = translate(request, "There is no analytics data yet: the mirror has not been synced.")
        except Unprocessable:
            context["problem"] = translate(request, "These options cannot be used for this metric.")
        else:
            known = [i for i in ids if isinstance(i, int)]
            context.update(ids=ids, total=total, who=read(request, lambda s: people.briefs(s, known)))
    return render(request, "analytics/people.html", section="analytics", limit=PEOPLE_LIMIT, **context)


def _describe(selector: dict[str, str], words: charts.Words) -> list[tuple[str, str]]:
    """The cell a list is about, in words: [(what, value)]."""
    names = {"started_channel": words.t("Started in"), "placed_channel": words.t("Placed in"),
             "handed_over": words.t("Handed over in"), "channel": words.t("Channel"), "cohort": words.t("First purchase"),
             "group": words.t("Group"), "kind": words.t("Customers"), "completed": words.t("Completed purchases")}
    out = []
    for key, value in selector.items():
        if key == "unit":
            continue
        if key == "handed_over" and value == "none":
            shown = "—"
        elif key in ("started_channel", "placed_channel", "handed_over", "channel"):
            shown = words.channel(value)
        elif key == "cohort":
            shown = charts._cohort_name(value, selector.get("unit", "month"), "period", words)  # noqa: SLF001
        elif key == "group":
            shown = words.t(charts.GROUP_NAMES.get(value, value))
        elif key == "kind":
            if value in ("nps", "csat"):
                out.append((words.t("Survey"), words.t("NPS") if value == "nps" else words.t("CSAT")))
                continue
            shown = words.t(charts.KIND_NAMES.get(value, value))
        elif key == "completed":
            shown = words.t("yes") if value == "true" else words.t("no")
        else:
            shown = value
        out.append((names.get(key, key), shown))
    return out
