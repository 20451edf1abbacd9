"""Sign-in, sign-out and the user's language."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from babel.dates import format_timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from seamline.core.limits import client_address
from seamline.web.console.deps import COOKIE, Staff, database, signed_in
from seamline.web.console.templating import render
from seamline.web.i18n import Formats, gettext, pick_locale
from seamline.web.staff import service as staff_service

router = APIRouter()
LOGIN_CSRF = "sl_login_csrf"  # double-submit token of the login form (there is no session yet)


def _home(staff_user) -> str:  # noqa: ANN001
    """Where a sign-in lands: an inbox agent in the inbox, a clerk at the store screen, anyone else
    who has one (a marketer, an admin who is not an agent) on the dashboard (the queue, the
    agents' load, today's orders)."""
    if staff_service.can(staff_user, "inbox") and staff_user.agent_id:
        return "/console/inbox"
    if staff_service.can(staff_user, "dashboard"):
        return "/console/dashboard"
    if staff_service.can(staff_user, "store"):
        return "/console/store"
    return "/console/customers"


def _safe_next(target: str | None) -> str | None:
    return target if target and target.startswith("/console/") and not target.startswith("//") else None


@router.get("/console/login")
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    response = render(request, "login.html", next=_safe_next(next) or "", error=None, csrf_override=token)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/console")
    return response


@router.post("/console/login")
def login_submit(request: Request, email: Annotated[str, Form(max_length=320)], password: Annotated[str, Form(max_length=1000)],
                 csrf: Annotated[str, Form(max_length=100)] = "", next: Annotated[str, Form(max_length=500)] = "") -> Response:  # noqa: A002
    cookie_token = request.cookies.get(LOGIN_CSRF)
    locale = pick_locale(request.headers.get("accept-language"))
    if not cookie_token or not secrets.compare_digest(cookie_token, csrf):
        return render(request, "login.html", status_code=403, next=_safe_next(next) or "", csrf_override=cookie_token or "",
                      error=gettext(locale, "The form expired. Please try again."))

    def work(session):  # noqa: ANN001, ANN202
        try:
            return staff_service.login(session, settings=request.app.state.settings, email=email, password=password,
                                       ip=request.client.host if request.client else None,
                                       address=client_address(request.scope)), None
        except staff_service.LoginRefused as refused:
            return None, refused  # committed: the failure counts

    try:
        opened, _refused = database(request).run_write(work)
    except staff_service.LoginThrottled as throttled:  # rolled back; the password was not checked
        when = format_timedelta(timedelta(seconds=throttled.retry_after), locale=Formats(locale).babel,
                                add_direction=True, threshold=2)
        error = gettext(locale, "Too many failed sign-in attempts from this address. Try again %(when)s.", when=when)
        return render(request, "login.html", status_code=429, next=_safe_next(next) or "", csrf_override=cookie_token,
                      error=error, email=email, headers={"Retry-After": str(throttled.retry_after)})
    if opened is None:
        return render(request, "login.html", status_code=401, next=_safe_next(next) or "", csrf_override=cookie_token,
                      error=gettext(locale, "Wrong email or password."), email=email)
    response = RedirectResponse(_safe_next(next) or _home(opened.user), status_code=303)
    response.set_cookie(COOKIE, opened.token, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https", max_age=int(request.app.state.settings.console_session_hours * 3600))
    response.delete_cookie(LOGIN_CSRF, path="/console")
    return response


@router.post("/console/logout")
def logout(request: Request, staff: Staff = signed_in()) -> Response:
    database(request).run_write(lambda session: staff_service.logout(session, staff.token))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/console/locale")
def switch_locale(request: Request, locale: Annotated[str, Form(max_length=8)], staff: Staff = signed_in()) -> Response:
    """The user's language, kept on their account (every device they sign in on)."""
    database(request).run_write(lambda session: staff_service.set_locale(session, user_id=staff.user.id, locale=locale))
    back = _safe_next(request.headers.get("hx-current-url", "").partition(str(request.base_url).rstrip("/"))[2]) or _home(staff.user)
    return Response(status_code=204, headers={"HX-Redirect": back}) if request.headers.get("hx-request") else \
        RedirectResponse(back, status_code=303)


@router.get("/console")
@router.get("/console/")
def home(request: Request) -> Response:
    from seamline.web.console.deps import current_staff

    return RedirectResponse(_home(current_staff(request).user), status_code=303)
