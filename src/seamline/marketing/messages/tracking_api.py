"""The public links of marketing messages: the open pixel, click redirects, unsubscribe.

No API key: the signed token in the path is the authority (messages/tracking.py). A GET of the
unsubscribe link only shows a page with a button (mail scanners follow links: a GET must change
nothing); the button, and a mail client's one-click POST (RFC 8058), unsubscribe. Rate limited
per IP (`tracking` group). Not part of the API reference."""

from __future__ import annotations

import base64
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from seamline.core.deps import get_database, get_settings
from seamline.marketing.messages import tracking

router = APIRouter(include_in_schema=False)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
TEXTS = {
    "ru": {"title": "Отписка от рассылки", "ask": "Больше не получать рекламные сообщения по каналу «%s»?", "button": "Отписаться",
           "done": "Готово: рекламные сообщения по каналу «%s» больше не придут. Сообщения о ваших заказах продолжат приходить.",
           "invalid": "Ссылка недействительна."},
    "en": {"title": "Unsubscribe", "ask": "Stop receiving marketing messages by %s?", "button": "Unsubscribe",
           "done": "Done: no more marketing messages by %s. Messages about your orders will still come.",
           "invalid": "This link is not valid."},
}
CHANNELS = {"ru": {"email": "email", "sms": "SMS", "telegram": "Telegram", "whatsapp": "WhatsApp", "vk": "ВКонтакте", "viber": "Viber",
                   "webpush": "уведомления в браузере", "mobilepush": "уведомления в приложении"},
            "en": {"webpush": "browser notifications", "mobilepush": "app notifications", "vk": "VK"}}


def _page(locale: str, title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, '
            f'initial-scale=1"><title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;'
            f'padding:0 1rem;line-height:1.5}}button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head><body>'
            f'<h1>{escape(title)}</h1>{body}</body></html>')
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def _locale(request: Request, found: dict | None) -> str:
    wanted = (found or {}).get("locale") or request.headers.get("accept-language", "ru")[:2].lower()
    return wanted if wanted in TEXTS else "ru"


def _record(request: Request, token: str, kind: str) -> dict | None:
    settings = get_settings(request)
    return get_database(request).run_write(lambda session: tracking.record(session, settings, token=token, kind=kind))


@router.get("/t/o/{token}.gif")
def opened(request: Request, token: str) -> Response:
    _record(request, token, "open")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}")
def clicked(request: Request, token: str) -> Response:
    found = _record(request, token, "click")
    url = (found or {}).get("u")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        texts = TEXTS[_locale(request, found)]
        return _page(_locale(request, found), texts["invalid"], "", 404)
    return RedirectResponse(tracking.landing_url(url, (found or {}).get("channel")), status_code=302, headers=NO_STORE)


@router.get("/u/{token}")
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    settings = get_settings(request)
    with get_database(request).read() as session:
        found = tracking.describe(session, settings, token)
    locale = _locale(request, found)
    texts = TEXTS[locale]
    if found is None:
        return _page(locale, texts["invalid"], "", 404)
    return _page(locale, texts["title"], f'<form method="post"><p>{escape(texts["ask"] % _channel_name(locale, found.get("channel")))}</p>'
                                         f'<button type="submit">{escape(texts["button"])}</button></form>')


@router.post("/u/{token}")
def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """The page's button, or a mail client's one-click POST (body `List-Unsubscribe=One-Click`)."""
    found = _record(request, token, "unsubscribe")
    locale = _locale(request, found)
    texts = TEXTS[locale]
    if found is None:
        return _page(locale, texts["invalid"], "", 404)
    return _page(locale, texts["title"], f"<p>{escape(texts['done'] % _channel_name(locale, found.get('channel')))}</p>")


def _channel_name(locale: str, channel: str | None) -> str:
    if channel is None:  # a test send's link: no message behind it
        return "этот канал" if locale == "ru" else "this channel"
    return CHANNELS[locale].get(channel, channel)
