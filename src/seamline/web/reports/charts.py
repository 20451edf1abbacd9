"""A metric's result -> what people read: key figures, Apache ECharts options and tables.

Pure functions of the JSON the analytics service returns (`service.compute(...)["data"]`, or one
entry of `service.dashboard(...)["metrics"]`); the console's Analytics area and the HTML report
draw the same charts from them, and a table's CSV is made here too.

- Every word is in the reader's language (`Words`: gettext catalog `analytics.po`, channel and
  event names from the console's vocabularies in `web/console/labels.py`).
- Numbers stay numbers: a table's cells hold the metric's values (money in minor units, as the
  modules keep it); `Words.cell` formats one for the eye, `csv_bytes` writes it as a number.
- A table row may name the people behind a cell (`Row.drill`: the metric and the selector of
  `analytics.metrics.people_behind`, or a funnel's `dropped_after`); the console turns that into
  a link, the report ignores it.
- Options are plain JSON (no JavaScript functions), so a page can carry them in an attribute.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from babel.numbers import get_currency_precision

from seamline.web import i18n
from seamline.web.console.labels import Labels

#: The order of the sections on the page and in the report (the analytics service's metrics).
METRICS = ("conversion", "journeys", "funnel", "cohorts", "satisfaction", "clv", "engagement", "attribution",
           "omnichannel", "contact_center", "recommendations")
#: Drill-down metrics of `analytics.metrics.people_behind`, plus the funnel's "dropped after step k".
DRILLS = ("conversion", "cohorts", "satisfaction", "omnichannel", "engagement", "funnel")
#: Attribution models in the order they are shown.
MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov")
PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#64748b", "#ec4899"]
#: Cell kinds: how a value is shown and written to CSV.
KINDS = ("text", "int", "number", "percent", "money", "hours", "minutes")


def t(message: str) -> str:
    """A msgid, translated where it is shown (`Words.t`); the tests find every t("...") here."""
    return message


TITLES = {
    "conversion": t("Cross-channel conversion"), "click_and_collect": t("Click & collect"),
    "journeys": t("Customer journeys"), "funnel": t("Funnel"), "cohorts": t("Retention cohorts"),
    "satisfaction": t("NPS and CSAT"), "clv": t("Customer lifetime value (CLV)"), "engagement": t("Engagement"),
    "attribution": t("Attribution"), "omnichannel": t("Omnichannel and single-channel customers"),
    "contact_center": t("Contact center"), "recommendations": t("Recommendations"),
}
MODEL_NAMES = {"first_touch": t("First touch"), "last_touch": t("Last touch"), "linear": t("Linear"),
               "time_decay": t("Time decay"), "position_based": t("Position based"), "markov": t("Markov chain")}
GROUP_NAMES = {"promoters": t("promoters"), "passives": t("passives"), "detractors": t("detractors"),
               "satisfied": t("satisfied"), "unsatisfied": t("unsatisfied")}
KIND_NAMES = {"omnichannel": t("Omnichannel"), "single_channel": t("Single-channel")}


# --- the reader's words -------------------------------------------------------------------------


class Words:
    """One reader's language: texts, channel and event names, numbers, money."""

    def __init__(self, locale: str, *, currency: str = "RUB", timezone: str = "Europe/Moscow", region: str = "RU",
                 places: dict[int, str] | None = None):
        self.locale = locale
        self.currency = currency
        self.fmt = i18n.Formats(locale, timezone, region)
        self.labels = Labels(locale, fmt=self.fmt)
        self._catalog = i18n.translations(locale)
        self.places = places or {}

    def t(self, message: str, **values: object) -> str:
        text = self._catalog.gettext(message)
        return text % values if values else text

    def channel(self, code: str | None) -> str:
        if code is None or code == "":
            return "—"
        if code == "(direct)":
            return self.t("(direct)")
        if code in ("(all)", "(none)"):
            return self.t("all") if code == "(all)" else self.t("(not set)")
        return self.labels.channel(code)

    def touch(self, code: str | None, dimension: str = "channel") -> str:
        """A touch of a journey: a channel, or a UTM source as it is."""
        if dimension == "channel":
            return self.channel(code)
        return self.t("(direct)") if code == "(direct)" else (code or "—")

    def event(self, name: str) -> str:
        return self.labels.event_name(name)

    def store(self, store_id: int | None) -> str:
        return "—" if store_id is None else self.places.get(store_id, f"#{store_id}")

    def minor(self, amount: float | int | None) -> float | None:
        """Money in minor units -> in currency units (a CSV's number)."""
        if amount is None:
            return None
        return round(amount / 10 ** get_currency_precision(self.currency), 2)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "—"
        shown = self.fmt.number(round(value, 2))
        return f"{shown}\xa0%" if self.locale == "ru" else f"{shown}%"

    def cell(self, value: Any, kind: str) -> str:
        """A value as people read it."""
        if value is None or value == "":
            return "—"
        if kind == "text":
            return str(value)
        if kind == "percent":
            return self.percent(value)
        if kind == "money":
            return self.fmt.money(round(value), self.currency)
        if kind in ("hours", "minutes", "number"):
            return self.fmt.number(round(float(value), 2))
        return self.fmt.number(value)

    def unit(self, kind: str) -> str:
        return {"percent": "%", "money": self.currency, "hours": self.t("h"), "minutes": self.t("min")}.get(kind, "")


