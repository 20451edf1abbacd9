"""The staff console: server-rendered pages (Jinja2 + HTMX, no front-end build) under /console,
and the page at / that leads there (pages/landing.py).

`install(app)` adds its routes, its static files and the answers to "not signed in" (a redirect
to the login page) and "not allowed" (a 403 page)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from seamline.core.errors import AppError
from seamline.web.console.actions import explain
from seamline.web.console.deps import LoginRequired, PermissionDenied
from seamline.web.console.templating import render, translate
from seamline.web.staff.scope import OutsideStore

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from seamline.web.console.pages import (
        analytics,
        assistant,
        auth,
        commerce,
        customers,
        dashboard,
        inbox,
        landing,
        loyalty,
        marketing,
        realtime,
        settings,
        store,
    )

    for area in (auth, inbox, customers, commerce, store, loyalty, settings, dashboard, analytics, marketing, assistant, realtime,
                 landing):
        app.include_router(area.router, include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        target = "/console/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    api_errors = app.exception_handlers.get(AppError)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        """A console page whose object is gone (or any refused GET) gets a page, the API its JSON."""
        if request.url.path.startswith("/console/") and not request.headers.get("hx-request"):
            return render(request, "error.html", status_code=exc.status_code, title=str(exc.status_code), message=exc.message)
        return await api_errors(request, exc)

    @app.exception_handler(OutsideStore)
    async def _outside_store(request: Request, exc: OutsideStore) -> Response:
        """A clerk asking for another store (web/staff/scope.py): the 403 page saying why."""
        if not request.url.path.startswith("/console/"):
            return await api_errors(request, exc)
        return render(request, "error.html", status_code=403, title="403", message=explain(request, exc))

    @app.exception_handler(PermissionDenied)
    async def _denied(request: Request, _exc: PermissionDenied) -> Response:
        return render(request, "error.html", status_code=403, title="403",
                      message=translate(request, "You may not open this page."))
