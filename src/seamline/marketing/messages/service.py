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

import functools
import json
from urllib.parse import quote, urlencode
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from seamline.commerce import carts as commerce_carts
from seamline.commerce import stock as commerce_stock
from seamline.commerce.models import CommerceLocation, CommerceOrder, CommerceProduct, CommerceVariant
from seamline.core.config import Settings
from seamline.core.errors import AppError, NotFound
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.inbox import outbound
from seamline.loyalty.models import LoyaltyAccount, LoyaltyLot
from seamline.marketing.messages import render, tracking
from seamline.marketing.messages.models import MarketingMessage, MarketingTemplate
from seamline.marketing.optichannel import service as optichannel
from seamline.recommendations import service as recommendations

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


def people_of(session: Session, settings: Settings, profile_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What a template knows of each person, and their locale and time zone (one query for all)."""
    identities = resolution.identity_ids_by_profile(session, profile_ids)
    chosen = customers_service.traits_by_profile(session, {p: identities.get(p, []) for p in profile_ids})
    found = {}
    for profile_id in profile_ids:
        traits = {k: _value(v) for k, v in chosen.get(profile_id, {}).items()}
        locale = next((str(traits[k]).lower()[:2] for k in LOCALE_TRAITS if isinstance(traits.get(k), str)), None)
        zone = next((traits[k] for k in TIMEZONE_TRAITS if isinstance(traits.get(k), str)), None)
        if zone and not _zone_exists(zone):
            zone = None
        first = traits.get("first_name") or traits.get("firstName")
        found[profile_id] = {"id": profile_id, "name": customers_service.display_name(traits) or "", "first_name": first or "",
                             "traits": traits, "locale": locale if locale in render.LOCALES else settings.marketing_locale,
                             "timezone": zone or settings.marketing_timezone}
    return found


@functools.lru_cache(maxsize=1024)
def _zone_exists(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def person_of(session: Session, settings: Settings, profile_id: int) -> dict[str, Any]:
    return people_of(session, settings, [profile_id])[profile_id]


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
                      "url": f"{settings.marketing_public_url}/shop/p/{code}" if code else None})
    return {"lines": lines, "total": view["total"], "subtotal": view["subtotal"], "currency": view["currency"],
            "url": f"{settings.marketing_public_url}/shop/cart"}


#: How many "for you" products a template gets.
TEMPLATE_RECOMMENDATIONS = 4


def recommendations_of(session: Session, settings: Settings, profile_id: int, *, locale: str,
                       limit: int = TEMPLATE_RECOMMENDATIONS) -> list[dict[str, Any]]:
    """The person's "for you" products (recommendations/service.py: in stock where they shop,
    nothing they just bought) as a template shows them: name in `locale`, picture, lowest price,
    and a link to the shop's product page that says it came from a recommendation (the click
    redirect adds the message's channel: analytics counts revenue from recommendations per channel)."""
    shown = []
    for item in recommendations.for_person(session, settings, profile_id, limit=limit):
        query = urlencode({"rec": item["reason"], "rec_pos": item["rank"], "rec_v": item["model_version"]})
        price = item.get("price") or {}
        shown.append({"name": item.get(f"name_{locale}") or item["name_ru"], "code": item["code"], "image_url": item.get("image"),
                      "price": price.get("amount"), "currency": price.get("currency"), "reason": item["reason"],
                      "url": f"{settings.marketing_public_url}/shop/p/{quote(item['code'], safe='')}?{query}"})
    return shown


def nearest_store_of(session: Session, profile_id: int, *, wanted: dict[str, int], traits: dict[str, Any], locale: str,
                     now: datetime) -> dict[str, Any] | None:
    """The pickup store nearest the person that holds all of `wanted` ({sku: quantity}; any
    pickup store when empty): measured from the store of their latest order collected in a store
    (where they shop), else from their `latitude`/`longitude` traits. None when neither is known
    or no store holds it all."""
    point = _home_point(session, profile_id, traits)
    if point is None:
        return None
    holding = {row["location"]: row for row in _pickup_stores(session, point, now)}
    for sku, quantity in wanted.items():  # narrowed to the stores holding each line
        try:
            found = commerce_stock.nearby_stores(session, sku=sku, latitude=point[0], longitude=point[1], quantity=quantity,
                                                 limit=100, now=now)
        except AppError:  # a SKU no longer sold
            return None
        holding = {row["location"]: row for row in found if row["location"] in holding}
    if not holding:
        return None
    best = min(holding.values(), key=lambda row: (row["distance_km"], row["location"]))
    return {"code": best["location"], "name": best["name_en" if locale == "en" else "name_ru"], "address": best["address"],
            "distance_km": best["distance_km"], "pickup_today": best["pickup_today"]}


