"""Small inline SVG icons for channels: drawn with the text's colour, no emoji font needed (a
server or a staff PC without one showed empty boxes). Each is `Markup`, so a template prints it
as it is (`icons.get(channel, "•")`); it is decorative (`aria-hidden`), the channel's name is
always written beside it."""

from __future__ import annotations

from markupsafe import Markup


def _svg(body: str) -> Markup:
    return Markup(
        '<svg class="icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false" fill="none" '
        f'stroke="currentColor" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round">{body}</svg>'
    )


GLOBE = _svg('<circle cx="8" cy="8" r="6.2"/><path d="M1.8 8h12.4M8 1.8c1.8 1.8 2.6 3.8 2.6 6.2S9.8 12.4 8 14.2'
             'M8 1.8C6.2 3.6 5.4 5.6 5.4 8s.8 4.4 2.6 6.2"/>')
MOBILE = _svg('<rect x="4.2" y="1.5" width="7.6" height="13" rx="1.6"/><path d="M7 12.2h2"/>')
SHOP = _svg('<path d="M2 6.2 3.2 2.5h9.6L14 6.2M2 6.2h12M2 6.2c0 1.2 1 2 2 2s2-.8 2-2c0 1.2 1 2 2 2s2-.8 2-2'
            'c0 1.2 1 2 2 2s2-.8 2-2M3 8v5.8h10V8M6.5 13.8V10.5h3v3.3"/>')
HANDSET = _svg('<path d="M3.2 1.8h2.6l1.2 3.1-1.6 1.2a8 8 0 0 0 4.5 4.5l1.2-1.6 3.1 1.2v2.6a1.4 1.4 0 0 1-1.5 1.4'
               'A12 12 0 0 1 1.8 3.3a1.4 1.4 0 0 1 1.4-1.5Z"/>')
ENVELOPE = _svg('<rect x="1.8" y="3.2" width="12.4" height="9.6" rx="1.2"/><path d="m2.2 4 5.8 4.6L13.8 4"/>')
BUBBLE = _svg('<path d="M2 3.2a1.2 1.2 0 0 1 1.2-1.2h9.6A1.2 1.2 0 0 1 14 3.2v6.6a1.2 1.2 0 0 1-1.2 1.2H7l-3.2 2.8V11'
              'h-.6A1.2 1.2 0 0 1 2 9.8Z"/>')
PLANE = _svg('<path d="M14.2 2 1.8 7.2l4.4 1.6 1.6 4.8 2.2-3 3.2 2.6Z"/><path d="m6.2 8.8 8-6.8"/>')
STAR = _svg('<path d="m8 1.8 1.9 3.9 4.3.6-3.1 3 .7 4.3L8 11.6l-3.8 2 .7-4.3-3.1-3 4.3-.6Z"/>')
SERVER = _svg('<rect x="2" y="2" width="12" height="5" rx="1"/><rect x="2" y="9" width="12" height="5" rx="1"/>'
              '<path d="M4.5 4.5h.01M4.5 11.5h.01"/>')
CODE = _svg('<path d="M5.5 4 1.8 8l3.7 4M10.5 4l3.7 4-3.7 4"/>')
PERSON = _svg('<circle cx="8" cy="5.2" r="3"/><path d="M2.5 14.2c.8-3 2.9-4.6 5.5-4.6s4.7 1.6 5.5 4.6"/>')
BELL = _svg('<path d="M4 11.5V7.2a4 4 0 0 1 8 0v4.3l1.2 1.3H2.8z"/><path d="M6.6 14.2a1.5 1.5 0 0 0 2.8 0"/>')
DOT = _svg('<circle cx="8" cy="8" r="2.5" fill="currentColor"/>')

#: Channel code -> its icon (the label beside it is translated in the template).
CHANNEL_ICONS: dict[str, Markup] = {
    "web": GLOBE, "app": MOBILE, "store": SHOP, "pos": SHOP, "call_center": HANDSET, "phone": HANDSET, "email": ENVELOPE,
    "sms": BUBBLE, "webchat": BUBBLE, "telegram": PLANE, "whatsapp": BUBBLE, "vk": BUBBLE, "viber": BUBBLE,
    "webpush": BELL, "mobilepush": BELL, "messenger": BUBBLE, "loyalty": STAR, "server": SERVER, "api": CODE,
    "console": PERSON, "other": DOT,
}

