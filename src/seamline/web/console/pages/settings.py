"""Settings (admins): channels and the web chat snippet, API keys, staff accounts, routing rules
and SLA policies, the loyalty program's rules (also marketers: permission loyalty.rules).

Each tab is one fragment (`settings/_<tab>.html`, in #tab); its forms post with HTMX and get the
tab back with a message. The work is the domain services' (the ones behind /v1/api-keys,
/v1/inbox/routing-rules, /v1/inbox/sla-policies, /v1/loyalty/program, /v1/sources)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce.models import CommerceCategory, CommerceLocation
from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import ApiKeyCreate, Scope
from seamline.core.errors import AppError
from seamline.core.queue import service as queue_service
from seamline.core.time import utcnow
from seamline.events import service as events_service
from seamline.inbox import outbound, routing, sla
from seamline.inbox.adapters import ADAPTERS
from seamline.inbox.models import InboxSlaPolicy
from seamline.inbox.schemas import RoutingRuleCreate, SlaPolicyCreate
from seamline.loyalty import rules as loyalty_rules
from seamline.loyalty.schemas import ProgramPut
from seamline.web.console.actions import attempt, explain, form_problem, read
from seamline.web.console.deps import PermissionDenied, RowId, Staff, database, signed_in
from seamline.web.console.templating import render, translate
from seamline.web.staff import service as staff_service

router = APIRouter(prefix="/console/settings")

TABS = ("channels", "keys", "staff", "routing", "loyalty", "jobs")
#: What each tab needs: every tab is an admin's ("settings"); the loyalty rules also a marketer's.
TAB_PERMISSIONS = {tab: ("settings",) for tab in TABS} | {"loyalty": ("settings", "loyalty.rules")}
#: The program's lists and maps, edited as rows of fields: form prefix -> the row's fields.
PROGRAM_ROWS = {
    "tiers": ("code", "name_ru", "name_en", "min_spend", "earn_multiplier"),
    "channel_bonuses": ("channel", "points", "multiplier", "first_order_only"),
    "category_multipliers": ("category", "multiplier"),
}
PROGRAM_OPTIONAL = ("expiry_days",)
#: Blank rows offered under the filled ones ("Add a row" offers one more); rows read at most.
BLANK_ROWS = 2
MAX_ROWS = 50
#: Dead letters listed on the jobs tab (newest first).
DEAD_JOBS_SHOWN = 100
#: Channels a channel bonus is usually for (a program's other channels are kept and shown too).
BONUS_CHANNELS = ("web", "app", "store", "call_center")


def _allowed(staff: Staff, tab: str) -> bool:
    return any(staff.can(p) for p in TAB_PERMISSIONS[tab])


def _check(staff: Staff, tab: str) -> None:
    if not _allowed(staff, tab):
        raise PermissionDenied(tab)


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form, multi-valued fields (checkboxes) as lists."""
    form = await request.form()
    return {key: (values if len(values := form.getlist(key)) > 1 or key in ("scopes", "channels") else values[0])
            for key in form}


Form = Annotated[dict[str, Any], Depends(form_data)]


def _int_or_none(value: Any) -> int | None | str:
    text = str(value or "").strip()
    return None if text == "" else text


# --- what each tab shows ---------------------------------------------------------------------------


