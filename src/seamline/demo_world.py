"""The demo's world around its customers: a cosmetics and pharmacy retailer's catalog, stores and
stock, its loyalty program, orders in every state, a busy support inbox, staff logins for the
console and the storefront's keys.

Everything goes through the same service functions the API routes call (`catalog.put_product`,
`orders.place_order`, `pos.record_sale`, `delivery.store_and_process` for messages arriving on a
channel...), so what the console shows is what real traffic would have left. Nothing needs the
network: messenger replies are not sent (their providers are not configured in the demo); agents
answer in the web chat, which needs no provider.

Deterministic: one seeded `random.Random` per concern. Services stamp some facts with the clock
(order status changes, loyalty earnings, inbox messages), so only order placements and till
sales are spread over the last 120 days (several monthly cohorts).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline import runtime
from seamline.channels.webchat import service as webchat
from seamline.commerce import carts, catalog, orders, payments, pos, promotions, returns, stock
from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrder,
    CommerceProduct,
    CommerceReturn,
)
from seamline.commerce.schemas import (
    CartCheckoutIn,
    CategoryPut,
    CouponPut,
    FulfilmentIn,
    LineIn,
    LocationPut,
    MovementCreate,
    OrderCreate,
    PosHandover,
    PosPayment,
    ProductPut,
    PromotionPut,
    ReturnCreate,
    ReturnLineIn,
    SaleCreate,
)
from seamline.core.auth.schemas import Scope
from seamline.core.auth.service import create_api_key
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import AppError
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.schemas import CustomerUpsert, IdentifierIn
from seamline.events import service as events_service
from seamline.events.ingest import check_message
from seamline.events.models import EventSource
from seamline.inbox import agents as inbox_agents
from seamline.inbox import canned, delivery, routing, sla
from seamline.inbox import service as inbox
from seamline.inbox.adapters import adapter_for
from seamline.inbox.models import (
    InboxAgent,
    InboxConversation,
    InboxMessage,
)
from seamline.inbox.schemas import RoutingRuleCreate
from seamline.loyalty import cards as loyalty_cards
from seamline.loyalty import rules as loyalty_rules
from seamline.loyalty import service as loyalty
from seamline.loyalty.models import LoyaltyAccount
from seamline.loyalty.schemas import CardCreate, ChannelBonus, ProgramPut, Tier
from seamline.marketing.campaigns import service as campaign_service
from seamline.marketing.campaigns.schemas import CampaignCreate
from seamline.marketing.journeys import service as journey_service
from seamline.marketing.journeys.schemas import JourneyFromTemplate
from seamline.marketing.messages import service as message_service
from seamline.marketing.segments import service as segments
from seamline.marketing.segments.schemas import SegmentCreate

# --- the catalog ---------------------------------------------------------------------------------

CATEGORIES: tuple[tuple[str, str, str, str | None], ...] = (
    ("care", "Уход", "Care", None),
    ("face", "Уход за лицом", "Face care", "care"),
    ("body", "Тело и руки", "Body and hands", "care"),
    ("hair", "Волосы", "Hair", "care"),
    ("pharmacy", "Аптека", "Pharmacy", None),
    ("vitamins", "Витамины и БАД", "Vitamins and supplements", "pharmacy"),
    ("hygiene", "Гигиена", "Hygiene", None),
)


@dataclass(frozen=True)
class _Product:
    code: str
    category: str
    name_ru: str
    name_en: str
    brand: str
    description_ru: str
    description_en: str
    #: (sku, variant name ru, variant name en, attributes, price in kopecks)
    variants: tuple[tuple[str, str, str, dict[str, Any], int], ...]


PRODUCTS: tuple[_Product, ...] = (
    _Product("hand-cream", "body", "Крем для рук «Бархатные ручки» с маслом ши", "Velvet Hands shea butter hand cream",
             "Бархатные ручки", "Питает и смягчает сухую кожу рук, впитывается за минуту.",
             "Nourishes and softens dry hands, absorbs in a minute.",
             (("CREAM-50", "50 мл", "50 ml", {"volume_ml": 50}, 199000),
              ("CREAM-100", "100 мл", "100 ml", {"volume_ml": 100}, 329000))),
    _Product("vitamin-c-serum", "face", "Сыворотка для лица с витамином C", "Vitamin C face serum", "La Roche-Posay",
             "Выравнивает тон и придаёт сияние.", "Evens the skin tone and adds radiance.",
             (("SERUM-C-30", "30 мл", "30 ml", {"volume_ml": 30}, 249000),)),
    _Product("micellar-water", "face", "Мицеллярная вода для чувствительной кожи", "Micellar water for sensitive skin",
             "Bioderma", "Снимает макияж без смывания.", "Removes make-up, no rinsing needed.",
             (("MICELLAR-250", "250 мл", "250 ml", {"volume_ml": 250}, 89000),
              ("MICELLAR-500", "500 мл", "500 ml", {"volume_ml": 500}, 149000))),
    _Product("sunscreen-spf50", "face", "Солнцезащитный флюид SPF 50", "SPF 50 sun fluid", "Avène",
             "Лёгкий флюид для лица, не оставляет белых следов.", "A light face fluid, leaves no white marks.",
             (("SPF50-50", "50 мл", "50 ml", {"volume_ml": 50, "spf": 50}, 159000),)),
    _Product("eye-patches", "face", "Гидрогелевые патчи для глаз", "Hydrogel eye patches", "Petitfée",
             "60 патчей с гиалуроновой кислотой.", "60 patches with hyaluronic acid.",
             (("PATCHES-60", "60 шт.", "60 pcs", {"count": 60}, 149000),)),
    _Product("body-lotion", "body", "Лосьон для тела увлажняющий", "Moisturising body lotion", "CeraVe",
             "С церамидами, для сухой кожи.", "With ceramides, for dry skin.",
             (("LOTION-236", "236 мл", "236 ml", {"volume_ml": 236}, 119000),)),
    _Product("shampoo", "hair", "Шампунь для объёма", "Volume shampoo", "Kérastase",
             "Для тонких волос.", "For fine hair.",
             (("SHAMPOO-250", "250 мл", "250 ml", {"volume_ml": 250}, 59000),
              ("SHAMPOO-500", "500 мл", "500 ml", {"volume_ml": 500}, 99000))),
    _Product("hair-balm", "hair", "Бальзам-ополаскиватель восстанавливающий", "Repairing conditioner", "Kérastase",
             "Для повреждённых волос.", "For damaged hair.",
             (("BALM-200", "200 мл", "200 ml", {"volume_ml": 200}, 64000),)),
    _Product("vitamin-d3", "vitamins", "Витамин D3 2000 МЕ", "Vitamin D3 2000 IU", "Solgar",
             "60 капсул.", "60 capsules.",
             (("VITD3-60", "60 капсул", "60 capsules", {"count": 60}, 79000),)),
    _Product("omega-3", "vitamins", "Омега-3 рыбий жир", "Omega-3 fish oil", "Solgar",
             "90 капсул.", "90 capsules.",
             (("OMEGA3-90", "90 капсул", "90 capsules", {"count": 90}, 129000),)),
    _Product("toothpaste", "hygiene", "Зубная паста отбеливающая", "Whitening toothpaste", "Splat",
             "Бережное отбеливание.", "Gentle whitening.",
             (("PASTE-100", "100 мл", "100 ml", {"volume_ml": 100}, 34900),)),
    _Product("lip-balm", "care", "Бальзам для губ", "Lip balm", "Bioderma",
             "Защищает от ветра и мороза.", "Protects from wind and frost.",
             (("LIPBALM-4", "4 г", "4 g", {"weight_g": 4}, 29000),)),
)
#: Out of stock everywhere (sold out and not yet received again)
SOLD_OUT = "PATCHES-60"
#: What people buy, and how often
_POPULAR = {"CREAM-50": 9, "CREAM-100": 3, "SERUM-C-30": 4, "MICELLAR-250": 6, "MICELLAR-500": 3, "SPF50-50": 4,
            "LOTION-236": 3, "SHAMPOO-250": 4, "SHAMPOO-500": 2, "BALM-200": 3, "VITD3-60": 5, "OMEGA3-90": 3,
            "PASTE-100": 5, "LIPBALM-4": 5}

# --- stores --------------------------------------------------------------------------------------

_WEEK = {day: ["10:00", "22:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
#: store code of demo.STORES -> (latitude, longitude)
_STORE_COORDS = {
    "store:msk-tverskaya": (55.7652, 37.6050),
    "store:msk-city": (55.7494, 37.5399),
    "store:spb-nevsky": (59.9343, 30.3351),
    "store:kzn-baumana": (55.7887, 49.1221),
}
WAREHOUSES = (
    ("wh-podolsk", "Склад Подольск", "Podolsk warehouse", "Московская обл., г. Подольск, ул. Складская, д. 1", 55.4311, 37.5447),
    ("wh-spb", "Склад Шушары", "Shushary warehouse", "Санкт-Петербург, пос. Шушары, Московское ш., д. 70", 59.8039, 30.3675),
)
_CITY_COORDS = {"Москва": (55.75, 37.62), "Moscow": (55.75, 37.62), "Санкт-Петербург": (59.94, 30.31),
                "Saint Petersburg": (59.94, 30.31), "Казань": (55.79, 49.12), "Екатеринбург": (56.84, 60.61),
                "Новосибирск": (55.03, 82.92)}


def location_code(store_code: str) -> str:
    """The commerce location of a demo store: `store:msk-city` -> `msk-city`."""
    return store_code.split(":", 1)[1]


# --- staff ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    role: str
    name: str
    locale: str
    store: str | None = None
    skills: tuple[str, ...] = ()
    capacity: int = 0


def demo_logins(first_store: str) -> tuple[Login, ...]:
    return (
        Login("admin@demo.seamline", "admin-demo", "admin", "Demo Admin", "en"),
        Login("agent@demo.seamline", "agent-demo", "agent", "Мария Агентова", "ru",
              skills=("returns", "orders", "loyalty", "lang:ru"), capacity=4),
        Login("agent2@demo.seamline", "agent-demo", "agent", "Emily Carter", "en", skills=("lang:en",), capacity=2),
        Login("clerk@demo.seamline", "clerk-demo", "clerk", "Ольга Кассирова", "ru", store=first_store),
        Login("marketer@demo.seamline", "marketer-demo", "marketer", "Пётр Маркетов", "ru"),
    )


# --- the inbox -------------------------------------------------------------------------------------

ROUTING_RULES = (
    # English first: an English message goes to the agent who writes English, whatever it is about
    ("English", r"^[^а-яА-ЯёЁ]*[A-Za-z][^а-яА-ЯёЁ]*$", "lang:en"),
    ("Возвраты", r"(?i)возвр|вернуть|верну|обмен|брак", "returns"),
    ("Заказы", r"(?i)заказ|доставк|курьер|самовывоз|забрать", "orders"),
    ("Бонусы", r"(?i)балл|бонус|карт[аоуы]", "loyalty"),
    ("По-русски", r"[а-яА-ЯёЁ]", "lang:ru"),
)

CANNED = (
    ("vozvrat", "Возврат товара",
     "{{customer.first_name}}, вернуть товар можно в любом нашем магазине в течение 14 дней: возьмите заказ и "
     "документ. Деньги вернутся тем же способом, которым вы платили, баллы за возвращённое спишутся."),
    ("status", "Статус заказа",
     "{{customer.first_name}}, ваш заказ №{{order.number}} сейчас в статусе «{{order.status}}». Мы напишем, как только "
     "он изменится."),
    ("bally", "Баллы", "Баллы начисляются после получения заказа и становятся доступны через 14 дней."),
    ("return", "Returns",
     "{{customer.first_name}}, you can return an item in any of our stores within 14 days. The money goes back the "
     "way you paid, and the points for it are taken back."),
    ("order-status", "Order status",
     "{{customer.first_name}}, your order #{{order.number}} is {{order.status}}. We will let you know when it changes."),
    ("hello", "Приветствие", "Здравствуйте, {{customer.first_name}}! Меня зовут {{agent.name}}, чем могу помочь?"),
)


@dataclass(frozen=True)
class _Script:
    """One conversation: what the customer writes ("in"), what the agent answers in the web chat
    ("out"), internal notes ("note"); a channel switch is a "tg"/"email" step."""

    channel: str
    locale: str
    steps: tuple[tuple[str, str], ...]
    end: str  # resolved, open (assigned), queued
    subject: str | None = None
    person: int | None = None  # a fixed demo person (Anna is 0)
    #: how the channel knows the person: which identifier their journey must have
    needs: str | None = None


def _s(channel: str, locale: str, end: str, *steps: tuple[str, str], subject: str | None = None,
       person: int | None = None) -> _Script:
    needs = {"telegram": "telegram_id", "whatsapp": "phone", "email": "email", "webchat": "anonymous_id",
             "vk": "user_id"}.get(channel)
    return _Script(channel, locale, tuple(steps), end, subject, person, needs)


SCRIPTS: tuple[_Script, ...] = (
    # resolved first (each frees its agent), then open ones fill the agents, then the queue
    _s("webchat", "ru", "resolved", ("in", "Здравствуйте! Крем для рук 50 мл есть в магазине на Тверской?"),
       ("out", "Здравствуйте! Да, есть, можно оформить самовывоз на сайте — заказ будет готов через час."),
       ("in", "Отлично, спасибо!"), ("survey", "5")),
    _s("webchat", "ru", "resolved", ("in", "Подскажите, когда начислятся баллы за заказ?"),
       ("out", "Баллы начисляются после получения заказа и становятся доступны через 14 дней."),
       ("in", "Понятно, спасибо"), ("survey", "4")),
    _s("webchat", "en", "resolved", ("in", "Hi, do you ship to Saint Petersburg?"),
       ("out", "Hello! Yes, we deliver across Russia from our warehouses, usually in 1-3 days."), ("survey", "5")),
    _s("webchat", "ru", "resolved", ("in", "Можно ли применить промокод WELCOME500 к заказу в приложении?"),
       ("out", "Да, промокод действует во всех каналах на первый заказ от 2000 ₽."), ("in", "Спасибо!")),
    _s("email", "ru", "resolved", ("in", "Добрый день! Пришёл заказ, в коробке не хватает бальзама для губ."),
       ("note", "Позвонила клиентке: бальзам нашёлся в пакете с чеком. Вопрос закрыт."), subject="Не хватает товара"),
    _s("telegram", "ru", "resolved", ("in", "Здравствуйте, как привязать карту к приложению?"),
       ("note", "Ответили по телефону: карта привязывается в профиле приложения по номеру."),),
    # open, assigned: four for the Russian-speaking agent, two for the English-speaking one
    _s("telegram", "ru", "resolved", ("in", "Здравствуйте! Вернула тюбик крема в магазине на Тверской. Когда придут деньги?"),
       ("note", "Возврат принят на Тверской, деньги ушли на карту. Баллы за тюбик списаны — объяснить клиентке."),
       person=0),
    _s("webchat", "ru", "open", ("in", "Добрый вечер, где мой заказ? Обещали доставку сегодня."),
       ("out", "Добрый вечер! Сейчас уточню у службы доставки."), ("email", "Пишу с почты, чат на сайте закрылся. Есть новости?")),
    _s("whatsapp", "ru", "open", ("in", "Здравствуйте, можно обменять шампунь на другой объём?")),
    _s("webchat", "ru", "open", ("in", "Добрый день! Не могу списать баллы при оформлении заказа, пишет ошибку."),
       ("out", "Добрый день! Баллами можно оплатить до 30% заказа. Сколько баллов вы указали?"),
       ("in", "Хотела списать все 300")),
    _s("webchat", "en", "open", ("in", "Hello! My order is ready for pickup but I cannot come before Sunday. Can you hold it?"),
       ("out", "Hi! Orders wait for 3 days; let me check if we can extend it.")),
    _s("email", "en", "open", ("in", "Hello, I was charged twice for my last order. Could you check please?"),
       subject="Charged twice"),
    # waiting in the queue: every agent who could take them is busy
    _s("telegram", "ru", "queued", ("in", "Добрый день! Хочу вернуть сыворотку, она мне не подошла.")),
    _s("telegram", "ru", "queued", ("in", "Подскажите, когда привезут патчи для глаз? Везде нет в наличии.")),
    _s("whatsapp", "ru", "queued", ("in", "Здравствуйте, заказ не пришёл, курьер не звонил")),
    _s("whatsapp", "ru", "queued", ("in", "Здравствуйте! Сколько у меня баллов на карте?")),
    _s("email", "ru", "queued", ("in", "Здравствуйте! Прошу вернуть деньги за бракованный флакон мицеллярной воды."),
       subject="Возврат"),
    _s("email", "ru", "queued", ("in", "Можно ли изменить адрес доставки в заказе?"), subject="Изменить адрес доставки"),
    _s("vk", "ru", "queued", ("in", "Здравствуйте! А витамин D3 есть в Казани?")),
    _s("vk", "ru", "queued", ("in", "Добрый день, как оформить самовывоз из магазина?")),
    _s("vk", "ru", "queued", ("in", "Крем для рук закончился на Невском, когда будет?")),
    _s("webchat", "ru", "queued", ("in", "Здравствуйте, есть ли у вас подарочные сертификаты?")),
    _s("webchat", "en", "queued", ("in", "Hi, is the vitamin C serum suitable for sensitive skin?")),
    _s("telegram", "ru", "queued", ("in", "Заказ готов к выдаче, можно забрать его другому человеку?")),
    _s("webchat", "ru", "queued", ("in", "Добрый день! Не приходит код подтверждения при входе.")),
)


# --- who is who ------------------------------------------------------------------------------------


@dataclass
class _Customer:
    index: int
    profile_id: int
    person: Any  # demo._Person
    kinds: set[str]  # identifier types the journey used
    anonymous_ids: list[str]
    enrolled: bool = False
    orders: int = 0
    conversation: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _customers(session: Session, rules: IdentifierRules, journeys: list[Any]) -> list[_Customer]:
    found = []
    for journey in journeys:
        ids = [pair for step in journey.steps for pair in step[2]]
        usable, _ = rules.prepare(ids)
        if not usable:
            continue
        try:
            profile = customers_service.lookup(session, rules=rules, type_name=usable[0].type, value=usable[0].value)
        except AppError:
            continue
        profile = resolution.canonical_profile(session, profile.id)
        kinds = {i.type for i in usable}
        cookies = [i.value for i in usable if i.type == "anonymous_id"]
        found.append(_Customer(journey.person.index, profile.id, journey.person, kinds, cookies))
    return found


# --- filling -------------------------------------------------------------------------------------


def _days_ago(session: Session, conversation_id: int, days: int) -> None:
    """Move a finished conversation and its messages `days` back in time."""
    back = timedelta(days=days)
    conversation = session.get(InboxConversation, conversation_id)
    for name in ("created_at", "last_message_at", "resolved_at", "first_response_at", "queued_at"):
        if getattr(conversation, name) is not None:
            setattr(conversation, name, getattr(conversation, name) - back)
    for message in session.scalars(select(InboxMessage).where(InboxMessage.conversation_id == conversation_id)):
        message.created_at -= back


def _demo_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


def already_filled(db: Database) -> bool:
    with db.read() as session:
        return session.scalar(select(CommerceLocation.id).where(CommerceLocation.code == WAREHOUSES[0][0])) is not None


def fill_world(db: Database, settings: Settings, *, journeys: list[Any], stores: tuple[Any, ...], seed: int,
               now: datetime | None = None) -> dict[str, Any]:
    """Fill the world around the demo's customers (see the module doc). Returns the storefront's
    keys and what was made."""
    runtime.wire()
    now = now or utcnow()
    # The demo's past conversations are between people and agents; the bot answers from now on.
    settings = _demo_settings(settings, assistant_enabled=False)
    rules = IdentifierRules(settings)
    shops = [s for s in stores if s.kind == "store"]
    logins = demo_logins(location_code(shops[0].code))
    with db.write() as session:
        _catalog(session, settings, now)
        _locations(session, shops)
        _stock(session, random.Random(f"{seed}/stock"), shops)
        _program(session)
        keys = _keys(session)
        agent_ids, staff = _staff_and_inbox(session, settings, logins)
    with db.write() as session:
        people = _customers(session, rules, journeys)
        _enrol(session, rules, people, random.Random(f"{seed}/loyalty"))
    world = _World(db, settings, rules, people, {s.code: location_code(s.code) for s in shops}, now, seed)
    world.place_orders()
    world.browse()
    world.converse(agent_ids, keys["storefront_write_key"])
    world.ask_nps(agent_ids, keys["storefront_write_key"])
    db.run_write(lambda session: _marketing(session, now))
    return {**keys, "staff_users": staff, "logins": [login.__dict__ for login in logins], "order_errors": world.errors}


#: How long the demo's abandoned cart waits before its reminder (the ready-made one: an hour).
DEMO_CART_WAIT_MINUTES = 2


def _marketing(session: Session, now: datetime) -> None:
    """Marketing the marketer finds in the demo: promotions that take personal coupons, segments
    (filled), the abandoned cart and the store visit running, more ready-made journeys as drafts,
    and a campaign draft with two variants and a holdout (docs/marketing.md)."""
    for code, name_ru, name_en, value in (("COMEBACK10", "Скидка 10% по персональному купону", "10% off with a personal coupon", 10),
                                          ("VISIT15", "Скидка 15% в магазине сегодня", "15% off in the store today", 15)):
        promotions.put_promotion(session, code=code, data=PromotionPut(name_ru=name_ru, name_en=name_en, kind="percent", value=value,
                                                                       requires_coupon=True))
    made = {}
    for key, name, rule in (
            ("points", "Есть баллы лояльности", {"type": "loyalty", "points": {"op": "gte", "value": 1}}),
            ("app", "Покупали в приложении за 90 дней", {"type": "orders", "channel": "app", "within_days": 90}),
            ("lapsed", "Давно не покупали, есть согласие на email", {"type": "and", "rules": [
                {"type": "orders"}, {"type": "not", "rule": {"type": "orders", "within_days": 30}},
                {"type": "consent", "channel": "email"}]})):
        segment, _ = segments.create_segment(session, data=SegmentCreate(name=name, rules=rule), created_by="demo")
        segments.evaluate(session, segment_id=segment.id, now=now, cause="created")
        made[key] = segment.id
    for template, promotion, start in (("abandoned_cart", "COMEBACK10", True), ("store_visit", "VISIT15", True), ("birthday", None, False),
                                       ("post_purchase_nps", None, False), ("win_back", "COMEBACK10", False)):
        journey, _ = journey_service.create_from_library(
            session, data=JourneyFromTemplate(template=template, promotion=promotion), created_by="demo", locale="ru")
        if template == "abandoned_cart":  # the demo's reminder comes after 2 minutes, not an hour: there to be watched
            definition = journey_service.DEFINITION.validate_python({**journey.definition, "steps": [
                {**step, "minutes": DEMO_CART_WAIT_MINUTES} if step["id"] == "wait_1h" else step for step in journey.definition["steps"]]})
            journey_service.update_journey(session, journey_id=journey.id, definition=definition)
        if start:
            journey_service.set_status(session, journey_id=journey.id, action="start", now=now)
    variants = []
    for name, text in (("A", "{{ person.first_name or 'Здравствуйте' }}, зимняя распродажа: до −30% на уход за лицом. {{ shop_url }}"),
                       ("B", "Скидки до 30% только неделю, {{ person.first_name or 'друг' }}! {{ shop_url }}")):
        template, _ = message_service.create_template(session, name=f"Зимняя распродажа, вариант {name}", created_by="demo",
                                                      content={"ru": {"subject": "Зимняя распродажа", "text": text}})
        variants.append({"name": name, "template_id": template.id, "percent": 50})
    campaign_service.create_campaign(session, created_by="demo", data=CampaignCreate(
        name="Зимняя распродажа", segment_id=made["lapsed"], variants=variants, holdout_percent=10, local_time="11:00",
        ab_test={"test_percent": 20, "metric": "converted", "after_hours": 24}))


def _catalog(session: Session, settings: Settings, now: datetime) -> None:
    for code, name_ru, name_en, parent in CATEGORIES:
        catalog.put_category(session, code=code, data=CategoryPut(name_ru=name_ru, name_en=name_en, parent=parent))
    for p in PRODUCTS:
        catalog.put_product(session, settings=settings, code=p.code, data=ProductPut(
            name_ru=p.name_ru, name_en=p.name_en, description_ru=p.description_ru, description_en=p.description_en,
            category=p.category, attributes={"brand": p.brand},
            variants=[{"sku": sku, "name_ru": v_ru, "name_en": v_en, "attributes": attrs,
                       "price": {"amount": price, "currency": settings.commerce_currency}}
                      for sku, v_ru, v_en, attrs, price in p.variants]))
    start = now - timedelta(days=90)
    promotions.put_promotion(session, code="HANDS-15", data=PromotionPut(
        name_ru="−15% на кремы для рук", name_en="15% off hand creams", kind="percent", value=15,
        scope={"skus": ["CREAM-50", "CREAM-100"]}, starts_at=start, ends_at=now + timedelta(days=30)))
    promotions.put_promotion(session, code="VITAMINS-3FOR2", data=PromotionPut(
        name_ru="Витамины: третья упаковка в подарок", name_en="Vitamins: 3 for 2", kind="buy_x_get_y",
        buy_quantity=2, get_quantity=1, scope={"categories": ["vitamins"]}, starts_at=start))
    promotions.put_promotion(session, code="GOLD-10", data=PromotionPut(
        name_ru="−10% для золотого уровня", name_en="10% off for Gold members", kind="percent", value=10,
        conditions={"tiers": ["gold"]}, priority=200))
    promotions.put_promotion(session, code="WELCOME500", data=PromotionPut(
        name_ru="500 ₽ на первый заказ", name_en="500 RUB off the first order", kind="fixed", value=50000,
        min_subtotal=200000, requires_coupon=True))
    promotions.put_coupon(session, code="WELCOME500", data=CouponPut(promotion="WELCOME500", per_customer_limit=1))


def _locations(session: Session, shops: list[Any]) -> None:
    for shop in shops:
        lat, lon = _STORE_COORDS.get(shop.code, (None, None))
        stock.put_location(session, code=location_code(shop.code), data=LocationPut(
            kind="store", name_ru=shop.name, name_en=shop.name_en, address=f"{shop.city}, {shop.address}",
            latitude=lat, longitude=lon, timezone=shop.timezone, opening_hours=_WEEK, pickup_enabled=True,
            safety_stock=1))
    for code, name_ru, name_en, address, lat, lon in WAREHOUSES:
        stock.put_location(session, code=code, data=LocationPut(
            kind="warehouse", name_ru=name_ru, name_en=name_en, address=address, latitude=lat, longitude=lon,
            external_id=f"1C-{code}"))


def _stock(session: Session, rng: random.Random, shops: list[Any]) -> None:
    skus = [v[0] for p in PRODUCTS for v in p.variants]
    for sku in skus:
        for code, *_ in WAREHOUSES:
            _receive(session, sku, code, rng.randint(150, 400))
        for shop in shops:
            roll = rng.random()
            if sku == "CREAM-50":
                quantity = rng.randint(15, 30)  # the journey's cream: in stock in every store
            elif roll < 0.15:
                continue  # never stocked here
            elif roll < 0.3:
                quantity = rng.randint(1, 2)  # running low
            else:
                quantity = rng.randint(6, 30)
            _receive(session, sku, location_code(shop.code), quantity)
    # sold out everywhere: the count after the last sale found none
    for location in [location_code(s.code) for s in shops] + [w[0] for w in WAREHOUSES]:
        stock.record_movement(session, data=MovementCreate(sku=SOLD_OUT, location=location, kind="count", quantity=0,
                                                           reference="инвентаризация"), idempotency_key=None)


def _receive(session: Session, sku: str, location: str, quantity: int) -> None:
    stock.record_movement(session, data=MovementCreate(sku=sku, location=location, kind="receipt", quantity=quantity,
                                                       reference="поставка"), idempotency_key=None)


def _program(session: Session) -> None:
    loyalty_rules.put_program(session, ProgramPut(
        name_ru="Клуб «Бархат»", name_en="Velvet Club", earn_percent=5, welcome_points=300, birthday_points=500,
        category_multipliers={"vitamins": 2.0}, channel_bonuses=[ChannelBonus(channel="app", points=200, first_order_only=True)],
        tiers=[Tier(code="silver", name_ru="Серебро", name_en="Silver", min_spend=1_000_000, earn_multiplier=1.5),
               Tier(code="gold", name_ru="Золото", name_en="Gold", min_spend=3_000_000, earn_multiplier=2.0)],
        card_check_digit="ean13", card_prefix="2770"))


def _keys(session: Session) -> dict[str, str]:
    _, storefront_key = create_api_key(session, name="storefront", scopes=[Scope.write])
    _, write_key = events_service.create_source(session, name="Интернет-магазин", channel="web")
    # The app look's own source: its events are the app's (channel "app"), as a real app's would be.
    _, app_write_key = events_service.create_source(session, name="Мобильное приложение", channel="app")
    return {"storefront_api_key": storefront_key, "storefront_write_key": write_key, "storefront_app_write_key": app_write_key}


def _staff_and_inbox(session: Session, settings: Settings, logins: tuple[Login, ...]) -> tuple[dict[str, int], int]:
    """Staff users (agents get an inbox agent each), a team, SLA policies, routing rules and
    canned responses. Returns the agents' ids by email and how many staff users were made."""
    from seamline.web.staff.service import create_staff_user

    team = inbox_agents.create_team(session, name="Поддержка")
    agent_ids: dict[str, int] = {}
    for login in logins:
        user = create_staff_user(session, email=login.email, name=login.name, password=login.password, role=login.role,
                                 locale=login.locale, store=login.store, skills=list(login.skills),
                                 capacity=login.capacity or 10)
        if user.agent_id is not None:
            inbox_agents.update_agent(session, settings=settings, agent_id=user.agent_id, changes={"team_ids": [team.id]})
            inbox_agents.set_status(session, settings=settings, agent_id=user.agent_id, status="online")
            agent_ids[login.email] = user.agent_id
    hours = {day: ["09:00", "21:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    calendar = {"timezone": "Europe/Moscow", "hours": hours, "holidays": []}
    sla.create_policy(session, name="Стандарт", calendar=calendar, is_default=True, first_response_minutes=60,
                      next_response_minutes=120, resolution_minutes=24 * 60, channels=[], min_priority=0)
    sla.create_policy(session, name="Чат", calendar=calendar, is_default=False, first_response_minutes=5,
                      next_response_minutes=10, resolution_minutes=8 * 60, channels=["webchat"], min_priority=0)
    for position, (name, pattern, skill) in enumerate(ROUTING_RULES):
        routing.create_rule(session, **RoutingRuleCreate(name=name, pattern=pattern, skill=skill, position=position).model_dump())
    for shortcut, title, body in CANNED:
        canned.create(session, shortcut=shortcut, title=title, body=body)
    session.flush()
    return agent_ids, len(logins)


def _enrol(session: Session, rules: IdentifierRules, people: list[_Customer], rng: random.Random) -> None:
    """Everyone who got a card at a till is a member (the printed card registered); some app
    users too, with a virtual card."""
    program = loyalty_rules.get_program(session)
    for c in people:
        channel = None
        if "loyalty_card" in c.kinds:
            channel, data = "store", CardCreate(kind="physical", number=c.person.loyalty_card, channel="store")
        elif "user_id" in c.kinds and "phone" in c.kinds and rng.random() < 0.5:
            channel, data = "app", CardCreate(kind="virtual", channel="app")
        if channel is None:
            continue
        account = loyalty.enroll(session, customer_id=c.profile_id, channel=channel)
        loyalty_cards.issue_card(session, rules=rules, program=program, account=account, data=data)
        c.enrolled = True


# --- orders --------------------------------------------------------------------------------------

#: (outcome, weight)
_OUTCOMES = (("picked_up", 26), ("till", 20), ("delivered", 14), ("shipped", 7), ("ready", 8), ("confirmed", 5),
             ("pending_payment", 6), ("cancelled", 8), ("returned", 3))


class _World:
    def __init__(self, db: Database, settings: Settings, rules: IdentifierRules, people: list[_Customer],
                 shops: dict[str, str], now: datetime, seed: int):
        self.db, self.settings, self.rules, self.people, self.shops, self.now = db, settings, rules, people, shops, now
        self.seed = seed
        self.errors: list[str] = []
        self.receipt = 1000
        self.event_no = 0

    # -- stock as the orders see it (enough to choose lines a store can give) --

    def _free(self) -> dict[tuple[str, str], int]:
        with self.db.read() as session:
            locations = {loc.id: loc for loc in session.scalars(select(CommerceLocation))}
            found = {}
            for loc in locations.values():
                if loc.kind != "store":
                    continue
                for sku in _POPULAR:
                    for row in stock.availability(session, sku):
                        if row["location"] == loc.code:
                            found[(sku, loc.code)] = row["available"]
            return found

    def place_orders(self) -> None:
        rng = random.Random(f"{self.seed}/orders")
        buyers = [c for c in self.people if c.person.city.country == "RU" or "user_id" in c.kinds]
        plan: list[tuple[_Customer, str]] = []
        if self.people and self.people[0].index == 0:
            plan.append((self.people[0], "journey"))
        outcomes = [o for o, _ in _OUTCOMES]
        weights = [w for _, w in _OUTCOMES]
        count = min(int(len(buyers) * 0.9), 180)
        for n in range(count):
            who = buyers[rng.randrange(len(buyers))]
            # every outcome at least once, then by weight
            plan.append((who, outcomes[n] if n < len(outcomes) else rng.choices(outcomes, weights)[0]))
        self.free = self._free()
        for n, (who, outcome) in enumerate(plan):
            order_rng = random.Random(f"{self.seed}/order/{n}")
            try:
                self._order(who, outcome, order_rng, n)
            except AppError as exc:
                self.errors.append(f"{outcome} for customer {who.profile_id}: {exc.code}")

    def _lines(self, rng: random.Random, store: str | None, *, till: bool = False) -> list[LineIn]:
        skus = list(_POPULAR)
        lines: dict[str, int] = {}
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            sku = rng.choices(skus, [_POPULAR[s] for s in skus])[0]
            quantity = rng.choice((1, 1, 1, 2))
            if store is not None:
                left = self.free.get((sku, store), 0) - (0 if till else 1)  # online keeps the safety stock
                if left < lines.get(sku, 0) + quantity:
                    continue
                self.free[(sku, store)] -= quantity
            lines[sku] = lines.get(sku, 0) + quantity
        return [LineIn(sku=s, quantity=q) for s, q in lines.items()]

    def _when(self, rng: random.Random, outcome: str) -> datetime:
        if outcome in ("pending_payment", "confirmed"):
            return self.now - timedelta(minutes=rng.uniform(1, 20))  # their hold is short: placed just now
        if outcome == "ready":
            return self.now - timedelta(hours=rng.uniform(2, 40))
        return self.now - timedelta(days=rng.uniform(2, 120), seconds=rng.randint(0, 86_399))

    def _order(self, who: _Customer, outcome: str, rng: random.Random, n: int) -> None:
        p = who.person
        home = self.shops.get(p.home_store or "") or next(iter(self.shops.values()))
        at = self._when(rng, outcome)
        settings, db = self.settings, self.db
        if outcome == "journey":  # the DESIGN.md journey: app, click & collect near the office, one tube back at home
            office = self.shops.get("store:msk-city", home)
            self.free[("CREAM-50", office)] = self.free.get(("CREAM-50", office), 0) - 2
            # she put it in her cart on the website the evening before and paid in the app
            order_id, code = self._place(who, "app", [LineIn(sku="CREAM-50", quantity=2)], "click_and_collect", office,
                                         "test", at - timedelta(days=12), cart=("web", at - timedelta(days=12, hours=20)))
            payments.pay_with_test_provider(db, settings=settings, order_id=order_id, channel="app")
            self._write(lambda s: orders.mark_ready(s, settings=settings, order_id=order_id, channel="store"))
            self._hand_over(order_id, code, office)
            self._return(order_id, [ReturnLineIn(sku="CREAM-50", quantity=1)], home, "Один тюбик оказался лишним")
            # and a second one from the app, waiting at her home store: what she asks the chat bot
            # about in Telegram (docs/assistant.md)
            lines = self._lines(rng, home) or [LineIn(sku="CREAM-50", quantity=1)]
            second, _ = self._place(who, "app", lines, "click_and_collect", home, "test", self.now - timedelta(hours=20))
            payments.pay_with_test_provider(db, settings=settings, order_id=second, channel="app")
            self._write(lambda s: orders.mark_ready(s, settings=settings, order_id=second, channel="store"))
            return
        if outcome == "till":
            store = home
            lines = self._lines(rng, store, till=True)
            if not lines:
                return
            self.receipt += 1
            identifiers = ([IdentifierIn(type="loyalty_card", value=p.loyalty_card)] if "loyalty_card" in who.kinds
                           else [IdentifierIn(type="phone", value=p.phone.as_said_in_store)] if "phone" in who.kinds else [])
            data = SaleCreate(lines=lines, identifiers=identifiers, customer_id=None if identifiers else who.profile_id,
                              payment=PosPayment(method=rng.choice(("card", "card", "cash"))), clerk="Ольга",
                              receipt=f"R-{self.receipt}")
            self._write(lambda s: pos.record_sale(s, settings=settings, rules=self.rules,
                                                  store=pos.store_by_code(s, store), data=data, idempotency_key=None, now=at))
            who.orders += 1
            return
        pickup = outcome in ("picked_up", "ready", "returned") or (outcome in ("confirmed", "pending_payment", "cancelled")
                                                                    and rng.random() < 0.6 and p.home_store)
        channel = rng.choice(("web", "web", "app", "app", "call_center") if "phone" in who.kinds else ("web", "app"))
        if pickup:
            store = home if rng.random() < 0.8 else rng.choice(list(self.shops.values()))
            lines = self._lines(rng, store)
            kind = "click_and_collect"
        else:
            store, lines, kind = None, self._lines(rng, None), "delivery"
        if not lines:
            return
        method = "test" if outcome == "pending_payment" or (channel != "call_center" and rng.random() < 0.6) else "on_pickup"
        cart = None
        if channel in ("web", "app") and rng.random() < 0.6:  # through a cart, started here or in the other channel
            started = channel if rng.random() < 0.55 else ("app" if channel == "web" else "web")
            cart = (started, at - timedelta(hours=rng.uniform(0.2, 30)))
        order_id, code = self._place(who, channel, lines, kind, store, method, at, cart=cart, rng=rng)
        if outcome == "pending_payment":
            return
        if method == "test":
            payments.pay_with_test_provider(db, settings=settings, order_id=order_id, channel=channel)
        if outcome == "confirmed":
            return
        if outcome == "cancelled":
            note = rng.choice(("Клиент передумал", "Нашёл дешевле", "Заказал по ошибке"))
            self._write(lambda s: orders.cancel(s, order_id=order_id, channel=channel, note=note))
            payments.send_requested_refunds(db, settings=settings, order_id=order_id)
            if store:
                for line in lines:
                    self.free[(line.sku, store)] += line.quantity
            return
        if kind == "delivery":
            self._write(lambda s: orders.ship(s, order_id=order_id, channel="warehouse", note="Передан курьеру"))
            if outcome != "shipped":
                self._write(lambda s: orders.complete(s, order_id=order_id, channel="courier", note="Доставлен"))
            return
        self._write(lambda s: orders.mark_ready(s, settings=settings, order_id=order_id, channel="store"))
        if outcome == "ready":
            return
        self._hand_over(order_id, code, store)
        if outcome == "returned":
            other = [s for s in self.shops.values() if s != store]
            where = rng.choice(other) if other else store
            self._return(order_id, [ReturnLineIn(sku=lines[0].sku, quantity=1)], where, "Не подошёл")

    def _write(self, work: Any) -> Any:
        return self.db.run_write(work)

    def _place(self, who: _Customer, channel: str, lines: list[LineIn], kind: str, store: str | None, method: str,
               at: datetime, *, cart: tuple[str, datetime] | None = None,
               rng: random.Random | None = None) -> tuple[int, str | None]:
        """An order placed in `channel` at `at`; with `cart` (channel, when), through a cart the
        person filled there then, with the shop's events around it (views, add to cart, checkout)."""
        p = who.person
        address = None
        if kind == "delivery":
            lat, lon = _CITY_COORDS.get(p.city.name, (55.75, 37.62))
            street = p.city.streets[who.index % len(p.city.streets)]
            address = {"city": p.city.name, "line1": f"{street}, {10 + who.index % 90}", "latitude": lat, "longitude": lon}
        data = OrderCreate(channel=channel, customer_id=who.profile_id, lines=lines, payment_method=method,
                           fulfilment=FulfilmentIn(kind=kind, location=store, address=address),
                           points=0)

        def work(session: Session) -> tuple[int, str | None]:
            placed = orders.place_order(session, settings=self.settings, rules=self.rules, data=data, idempotency_key=None,
                                        now=at)
            return placed.order.id, placed.order.pickup_code

        def through_cart(session: Session) -> tuple[int, str | None]:
            owner = carts.owner_of(session, rules=self.rules, customer_id=who.profile_id, anonymous_id=None)
            for line in lines:
                carts.set_line(session, owner, sku=line.sku, quantity=line.quantity, channel=cart[0], now=cart[1])
            placed = carts.checkout(session, settings=self.settings, rules=self.rules, owner=owner,
                                    data=CartCheckoutIn(channel=channel, fulfilment=data.fulfilment, payment_method=method),
                                    idempotency_key=None, now=at)
            return placed.order.id, placed.order.pickup_code

        placed = self._write(through_cart if cart else work)
        who.orders += 1
        if channel in ("web", "app"):
            rng = rng or random.Random(f"{self.seed}/events/{placed[0]}")
            started, when = cart or (channel, at - timedelta(minutes=rng.uniform(3, 40)))
            steps = [("Product Viewed", started, when - timedelta(minutes=rng.uniform(2, 30) * k), {"sku": lines[0].sku})
                     for k in range(rng.randint(1, 3), 0, -1)]
            steps += [("Product Added", started, when, {"sku": lines[0].sku}),
                      ("Checkout Started", channel, at - timedelta(minutes=2), {}),
                      ("Order Completed", channel, at, {"order_id": str(placed[0])})]
            self._track(who, steps, rng)
        return placed

    # -- the shop's events, and the people who looked and did not buy --

    def _track(self, who: _Customer | None, steps: list[tuple[str, str, datetime, dict[str, Any]]], rng: random.Random,
               *, anonymous_id: str | None = None) -> None:
        """Track events as the storefront's tracker sends them (web and app sources), the first
        one with the campaign that brought the visit, if any."""
        user_id = who.person.user_id if who is not None and "user_id" in who.kinds else None
        anonymous_id = anonymous_id or (who.anonymous_ids[0] if who is not None and who.anonymous_ids else None)
        if user_id is None and anonymous_id is None:
            return
        source = rng.choice(("google", "yandex", "vk", "email", None, None, None, None))
        with self.db.write() as session:
            sources = {s.channel: s for s in session.scalars(select(EventSource).where(EventSource.channel.in_(("web", "app"))))}
            for n, (name, channel, when, properties) in enumerate(steps):
                self.event_no += 1
                raw: dict[str, Any] = {"type": "track", "event": name, "properties": properties,
                                       "messageId": f"demo-event-{self.event_no}", "timestamp": when.isoformat()}
                if user_id:
                    raw["userId"] = user_id
                if anonymous_id:
                    raw["anonymousId"] = anonymous_id
                if n == 0 and source:
                    raw["context"] = {"campaign": {"source": source, "medium": "email" if source == "email" else "cpc",
                                                   "name": "winter"}}
                event = check_message(raw, default_type=None, batch_sent_at=None, received_at=when, max_bytes=32_768)
                events_service.store_events(session, source=sources[channel], events=[event], received_at=when)

    def browse(self) -> None:
        """People who looked and did not buy (the funnels' drop-outs) and carts left behind by
        visitors nobody knows (started purchases that never completed)."""
        rng = random.Random(f"{self.seed}/browse")
        lookers = [c for c in self.people if c.index != 0]
        for n in range(min(len(lookers), 90)):
            who = lookers[rng.randrange(len(lookers))]
            channel = rng.choice(("web", "web", "app"))
            when = self.now - timedelta(days=rng.uniform(1, 60))
            sku = rng.choice(list(_POPULAR))
            steps = [("Product Viewed", channel, when + timedelta(minutes=k), {"sku": sku}) for k in range(rng.randint(1, 3))]
            if rng.random() < 0.4:
                steps.append(("Product Added", channel, when + timedelta(minutes=5), {"sku": sku}))
                if rng.random() < 0.3:
                    steps.append(("Checkout Started", channel, when + timedelta(minutes=9), {}))
            self._track(who, steps, rng)
        for n in range(25):
            anonymous_id = f"demo-visitor-{n}"
            channel = rng.choice(("web", "web", "app"))
            when = self.now - timedelta(days=rng.uniform(1, 60))
            sku = rng.choice(list(_POPULAR))

            def leave(session: Session, a: str = anonymous_id, c: str = channel, w: datetime = when, k: str = sku) -> None:
                owner = carts.owner_of(session, rules=self.rules, customer_id=None, anonymous_id=a)
                carts.set_line(session, owner, sku=k, quantity=1, channel=c, now=w)

            try:
                self._write(leave)
            except AppError as exc:
                self.errors.append(f"abandoned cart: {exc.code}")
                continue
            self._track(None, [("Product Viewed", channel, when - timedelta(minutes=4), {"sku": sku}),
                               ("Product Added", channel, when, {"sku": sku})], rng, anonymous_id=anonymous_id)

    def ask_nps(self, agent_ids: dict[str, int], write_key: str) -> None:
        """Buyers asking in the web chat whether their order is on its way; the agent answers and
        resolves; the NPS question follows and most answer it (the web chat needs no provider:
        what is asked is really sent)."""
        rng = random.Random(f"{self.seed}/nps")
        nps = _demo_settings(self.settings, inbox_survey="nps")
        buyers = [c for c in self.people if c.orders and c.anonymous_ids and not c.conversation and c.index != 0]
        rng.shuffle(buyers)
        for n, who in enumerate(buyers[:24]):
            who.conversation = True
            ru = who.person.locale == "ru"
            token = self._chat(who, write_key)
            conversation_id = self._webchat(token, "Подскажите, мой заказ уже в пути?" if ru else "Is my order on its way?",
                                            f"demo-nps-{n}-q")
            agent = self._assignee(conversation_id, agent_ids)
            answer = "Да, заказ собран и передан в доставку." if ru else "Yes, your order is packed and on its way."
            self._write(lambda s, c=conversation_id, a=agent, t=answer: inbox.reply(
                s, settings=self.settings, conversation_id=c, agent_id=a, text=t))
            self._write(lambda s, c=conversation_id, a=agent: inbox.set_status(
                s, settings=nps, conversation_id=c, status="resolved", agent_id=a))
            if rng.random() < 0.85:
                score = rng.choices(range(11), [1, 1, 1, 1, 2, 2, 3, 5, 8, 10, 9])[0]
                self._webchat(token, str(score), f"demo-nps-{n}-a")

    def _hand_over(self, order_id: int, code: str | None, store: str) -> None:
        self._write(lambda s: pos.hand_over(s, settings=self.settings, store=pos.store_by_code(s, store),
                                            data=PosHandover(order_id=order_id, code=code or "", clerk="Ольга")))

    def _return(self, order_id: int, lines: list[ReturnLineIn], store: str, reason: str) -> None:
        data = ReturnCreate(lines=lines, location=store, channel="store", reason=reason)
        self._write(lambda s: returns.accept_return(s, settings=self.settings, order_id=order_id, data=data,
                                                    idempotency_key=f"demo-return-{order_id}"))
        payments.send_requested_refunds(self.db, settings=self.settings, order_id=order_id)

    # -- the inbox --

    def converse(self, agent_ids: dict[str, int], write_key: str) -> None:
        rng = random.Random(f"{self.seed}/inbox")
        quiet = _demo_settings(self.settings, inbox_survey="none")
        vk_user = 100_000_000
        message_no = 0
        free = [c for c in self.people if c.index != 0]
        rng.shuffle(free)
        # people with orders first: their conversations are about something
        free.sort(key=lambda c: -min(c.orders, 1))
        by_index = {c.index: c for c in self.people}
        for n, script in enumerate(SCRIPTS):
            if script.person is not None:
                who = by_index.get(script.person)
            else:
                needs = {script.needs} | ({"email"} if any(k == "email" for k, _ in script.steps) else set())
                who = next((c for c in free if not c.conversation and c.person.locale == script.locale
                            and needs <= c.kinds and not c.person.placeholder_email), None)
            if who is None:
                continue
            who.conversation = True
            if script.channel == "vk":  # signed in on the website with VK ID, then wrote to the community
                vk_user += rng.randint(1_000, 900_000)
                upsert = CustomerUpsert(identifiers=[IdentifierIn(type="user_id", value=who.person.user_id),
                                                     IdentifierIn(type="vk_id", value=str(vk_user))], source="web")
                self._write(lambda s, u=upsert: customers_service.upsert_customer(s, rules=self.rules, data=u))
            conversation_id = None
            chat_token = None
            for kind, text in script.steps:
                message_no += 1
                if kind == "survey":
                    continue  # answered after the resolution asked
                if kind in ("in", "email"):
                    channel = "email" if kind == "email" else script.channel
                    if channel == "webchat":
                        chat_token = chat_token or self._chat(who, write_key)
                        conversation_id = self._webchat(chat_token, text, f"demo-{n}-{message_no}")
                    else:
                        conversation_id = self._inbound(channel, who, text, n, message_no, script, vk_user)
                elif kind == "out":
                    agent = self._assignee(conversation_id, agent_ids)
                    self._write(lambda s, c=conversation_id, a=agent, t=text: inbox.reply(
                        s, settings=self.settings, conversation_id=c, agent_id=a, text=t))
                elif kind == "note":
                    agent = self._assignee(conversation_id, agent_ids)
                    self._write(lambda s, c=conversation_id, a=agent, t=text: inbox.add_note(
                        s, conversation_id=c, agent_id=a, text=t))
            if script.end == "resolved" and conversation_id is not None:
                agent = self._assignee(conversation_id, agent_ids)
                settings = self.settings if script.channel == "webchat" else quiet
                survey = [t for k, t in script.steps if k == "survey"]
                self._write(lambda s, c=conversation_id, a=agent, st=settings: inbox.set_status(
                    s, settings=st, conversation_id=c, status="resolved", agent_id=a))
                if survey and chat_token:
                    self._webchat(chat_token, survey[0], f"demo-{n}-survey")
                if script.person == 0:  # the journey's question came days after the return (12 days ago)
                    self._write(lambda s, c=conversation_id: _days_ago(s, c, 10))

    def _assignee(self, conversation_id: int, agent_ids: dict[str, int]) -> int:
        with self.db.read() as session:
            found = session.get(InboxConversation, conversation_id).assignee_id
        return found or next(iter(agent_ids.values()))

    def _chat(self, who: _Customer, write_key: str) -> str:
        anonymous_id = who.anonymous_ids[0]
        user_id = who.person.user_id if "user_id" in who.kinds else None

        def work(session: Session) -> str:
            _, token = webchat.open_session(session, rules=self.rules, settings=self.settings, write_key=write_key,
                                            anonymous_id=anonymous_id, user_id=user_id, user_hash_given=None,
                                            resume_token=None)
            return token

        return self._write(work)

    def _webchat(self, token: str, text: str, client_id: str) -> int:
        with self.db.read() as session:
            chat = webchat.session_of_token(session, token)
        view = webchat.send(self.db, rules=self.rules, settings=self.settings, chat=chat, text=text,
                            client_message_id=client_id, attachment_ids=[], page="/shop/", base="")
        with self.db.read() as session:
            return session.get(InboxMessage, view["id"]).conversation_id

    def _inbound(self, channel: str, who: _Customer | None, text: str, n: int, k: int, script: _Script,
                 vk_user: int) -> int:
        stamp = int(self.now.timestamp()) - 600 + k
        p = who.person if who else None
        if channel == "telegram":
            tid = int(p.telegram_id)
            body = orjson.dumps({"update_id": 500_000 + k, "message": {
                "message_id": 100 + k, "date": stamp, "text": text, "chat": {"id": tid, "type": "private"},
                "from": {"id": tid, "is_bot": False, "first_name": p.first_name, "language_code": p.locale}}})
        elif channel == "whatsapp":
            number = p.phone.e164.lstrip("+")
            body = orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "demo", "changes": [{
                "field": "messages", "value": {
                    "messaging_product": "whatsapp", "metadata": {"display_phone_number": "74951500100", "phone_number_id": "demo"},
                    "contacts": [{"wa_id": number, "profile": {"name": f"{p.first_name} {p.last_name}"}}],
                    "messages": [{"id": f"wamid.demo{n}x{k}", "from": number, "timestamp": str(stamp), "type": "text",
                                  "text": {"body": text}}]}}]}]})
        elif channel == "email":
            mail = EmailMessage()
            mail["From"] = formataddr((f"{p.first_name} {p.last_name}", p.email))
            mail["To"] = "support@demo.seamline"
            mail["Subject"] = script.subject or ("Вопрос" if script.locale == "ru" else "Question")
            mail["Message-ID"] = f"<demo-{n}-{k}@{p.email.split('@')[1]}>"
            mail["Date"] = format_datetime(datetime.fromtimestamp(stamp, UTC))
            mail.set_content(text)
            body = mail.as_bytes()
        else:  # vk: a message to the community
            body = orjson.dumps({"type": "message_new", "event_id": f"demo{n}x{k}", "group_id": 1, "v": "5.199", "object": {
                "message": {"id": 10 + k, "date": stamp, "peer_id": vk_user, "from_id": vk_user, "text": text,
                            "conversation_message_id": k}, "client_info": {}}})
        adapter = adapter_for(channel)
        accepted = [delivery.store_and_process(self.db, rules=self.rules, settings=self.settings, channel=channel,
                                               provider_message_id=pid, raw=raw) for pid, raw in adapter.split(body)]
        if not accepted or accepted[0].message_id is None:
            raise RuntimeError(f"demo {channel} message failed: {accepted[0].error if accepted else 'not split'}")
        with self.db.read() as session:
            return session.get(InboxMessage, accepted[0].message_id).conversation_id


# --- what was made -------------------------------------------------------------------------------


def world_counts(db: Database) -> dict[str, Any]:
    with db.read() as session:
        by_status = dict(session.execute(select(CommerceOrder.status, func.count()).group_by(CommerceOrder.status)).all())
        conversations = session.scalars(select(InboxConversation).where(InboxConversation.merged_into_id.is_(None))).all()
        states = Counter("resolved" if c.status == "resolved" else "assigned" if c.assignee_id else "queued"
                         for c in conversations)
        return {
            "products": session.scalar(select(func.count()).select_from(CommerceProduct)) or 0,
            "locations": session.scalar(select(func.count()).select_from(CommerceLocation)) or 0,
            "orders": sum(by_status.values()),
            "orders_by_status": dict(sorted(by_status.items())),
            "returns": session.scalar(select(func.count()).select_from(CommerceReturn)) or 0,
            "loyalty_accounts": session.scalar(select(func.count()).select_from(LoyaltyAccount)) or 0,
            "agents": session.scalar(select(func.count()).select_from(InboxAgent)) or 0,
            "conversations": len(conversations),
            "conversations_by_state": dict(sorted(states.items())),
            "messages": session.scalar(select(func.count()).select_from(InboxMessage)) or 0,
        }