def _home_point(session: Session, profile_id: int, traits: dict[str, Any]) -> tuple[float, float] | None:
    ids = customers_service.merged_profile_ids(session, profile_id)
    row = session.execute(select(CommerceLocation.latitude, CommerceLocation.longitude)
                          .join(CommerceOrder, CommerceOrder.pickup_location_id == CommerceLocation.id)
                          .where(CommerceOrder.profile_id.in_(ids), CommerceLocation.latitude.is_not(None),
                                 CommerceLocation.longitude.is_not(None))
                          .order_by(CommerceOrder.created_at.desc(), CommerceOrder.id.desc()).limit(1)).first()
    if row is not None:
        return float(row[0]), float(row[1])
    latitude, longitude = traits.get("latitude"), traits.get("longitude")
    if isinstance(latitude, (int, float)) and isinstance(longitude, (int, float)) and -90 <= latitude <= 90 and -180 <= longitude <= 180:
        return float(latitude), float(longitude)
    return None


def _pickup_stores(session: Session, point: tuple[float, float], now: datetime) -> list[dict[str, Any]]:
    return [{"location": loc.code, "name_ru": loc.name_ru, "name_en": loc.name_en, "address": loc.address,
             "distance_km": round(commerce_stock.distance_km(point[0], point[1], loc.latitude, loc.longitude), 2),
             "pickup_today": commerce_stock.open_rest_of_today(loc, now)}
            for loc in session.scalars(select(CommerceLocation).where(
                CommerceLocation.active.is_(True), CommerceLocation.pickup_enabled.is_(True), CommerceLocation.kind != "warehouse",
                CommerceLocation.latitude.is_not(None), CommerceLocation.longitude.is_not(None)))]


def _wanted_of(context: dict[str, Any]) -> dict[str, int]:
    """What the nearest store should hold: the cart's lines, else the product of the event."""
    cart = context.get("cart") or {}
    if cart.get("lines"):
        return {line["sku"]: int(line["quantity"]) for line in cart["lines"]}
    properties = (context.get("event") or {}).get("properties") or {}
    return {properties["sku"]: 1} if isinstance(properties.get("sku"), str) and properties["sku"] else {}


def points_of_many(session: Session, profile_ids: list[int], now: datetime) -> dict[int, dict[str, Any]]:
    """Each person's points: spendable, pending, tier, and what expires within 30 days."""
    found = {p: {"available": 0, "pending": 0, "tier": None, "expiring": []} for p in profile_ids}
    owners = {}
    for account_id, profile_id, available, pending, tier in session.execute(
            select(LoyaltyAccount.id, LoyaltyAccount.profile_id, LoyaltyAccount.points_available, LoyaltyAccount.points_pending,
                   LoyaltyAccount.tier).where(LoyaltyAccount.profile_id.in_(profile_ids))):
        owners[account_id] = profile_id
        found[profile_id].update(available=available, pending=pending, tier=tier)
    if owners:
        for account_id, remaining, at in session.execute(
                select(LoyaltyLot.account_id, LoyaltyLot.remaining, LoyaltyLot.expires_at).where(
                    LoyaltyLot.account_id.in_(list(owners)), LoyaltyLot.remaining > 0, LoyaltyLot.expires_at.is_not(None),
                    LoyaltyLot.expires_at <= now + timedelta(days=30)).order_by(LoyaltyLot.expires_at)):
            found[owners[account_id]]["expiring"].append({"points": remaining, "at": at})
    return found


def points_of(session: Session, profile_id: int, now: datetime) -> dict[str, Any]:
    return points_of_many(session, [profile_id], now)[profile_id]


def context_for(session: Session, settings: Settings, *, profile_id: int, needs: set[str], extra: dict[str, Any] | None = None,
                now: datetime | None = None, locale: str | None = None) -> dict[str, Any]:
    """The template context of a person: only what the template reads is loaded (`locale`: the
    language it renders in, for names such as a store's)."""
    now = now or utcnow()
    context: dict[str, Any] = {"shop_url": f"{settings.marketing_public_url}/shop", **(extra or {})}
    context["person"] = person_of(session, settings, profile_id)
    if "cart" in needs:
        context["cart"] = cart_of(session, settings, profile_id)
    if "points" in needs:
        context["points"] = points_of(session, profile_id, now)
    if "recommendations" in needs:
        context["recommendations"] = recommendations_of(session, settings, profile_id, locale=locale or context["person"]["locale"])
    if "nearest_store" in needs:
        context.setdefault("cart", cart_of(session, settings, profile_id))
        context["nearest_store"] = nearest_store_of(session, profile_id, wanted=_wanted_of(context), traits=context["person"]["traits"],
                                                    locale=locale or context["person"]["locale"], now=now)
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