# --- what a section is made of ------------------------------------------------------------------


@dataclass
class Column:
    key: str
    title: str
    kind: str = "int"


@dataclass
class Row:
    values: dict[str, Any]
    #: column key -> the selector of the people behind that cell ({"metric": ..., ...})
    drill: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: column key -> the customer a cell is about (a profile id; CLV's top people)
    customer: dict[str, int] = field(default_factory=dict)


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[Row]
    #: shade percent cells by their value (the cohorts' heatmap)
    heat: bool = False

    def header(self, words: Words) -> list[str]:
        out = []
        for column in self.columns:
            unit = words.unit(column.kind)
            out.append(f"{column.title}, {unit}" if unit else column.title)
        return out


@dataclass
class Kpi:
    label: str
    value: Any
    kind: str = "int"


@dataclass
class Chart:
    title: str
    option: dict[str, Any]
    height: int = 320


@dataclass
class Section:
    metric: str
    title: str
    kpis: list[Kpi] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    empty: bool = False

    def table(self, name: str) -> Table | None:
        return next((table for table in self.tables if table.name == name), None)


def summary_table(section: Section, words: Words) -> Table:
    """A section's key figures as a table (measure, value, unit): its CSV."""
    rows = []
    for kpi in section.kpis:
        value = words.minor(kpi.value) if kpi.kind == "money" else kpi.value
        rows.append(Row({"measure": kpi.label, "value": value, "unit": words.unit(kpi.kind)}))
    return Table("summary", words.t("Key figures"), [Column("measure", words.t("Measure"), "text"),
                                                     Column("value", words.t("Value"), "number"),
                                                     Column("unit", words.t("Unit"), "text")], rows)


# --- ECharts options ----------------------------------------------------------------------------


def _base(legend: bool = True) -> dict[str, Any]:
    option: dict[str, Any] = {
        "color": PALETTE, "animation": False, "textStyle": {"fontFamily": "system-ui, sans-serif"},
        "tooltip": {"trigger": "axis", "confine": True},
        "grid": {"left": 8, "right": 16, "top": 40 if legend else 16, "bottom": 8, "containLabel": True},
    }
    if legend:
        option["legend"] = {"type": "scroll", "top": 0}
    return option


def bars(categories: list[str], series: list[tuple[str, list[Any]]], *, line: tuple[str, list[Any]] | None = None,
         horizontal: bool = False, percent: bool = False) -> dict[str, Any]:
    """Grouped bars of `series` over `categories`; `line` (a percent) on a second axis."""
    option = _base(legend=len(series) > 1 or line is not None)
    category_axis = {"type": "category", "data": categories,
                     "axisLabel": {"interval": 0, "hideOverlap": True, "overflow": "break",
                                   "width": 110 if horizontal else 90}}
    value_axis: dict[str, Any] = {"type": "value", "minInterval": 0 if percent else 1}
    if percent:
        value_axis["axisLabel"] = {"formatter": "{value} %"}
    if horizontal:
        option["xAxis"], option["yAxis"] = value_axis, {**category_axis, "inverse": True}
    else:
        option["xAxis"], option["yAxis"] = category_axis, [value_axis] if line else value_axis
        option["grid"]["bottom"] = 28  # room for a category's name broken over two lines
    option["series"] = [{"type": "bar", "name": name, "data": values, "barMaxWidth": 36,
                         "label": {"show": len(series) <= 2 and len(categories) <= 8,
                                   "position": "right" if horizontal else "top"}} for name, values in series]
    if line and not horizontal:
        option["yAxis"].append({"type": "value", "max": 100, "min": 0, "axisLabel": {"formatter": "{value} %"},
                                "splitLine": {"show": False}})
        option["series"].append({"type": "line", "name": line[0], "data": line[1], "yAxisIndex": 1, "symbolSize": 8})
    return option


def sankey(links: list[dict[str, Any]], name: Callable[[str], str]) -> dict[str, Any]:
    nodes: list[str] = []
    for link in links:
        for end in (link["source"], link["target"]):
            if end not in nodes:
                nodes.append(end)
    return {
        "color": PALETTE, "animation": False, "tooltip": {"trigger": "item", "confine": True},
        "series": [{
            "type": "sankey", "left": 8, "right": 90, "top": 8, "bottom": 8, "nodeGap": 10, "draggable": False,
            "emphasis": {"focus": "adjacency"}, "lineStyle": {"color": "gradient", "curveness": 0.5, "opacity": 0.35},
            "label": {"fontSize": 12},
            "data": [{"name": name(node)} for node in nodes],
            "links": [{"source": name(link["source"]), "target": name(link["target"]), "value": link["value"]}
                      for link in links],
        }],
    }


def side_by_side(panels: list[tuple[str, list[str], list[Any]]]) -> dict[str, Any]:
    """Small bar charts, one scale each: (title, categories, values) per panel; two columns,
    one column on a narrow screen (an ECharts media query: the option stays plain JSON)."""

    def layout(columns: int) -> dict[str, Any]:
        rows = -(-len(panels) // columns)
        height = 100 / rows
        titles, grids = [], []
        for i in range(len(panels)):
            left, top = (i % columns) * (100 / columns), (i // columns) * height
            titles.append({"left": f"{left + 1:.1f}%", "top": f"{top:.1f}%"})
            grids.append({"left": f"{left + 1:.1f}%", "width": f"{100 / columns - 4:.1f}%", "top": f"{top + height * 0.2:.1f}%",
                          "height": f"{height * 0.62:.1f}%"})
        return {"title": titles, "grid": grids}

    base: dict[str, Any] = {"color": PALETTE, "animation": False, "tooltip": {"trigger": "axis", "confine": True},
                            "title": [], "grid": [], "xAxis": [], "yAxis": [], "series": []}
    for i, (title, categories, values) in enumerate(panels):
        base["title"].append({"text": title, "textStyle": {"fontSize": 13, "fontWeight": 600}})
        base["grid"].append({"containLabel": True})
        base["xAxis"].append({"type": "category", "gridIndex": i, "data": categories, "axisLabel": {"interval": 0}})
        base["yAxis"].append({"type": "value", "gridIndex": i, "splitNumber": 3})
        base["series"].append({"type": "bar", "xAxisIndex": i, "yAxisIndex": i, "barMaxWidth": 40,
                               "label": {"show": True, "position": "top"},
                               "data": [{"value": v, "itemStyle": {"color": PALETTE[j]}} for j, v in enumerate(values)]})
    for key, value in layout(2).items():
        for target, place in zip(base[key], value):
            target.update(place)
    return {"baseOption": base, "media": [{"query": {"maxWidth": 560}, "option": layout(1)}]}


# --- one function per metric --------------------------------------------------------------------


def conversion(data: dict, w: Words) -> list[Section]:
    by = data.get("by_channel") or []
    rows = [Row({"channel": w.channel(r["started_channel"]), "started": r["started"], "completed": r["completed"],
                 "rate": r["rate"]},
                drill={"started": {"metric": "conversion", "started_channel": r["started_channel"]},
                       "completed": {"metric": "conversion", "started_channel": r["started_channel"], "completed": "true"}})
            for r in by]
    by_channel = Table("by_channel", w.t("Conversion by the channel the purchase started in"), [
        Column("channel", w.t("Started in"), "text"), Column("started", w.t("Started")),
        Column("completed", w.t("Completed purchases")), Column("rate", w.t("Conversion"), "percent")], rows)
    matrix = Table("matrix", w.t("Started → placed → handed over"), [
        Column("started", w.t("Started in"), "text"), Column("placed", w.t("Placed in"), "text"),
        Column("handed_over", w.t("Handed over in"), "text"), Column("purchases", w.t("Purchases")),
        Column("revenue", w.t("Revenue"), "money")],
        [Row({"started": w.channel(r["started_channel"]), "placed": w.channel(r["placed_channel"]),
              "handed_over": w.channel(r["handed_over"]), "purchases": r["purchases"], "revenue": r["revenue"]},
             drill={"purchases": {"metric": "conversion", "started_channel": r["started_channel"],
                                  "placed_channel": r["placed_channel"], "completed": "true",
                                  "handed_over": r["handed_over"] or "none"}})
         for r in data.get("matrix") or []])
    main = Section("conversion", w.t(TITLES["conversion"]), kpis=[
        Kpi(w.t("Purchases started"), data.get("started")), Kpi(w.t("Completed purchases"), data.get("completed")),
        Kpi(w.t("Conversion"), data.get("rate"), "percent"),
        Kpi(w.t("Completed in another channel"), data.get("cross_channel")),
        Kpi(w.t("Cross-channel share"), data.get("cross_channel_share"), "percent")],
        tables=[by_channel, matrix], empty=not data.get("started"),
        notes=[w.t("A purchase starts where its first product was added to the cart (or where an order without a "
                   "cart was placed) and is completed when its order is placed and not cancelled.")])
    if by:
        main.charts.append(Chart(w.t("Conversion by the channel the purchase started in"), bars(
            [w.channel(r["started_channel"]) for r in by],
            [(w.t("Started"), [r["started"] for r in by]), (w.t("Completed purchases"), [r["completed"] for r in by])],
            line=(w.t("Conversion, %"), [r["rate"] for r in by]))))
    main.tables.insert(0, summary_table(main, w))
    cc = data.get("click_and_collect") or {}
    pickup = Section("click_and_collect", w.t(TITLES["click_and_collect"]), kpis=[
        Kpi(w.t("Share of remote orders"), cc.get("share"), "percent"),
        Kpi(w.t("Pickup orders"), cc.get("pickup_orders")),
        Kpi(w.t("Picked up of ready"), cc.get("pickup_rate"), "percent"),
        Kpi(w.t("Hours to pickup, mean"), cc.get("hours_to_pickup_mean"), "hours"),
        Kpi(w.t("Hours to pickup, median"), cc.get("hours_to_pickup_median"), "hours"),
        Kpi(w.t("Online orders returned in a store"), cc.get("store_return_rate"), "percent"),
        Kpi(w.t("Returned in stores"), cc.get("store_return_amount"), "money")], empty=not cc.get("remote_orders"))
    pickup.tables.append(summary_table(pickup, w))
    return [main, pickup]


def journeys(data: dict, w: Words) -> list[Section]:
    dimension = data.get("dimension", "channel")

    def node(name: str) -> str:
        if name == "(purchase)":
            return w.t("Purchase")
        step, _, label = name.partition(". ")
        return f"{step}. {w.touch(label, dimension)}"

    paths = data.get("top_paths") or []
    section = Section("journeys", w.t(TITLES["journeys"]), kpis=[
        Kpi(w.t("Purchases"), data.get("purchases")),
        Kpi(w.t("Touches to purchase, mean"), data.get("touches_to_purchase_mean"), "number"),
        Kpi(w.t("Hours to purchase, mean"), data.get("hours_to_purchase_mean"), "hours"),
        Kpi(w.t("Hours to purchase, median"), data.get("hours_to_purchase_median"), "hours")],
        empty=not data.get("purchases"),
        notes=[w.t("Touches in the %(days)s days before each purchase; touches in a row in one channel count once.",
                   days=data.get("lookback_days", 30))])
    if data.get("sankey"):
        section.charts.append(Chart(w.t("Paths to purchase"), sankey(data["sankey"], node), height=380))
    section.tables = [summary_table(section, w), Table("paths", w.t("Top paths"), [
        Column("path", w.t("Path"), "text"), Column("purchases", w.t("Purchases")),
        Column("revenue", w.t("Revenue"), "money"), Column("hours", w.t("Hours to purchase, mean"), "hours")],
        [Row({"path": " → ".join(w.touch(step, dimension) for step in p["path"]), "purchases": p["purchases"],
              "revenue": p["revenue"], "hours": p["hours_mean"]}) for p in paths])]
    return [section]


def funnel(data: dict, w: Words) -> list[Section]:
    groups = data.get("groups") or []
    steps = data.get("steps") or (groups[0]["steps"] if groups else [])
    names = [f"{s['step']}. {w.event(s['name'])}" for s in steps]
    breakdown = data.get("breakdown")
    section = Section("funnel", w.t(TITLES["funnel"]), empty=not any(s["people"] for g in groups for s in g["steps"]))
    columns = [Column("step", w.t("Step"), "text"), Column("people", w.t("People")),
               Column("rate", w.t("Of the first step"), "percent"),
               Column("rate_from_previous", w.t("Of the previous step"), "percent"),
               Column("hours", w.t("Hours from the first step, mean"), "hours"),
               Column("dropped", w.t("Dropped after this step"))]
    if breakdown:
        columns.insert(0, Column("group", w.t("Group"), "text"))
    rows = []
    for group in groups if breakdown else [{"key": "(all)", "steps": steps}]:
        for i, s in enumerate(group["steps"]):
            following = group["steps"][i + 1] if i + 1 < len(group["steps"]) else None
            values = {"step": names[i] if i < len(names) else s["name"], "people": s["people"], "rate": s["rate"],
                      "rate_from_previous": s["rate_from_previous"], "hours": s["hours_from_first_mean"],
                      "dropped": s["people"] - following["people"] if following else None}
            if breakdown:
                values["group"] = w.touch(group["key"], "channel" if breakdown == "channel" else "source")
            drill = {"dropped": {"metric": "funnel", "dropped_after": s["step"]}} if following and not breakdown else {}
            rows.append(Row(values, drill=drill))
    section.tables.append(Table("steps", w.t("Funnel steps"), columns, rows))
    if breakdown and groups:
        series = [(w.touch(g["key"], "channel" if breakdown == "channel" else "source"), [s["people"] for s in g["steps"]])
                  for g in groups]
    else:
        series = [(w.t("People"), [s["people"] for s in steps])]
    if steps:
        section.charts.append(Chart(w.t("People at each step"), bars(names, series, horizontal=True),
                                    height=max(220, 60 + 46 * len(steps))))
    order = {"ordered": w.t("in order, other events may come between"), "strict": w.t("strictly one after another"),
             "any": w.t("in any order")}.get(data.get("order", "ordered"), "")
    section.notes.append(w.t("Steps %(order)s, within %(hours)s hours of the first step.", order=order,
                             hours=w.fmt.number(data.get("window_hours", 168))))
    return [section]


def cohorts(data: dict, w: Words) -> list[Section]:
    unit = data.get("unit", "month")
    rows_in = data.get("cohorts") or []
    longest = max((r["offset"] for c in rows_in for r in c["retention"]), default=0)
    prefix = w.t("M") if unit == "month" else w.t("W")
    columns = [Column("cohort", w.t("First purchase"), "text"), Column("people", w.t("Customers"))]
    columns += [Column(f"p{k}", f"{prefix}{k}", "percent") for k in range(longest + 1)]
    rows = []
    for c in rows_in:
        values: dict[str, Any] = {"cohort": _cohort_name(c["cohort"], unit, data.get("by", "period"), w),
                                  "people": c["people"]}
        values.update({f"p{r['offset']}": r["rate"] for r in c["retention"]})
        drill = {"people": {"metric": "cohorts", "cohort": c["cohort"], "unit": unit}} if data.get("by") != "channel" else {}
        rows.append(Row(values, drill=drill))
    section = Section("cohorts", w.t(TITLES["cohorts"]), kpis=[
        Kpi(w.t("New customers"), data.get("people")), Kpi(w.t("Bought again"), data.get("repeat_buyers")),
        Kpi(w.t("Repeat purchase rate"), data.get("repeat_purchase_rate"), "percent")],
        empty=not rows_in,
        notes=[w.t("The share of each cohort (customers by their first purchase) who bought in each later month.")
               if unit == "month" else
               w.t("The share of each cohort (customers by their first purchase) who bought in each later week.")])
    section.tables = [Table("retention", w.t("Retention"), columns, rows, heat=True), summary_table(section, w)]
    return [section]


def _cohort_name(key: str, unit: str, by: str, w: Words) -> str:
    if by == "channel":
        return w.channel(key)
    from datetime import date

    try:
        day = date.fromisoformat(key)
    except ValueError:
        return key
    from babel.dates import format_date

    return format_date(day, "LLLL y" if unit == "month" else "medium", locale=w.fmt.babel)


def satisfaction(data: dict, w: Words) -> list[Section]:
    nps, csat = data.get("nps") or {}, data.get("csat") or {}
    nps_rows = []
    for r in nps.get("by") or []:
        channel = r.get("channel")
        passives = r["answers"] - r["promoters"] - r["detractors"]
        drill = {group: {"metric": "satisfaction", "kind": "nps", "channel": channel, "group": group}
                 for group in ("promoters", "passives", "detractors")}
        nps_rows.append(Row({"channel": w.channel(channel), "answers": r["answers"], "promoters": r["promoters"],
                             "passives": passives, "detractors": r["detractors"], "score": r["score"]}, drill=drill))
    csat_rows = []
    for r in csat.get("by") or []:
        channel = r.get("channel")
        drill = {group: {"metric": "satisfaction", "kind": "csat", "channel": channel, "group": group}
                 for group in ("satisfied", "unsatisfied")}
        csat_rows.append(Row({"channel": w.channel(channel), "answers": r["answers"], "satisfied": r["satisfied"],
                              "unsatisfied": r["answers"] - r["satisfied"], "score": r["score"], "mean": r["mean"]},
                             drill=drill))
    section = Section("satisfaction", w.t(TITLES["satisfaction"]), kpis=[
        Kpi(w.t("NPS"), nps.get("score"), "number"), Kpi(w.t("NPS answers"), nps.get("answers")),
        Kpi(w.t("CSAT"), csat.get("score"), "percent"), Kpi(w.t("CSAT answers"), csat.get("answers"))],
        empty=not (nps.get("answers") or csat.get("answers")),
        notes=[w.t("NPS: % promoters (9–10) − % detractors (0–6). CSAT: % of answers 4–5 of 5.")])
    channels = sorted({r.get("channel") for r in (nps.get("by") or []) + (csat.get("by") or [])}, key=str)
    if channels:
        score = {kind: {r.get("channel"): r["score"] for r in (block.get("by") or [])} for kind, block in
                 (("nps", nps), ("csat", csat))}
        section.charts.append(Chart(w.t("NPS and CSAT by channel"), bars(
            [w.channel(c) for c in channels],
            [(w.t("NPS"), [score["nps"].get(c) for c in channels]), (w.t("CSAT, %"), [score["csat"].get(c) for c in channels])])))
    section.tables = [
        Table("nps", w.t("NPS by channel"), [
            Column("channel", w.t("Channel"), "text"), Column("answers", w.t("Answers")),
            Column("promoters", w.t("Promoters")), Column("passives", w.t("Passives")),
            Column("detractors", w.t("Detractors")), Column("score", w.t("NPS"), "number")], nps_rows),
        Table("csat", w.t("CSAT by channel"), [
            Column("channel", w.t("Channel"), "text"), Column("answers", w.t("Answers")),
            Column("satisfied", w.t("Satisfied")), Column("unsatisfied", w.t("Unsatisfied")),
            Column("score", w.t("CSAT"), "percent"), Column("mean", w.t("Mean score"), "number")], csat_rows),
        summary_table(section, w)]
    return [section]


def clv(data: dict, w: Words) -> list[Section]:
    historic, predictive = data.get("historic") or {}, data.get("predictive") or {}
    section = Section("clv", w.t(TITLES["clv"]), kpis=[
        Kpi(w.t("Customers"), data.get("customers")),
        Kpi(w.t("Historic CLV"), historic.get("clv"), "money"),
        Kpi(w.t("Average order value"), historic.get("average_order_value"), "money"),
        Kpi(w.t("Purchases per customer-year"), historic.get("purchase_frequency_per_year"), "number"),
        Kpi(w.t("Average lifetime, years"), historic.get("average_lifetime_years"), "number")],
        empty=not data.get("customers"))
    if predictive.get("fitted"):
        months = predictive.get("horizon_months", 12)
        section.kpis += [
            Kpi(w.t("Predicted CLV, next %(months)s months", months=months), predictive.get("clv_mean"), "money"),
            Kpi(w.t("Predicted revenue of all customers"), predictive.get("clv_total"), "money"),
            Kpi(w.t("Probability a customer is still active"), _times100(predictive.get("probability_alive_mean")),
                "percent")]
        top = predictive.get("top") or []
        section.tables.append(Table("top", w.t("Highest predicted CLV"), [
            Column("customer", w.t("Customer"), "int"), Column("clv", w.t("Predicted CLV"), "money")],
            [Row({"customer": p["person_id"], "clv": p["clv"]}, customer={"customer": p["person_id"]}) for p in top]))
        if top:
            section.charts.append(Chart(w.t("Highest predicted CLV"), bars(
                [f"#{p['person_id']}" for p in top[:10]], [(w.t("Predicted CLV"), [w.minor(p["clv"]) for p in top[:10]])],
                horizontal=True), height=max(220, 40 + 28 * min(len(top), 10))))
    elif data.get("customers"):
        section.notes.append(w.t("Predictive CLV needs at least 10 customers, 3 of them with repeat purchases."))
    section.notes.append(w.t("Historic CLV is net revenue per customer so far; predictive CLV fits BG/NBD and "
                             "Gamma-Gamma models on every customer's history."))
    section.tables.insert(0, summary_table(section, w))
    return [section]


def _times100(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def engagement(data: dict, w: Words) -> list[Section]:
    channels = data.get("channels") or []
    rows = [Row({"channel": w.channel(r["channel"]), "people": r["active_people"], "events": r["events_per_person"],
                 "messages": r["messages_per_person"], "dau": r["dau"], "wau": r["wau"], "mau": r["mau"],
                 "stickiness": r["stickiness"]}, drill={"people": {"metric": "engagement", "channel": r["channel"]}})
            for r in channels]
    section = Section("engagement", w.t(TITLES["engagement"]), kpis=[
        Kpi(w.t("Outbound messages"), data.get("outbound_messages")), Kpi(w.t("Answered"), data.get("replied")),
        Kpi(w.t("Replies per outbound message"), data.get("replies_per_outbound"), "number")],
        empty=not channels,
        notes=[w.t("DAU, WAU, MAU: people active on an average day, week, month of the period; stickiness is DAU / MAU.")])
    if channels:
        labels = [w.channel(r["channel"]) for r in channels]
        section.charts.append(Chart(w.t("Active people by channel"), bars(labels, [
            (w.t("Active people"), [r["active_people"] for r in channels]), (w.t("MAU"), [r["mau"] for r in channels]),
            (w.t("WAU"), [r["wau"] for r in channels]), (w.t("DAU"), [r["dau"] for r in channels])])))
    section.tables = [Table("channels", w.t("Engagement by channel"), [
        Column("channel", w.t("Channel"), "text"), Column("people", w.t("Active people")),
        Column("events", w.t("Events per person"), "number"), Column("messages", w.t("Messages per person"), "number"),
        Column("dau", w.t("DAU"), "number"), Column("wau", w.t("WAU"), "number"), Column("mau", w.t("MAU"), "number"),
        Column("stickiness", w.t("Stickiness"), "percent")], rows), summary_table(section, w)]
    return [section]


def attribution(data: dict, w: Words) -> list[Section]:
    dimension = data.get("dimension", "channel")
    models = data.get("models") or {}
    shown = [m for m in MODELS if m in models]
    touches = sorted({r["touch"] for m in shown for r in models[m]})
    value = {m: {r["touch"]: r for r in models[m]} for m in shown}
    section = Section("attribution", w.t(TITLES["attribution"]), kpis=[
        Kpi(w.t("Purchases"), data.get("purchases")), Kpi(w.t("Revenue"), data.get("revenue"), "money")],
        empty=not data.get("purchases"),
        notes=[w.t("Each model shares every purchase (and its revenue) among the touches before it; the Markov chain "
                   "by each touch's removal effect.")])
    labels = [w.touch(touch, dimension) for touch in touches]
    if touches:
        section.charts.append(Chart(w.t("Purchases credited by model"), bars(labels, [
            (w.t(MODEL_NAMES[m]), [round(value[m].get(touch, {}).get("conversions", 0.0), 2) for touch in touches])
            for m in shown]), height=360))
    for key, title, kind in (("conversions", w.t("Purchases credited"), "number"),
                             ("revenue", w.t("Revenue credited"), "money")):
        columns = [Column("touch", w.t("Channel") if dimension == "channel" else w.t("Source"), "text")]
        columns += [Column(m, w.t(MODEL_NAMES[m]), kind) for m in shown]
        rows = [Row({"touch": label, **{m: value[m].get(touch, {}).get(key, 0.0) for m in shown}})
                for touch, label in zip(touches, labels)]
        section.tables.append(Table(key, title, columns, rows))
    section.tables.append(summary_table(section, w))
    return [section]


def omnichannel(data: dict, w: Words) -> list[Section]:
    kinds = ("omnichannel", "single_channel")
    side = {k: data.get(k) or {} for k in kinds}
    names = [w.t(KIND_NAMES[k]) for k in kinds]
    measures = [("customers", w.t("Customers"), "int"), ("orders", w.t("Orders"), "int"),
                ("revenue", w.t("Net revenue"), "money"), ("average_check", w.t("Average check"), "money"),
                ("orders_per_customer", w.t("Orders per customer"), "number"),
                ("repeat_rate", w.t("Repeat purchase rate"), "percent"),
                ("revenue_per_customer", w.t("Net revenue per customer"), "money")]
    rows = []
    for key, title, kind in measures:
        values = {"measure": title, "unit": w.unit(kind)}
        for k in kinds:
            values[k] = w.minor(side[k].get(key)) if kind == "money" else side[k].get(key)
        drill = {k: {"metric": "omnichannel", "kind": k} for k in kinds} if key == "customers" else {}
        rows.append(Row(values, drill=drill))
    table = Table("comparison", w.t("Side by side"), [
        Column("measure", w.t("Measure"), "text"), Column("omnichannel", names[0], "number"),
        Column("single_channel", names[1], "number"), Column("unit", w.t("Unit"), "text")], rows)
    section = Section("omnichannel", w.t(TITLES["omnichannel"]), tables=[table],
                      empty=not any(side[k].get("customers") for k in kinds),
                      notes=[w.t("Omnichannel customers' purchases in the period touched two channels or more (where "
                                 "they started, were placed or handed over).")])
    section.charts.append(Chart(w.t("Side by side"), side_by_side([
        (w.t("Average check, %(currency)s", currency=w.currency), names, [w.minor(side[k].get("average_check")) for k in kinds]),
        (w.t("Orders per customer"), names, [side[k].get("orders_per_customer") for k in kinds]),
        (w.t("Repeat purchase rate, %"), names, [side[k].get("repeat_rate") for k in kinds]),
        (w.t("Net revenue per customer, %(currency)s", currency=w.currency), names,
         [w.minor(side[k].get("revenue_per_customer")) for k in kinds])]), height=520))
    return [section]


def contact_center(data: dict, w: Words) -> list[Section]:
    by = data.get("by") or []
    key = "channel" if not by or "channel" in by[0] else "agent"
    name = (lambda r: w.channel(r.get("channel"))) if key == "channel" else (lambda r: str(r.get("agent") or "—"))
    section = Section("contact_center", w.t(TITLES["contact_center"]), kpis=[
        Kpi(w.t("Conversations"), data.get("conversations")), Kpi(w.t("Answered"), data.get("answered")),
        Kpi(w.t("Resolved"), data.get("resolved")),
        Kpi(w.t("First response, mean"), data.get("first_response_mean"), "minutes"),
        Kpi(w.t("Resolution, mean"), data.get("resolution_mean"), "minutes"),
        Kpi(w.t("SLA met"), data.get("sla_met"), "percent")], empty=not data.get("conversations"))
    if by:
        section.charts.append(Chart(w.t("Response and resolution by channel"), bars([name(r) for r in by], [
            (w.t("First response, mean, min"), [r["first_response_mean"] for r in by]),
            (w.t("Resolution, mean, min"), [r["resolution_mean"] for r in by])],
            line=(w.t("SLA met, %"), [r["sla_met"] for r in by]))))
    section.tables = [Table("by_channel", w.t("By channel") if key == "channel" else w.t("By agent"), [
        Column("name", w.t("Channel") if key == "channel" else w.t("Agent"), "text"),
        Column("conversations", w.t("Conversations")), Column("answered", w.t("Answered")),
        Column("resolved", w.t("Resolved")), Column("first_response_mean", w.t("First response, mean"), "minutes"),
        Column("first_response_median", w.t("First response, median"), "minutes"),
        Column("resolution_mean", w.t("Resolution, mean"), "minutes"),
        Column("resolution_median", w.t("Resolution, median"), "minutes"),
        Column("breached", w.t("SLA breached")), Column("sla_met", w.t("SLA met"), "percent")],
        [Row({"name": name(r), **{k: r.get(k) for k in ("conversations", "answered", "resolved", "first_response_mean",
                                                         "first_response_median", "resolution_mean", "resolution_median",
                                                         "breached", "sla_met")}}) for r in by]),
        summary_table(section, w)]
    return [section]


def recommendations(data: dict, w: Words) -> list[Section]:
    """Revenue from recommendations by the channel they were shown in, and by their reason."""
    section = Section("recommendations", w.t(TITLES["recommendations"]), kpis=[
        Kpi(w.t("Recommendation clicks"), data.get("clicks")), Kpi(w.t("People who clicked"), data.get("people")),
        Kpi(w.t("Orders with recommended products"), data.get("orders")),
        Kpi(w.t("Revenue from recommendations"), data.get("revenue"), "money"),
        Kpi(w.t("Share of all revenue"), data.get("share"), "percent")],
        empty=not (data.get("clicks") or data.get("orders")),
        notes=[w.t("A purchased product counts for the latest click on its recommendation by the same person in the "
                   "%(days)s days before the order, in the channel where the recommendation was shown; each order "
                   "line once.", days=data.get("window_days", 7))])

    def reason(code: str) -> str:
        return w.t("(not set)") if code in (None, "(none)") else w.labels.recommendation_reason(code)

    measures = [Column("clicks", w.t("Clicks")), Column("people", w.t("People who clicked")),
                Column("orders", w.t("Orders")), Column("revenue", w.t("Revenue"), "money"),
                Column("share", w.t("Share of all revenue"), "percent")]
    keys = ("clicks", "people", "orders", "revenue", "share")
    section.tables = [
        Table("by_channel", w.t("Revenue from recommendations"), [Column("channel", w.t("Shown in"), "text"), *measures],
              [Row({"channel": w.channel(r["channel"]), **{k: r.get(k) for k in keys}}) for r in data.get("by_channel") or []]),
        Table("by_reason", w.t("By reason"), [Column("reason", w.t("Why recommended"), "text"), *measures],
              [Row({"reason": reason(r["reason"]), **{k: r.get(k) for k in keys}}) for r in data.get("by_reason") or []]),
        summary_table(section, w)]
    return [section]


BUILDERS: dict[str, Callable[[dict, Words], list[Section]]] = {
    "conversion": conversion, "journeys": journeys, "funnel": funnel, "cohorts": cohorts, "satisfaction": satisfaction,
    "clv": clv, "engagement": engagement, "attribution": attribution, "omnichannel": omnichannel,
    "contact_center": contact_center, "recommendations": recommendations,
}


def sections(metric: str, data: dict, words: Words) -> list[Section]:
    """A metric's result as the sections people read (conversion gives two: click & collect too)."""
    return BUILDERS[metric](data, words)


def find_table(metric: str, data: dict, words: Words, name: str) -> Table | None:
    """A metric's table by name; `section:name` (`click_and_collect:summary`) when the metric has two sections."""
    wanted_section, _, table_name = name.rpartition(":")
    for section in sections(metric, data, words):
        if wanted_section and section.metric != wanted_section:
            continue
        found = section.table(table_name)
        if found is not None:
            return found
    return None


# --- CSV ----------------------------------------------------------------------------------------


def csv_value(value: Any, kind: str, words: Words) -> Any:
    """A cell as CSV writes it: numbers as numbers (money in currency units), text as text."""
    if value is None:
        return ""
    if kind == "money":
        return _plain(words.minor(value))
    if kind == "text":
        # Text comes from outside too (a campaign source any visitor's tracker may send, event and
        # trait names): a cell Excel would read as a formula is written as text (OWASP's rule).
        text = str(value)
        return "'" + text if text[:1] in _FORMULA_STARTS else text
    return _plain(value)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def csv_bytes(table: Table, words: Words) -> bytes:
    """The table as CSV: a header in the reader's language (units in it), one line per row, comma
    separated, decimal point, UTF-8 with a BOM (Excel then reads Cyrillic right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.header(words))
    for row in table.rows:
        writer.writerow([csv_value(row.values.get(c.key), c.kind, words) for c in table.columns])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def heat(value: Any) -> str:
    """The background of a heatmap cell (a percent 0–100) as an inline style."""
    if not isinstance(value, int | float):
        return ""
    alpha = max(0.06, min(1.0, value / 100))
    ink = "#fff" if alpha > 0.55 else "inherit"
    return f"background: rgba(79, 70, 229, {alpha:.2f}); color: {ink};"


def msgids() -> Iterable[str]:
    """Every msgid of this module: the string literals given to `t` and `Words.t` (the translation test)."""
    import ast
    from pathlib import Path

    for node in ast.walk(ast.parse(Path(__file__).read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == "t" and isinstance(node.args[0].value, str):
                yield node.args[0].value