def _channels(session: Session, request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    states = [{**s, "configured": ADAPTERS[s["channel"]].configured(settings)}
              for s in outbound.channel_states(session, settings=settings)]
    sources = [{"id": s.id, "name": s.name, "channel": s.channel, "created_at": s.created_at, "disabled_at": s.disabled_at}
               for s in events_service.list_sources(session)]
    return {"states": states, "sources": sources, "base_url": str(request.base_url).rstrip("/")}


def _keys(session: Session, request: Request) -> dict[str, Any]:
    keys = [{"id": k.id, "prefix": k.prefix, "name": k.name, "scopes": k.scopes, "created_at": k.created_at,
             "revoked_at": k.revoked_at, "source_id": k.source_id} for k in auth_service.list_api_keys(session)]
    return {"keys": keys, "scopes": [s.value for s in Scope]}


def _staff(session: Session, request: Request) -> dict[str, Any]:
    people = [{"id": u.id, "email": u.email, "name": u.name, "role": u.role, "locale": u.locale, "store": u.store,
               "agent_id": u.agent_id, "last_login_at": u.last_login_at,
               "disabled_at": u.disabled_at} for u in staff_service.list_staff(session)]
    stores = session.scalars(select(CommerceLocation).where(CommerceLocation.kind == "store", CommerceLocation.active.is_(True))
                             .order_by(CommerceLocation.code)).all()
    return {"people": people, "roles": staff_service.ROLES, "locales": staff_service.LOCALES,
            "stores": [{"code": s.code, "name_ru": s.name_ru, "name_en": s.name_en} for s in stores]}


def _routing(session: Session, request: Request) -> dict[str, Any]:
    rules = routing.list_rules(session)
    policies = session.scalars(select(InboxSlaPolicy).order_by(InboxSlaPolicy.id)).all()
    return {
        "rules": [{c: getattr(r, c) for c in ("id", "name", "pattern", "skill", "position", "enabled")} for r in rules],
        "policies": [{**{c: getattr(p, c) for c in ("id", "name", "first_response_minutes", "next_response_minutes",
                                                     "resolution_minutes", "calendar", "channels", "min_priority", "is_default")},
                      "hours": _hours_groups(p.calendar)}
                     for p in policies],
        "channels": sorted(ADAPTERS),
        "weekdays": sla.WEEKDAYS, "timezones": _timezones(), "default_timezone": request.app.state.settings.console_timezone,
    }


@lru_cache(maxsize=1)
def _timezones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))


