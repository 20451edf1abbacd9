"""Ready-made journeys: each a definition and its messages in Russian and English, created as a
draft the marketer reviews, edits and starts (docs/marketing.md, "Ready-made journeys").

The events they start on are the ones the demo shop and app send (docs/tracker.md): `Product
Added`, `Product Viewed`, `Order Completed`, `Store Entered` (the app or a beacon, with the
store's code in `properties.store`), `Back In Stock` (a server-side event with `sku` and
`store` when a product someone asked about is back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seamline.core.errors import Unprocessable
from seamline.inbox.outbound import PUSH

Message = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Ready:
    name: dict[str, str]
    description: str
    messages: dict[str, Message]
    #: (template ids by message name, promotion code or None, channel or None) -> definition JSON
    build: Callable[[dict[str, int], str | None, str | None], dict[str, Any]]
    needs_promotion: bool = False


def _send(step_id: str, template: int, channel: str | None, next_step: str | None = None) -> dict[str, Any]:
    return {"id": step_id, "type": "send", "template_id": template, **({"channel": channel} if channel else {}),
            **({"next": next_step} if next_step else {})}


CART_LINES_RU = ("{% for line in cart.lines %}- {{ line.name }} × {{ line.quantity }}: {{ line.total|money(cart.currency) }}\n"
                 "{% endfor %}Итого: {{ cart.total|money(cart.currency) }}\n{{ cart.url }}")
CART_LINES_EN = ("{% for line in cart.lines %}- {{ line.name }} × {{ line.quantity }}: {{ line.total|money(cart.currency) }}\n"
                 "{% endfor %}Total: {{ cart.total|money(cart.currency) }}\n{{ cart.url }}")
CART_HTML = ('<table>{% for line in cart.lines %}<tr><td>{% if line.image_url %}<img src="{{ line.image_url }}" width="64" alt="">'
             '{% endif %}</td><td>{{ line.name }} × {{ line.quantity }}</td><td>{{ line.total|money(cart.currency) }}</td></tr>'
             '{% endfor %}</table><p><a href="{{ cart.url }}">{{ button }}</a></p>')
#: The nearest store holding the whole cart, when there is one.
STORE_RU = ("{% if nearest_store %}\nВсё есть в магазине «{{ nearest_store.name }}» ({{ nearest_store.address }})"
            "{% if nearest_store.pickup_today %}: можно забрать сегодня{% endif %}.{% endif %}")
STORE_EN = ("{% if nearest_store %}\nEverything is in stock at {{ nearest_store.name }} ({{ nearest_store.address }})"
            "{% if nearest_store.pickup_today %}: pick it up today{% endif %}.{% endif %}")


#: "For you" products (recommendations), each with its tracked link.
PICKS_RU = ("{% if recommendations %}\n\nВам может понравиться:\n{% for p in recommendations %}- {{ p.name }}"
            "{% if p.price %}, {{ p.price|money(p.currency) }}{% endif %}: {{ p.url }}\n{% endfor %}{% endif %}")
PICKS_EN = ("{% if recommendations %}\n\nYou may like:\n{% for p in recommendations %}- {{ p.name }}"
            "{% if p.price %}, {{ p.price|money(p.currency) }}{% endif %}: {{ p.url }}\n{% endfor %}{% endif %}")


def _html(text: str) -> str:
    """A conditional text line as a paragraph of HTML."""
    return text.replace("{% if nearest_store %}\n", "{% if nearest_store %}<p>").replace(".{% endif %}", ".</p>{% endif %}")


def _abandoned_cart(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    steps = [
        {"id": "wait_1h", "type": "wait", "minutes": 60, "next": "still_in_cart"},
        {"id": "still_in_cart", "type": "branch", "rule": {"type": "cart"}, "next": "remind" if channel else "remind_push"},
        *([_send("remind_push", t["reminder"], PUSH, "remind")] if channel is None else []),
        _send("remind", t["reminder"], channel, "wait_24h"),
        {"id": "wait_24h", "type": "wait", "minutes": 24 * 60, "next": "coupon" if promotion else None},
    ]
    if promotion:
        steps += [{"id": "coupon", "type": "give_coupon", "promotion": promotion, "valid_days": 3, "next": "send_coupon"},
                  _send("send_coupon", t["coupon"], channel)]
    else:
        steps[-1].pop("next")
    return {"trigger": {"type": "event", "name": "Product Added"}, "goal": {"type": "order"},
            "reentry": {"policy": "after_days", "days": 1}, "steps": steps}


def _browse(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    return {"trigger": {"type": "event", "name": "Product Viewed"}, "goal": {"type": "order"},
            "reentry": {"policy": "after_days", "days": 7},
            "steps": [{"id": "wait_2h", "type": "wait", "minutes": 120, "next": "no_cart"},
                      {"id": "no_cart", "type": "branch", "rule": {"type": "not", "rule": {"type": "cart"}}, "next": "remind"},
                      _send("remind", t["reminder"], channel)]}


def _back_in_stock(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    return {"trigger": {"type": "event", "name": "Back In Stock"}, "reentry": {"policy": "after_exit"},
            "steps": [_send("tell", t["back"], channel)]}


def _nps(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    return {"trigger": {"type": "event", "name": "Order Completed"}, "reentry": {"policy": "after_days", "days": 30},
            "steps": [{"id": "wait_3d", "type": "wait", "minutes": 3 * 24 * 60, "next": "ask"}, _send("ask", t["ask"], channel)]}


def _welcome(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    return {"trigger": {"type": "event", "name": "Order Completed"}, "audience": {"type": "orders", "count": {"op": "eq", "value": 1}},
            "reentry": {"policy": "never"},
            "steps": [{"id": "wait_1d", "type": "wait", "minutes": 24 * 60, "next": "welcome"}, _send("welcome", t["welcome"], channel)]}


def _win_back(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [_send("miss_you", t["miss_you"], channel, "wait_7d"),
                                   {"id": "wait_7d", "type": "wait", "minutes": 7 * 24 * 60, "next": "clicked"},
                                   {"id": "clicked", "type": "branch", "engaged": "clicked", "else_next": "coupon" if promotion else None}]
    if promotion:
        steps += [{"id": "coupon", "type": "give_coupon", "promotion": promotion, "valid_days": 14, "next": "send_coupon"},
                  _send("send_coupon", t["coupon"], channel)]
    else:
        steps[-1].pop("else_next")
    return {"trigger": {"type": "date", "trait": "last_order", "days_after": 90}, "goal": {"type": "order"},
            "reentry": {"policy": "after_days", "days": 90}, "steps": steps}


def _birthday(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    return {"trigger": {"type": "date", "trait": "birthday", "annual": True, "at": "10:00"},
            "reentry": {"policy": "after_days", "days": 300},
            "steps": [{"id": "gift", "type": "give_points", "points": 200, "comment": "Birthday gift", "next": "greet"},
                      _send("greet", t["greet"], channel)]}


def _store_visit(t: dict[str, int], promotion: str | None, channel: str | None) -> dict[str, Any]:
    return {"trigger": {"type": "event", "name": "Store Entered"}, "reentry": {"policy": "after_days", "days": 1},
            "steps": [{"id": "coupon", "type": "give_coupon", "promotion": promotion, "valid_days": 1, "store_from_context": True,
                       "next": "offer"}, _send("offer", t["offer"], channel)]}


READY: dict[str, Ready] = {
    "abandoned_cart": Ready(
        {"ru": "Брошенная корзина", "en": "Abandoned cart"},
        "An hour after a product is added to the cart and nothing is ordered, a reminder with the cart's lines (as a push "
        "notification to the person's app or browser, and on their best channel, e.g. email); a personal coupon after a day "
        "more if there is still no order. An order in any channel ends it.",
        {"reminder": {"ru": {"subject": "Вы кое-что оставили в корзине", "url": "{{ cart.url }}",
                             "text": "{{ person.first_name or 'Здравствуйте' }}, товары ждут вас:\n" + CART_LINES_RU + STORE_RU,
                             "html": "<p>{{ person.first_name or 'Здравствуйте' }}, товары ждут вас:</p>" + CART_HTML.replace("{{ button }}", "Оформить заказ")
                             + _html(STORE_RU)},
                      "en": {"subject": "You left something in your cart", "url": "{{ cart.url }}",
                             "text": "{{ person.first_name or 'Hello' }}, your items are waiting:\n" + CART_LINES_EN + STORE_EN,
                             "html": "<p>{{ person.first_name or 'Hello' }}, your items are waiting:</p>" + CART_HTML.replace("{{ button }}", "Check out")
                             + _html(STORE_EN)}},
         "coupon": {"ru": {"subject": "Ваш персональный купон", "text": "Купон {{ coupon.code }} на {{ coupon.name }} действует до {{ coupon.valid_until|date }}.\n{{ cart.url }}"},
                    "en": {"subject": "Your personal coupon", "text": "Coupon {{ coupon.code }} for {{ coupon.name }} is valid until {{ coupon.valid_until|date }}.\n{{ cart.url }}"}}},
        _abandoned_cart),
    "browse_abandonment": Ready(
        {"ru": "Просмотр без покупки", "en": "Browse abandonment"},
        "Two hours after a product page is viewed, with nothing in the cart and no order, a reminder of the product.",
        {"reminder": {"ru": {"text": "Вы смотрели {{ event.properties.name or 'товар' }}. Он всё ещё в наличии: {{ event.properties.url }}"},
                      "en": {"text": "You looked at {{ event.properties.name or 'a product' }}. It is still in stock: {{ event.properties.url }}"}}},
        _browse),
    "back_in_stock": Ready(
        {"ru": "Снова в наличии в вашем магазине", "en": "Back in stock at your store"},
        "When a product someone asked about is back in their store (a `Back In Stock` event), they are told at once.",
        {"back": {"ru": {"text": "{{ event.properties.name or event.properties.sku }} снова в наличии в магазине {{ event.properties.store }}."},
                  "en": {"text": "{{ event.properties.name or event.properties.sku }} is back in stock at {{ event.properties.store }}."}}},
        _back_in_stock),
    "post_purchase_nps": Ready(
        {"ru": "Оценка после покупки (NPS)", "en": "Post-purchase NPS"},
        "Three days after an order is completed, the question: how likely are you to recommend us (0-10)? The answer comes "
        "back to the inbox as a reply.",
        {"ask": {"ru": {"text": "{{ person.first_name or 'Здравствуйте' }}, насколько вероятно, что вы порекомендуете нас друзьям? Ответьте числом от 0 до 10."},
                 "en": {"text": "{{ person.first_name or 'Hello' }}, how likely are you to recommend us to a friend? Reply with a number from 0 to 10."}}},
        _nps),
    "first_purchase_welcome": Ready(
        {"ru": "Приветствие после первой покупки", "en": "First-purchase welcome"},
        "A day after a person's first order, a welcome with their points.",
        {"welcome": {"ru": {"text": "Спасибо за первую покупку! У вас {{ points.available }} баллов: ими можно оплатить до части следующего заказа в любом канале."},
                     "en": {"text": "Thank you for your first purchase! You have {{ points.available }} points to spend on your next order in any channel."}}},
        _welcome),
    "win_back": Ready(
        {"ru": "Возвращение клиентов", "en": "Win-back"},
        "90 days after a person's last order: we miss you, with products recommended for them; a week later, if they did not "
        "click, a personal coupon.",
        {"miss_you": {"ru": {"text": "{{ person.first_name or 'Здравствуйте' }}, давно вас не видели. Загляните к нам: {{ shop_url }}"
                             + PICKS_RU},
                      "en": {"text": "{{ person.first_name or 'Hello' }}, we have not seen you for a while. Come and see what is new: {{ shop_url }}"
                             + PICKS_EN}},
         "coupon": {"ru": {"text": "Для вас купон {{ coupon.code }} до {{ coupon.valid_until|date }}."},
                    "en": {"text": "A coupon for you: {{ coupon.code }}, valid until {{ coupon.valid_until|date }}."}}},
        _win_back),
    "birthday": Ready(
        {"ru": "День рождения", "en": "Birthday"},
        "On the birthday trait's day, 200 bonus points and a greeting.",
        {"greet": {"ru": {"text": "С днём рождения, {{ person.first_name or 'дорогой клиент' }}! Мы начислили вам 200 баллов. Сейчас на счёте {{ points.available }}."},
                   "en": {"text": "Happy birthday, {{ person.first_name or 'dear customer' }}! We added 200 points: you now have {{ points.available }}."}}},
        _birthday),
    "store_visit": Ready(
        {"ru": "Визит в магазин", "en": "Store visit"},
        "When the app or a beacon reports that a person entered a store, a personal offer valid today.",
        {"offer": {"ru": {"text": "Рады видеть вас в магазине! Только сегодня ваш купон {{ coupon.code }}: {{ coupon.name }}."},
                   "en": {"text": "Welcome to the store! Today only, your coupon {{ coupon.code }}: {{ coupon.name }}."}}},
        _store_visit, needs_promotion=True),
}


#: How a ready-made journey's message templates are named, in each language.
MESSAGE_NAMES = {
    "reminder": {"ru": "напоминание", "en": "reminder"}, "coupon": {"ru": "купон", "en": "coupon"},
    "back": {"ru": "снова в наличии", "en": "back in stock"}, "ask": {"ru": "вопрос", "en": "question"},
    "welcome": {"ru": "приветствие", "en": "welcome"}, "miss_you": {"ru": "скучаем", "en": "we miss you"},
    "greet": {"ru": "поздравление", "en": "greeting"}, "offer": {"ru": "предложение", "en": "offer"},
}


def message_name(key: str, locale: str) -> str:
    names = MESSAGE_NAMES.get(key, {})
    return names.get(locale) or names.get("en") or key


def ready(name: str) -> Ready:
    found = READY.get(name)
    if found is None:
        raise Unprocessable(f"No ready-made journey {name!r}", code="unknown_journey_template", details={"known": sorted(READY)})
    return found
