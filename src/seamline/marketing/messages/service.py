"""Templates, and delivering a marketing message to a person under the pressure rules.

`deliver` is the one way marketing messages leave (journeys' send steps, campaigns):

1. **quiet hours** in the person's time zone (`marketing_quiet_hours`): the message is *held*,
   not dropped: the caller tries again when they end (`Held.until`);
2. **frequency caps**: the global one (`marketing_cap_messages` per `marketing_cap_days`) and the
   caller's (a journey's own): over it, the message is skipped (`capped`);
3. rendered in the person's language with live data (messages/render.py);
4. handed to the inbox's outbound send with purpose `marketing` (it requires the person's
   marketing consent for the channel and a way to reach them there, and queues the message at
   bulk priority: transactional messages go first); a refusal is a skip with its reason;
5. recorded (`MarketingMessage`), whatever happened, so caps and results count it.

Transactional messages (an order's status, a login code) never come here: they go straight to
outbound with purpose `service`, exempt from caps and quiet hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.commerce import carts as commerce_carts
from seamline.commerce.models import CommerceProduct, CommerceVariant
from seamline.core.config import Settings
from seamline.core.errors import AppError, Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.inbox import outbound
from seamline.loyalty import ledger as loyalty_ledger
from seamline.loyalty.models import LoyaltyLot
from seamline.marketing.messages import render
from seamline.marketing.messages.models import MarketingMessage, MarketingTemplate

#: Traits that say how to address a person (set by the shop's sign-up, an import, the app).
LOCALE_TRAITS = ("locale", "language")
TIMEZONE_TRAITS = ("timezone", "time_zone")


# --- templates -------------------------------------------------------------------------------


def get_template(session: Session, template_id: int) -> MarketingTemplate:
    template = session.get(MarketingTemplate, template_id)
    if template is None:
        raise NotFound(f"Template {template_id} not found", code="template_not_found")
    return template


def list_templates(session: Session) -> list[MarketingTemplate]:
    return list(session.scalars(select(MarketingTemplate).where(MarketingTemplate.archived.is_(False)).order_by(MarketingTemplate.id)))


def _content(data: Any) -> dict[str, dict[str, str]]:
    """A template's content (`TemplateContent`, or a plain {locale: {part: text}}), checked."""
    pairs = data.items() if hasattr(data, "items") else ()
    content = {locale: {part: value for part, value in (parts.model_dump(exclude_none=True) if hasattr(parts, "model_dump") else parts).items()
                        if value} for locale, parts in pairs}
    render.check(content)
    return content


def create_template(session: Session, *, name: str, content: Any, created_by: str,
                    idempotency_key: str | None = None) -> tuple[MarketingTemplate, bool]:
    if idempotency_key is not None:
        earlier = session.scalar(select(MarketingTemplate).where(MarketingTemplate.idempotency_key == idempotency_key))
        if earlier is not None:
            return earlier, False
    now = utcnow()
    template = MarketingTemplate(name=name, content=_content(content), version=1, archived=False, created_by=created_by,
                                 idempotency_key=idempotency_key, created_at=now, updated_at=now)
    session.add(template)
    session.flush()
    return template, True


def update_template(session: Session, *, template_id: int, name: str | None, content: Any | None) -> MarketingTemplate:
    template = get_template(session, template_id)
    if name is not None:
        template.name = name
    if content is not None:
        new = _content(content)
        if new != template.content:
            template.content, template.version = new, template.version + 1
    template.updated_at = utcnow()
    return template


# --- the person ------------------------------------------------------------------------------


def _value(trait: Any) -> Any:
    return trait.get("value") if isinstance(trait, dict) else trait


