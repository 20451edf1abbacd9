"""Jinja2 for the console: one environment per locale (gettext installed), autoescaped,
with `fmt` (web/i18n.Formats), `label` (web/console/labels.py: codes and texts built in Python
in the reader's words) and the signed-in user's permissions in every template."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from seamline.web import i18n
from seamline.web.console import labels

TEMPLATES = Path(__file__).parent / "templates"


def form_key() -> str:
    """A fresh idempotency key for a form: submitting the same form twice does the work once."""
    return secrets.token_urlsafe(16)


@lru_cache(maxsize=None)
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)
    env.globals["nonce"] = form_key
    env.globals["label"] = labels.current
    return env


def render(request: Request, template: str, status_code: int = 200, headers: dict[str, str] | None = None,
           flash: tuple[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A page or an HTMX fragment in the signed-in user's language (else the browser's).
    `flash` = (kind, message), kind "ok" or "error": shown in the page's #flash (out of band
    for an HTMX fragment)."""
    staff = getattr(request.state, "staff", None)
    locale = staff.user.locale if staff else i18n.pick_locale(request.cookies.get("sl_lang"),
                                                             request.headers.get("accept-language"))
    settings = request.app.state.settings
    fmt = i18n.Formats(locale, settings.console_timezone, settings.default_region)
    values = {
        "request": request, "staff": staff, "locale": locale, "htmx": request.headers.get("hx-request") == "true",
        "fmt": fmt,
        "can": (lambda permission: staff is not None and staff.can(permission)),
        "csrf": staff.csrf if staff else request.cookies.get("sl_login_csrf", ""),
    }
    env = environment(locale)
    with labels.reading(labels.for_request(request, locale, fmt)):
        html = env.get_template(template).render(**values, **context)
        if flash is not None:
            html += env.get_template("_flash.html").render(kind=flash[0], message=flash[1])
    return HTMLResponse(html, status_code=status_code, headers=headers)


def translate(request: Request, message: str, **values: object) -> str:
    staff = getattr(request.state, "staff", None)
    return i18n.gettext(staff.user.locale if staff else i18n.DEFAULT_LOCALE, message, **values)