@dataclass
class Outcome:
    #: queued | held | skipped | test
    status: str
    #: The inbox's message (none when skipped or held)
    inbox_message_id: int | None = None
    channel: str | None = None
    until: datetime | None = None
    reason: str | None = None


@dataclass
class Delivery:
    """One marketing message to a person. `key`: idempotency (a retry of the same step returns
    what was done); `cap`: the caller's own (messages, days); `test`: a marketer's test send (no
    quiet hours, no caps, not counted by them; consent still needed)."""

    profile_id: int
    template: MarketingTemplate
    channel: str | None
    key: str
    context: dict[str, Any] | None = None
    journey_id: int | None = None
    enrollment_id: int | None = None
    step_id: str | None = None
    arm: str | None = None
    cap: tuple[int, int] | None = None
    test: bool = False


def deliver(session: Session, *, settings: Settings, profile_id: int, template: MarketingTemplate, channel: str | None,
            key: str, now: datetime | None = None, **extra: Any) -> Outcome:
    """One marketing message to a person (see the module doc and `Delivery`)."""
    return deliver_many(session, settings=settings, items=[Delivery(profile_id, template, channel, key, **extra)], now=now)[0]


def _sent_counts(session: Session, profile_ids: list[int], since: datetime, *, by_journey: bool) -> dict[Any, int]:
    columns = [MarketingMessage.profile_id, MarketingMessage.journey_id] if by_journey else [MarketingMessage.profile_id]
    rows = session.execute(select(*columns, func.count()).where(
        MarketingMessage.profile_id.in_(profile_ids), MarketingMessage.status == "queued", MarketingMessage.created_at >= since)
        .group_by(*columns))
    return {tuple(row[:-1]) if by_journey else row[0]: row[-1] for row in rows}