def person_of(session: Session, settings: Settings, profile_id: int) -> dict[str, Any]:
    """What a template knows of the person, and their locale and time zone."""
    traits = {k: _value(v) for k, v in customers_service.traits_of(session, customers_service.identity_ids_of(session, profile_id)).items()}
    locale = next((str(traits[k]).lower()[:2] for k in LOCALE_TRAITS if isinstance(traits.get(k), str)), None)
    zone = next((traits[k] for k in TIMEZONE_TRAITS if isinstance(traits.get(k), str)), None)
    try:
        ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    first = traits.get("first_name") or traits.get("firstName")
    return {"id": profile_id, "name": customers_service.display_name(traits) or "", "first_name": first or "",
            "traits": traits, "locale": locale if locale in render.LOCALES else settings.marketing_locale,
            "timezone": zone or settings.marketing_timezone}


def cart_of(session: Session, settings: Settings, profile_id: int) -> dict[str, Any]:
    """The person's active cart priced now, with product names, pictures and links."""
    ids = tuple(customers_service.merged_profile_ids(session, profile_id))
    view = commerce_carts.cart_view(session, settings=settings, owner=commerce_carts.Owner(profile_id, None, ids), channel=None)
    if not view["lines"]:
        return {"lines": [], "total": 0, "currency": view["currency"], "url": f"{settings.marketing_public_url}/shop/cart"}
    skus = [line["sku"] for line in view["lines"]]
    products = {sku: (code, images) for sku, code, images in session.execute(
        select(CommerceVariant.sku, CommerceProduct.code, CommerceProduct.image_urls)
        .join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id).where(CommerceVariant.sku.in_(skus)))}
    lines = []
    for line in view["lines"]:
        code, images = products.get(line["sku"], (None, []))
        lines.append({**line, "image_url": (images or [None])[0],
                      "url": f"{settings.marketing_public_url}/shop/product/{code}" if code else None})
    return {"lines": lines, "total": view["total"], "subtotal": view["subtotal"], "currency": view["currency"],
            "url": f"{settings.marketing_public_url}/shop/cart"}


def points_of(session: Session, profile_id: int, now: datetime) -> dict[str, Any]:
    account = loyalty_ledger.find_account(session, profile_id)
    if account is None:
        return {"available": 0, "pending": 0, "tier": None, "expiring": []}
    expiring = [{"points": remaining, "at": at} for remaining, at in session.execute(
        select(LoyaltyLot.remaining, LoyaltyLot.expires_at).where(
            LoyaltyLot.account_id == account.id, LoyaltyLot.remaining > 0, LoyaltyLot.expires_at.is_not(None),
            LoyaltyLot.expires_at <= now + timedelta(days=30)).order_by(LoyaltyLot.expires_at).limit(10))]
    return {"available": account.points_available, "pending": account.points_pending, "tier": account.tier, "expiring": expiring}


def context_for(session: Session, settings: Settings, *, profile_id: int, needs: set[str], extra: dict[str, Any] | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    """The template context of a person: only what the template reads is loaded."""
    now = now or utcnow()
    context: dict[str, Any] = {"shop_url": f"{settings.marketing_public_url}/shop", **(extra or {})}
    context["person"] = person_of(session, settings, profile_id)
    if "cart" in needs:
        context["cart"] = cart_of(session, settings, profile_id)
    if "points" in needs:
        context["points"] = points_of(session, profile_id, now)
    return context


# --- pressure --------------------------------------------------------------------------------


def _quiet_window(settings: Settings) -> tuple[time, time] | None:
    if not settings.marketing_quiet_hours:
        return None
    start, end = settings.marketing_quiet_hours.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def quiet_until(settings: Settings, zone: str, now: datetime) -> datetime | None:
    """When the person's quiet hours end, if they are in them now."""
    window = _quiet_window(settings)
    if window is None:
        return None
    start, end = window
    local = now.astimezone(ZoneInfo(zone))
    clock = local.time()
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=local.tzinfo).astimezone(now.tzinfo)


def sent_recently(session: Session, *, profile_id: int, since: datetime, journey_id: int | None = None) -> int:
    query = select(func.count()).select_from(MarketingMessage).where(
        MarketingMessage.profile_id == profile_id, MarketingMessage.status == "queued", MarketingMessage.created_at >= since)
    if journey_id is not None:
        query = query.where(MarketingMessage.journey_id == journey_id)
    return session.scalar(query) or 0


