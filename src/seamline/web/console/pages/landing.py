"""The page at / (what `seamline demo` prints last): where to go from here, the console, the demo
shop and app, the API docs, in Russian or English (`?lang=`, then the console's language cookie,
then the browser's). In a demo (SEAMLINE_DEMO, set by `seamline demo` and kept in its
`<db>.demo.json`) it lists the demo's console logins; anywhere else it shows no credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from seamline import __version__
from seamline.web import i18n
from seamline.web.console.deps import database
from seamline.web.console.templating import environment

router = APIRouter()
LANG_COOKIE = "sl_lang"  # the console's sign-in page speaks the same language


def _other_host(request: Request, path: str) -> str:
    """The app on the other name of this machine (127.0.0.1 <-> localhost), as the demo prints it:
    another host is another device, with its own cookies and anonymous id."""
    host, port = request.url.hostname, request.url.port
    other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(host or "")
    if other is None:
        return path
    return f"{request.url.scheme}://{other}{f':{port}' if port else ''}{path}"


def demo_logins(request: Request, locale: str) -> list[dict[str, Any]]:
    """The demo's console logins that this database still has (none outside a demo)."""
    if not request.app.state.settings.demo:
        return []
    from seamline.demo import STORES
    from seamline.demo_world import demo_logins as logins_of, location_code
    from seamline.web.staff.models import StaffUser

    shops = {location_code(s.code): s for s in STORES if s.kind == "store"}
    logins = logins_of(next(iter(shops)))
    with database(request).read() as session:
        present = set(session.scalars(select(StaffUser.email).where(
            StaffUser.email.in_([login.email for login in logins]), StaffUser.disabled_at.is_(None))))
    store_name = (lambda code: shops[code].name_en if locale == "en" else shops[code].name)
    return [{"email": login.email, "password": login.password, "role": login.role, "locale": login.locale,
             "store": store_name(login.store) if login.store in shops else login.store}
            for login in logins if login.email in present]


@router.get("/", include_in_schema=False)
def landing(request: Request, lang: str | None = None) -> HTMLResponse:
    chosen = lang if lang in i18n.LOCALES else None
    locale = i18n.pick_locale(chosen, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    settings = request.app.state.settings
    html = environment(locale).get_template("landing.html").render(
        locale=locale, other_locale="en" if locale == "ru" else "ru", version=__version__,
        app_url=_other_host(request, "/app/"), demo=settings.demo, logins=demo_logins(request, locale),
        storefront=bool(settings.storefront_api_key and settings.storefront_write_key),
    )
    response = HTMLResponse(html)
    if chosen:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response
