"""What people do with marketing messages: opened (a pixel), clicked (signed redirects),
unsubscribed (a one-click link and header, RFC 8058).

Links carry a token signed with a key derived from the server's secret (`core.crypto`): the
message's delivery key and, for a click, the URL. Nobody can make a token for another message or
turn the redirect into an open redirect to a URL of their choosing. A token names the message by
its delivery key (known before the message is written, so links go into it as it is rendered),
found through the inbox message's unique idempotency key.

Each first open, each click and each unsubscribe is recorded on the `MarketingMessage` and as an
event on the person's timeline (a server-side source "Marketing", the message's channel in its properties), so
analytics' engagement and attribution count them: `Message Opened`, `Message Clicked` (with the
URL), `Unsubscribed`. Opens are a lower bound: mail clients that block images never tell.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import datetime
from html import escape, unescape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.crypto import secret_box
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.customers.models import CustomerIdentity
from seamline.customers.schemas import ConsentIn
from seamline.events import service as events_service
from seamline.events.ingest import check_message
from seamline.events.models import EventSource
from seamline.inbox import service as inbox_service
from seamline.inbox.adapters import ADAPTERS
from seamline.inbox.models import InboxMessage
from seamline.marketing.messages.models import MarketingMessage
from seamline.marketing.optichannel import service as optichannel

SOURCE_NAME = "Marketing"
_LINK = re.compile(r'(<a\b[^>]*?\bhref\s*=\s*")(https?://[^"]+)(")', re.IGNORECASE)
EVENTS = {"open": "Message Opened", "click": "Message Clicked", "unsubscribe": "Unsubscribed"}


def _key(settings: Settings) -> bytes:
    return secret_box(settings).derive("marketing-links")


def make_token(settings: Settings, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()).decode().rstrip("=")
    mac = base64.urlsafe_b64encode(hmac.new(_key(settings), body.encode(), hashlib.sha256).digest()[:18]).decode()
    return f"{body}.{mac}"


def read_token(settings: Settings, token: str) -> dict[str, Any] | None:
    """The token's payload, or None when it is not one of this server's."""
    if not token or len(token) > 4000 or "." not in token:
        return None
    body, mac = token.rsplit(".", 1)
    good = base64.urlsafe_b64encode(hmac.new(_key(settings), body.encode(), hashlib.sha256).digest()[:18]).decode()
    if not hmac.compare_digest(mac, good):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("k"), str) else None


def unsubscribe_url(settings: Settings, key: str) -> str:
    return f"{settings.marketing_public_url}/u/{make_token(settings, {'k': key})}"


def pixel_url(settings: Settings, key: str) -> str:
    return f"{settings.marketing_public_url}/t/o/{make_token(settings, {'k': key})}.gif"


def click_url(settings: Settings, key: str, url: str) -> str:
    return f"{settings.marketing_public_url}/t/c/{make_token(settings, {'k': key, 'u': url})}"


def tracked_html(settings: Settings, key: str, html: str) -> str:
    """The HTML with every http(s) link going through the click redirect, and the open pixel."""
    def swap(match: re.Match) -> str:
        return match.group(1) + escape(click_url(settings, key, unescape(match.group(2)))) + match.group(3)

    tracked = _LINK.sub(swap, html)
    pixel = f'<img src="{escape(pixel_url(settings, key))}" width="1" height="1" alt="" style="display:none">'
    return tracked.replace("</body>", pixel + "</body>") if "</body>" in tracked else tracked + pixel


def landing_url(url: str, channel: str | None) -> str:
    """Where a click goes: the link's URL, and when it is a recommendation's (`rec=`) with no
    `rec_channel`, that parameter added: the message's channel is where it was shown."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {name for name, _value in query}
    if channel is None or "rec" not in names or "rec_channel" in names:
        return url
    return urlunsplit(parts._replace(query=urlencode([*query, ("rec_channel", channel)])))


