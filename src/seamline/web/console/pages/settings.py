"""Settings (admins): channels and the web chat snippet, API keys, staff accounts, routing rules
and SLA policies, the loyalty program's rules (also marketers: permission loyalty.rules).

Each tab is one fragment (`settings/_<tab>.html`, in #tab); its forms post with HTMX and get the
tab back with a message. The work is the domain services' (the ones behind /v1/api-keys,
/v1/inbox/routing-rules, /v1/inbox/sla-policies, /v1/loyalty/program, /v1/sources)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce.models import CommerceLocation
from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import ApiKeyCreate, Scope
from seamline.core.errors import AppError
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

TABS = ("channels", "keys", "staff", "routing", "loyalty")
#: What each tab needs: every tab is an admin's ("settings"); the loyalty rules also a marketer's.
TAB_PERMISSIONS = {tab: ("settings",) for tab in TABS} | {"loyalty": ("settings", "loyalty.rules")}
#: The program's fields edited as JSON (lists and maps); the others are plain inputs.
PROGRAM_JSON_FIELDS = ("tiers", "channel_bonuses", "category_multipliers")
PROGRAM_OPTIONAL = ("expiry_days",)


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
        "policies": [{c: getattr(p, c) for c in ("id", "name", "first_response_minutes", "next_response_minutes",
                                                  "resolution_minutes", "calendar", "channels", "min_priority", "is_default")}
                     for p in policies],
        "channels": sorted(ADAPTERS),
    }


def _loyalty(session: Session, request: Request) -> dict[str, Any]:
    program = loyalty_rules.get_program(session).model_dump(mode="json")
    return {"program": program,
            "json_fields": {k: json.dumps(program[k], ensure_ascii=False, indent=2) for k in PROGRAM_JSON_FIELDS}}


LOADERS = {"channels": _channels, "keys": _keys, "staff": _staff, "routing": _routing, "loyalty": _loyalty}


def _tab(request: Request, staff: Staff, tab: str, *, error: str | None = None, ok: str | None = None,
         **extra: Any) -> HTMLResponse:
    """The tab's fragment after an action (422 with the message when refused)."""
    data = read(request, lambda s: LOADERS[tab](s, request))
    if "json_fields" in extra:  # a refused program: show what was typed
        data["json_fields"] = {**data["json_fields"], **extra.pop("json_fields")}
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
        body = RoutingRuleCreate(name=str(form.get("name", "")).strip(), pattern=str(form.get("pattern", "")),
                                 skill=str(form.get("skill", "")).strip(), position=_int_or_none(form.get("position")) or 0,
                                 enabled=form.get("enabled") == "true")
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


@router.post("/sla-policies")
def create_sla_policy(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    _check(staff, "routing")
    calendar_text = str(form.get("calendar", "")).strip()
    try:
        calendar = json.loads(calendar_text) if calendar_text else None
    except ValueError:
        return _tab(request, staff, "routing", error=translate(request, "The calendar is not valid JSON."), form=form)
    try:
        body = SlaPolicyCreate(
            name=str(form.get("name", "")).strip(), calendar=calendar, channels=form.get("channels") or [],
            first_response_minutes=_int_or_none(form.get("first_response_minutes")),
            next_response_minutes=_int_or_none(form.get("next_response_minutes")),
            resolution_minutes=_int_or_none(form.get("resolution_minutes")),
            min_priority=_int_or_none(form.get("min_priority")) or 0, is_default=form.get("is_default") == "true")
    except ValidationError as exc:
        return _tab(request, staff, "routing", error=form_problem(request, exc), form=form)
    _, error = attempt(request, lambda s: sla.create_policy(s, **body.model_dump()).id)
    return _tab(request, staff, "routing", error=error, form=form if error else {},
                ok=translate(request, "SLA policy added."))


# --- the loyalty program ---------------------------------------------------------------------------


@router.post("/loyalty")
def save_loyalty_program(request: Request, form: Form, staff: Staff = signed_in()) -> HTMLResponse:
    """The program's rules, as PUT /v1/loyalty/program: the whole program at once."""
    _check(staff, "loyalty")
    typed = {k: str(form.get(k, "")) for k in PROGRAM_JSON_FIELDS}
    # The whole program is replaced: a field left out or blank would silently reset that rule.
    blank = [k for k in ProgramPut.model_fields
             if k not in (*PROGRAM_JSON_FIELDS, *PROGRAM_OPTIONAL, "auto_enroll") and not str(form.get(k, "")).strip()]
    if blank:
        return _tab(request, staff, "loyalty", json_fields=typed, form=form,
                    error=translate(request, "Fill in every field: %(fields)s.", fields=", ".join(blank)))
    data: dict[str, Any] = {k: v for k, v in form.items() if k in ProgramPut.model_fields and k not in PROGRAM_JSON_FIELDS}
    data["auto_enroll"] = form.get("auto_enroll") == "true"
    for key in PROGRAM_OPTIONAL:
        data[key] = _int_or_none(data.get(key))
    for key in PROGRAM_JSON_FIELDS:
        try:
            data[key] = json.loads(typed[key]) if typed[key].strip() else ({} if key == "category_multipliers" else [])
        except ValueError:
            return _tab(request, staff, "loyalty", json_fields=typed, form=form,
                        error=translate(request, "%(field)s: not valid JSON.", field=key))
    try:
        program = ProgramPut.model_validate(data)
    except ValidationError as exc:
        return _tab(request, staff, "loyalty", json_fields=typed, form=form, error=form_problem(request, exc))

    def work(session: Session) -> None:
        loyalty_rules.put_program(session, program)

    _, error = attempt(request, work)
    return _tab(request, staff, "loyalty", error=error, form=form if error else {},
                ok=translate(request, "Loyalty rules saved."))

