"""`seamline analytics report`: every metric of a period as one HTML file a manager can open
anywhere, offline (ECharts inlined, the charts' options inlined, no other file, no network).

The sections, charts and tables are the console's Analytics area's (`charts.py`); the words are
Russian or English."""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from seamline.web import i18n
from seamline.web.reports import charts

TEMPLATES = Path(__file__).parent / "templates"
#: The one vendored copy of Apache ECharts (the console serves it from there too).
ECHARTS = Path(__file__).parents[1] / "console" / "static" / "echarts.min.js"


@lru_cache(maxsize=None)
def _environment(language: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(language), newstyle=True)
    return env


@lru_cache(maxsize=1)
def _echarts() -> str:
    script = ECHARTS.read_text(encoding="utf-8")
    if "</script" in script.lower():  # cannot be inlined as it is (never so in ECharts 6.1.0)
        raise ValueError("echarts.min.js holds </script>")
    return script


def render(data: dict[str, Any], *, language: str, currency: str = "RUB", timezone_name: str = "Europe/Moscow",
           generated_at: datetime | None = None) -> str:
    """The report of `data` (`analytics.service.dashboard(...)`) in `language` ("ru" or "en")."""
    if language not in i18n.LOCALES:
        raise ValueError(f"language: one of {i18n.LOCALES}")
    words = charts.Words(language, currency=currency, timezone=timezone_name)
    metrics = data.get("metrics") or {}
    sections = [s for name in charts.METRICS if name in metrics for s in charts.sections(name, metrics[name], words)]
    period = data.get("period") or {}
    first, last = (date.fromisoformat(period[k]) if period.get(k) else None for k in ("from", "to"))
    filters = data.get("filters") or {}
    return _environment(language).get_template("report.html").render(
        language=language, words=words, fmt=words.fmt, sections=sections, first=first, last=last,
        channel=filters.get("channel"), store=filters.get("store"), backend=data.get("backend"),
        seconds=(data.get("seconds") or {}).get("total"), freshness=data.get("freshness") or {},
        generated_at=generated_at or datetime.now(timezone.utc), heat=charts.heat, echarts=Markup(_echarts()),
    )