def _hours_groups(calendar: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A calendar's open hours as runs of consecutive days with the same hours, for reading:
    [{"first": "mon", "last": "fri", "from": "09:00", "to": "18:00"}, ...]."""
    hours = (calendar or {}).get("hours") or {}
    groups: list[dict[str, Any]] = []
    previous = None
    for day in sla.WEEKDAYS:
        span = hours.get(day)
        if span and previous is not None and groups and groups[-1]["last"] == previous \
                and [groups[-1]["from"], groups[-1]["to"]] == list(span):
            groups[-1]["last"] = day
        elif span:
            groups.append({"first": day, "last": day, "from": span[0], "to": span[1]})
        previous = day if span else None
    return groups


def _loyalty(session: Session, request: Request) -> dict[str, Any]:
    program = loyalty_rules.get_program(session).model_dump(mode="json")
    categories = session.execute(select(CommerceCategory.code, CommerceCategory.name_ru, CommerceCategory.name_en)
                                 .order_by(CommerceCategory.code)).all()
    return {"program": program, "rows": _program_rows(program), "blank_rows": dict.fromkeys(PROGRAM_ROWS, BLANK_ROWS),
            "bonus_channels": BONUS_CHANNELS,
            "categories": [{"code": c, "name_ru": ru, "name_en": en} for c, ru, en in categories]}


def _jobs(session: Session, request: Request) -> dict[str, Any]:
    """The job queue: each queue's depth, the dead letters, the periodic tasks' last runs."""
    now = utcnow()
    return {
        "queues": [{**row.__dict__, "capped": row.capped}
                   for row in queue_service.stats(session, request.app.state.runtime.tasks.queues, now)],
        "count_cap": queue_service.COUNT_CAP,
        "dead": [{c: getattr(j, c) for c in ("id", "queue", "task", "attempts", "last_error", "finished_at", "created_at")}
                 for j in queue_service.dead_jobs(session, limit=DEAD_JOBS_SHOWN)],
        "schedules": [{c: getattr(p, c) for c in ("name", "next_run_at", "last_started_at", "last_succeeded_at",
                                                  "last_failed_at", "last_error")} for p in queue_service.schedules(session)],
    }


LOADERS = {"channels": _channels, "keys": _keys, "staff": _staff, "routing": _routing, "loyalty": _loyalty, "jobs": _jobs}


def _tab(request: Request, staff: Staff, tab: str, *, error: str | None = None, ok: str | None = None,
         **extra: Any) -> HTMLResponse:
    """The tab's fragment after an action (422 with the message when refused)."""
    data = read(request, lambda s: LOADERS[tab](s, request))
    flash = ("error", error) if error else (("ok", ok) if ok else None)
    return render(request, f"settings/_{tab}.html", status_code=422 if error else 200, flash=flash, tab=tab,
                  **{**data, "form": {}, "new_key": None, "new_source": None, **extra})


@router.get("")
def settings_page(request: Request, staff: Staff = signed_in(), tab: str | None = None) -> HTMLResponse:
    tabs = [t for t in TABS if _allowed(staff, t)]
    if not tabs:
        raise PermissionDenied("settings")
    if tab not in TABS:
        tab = tabs[0]
    _check(staff, tab)
    data = read(request, lambda s: LOADERS[tab](s, request))
    return render(request, "settings/page.html", section="settings", tab=tab, tabs=tabs, form={}, new_key=None,
                  new_source=None, **data)


# --- channels: event sources for the web chat snippet ----------------------------------------------


@router.post("/sources")
def create_source(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "channels")
    name = str(form.get("name", "")).strip()[:200]
    if not name:
        return _tab(request, staff, "channels", error=translate(request, "Give the site a name."))
    def work(session: Session) -> dict[str, Any]:
        source, key = events_service.create_source(session, name=name, channel="web")
        return {"id": source.id, "name": source.name, "key": key}

    created, error = attempt(request, work)
    return _tab(request, staff, "channels", error=error, new_source=created,
                ok=translate(request, "Source created: copy its snippet now, the key is shown only once."))


# --- API keys --------------------------------------------------------------------------------------


@router.post("/keys")
def create_key(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "keys")
    try:
        body = ApiKeyCreate(name=str(form.get("name", "")).strip(), scopes=form.get("scopes") or [])
    except ValidationError as exc:
        return _tab(request, staff, "keys", error=form_problem(request, exc), form=form)

    def work(session: Session) -> dict[str, Any]:
        key, secret = auth_service.create_api_key(session, name=body.name, scopes=body.scopes)
        return {"id": key.id, "name": key.name, "secret": secret}

    created, error = attempt(request, work)
    return _tab(request, staff, "keys", error=error, new_key=created,
                ok=translate(request, "API key created: copy it now, it is shown only once."))


@router.post("/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: RowId, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "keys")
    _, error = attempt(request, lambda s: auth_service.revoke_api_key(s, key_id=key_id).id)
    if not error:
        request.app.state.api_keys.clear()  # this process refuses it at once (as DELETE /v1/api-keys/{id})
    return _tab(request, staff, "keys", error=error, ok=translate(request, "API key revoked."))


# --- background jobs ------------------------------------------------------------------------------


@router.post("/jobs/{job_id}/retry")
def retry_job(request: Request, job_id: RowId, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "jobs")
    _, error = attempt(request, lambda s: queue_service.retry_dead(s, job_id))
    return _tab(request, staff, "jobs", error=error, ok=translate(request, "The job is back in its queue."))


# --- staff accounts --------------------------------------------------------------------------------


@router.post("/staff")
def create_staff(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "staff")
    email, name = str(form.get("email", "")).strip(), str(form.get("name", "")).strip()
    store = str(form.get("store", "")).strip() or None
    skills = [s.strip() for s in str(form.get("skills", "")).replace(",", " ").split() if s.strip()]
    shown = {k: v for k, v in form.items() if k != "password"}
    if "@" not in email or len(email) > 320 or not name or len(name) > 200:
        return _tab(request, staff, "staff", error=translate(request, "Give an email and a name."), form=shown)
    try:
        capacity = int(form.get("capacity") or 10)
    except ValueError:
        capacity = -1
    if not 1 <= capacity <= 100:
        return _tab(request, staff, "staff", error=translate(request, "Capacity is a number from 1 to 100."), form=shown)

    def work(session: Session) -> str:
        return staff_service.create_staff_user(
            session, email=email, name=name, password=str(form.get("password", "")), role=str(form.get("role", "")),
            locale=str(form.get("locale", "ru")), store=store, skills=skills, capacity=capacity).email

    created, error = attempt(request, work)
    return _tab(request, staff, "staff", error=error, form=shown if error else {},
                ok=translate(request, "Account %(email)s created.", email=created))


@router.post("/staff/{user_id}/password")
def reset_password(request: Request, user_id: RowId, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "staff")
    changed, error = attempt(request, lambda s: staff_service.set_password(
        s, user_id=user_id, password=str(form.get("password", ""))).email)
    return _tab(request, staff, "staff", error=error,
                ok=translate(request, "New password set for %(email)s; their sessions ended.", email=changed))


def _staff_refusal(request: Request, exc: AppError) -> str:
    if exc.code == "last_admin":
        return translate(request, "This is the only active admin: make another account an admin first.")
    if exc.code == "store_required":
        return translate(request, "A store clerk needs a store.")
    if exc.code == "not_a_store":
        return translate(request, "Choose one of the stores.")
    if exc.code == "invalid_role":
        return translate(request, "Choose a role.")
    if exc.code == "staff_not_found":
        return translate(request, "No such staff account.")
    return explain(request, exc)


def _staff_change(request: Request, staff: Staff, work: Callable[[Session], str],
                  ok: Callable[[str], str]) -> HTMLResponse:
    """An account change by an admin: the service's work (answering the account's email) in one
    transaction, then the tab with `ok(email)`, or with the refusal and nothing changed."""
    try:
        email = database(request).run_write(work)
    except AppError as exc:
        return _tab(request, staff, "staff", error=_staff_refusal(request, exc))
    return _tab(request, staff, "staff", ok=ok(email))


@router.post("/staff/{user_id}/role")
def change_staff_role(request: Request, user_id: RowId, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    """A new role (a clerk with their store); admins only. The last active admin stays an admin."""
    _check(staff, "staff")
    role, store = str(form.get("role", "")), str(form.get("store", "")).strip()[:64] or None
    settings = request.app.state.settings
    return _staff_change(
        request, staff,
        lambda s: staff_service.change_role(s, user_id=user_id, role=role, store=store, actor=staff.user,
                                            settings=settings).email,
        lambda email: translate(request, "%(email)s: role changed.", email=email))


@router.post("/staff/{user_id}/deactivate")
def deactivate_staff(request: Request, user_id: RowId, staff: Staff = signed_in()) -> HTMLResponse:
    """The account cannot sign in any more and its sessions end; admins only, never the last admin."""
    _check(staff, "staff")
    settings = request.app.state.settings
    return _staff_change(
        request, staff,
        lambda s: staff_service.set_active(s, user_id=user_id, active=False, actor=staff.user, settings=settings).email,
        lambda email: translate(request, "%(email)s was deactivated and signed out everywhere.", email=email))


@router.post("/staff/{user_id}/reactivate")
def reactivate_staff(request: Request, user_id: RowId, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "staff")
    return _staff_change(
        request, staff, lambda s: staff_service.set_active(s, user_id=user_id, active=True, actor=staff.user).email,
        lambda email: translate(request, "%(email)s can sign in again.", email=email))


# --- routing rules and SLA policies ----------------------------------------------------------------


@router.post("/routing-rules")
def create_routing_rule(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "routing")
    try:
        body = RoutingRuleCreate.model_validate(dict(  # a form's text: not as strict as the JSON API
            name=str(form.get("name", "")).strip(), pattern=str(form.get("pattern", "")), skill=str(form.get("skill", "")).strip(),
            position=_int_or_none(form.get("position")) or 0, enabled=form.get("enabled") == "true"), strict=False)
    except ValidationError as exc:
        return _tab(request, staff, "routing", error=form_problem(request, exc), form=form)

    _, error = attempt(request, lambda session: routing.create_rule(session, **body.model_dump()).id)
    return _tab(request, staff, "routing", error=error, form=form if error else {},
                ok=translate(request, "Routing rule added."))


@router.post("/routing-rules/{rule_id}/delete")
def delete_routing_rule(request: Request, rule_id: RowId, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "routing")

    _, error = attempt(request, lambda session: routing.delete_rule(session, rule_id))
    return _tab(request, staff, "routing", error=error, ok=translate(request, "Routing rule deleted."))


def _day_names(request: Request) -> dict[str, str]:
    return {"mon": translate(request, "Monday"), "tue": translate(request, "Tuesday"),
            "wed": translate(request, "Wednesday"), "thu": translate(request, "Thursday"),
            "fri": translate(request, "Friday"), "sat": translate(request, "Saturday"), "sun": translate(request, "Sunday")}


def _holiday(text: str) -> date | None:
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _calendar(request: Request, form: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The business calendar of the SLA form (None: around the clock), as sla.check_calendar
    wants it, and what is wrong with the fields, in the person's language."""
    if form.get("hours") != "business":
        return None, []
    t = lambda message, **values: translate(request, message, **values)  # noqa: E731
    errors = []
    zone = str(form.get("timezone", "")).strip()
    try:
        ZoneInfo(zone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        errors.append(t("Unknown time zone “%(zone)s”: choose one from the list, like Europe/Moscow.", zone=zone))
    hours: dict[str, list[str]] = {}
    names = _day_names(request)
    for day in sla.WEEKDAYS:
        if form.get(f"open-{day}") != "true":
            continue
        opens, closes = str(form.get(f"from-{day}", "")).strip(), str(form.get(f"to-{day}", "")).strip()
        try:
            valid = time.fromisoformat(opens) < time.fromisoformat(closes)
        except ValueError:
            valid = False
        if not valid:
            errors.append(t("%(day)s: give the opening and the closing time, the opening first.", day=names[day]))
        hours[day] = [opens[:5], closes[:5]]
    if not hours:
        errors.append(t("Open at least one day of the week, or choose around the clock."))
    holidays = []
    for text in re.split(r"[\s,;]+", str(form.get("holidays", "")).strip()):
        if not text:
            continue
        found = _holiday(text)
        if found is None:
            errors.append(t("Holidays: “%(value)s” is not a date (2027-01-07 or 07.01.2027).", value=text[:20]))
        else:
            holidays.append(found.isoformat())
    return {"timezone": zone, "hours": hours, "holidays": sorted(set(holidays))}, errors


@router.post("/sla-policies")
def create_sla_policy(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    """A policy from the form: targets in minutes and its business hours (a time zone, opening
    and closing times per weekday, holidays), as POST /v1/inbox/sla-policies takes them."""
    _check(staff, "routing")
    calendar, errors = _calendar(request, form)
    targets = {}
    for field in ("first_response_minutes", "next_response_minutes", "resolution_minutes"):
        text = str(form.get(field, "")).strip()
        if text and not (text.isdigit() and 1 <= int(text) <= 5_256_000):
            errors.insert(0, translate(request, "Response and resolution times are whole minutes from 1."))
            break
        targets[field] = int(text) if text else None
    if errors:
        return _tab(request, staff, "routing", error=" ".join(dict.fromkeys(errors)), form=form)
    try:
        body = SlaPolicyCreate.model_validate(dict(  # a form's text: not as strict as the JSON API
            name=str(form.get("name", "")).strip(), calendar=calendar, channels=form.get("channels") or [],
            min_priority=_int_or_none(form.get("min_priority")) or 0, is_default=form.get("is_default") == "true",
            **targets), strict=False)
    except ValidationError as exc:
        return _tab(request, staff, "routing", error=form_problem(request, exc), form=form)
    _, error = attempt(request, lambda s: sla.create_policy(s, **body.model_dump()).id)
    return _tab(request, staff, "routing", error=error, form=form if error else {},
                ok=translate(request, "SLA policy added."))


# --- the loyalty program ---------------------------------------------------------------------------


def _major(minor: int, currency: str) -> str:
    """Minor units as a plain amount for an input: 5000000 RUB -> "50000", 5000050 -> "50000.50"."""
    precision = get_currency_precision(currency)
    whole, cents = divmod(minor, 10**precision)
    return f"{whole}.{cents:0{precision}d}" if cents else str(whole)


def _number(value: Any) -> str:
    return "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def _program_rows(program: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The program's lists and maps as the rows of the form (strings, as typed)."""
    currency = program["currency"]
    return {
        "tiers": [{"code": t["code"], "name_ru": t["name_ru"], "name_en": t["name_en"],
                   "min_spend": _major(t["min_spend"], currency), "earn_multiplier": _number(t["earn_multiplier"])}
                  for t in program["tiers"]],
        "channel_bonuses": [{"channel": b["channel"], "points": _number(b["points"]), "multiplier": _number(b["multiplier"]),
                             "first_order_only": "true" if b["first_order_only"] else ""}
                            for b in program["channel_bonuses"]],
        "category_multipliers": [{"category": code, "multiplier": _number(value)}
                                 for code, value in program["category_multipliers"].items()],
    }


def _typed_rows(form: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    """A group's rows as typed (`<prefix>-<n>-<field>`), in order; rows marked for removal and
    rows left blank are left out."""
    fields = PROGRAM_ROWS[prefix]
    numbers = sorted({int(match.group(1)) for key in form
                      if (match := re.fullmatch(rf"{prefix}-(\d{{1,3}})-[a-z_]+", key))})
    rows = []
    for number in numbers[:MAX_ROWS]:
        row = {field: str(form.get(f"{prefix}-{number}-{field}", "")).strip() for field in fields}
        if form.get(f"{prefix}-{number}-remove") or not any(v for k, v in row.items() if k != "first_order_only"):
            continue
        rows.append(row)
    return rows


def _decimal(text: str) -> Decimal | None:
    """A number as people type it: "50 000", "1,5", "2.25"; None when it is not one."""
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _program_lists(request: Request, rows: dict[str, list[dict[str, str]]], currency: str) -> tuple[dict[str, Any], list[str]]:
    """The tiers, channel bonuses and category multipliers of the rows, and what is wrong with
    them, each problem a sentence in the person's language."""
    t = lambda message, **values: translate(request, message, **values)  # noqa: E731
    errors: list[str] = []
    precision = get_currency_precision(currency) if re.fullmatch(r"[A-Z]{3}", currency) else 2
    tiers = []
    for n, row in enumerate(rows["tiers"], 1):
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", row["code"]):
            errors.append(t("Tier %(n)s: the code is Latin lowercase letters, digits and _, starting with a letter.", n=n))
        if not row["name_ru"] or not row["name_en"] or len(row["name_ru"]) > 300 or len(row["name_en"]) > 300:
            errors.append(t("Tier %(n)s: give its name in Russian and in English.", n=n))
        spend = _decimal(row["min_spend"])
        minor = spend.scaleb(precision) if spend is not None else None
        if minor is None or minor < 0 or minor != minor.to_integral_value() or minor > 10**15:
            errors.append(t("Tier %(n)s: the minimum spend is an amount from 0, like 50000 or 50000.50.", n=n))
        multiplier = _decimal(row["earn_multiplier"] or "1")
        if multiplier is None or not 0 <= multiplier <= 100:
            errors.append(t("Tier %(n)s: the multiplier is a number from 0 to 100.", n=n))
        elif minor is not None and minor == minor.to_integral_value():
            tiers.append({"code": row["code"], "name_ru": row["name_ru"], "name_en": row["name_en"],
                          "min_spend": int(minor), "earn_multiplier": float(multiplier)})
    codes = [row["code"] for row in rows["tiers"]]
    if repeated := sorted({c for c in codes if codes.count(c) > 1}):
        errors.append(t("Each tier needs its own code: %(codes)s is used twice.", codes=", ".join(repeated)))
    bonuses = []
    for n, row in enumerate(rows["channel_bonuses"], 1):
        points, multiplier = _decimal(row["points"] or "0"), _decimal(row["multiplier"] or "1")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", row["channel"]):
            errors.append(t("Channel bonus %(n)s: choose the channel.", n=n))
        if points is None or points != points.to_integral_value() or not 0 <= points <= 10**9:
            errors.append(t("Channel bonus %(n)s: points are a whole number from 0.", n=n))
        if multiplier is None or not 0 <= multiplier <= 100:
            errors.append(t("Channel bonus %(n)s: the multiplier is a number from 0 to 100.", n=n))
        if points is not None and multiplier is not None:
            bonuses.append({"channel": row["channel"], "points": int(points), "multiplier": float(multiplier),
                            "first_order_only": row["first_order_only"] == "true"})
    multipliers: dict[str, float] = {}
    for n, row in enumerate(rows["category_multipliers"], 1):
        multiplier = _decimal(row["multiplier"])
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}", row["category"]):
            errors.append(t("Category multiplier %(n)s: choose the category.", n=n))
        elif row["category"] in multipliers:
            errors.append(t("Category multiplier %(n)s: %(category)s has a multiplier already.", n=n,
                            category=row["category"]))
        if multiplier is None or not 0 <= multiplier <= 100:
            errors.append(t("Category multiplier %(n)s: the multiplier is a number from 0 to 100.", n=n))
        elif row["category"] not in multipliers:
            multipliers[row["category"]] = float(multiplier)
    return {"tiers": tiers, "channel_bonuses": bonuses, "category_multipliers": multipliers}, errors


@router.post("/loyalty")
def save_loyalty_program(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    """The program's rules, as PUT /v1/loyalty/program: the whole program at once. Tiers,
    channel bonuses and category multipliers are rows of fields; "Add a row" (`add_row`, the
    group) shows the form again as typed with one more blank row of the group, saving nothing."""
    _check(staff, "loyalty")
    rows = {prefix: _typed_rows(form, prefix) for prefix in PROGRAM_ROWS}
    shown = {k: v for k, v in form.items() if k in ProgramPut.model_fields}
    if (group := form.get("add_row")) in PROGRAM_ROWS:
        typed = len({key.split("-")[1] for key in form if key.startswith(f"{group}-") and key.count("-") == 2})
        more = dict.fromkeys(PROGRAM_ROWS, BLANK_ROWS)
        more[group] = min(max(BLANK_ROWS, typed - len(rows[group])) + 1, MAX_ROWS - len(rows[group]))
        return _tab(request, staff, "loyalty", rows=rows, form=shown, blank_rows=more)
    # The whole program is replaced: a field left out or blank would silently reset that rule.
    blank = [k for k in ProgramPut.model_fields
             if k not in (*PROGRAM_ROWS, *PROGRAM_OPTIONAL, "auto_enroll") and not str(form.get(k, "")).strip()]
    if blank:
        return _tab(request, staff, "loyalty", rows=rows, form=shown,
                    error=translate(request, "Fill in every field: %(fields)s.", fields=", ".join(blank)))
    data: dict[str, Any] = {k: v for k, v in form.items() if k in ProgramPut.model_fields and k not in PROGRAM_ROWS}
    data["auto_enroll"] = form.get("auto_enroll") == "true"
    for key in PROGRAM_OPTIONAL:
        data[key] = _int_or_none(data.get(key))
    lists, problems = _program_lists(request, rows, str(form.get("currency", "")).strip())
    if problems:
        return _tab(request, staff, "loyalty", rows=rows, form=shown, error=" ".join(problems))
    try:
        program = ProgramPut.model_validate({**data, **lists}, strict=False)  # a form's text
    except ValidationError as exc:
        return _tab(request, staff, "loyalty", rows=rows, form=shown, error=form_problem(request, exc))

    def work(session: Session) -> None:
        loyalty_rules.put_program(session, program)

    _, error = attempt(request, work)
    if error:
        return _tab(request, staff, "loyalty", error=error, form=shown, rows=rows)
    return _tab(request, staff, "loyalty", ok=translate(request, "Loyalty rules saved."))