def _message_of(session: Session, key: str, *, lock: bool = True) -> tuple[MarketingMessage, InboxMessage] | None:
    sent = session.scalar(select(InboxMessage).where(
        InboxMessage.idempotency_key == inbox_service.scoped_key("outbound", f"marketing:{key}")))
    if sent is None:
        return None
    query = select(MarketingMessage).where(MarketingMessage.inbox_message_id == sent.id)
    record = session.scalar(query.with_for_update() if lock else query)
    return (record, sent) if record is not None else None


def describe(session: Session, settings: Settings, token: str) -> dict[str, Any] | None:
    """What a token's page says (the channel, the language), changing nothing; None when not valid."""
    payload = read_token(settings, token)
    if payload is None:
        return None
    found = _message_of(session, payload["k"], lock=False)
    return {**payload, "channel": found[1].channel, "locale": found[0].locale} if found else payload


def _source(session: Session) -> EventSource:
    source = session.scalar(select(EventSource).where(EventSource.name == SOURCE_NAME, EventSource.server_side.is_(True)))
    if source is None:
        source, _key_unused = events_service.create_source(session, name=SOURCE_NAME, channel="server", server_side=True)
    return source


def _event(session: Session, record: MarketingMessage, sent: InboxMessage, kind: str, now: datetime, properties: dict[str, Any]) -> None:
    """The event on the person's timeline (under their user id, else an identifier the
    timeline files them by; nothing when they have neither)."""
    identities = {i.type: i.value for i in session.scalars(select(CustomerIdentity).where(
        CustomerIdentity.profile_id == record.profile_id, CustomerIdentity.type.in_(("user_id", "anonymous_id"))).order_by(CustomerIdentity.id))}
    if not identities:
        return
    message = {"type": "track", "event": EVENTS[kind], "messageId": f"marketing-{kind}-{sent.id}-{uuid.uuid4().hex[:12]}",
               "timestamp": now.isoformat(), "properties": {"channel": sent.channel, "message_id": sent.id,
                                                            "journey_id": record.journey_id, **properties}}
    if "user_id" in identities:
        message["userId"] = identities["user_id"]
    else:
        message["anonymousId"] = identities["anonymous_id"]
    checked = check_message(message, default_type="track", batch_sent_at=None, received_at=now, max_bytes=32_000)
    events_service.store_events(session, source=_source(session), events=[checked], received_at=now)


def record(session: Session, settings: Settings, *, token: str, kind: str, now: datetime | None = None) -> dict[str, Any] | None:
    """Record an open, a click or an unsubscribe of the message a token names; the token's
    payload (the click's URL), or None when the token is not valid. An open is recorded once;
    each click is; an unsubscribe withdraws the person's marketing consent for the message's
    channel (once)."""
    payload = read_token(settings, token)
    if payload is None:
        return None
    now = now or utcnow()
    found = _message_of(session, payload["k"])
    if found is None:  # a test send, or a message since erased: the link still works
        return payload
    message, sent = found
    if kind == "open":
        if message.opened_at is None:
            message.opened_at = now
            _event(session, message, sent, kind, now, {})
            optichannel.record_outcome(session, settings, message, "opened", now)
    elif kind == "click":
        message.clicked_at = message.clicked_at or now
        message.opened_at = message.opened_at or now  # a click is an open the pixel may have missed
        _event(session, message, sent, kind, now, {"url": payload.get("u")})
        optichannel.record_outcome(session, settings, message, "clicked", now)
    elif kind == "unsubscribe" and message.unsubscribed_at is None:
        message.unsubscribed_at = now
        optichannel.record_outcome(session, settings, message, "unsubscribed", now)
        adapter = ADAPTERS.get(sent.channel)
        consent_channel = adapter.consent_channel if adapter is not None else None
        anchor = customers_service.anchor_identity(session, message.profile_id)
        if consent_channel and anchor is not None:
            customers_service.record_consents(session, profile_id=message.profile_id, identity_id=anchor.id, source="unsubscribe",
                                              consents=[ConsentIn(channel=consent_channel, purpose="marketing", granted=False)])
        _event(session, message, sent, kind, now, {"consent_channel": consent_channel})
    return {**payload, "channel": sent.channel, "locale": message.locale}