@dataclass
class Outcome:
    #: queued | held | skipped
    status: str
    message: MarketingMessage | None = None
    until: datetime | None = None
    reason: str | None = None


def deliver(session: Session, *, settings: Settings, profile_id: int, template: MarketingTemplate, channel: str | None,
            key: str, context: dict[str, Any] | None = None, journey_id: int | None = None, enrollment_id: int | None = None,
            step_id: str | None = None, arm: str | None = None, cap: tuple[int, int] | None = None,
            now: datetime | None = None, test: bool = False) -> Outcome:
    """One marketing message to a person (see the module doc). `key`: idempotency (a retry of
    the same step returns what was done); `cap`: the caller's own (messages, days); `test`: a
    marketer's test send (no quiet hours, no caps, not counted by them; consent still needed)."""
    now = now or utcnow()
    person = person_of(session, settings, profile_id)
    held = None if test else quiet_until(settings, person["timezone"], now)
    if held is not None:
        return Outcome("held", until=held, reason="quiet_hours")
    record = dict(profile_id=profile_id, template_id=template.id, template_version=template.version, journey_id=journey_id,
                  enrollment_id=enrollment_id, step_id=step_id, arm=arm, created_at=now)

    def skip(reason: str, detail: str | None = None) -> Outcome:
        message = MarketingMessage(**record, channel=channel, status="skipped", reason=reason, detail=detail)
        session.add(message)
        session.flush()
        return Outcome("skipped", message=message, reason=reason)

    if not test and settings.marketing_cap_messages and sent_recently(
            session, profile_id=profile_id, since=now - timedelta(days=settings.marketing_cap_days)) >= settings.marketing_cap_messages:
        return skip("capped")
    if not test and cap is not None and sent_recently(session, profile_id=profile_id, since=now - timedelta(days=cap[1]),
                                         journey_id=journey_id) >= cap[0]:
        return skip("journey_capped")
    needs = render.variables(template.content)
    rendered = render.render(template.content, {**context_for(session, settings, profile_id=profile_id, needs=needs, now=now),
                                                **(context or {})},
                             locale=person["locale"], timezone=person["timezone"], default_locale=settings.marketing_locale)
    message = MarketingMessage(**record, channel=channel, locale=rendered.locale, status="queued" if not test else "test")
    session.add(message)
    session.flush()
    try:
        with session.begin_nested():
            sent, _new = outbound.send(session, settings=settings, customer_id=profile_id, text=rendered.text, channel=channel,
                                       purpose="marketing", source=f"marketing:{message.id}", idempotency_key=f"marketing:{key}",
                                       html=rendered.html, extra={"subject": rendered.subject, "marketing": {"message_id": message.id}})
    except (Conflict, Unprocessable) as exc:
        message.status, message.reason, message.detail = "skipped", exc.code, str(exc)[:500]
        return Outcome("skipped", message=message, reason=exc.code)
    except AppError as exc:  # the person is gone (erased) or unknown
        message.status, message.reason, message.detail = "skipped", exc.code, str(exc)[:500]
        return Outcome("skipped", message=message, reason=exc.code)
    message.inbox_message_id, message.channel = sent.id, sent.channel
    return Outcome(message.status, message=message)


def preview(session: Session, *, settings: Settings, template: MarketingTemplate, profile_id: int, locale: str | None,
            context: dict[str, Any] | None = None) -> render.Rendered:
    """The template as this person would get it now (nothing is sent)."""
    person = person_of(session, settings, profile_id)
    full = {**context_for(session, settings, profile_id=profile_id, needs=render.variables(template.content)), **(context or {})}
    return render.render(template.content, full, locale=locale or person["locale"], timezone=person["timezone"],
                         default_locale=settings.marketing_locale)