def deliver_many(session: Session, *, settings: Settings, items: list[Delivery], now: datetime | None = None) -> list[Outcome]:
    """`deliver` for many people at once (a campaign, a journey step due for many): each with the
    same rules, what they need read for all of them in a few queries, the messages handed over
    with `outbound.send_many`."""
    now = now or utcnow()
    ids = sorted({item.profile_id for item in items})
    people = people_of(session, settings, ids)
    outcomes: list[Outcome | None] = [None] * len(items)
    since_global = now - timedelta(days=settings.marketing_cap_days)
    counted = _sent_counts(session, ids, since_global, by_journey=False) if settings.marketing_cap_messages else {}
    caps = {item.cap for item in items if item.cap is not None and not item.test}
    journey_counted = {cap: _sent_counts(session, ids, now - timedelta(days=cap[1]), by_journey=True) for cap in caps}
    needs: set[str] = set()
    for item in items:
        needs |= _variables(item.template)
    points = points_of_many(session, ids, now) if "points" in needs else {}
    records: list[dict[str, Any]] = []
    record_of: dict[int, dict[str, Any]] = {}
    handed: list[tuple[int, dict[str, Any], render.Rendered, str]] = []
    for i, item in enumerate(items):
        person = people[item.profile_id]
        held = None if item.test else quiet_until(settings, person["timezone"], now)
        if held is not None:
            outcomes[i] = Outcome("held", until=held, reason="quiet_hours")
            continue
        record = dict(profile_id=item.profile_id, template_id=item.template.id, template_version=item.template.version,
                      journey_id=item.journey_id, enrollment_id=item.enrollment_id, step_id=item.step_id, arm=item.arm,
                      channel=item.channel, locale=None, inbox_message_id=None, status="skipped", reason=None, detail=None,
                      created_at=now, response=0.0, local_hour=now.astimezone(ZoneInfo(person["timezone"])).hour)
        records.append(record)
        record_of[i] = record
        if not item.test and settings.marketing_cap_messages and counted.get(item.profile_id, 0) >= settings.marketing_cap_messages:
            record["reason"] = "capped"
            continue
        if not item.test and item.cap is not None and journey_counted[item.cap].get((item.profile_id, item.journey_id), 0) >= item.cap[0]:
            record["reason"] = "journey_capped"
            continue
        unsubscribe = tracking.unsubscribe_url(settings, item.key)
        context = {"shop_url": f"{settings.marketing_public_url}/shop", "person": person, "unsubscribe_url": unsubscribe,
                   **(item.context or {})}
        template_needs = _variables(item.template)
        if "points" in template_needs:
            context["points"] = points[item.profile_id]
        if "cart" in template_needs or "nearest_store" in template_needs:
            context["cart"] = cart_of(session, settings, item.profile_id)
        if "recommendations" in template_needs:
            context["recommendations"] = recommendations_of(session, settings, item.profile_id, locale=render.pick_locale(
                item.template.content, person["locale"], settings.marketing_locale))
        if "nearest_store" in template_needs:
            context["nearest_store"] = nearest_store_of(
                session, item.profile_id, wanted=_wanted_of(context), traits=person["traits"], now=now,
                locale=render.pick_locale(item.template.content, person["locale"], settings.marketing_locale))
        try:
            rendered = render.render(item.template.content, context, locale=person["locale"], timezone=person["timezone"],
                                     default_locale=settings.marketing_locale)
        except AppError as exc:  # this person's data broke the template (or it costs too much): theirs is skipped, not the batch
            record.update(reason=exc.code, detail=str(exc)[:500])
            continue
        if rendered.html:
            rendered.html = tracking.tracked_html(settings, item.key, rendered.html)
        record.update(locale=rendered.locale, status="test" if item.test else "queued")
        handed.append((i, record, rendered, unsubscribe))
        if not item.test:  # later items of the batch see this one under the caps
            counted[item.profile_id] = counted.get(item.profile_id, 0) + 1
            for cap in caps:
                journey_counted[cap][(item.profile_id, item.journey_id)] = journey_counted[cap].get((item.profile_id, item.journey_id), 0) + 1
    sent = outbound.send_many(session, settings=settings, items=[
        outbound.Outgoing(items[i].profile_id, rendered.text, channel=items[i].channel, purpose="marketing",
                          source=f"marketing:{items[i].key}"[:200], idempotency_key=f"marketing:{items[i].key}", html=rendered.html,
                          extra={"subject": rendered.subject, "marketing": {"unsubscribe_url": unsubscribe},
                                 **({"push": {"url": tracking.click_url(settings, items[i].key, rendered.url)}} if rendered.url else {})})
        for i, _record, rendered, unsubscribe in handed])
    learnt: list[optichannel.Sent] = []
    for (_i, record, _rendered, _unsubscribe), result in zip(handed, sent, strict=True):
        if isinstance(result, AppError):
            record.update(status="skipped", reason=result.code, detail=str(result)[:500])
        else:
            record.update(inbox_message_id=result[0].id, channel=result[0].channel)
            if record["status"] == "queued" and result[1]:
                among = ((result[0].meta or {}).get("choice") or {}).get("among") or ()
                learnt.append(optichannel.Sent(record["profile_id"], record["channel"], record["local_hour"], optichannel.cohort_of(among)))
    optichannel.record_sends(session, settings, learnt, now)
    if records:  # in one statement, no ORM objects: a bulk send's thousands cost one round trip
        session.execute(insert(MarketingMessage.__table__), records)
    for i, record in record_of.items():
        outcomes[i] = Outcome(record["status"], inbox_message_id=record["inbox_message_id"], channel=record["channel"],
                              reason=record["reason"])
    return outcomes


def _variables(template: MarketingTemplate) -> set[str]:
    return _variables_of(template.id, template.version, json.dumps(template.content, sort_keys=True))


@functools.lru_cache(maxsize=512)
def _variables_of(template_id: int, version: int, content_json: str) -> set[str]:
    return frozenset(render.variables(json.loads(content_json)))


def preview(session: Session, *, settings: Settings, template: MarketingTemplate, profile_id: int, locale: str | None,
            context: dict[str, Any] | None = None) -> render.Rendered:
    """The template as this person would get it now (nothing is sent)."""
    person = person_of(session, settings, profile_id)
    chosen = render.pick_locale(template.content, locale or person["locale"], settings.marketing_locale)
    full = {**context_for(session, settings, profile_id=profile_id, needs=render.variables(template.content), locale=chosen),
            **(context or {})}
    return render.render(template.content, full, locale=chosen, timezone=person["timezone"], default_locale=settings.marketing_locale)
