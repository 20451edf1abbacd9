"""The dashboard: the contact center's load (the inbox's dashboard behind GET /v1/inbox/dashboard:
agents online, load and capacity, the queue, SLA at risk), today's orders and revenue by channel,
and the customers new this week. The load block refreshes itself (every 30 s and on the live
notices of assignments and agents' status)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from seamline.commerce import orders
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.inbox import agents
from seamline.web.console.actions import read
from seamline.web.console.deps import Staff, permitted
from seamline.web.console.pages.customers import CHANNEL_ICONS, channel_labels
from seamline.web.console.templating import render

router = APIRouter(prefix="/console/dashboard")


def _local_midnight(now: datetime, zone: ZoneInfo, days_back: int = 0) -> datetime:
    day = now.astimezone(zone).date() - timedelta(days=days_back)
    return datetime.combine(day, time.min, tzinfo=zone)


def _load(session: Session, request: Request) -> dict[str, Any]:
    return agents.dashboard(session, settings=request.app.state.settings)


def _business(session: Session, request: Request) -> dict[str, Any]:
    """Today's orders (not cancelled) per channel and currency, and profiles created since Monday,
    in the console's time zone."""
    now, zone = utcnow(), ZoneInfo(request.app.state.settings.console_timezone)
    today = _local_midnight(now, zone)
    week = _local_midnight(now, zone, days_back=now.astimezone(zone).weekday())
    by_channel = orders.sales_by_channel(session, since=today)
    totals: dict[str, dict[str, int]] = {}
    for row in by_channel:
        total = totals.setdefault(row["currency"], {"orders": 0, "revenue": 0})
        total["orders"] += row["orders"]
        total["revenue"] += row["revenue"]
    new_customers = customers_service.count_new_customers(session, since=week)
    return {"orders_by_channel": by_channel, "order_totals": totals, "orders_today": sum(r["orders"] for r in by_channel),
            "new_customers": new_customers, "week_start": week}


@router.get("")
def dashboard_page(request: Request, staff: Staff = permitted("dashboard")) -> HTMLResponse:
    data = read(request, lambda s: {"load": _load(s, request), **_business(s, request)})
    return render(request, "dashboard/page.html", section="dashboard", icons=CHANNEL_ICONS, labels=channel_labels(request),
                  **data)


@router.get("/load")
def load_fragment(request: Request, staff: Staff = permitted("dashboard")) -> HTMLResponse:
    """The agent load block alone (HTMX polling and live refresh)."""
    return render(request, "dashboard/_load.html", load=read(request, lambda s: _load(s, request)))
