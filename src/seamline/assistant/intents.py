"""The intents the bot knows and the answers it gives by default, in Russian and English.

Each answer is a Jinja2 template (sandboxed) the business may replace in the console
(`assistant_answer`); the variables each one gets are listed in `VARIABLES`. An intent that
reads a person's data (`PERSONAL`) is answered only to someone identified (see `service.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Intent:
    name: str
    #: It reads the person's own data: answered only once they are identified.
    personal: bool = False
    #: Human-only by default (the business may change it in the console).
    human_only: bool = False


INTENTS: dict[str, Intent] = {i.name: i for i in (
    Intent("greeting"),
    Intent("thanks"),
    Intent("order_status", personal=True),
    Intent("pickup", personal=True),
    Intent("extend_hold", personal=True),
    Intent("store_hours"),
    Intent("stock"),
    Intent("back_in_stock", personal=True),
    Intent("points", personal=True),
    Intent("loyalty_card", personal=True),
    Intent("returns"),
    Intent("delivery_options"),
    Intent("change_address", personal=True, human_only=True),
    Intent("human"),
    Intent("out_of_scope"),
)}

#: Topic labels shown to agents and in the console, in both languages.
TOPIC_NAMES: dict[str, dict[str, str]] = {
    "greeting": {"ru": "Приветствие", "en": "Greeting"},
    "thanks": {"ru": "Благодарность", "en": "Thanks"},
    "order_status": {"ru": "Статус заказа", "en": "Order tracking"},
    "pickup": {"ru": "Самовывоз и код получения", "en": "Pickup and collection code"},
    "extend_hold": {"ru": "Продление хранения", "en": "Longer pickup hold"},
    "store_hours": {"ru": "Часы работы магазинов", "en": "Store hours"},
    "stock": {"ru": "Наличие товара", "en": "Product stock"},
    "back_in_stock": {"ru": "Сообщить о поступлении", "en": "Back in stock alert"},
    "points": {"ru": "Баллы", "en": "Points"},
    "loyalty_card": {"ru": "Карта лояльности", "en": "Loyalty card"},
    "returns": {"ru": "Возврат и обмен", "en": "Returns and exchanges"},
    "delivery_options": {"ru": "Доставка", "en": "Delivery options"},
    "change_address": {"ru": "Смена адреса доставки", "en": "Delivery address change"},
    "human": {"ru": "Просьба позвать человека", "en": "Asked for a person"},
    "out_of_scope": {"ru": "Не по теме", "en": "Out of scope"},
}

#: Why the bot handed a conversation over, in both languages.
HANDOVER_REASONS: dict[str, dict[str, str]] = {
    "requested": {"ru": "клиент попросил человека", "en": "the customer asked for a person"},
    "misunderstood": {"ru": "бот дважды не понял", "en": "the bot did not understand twice"},
    "low_confidence": {"ru": "бот не уверен в ответе", "en": "the bot was not sure"},
    "human_only": {"ru": "тема только для людей", "en": "a topic for people only"},
    "action_failed": {"ru": "бот не смог выполнить действие", "en": "the bot could not do it"},
    "not_identified": {"ru": "клиент не подтвердил личность", "en": "the customer could not be identified"},
    "attachment": {"ru": "клиент прислал файл", "en": "the customer sent a file"},
    "error": {"ru": "ошибка бота", "en": "the bot failed"},
}

ORDER_STATUSES: dict[str, dict[str, str]] = {
    "pending_payment": {"ru": "ожидает оплаты", "en": "waiting for payment"},
    "confirmed": {"ru": "подтверждён и собирается", "en": "confirmed and being prepared"},
    "ready_for_pickup": {"ru": "готов к выдаче", "en": "ready for pickup"},
    "shipped": {"ru": "передан в доставку", "en": "shipped"},
    "completed": {"ru": "получен", "en": "completed"},
    "cancelled": {"ru": "отменён", "en": "cancelled"},
    "returned": {"ru": "возвращён", "en": "returned"},
}

#: The bot's texts: {key: {"ru": template, "en": template}}. A key is an intent's answer
#: (`order_status`), one of its cases (`order_status.none`), or a step of the conversation.
ANSWERS: dict[str, dict[str, str]] = {
    "greeting": {
        "ru": "Здравствуйте! Я бот поддержки. Спросите про заказ, самовывоз, наличие товара, баллы, возврат или доставку — "
              "или напишите «оператор», чтобы позвать человека.",
        "en": "Hello! I am the support bot. Ask me about an order, pickup, stock, points, returns or delivery — "
              "or write \"agent\" to talk to a person."},
    "thanks": {"ru": "Рады помочь! Если появятся вопросы — пишите.", "en": "Happy to help! Write any time."},
    "order_status": {
        "ru": "Заказ №{{ order.number }} от {{ order.date }}: {{ order.status }}."
              "{% if order.pickup_code %} Код получения: {{ order.pickup_code }}.{% endif %}"
              "{% if order.store %} Магазин: {{ order.store }}{% if order.store_hours %}, сегодня {{ order.store_hours }}{% endif %}.{% endif %}"
              "{% if order.hold_until %} Заказ ждёт вас до {{ order.hold_until }}.{% endif %}"
              "{% if order.shipped_at %} Передан в доставку {{ order.shipped_at }}.{% endif %}"
              "{% if others %} Другие заказы: {{ others }}.{% endif %}",
        "en": "Order #{{ order.number }} of {{ order.date }}: {{ order.status }}."
              "{% if order.pickup_code %} Pickup code: {{ order.pickup_code }}.{% endif %}"
              "{% if order.store %} Store: {{ order.store }}{% if order.store_hours %}, today {{ order.store_hours }}{% endif %}.{% endif %}"
              "{% if order.hold_until %} It waits for you until {{ order.hold_until }}.{% endif %}"
              "{% if order.shipped_at %} Shipped on {{ order.shipped_at }}.{% endif %}"
              "{% if others %} Other orders: {{ others }}.{% endif %}"},
    "order_status.none": {
        "ru": "Я не нашёл ваших заказов.",
        "en": "I found no orders of yours."},
    "pickup": {
        "ru": "Заказ №{{ order.number }}: {{ order.status }}. Код получения: {{ order.pickup_code }}."
              "{% if order.store %} Забрать можно в магазине {{ order.store }}{% if order.store_address %} ({{ order.store_address }}){% endif %}"
              "{% if order.store_hours %}, сегодня {{ order.store_hours }}{% endif %}.{% endif %}"
              "{% if order.hold_until %} Заказ ждёт вас до {{ order.hold_until }}.{% endif %}",
        "en": "Order #{{ order.number }}: {{ order.status }}. Pickup code: {{ order.pickup_code }}."
              "{% if order.store %} Collect it at {{ order.store }}{% if order.store_address %} ({{ order.store_address }}){% endif %}"
              "{% if order.store_hours %}, open today {{ order.store_hours }}{% endif %}.{% endif %}"
              "{% if order.hold_until %} It waits for you until {{ order.hold_until }}.{% endif %}"},
    "pickup.none": {
        "ru": "У вас нет заказов, ожидающих самовывоза.{% if latest %} Последний заказ №{{ latest.number }}: {{ latest.status }}.{% endif %}",
        "en": "You have no order waiting for pickup.{% if latest %} Your latest order #{{ latest.number }}: {{ latest.status }}.{% endif %}"},
    "extend_hold": {
        "ru": "Готово: заказ №{{ order.number }} будет ждать вас до {{ order.hold_until }}. Продлить хранение можно один раз.",
        "en": "Done: order #{{ order.number }} will wait for you until {{ order.hold_until }}. A hold can be extended once."},
    "extend_hold.already": {
        "ru": "Хранение заказа №{{ order.number }} уже продлено до {{ order.hold_until }}; продлить ещё раз может только сотрудник — передаю вопрос.",
        "en": "The hold of order #{{ order.number }} was already extended until {{ order.hold_until }}; only a person can extend it again — I am passing this on."},
    "extend_hold.none": {
        "ru": "У вас нет заказов, ожидающих самовывоза, — продлевать нечего.",
        "en": "You have no order waiting for pickup, so there is nothing to extend."},
    "store_hours": {
        "ru": "{% for store in stores %}{{ store.name }}{% if store.address %}, {{ store.address }}{% endif %}: {{ store.hours }}\n{% endfor %}",
        "en": "{% for store in stores %}{{ store.name }}{% if store.address %}, {{ store.address }}{% endif %}: {{ store.hours }}\n{% endfor %}"},
    "stock": {
        "ru": "{{ product }}: {% if here %}есть в магазине {{ here.name }} ({{ here.available }} шт.){% else %}в {{ store or 'вашем магазине' }} сейчас нет{% endif %}."
              "{% if elsewhere %} Есть также: {{ elsewhere }}.{% endif %}"
              "{% if not here and not elsewhere %} Хотите, сообщу, когда появится? Ответьте «да».{% endif %}",
        "en": "{{ product }}: {% if here %}in stock at {{ here.name }} ({{ here.available }}){% else %}not in stock at {{ store or 'your store' }} now{% endif %}."
              "{% if elsewhere %} Also at: {{ elsewhere }}.{% endif %}"
              "{% if not here and not elsewhere %} Shall I tell you when it is back? Reply \"yes\".{% endif %}"},
    "stock.which": {
        "ru": "Какой товар вас интересует? Напишите его название.",
        "en": "Which product do you mean? Write its name."},
    "back_in_stock": {
        "ru": "Хорошо, сообщу сюда, как только {{ product }} появится{% if store %} в магазине {{ store }}{% endif %}.",
        "en": "All right, I will write here as soon as {{ product }} is back{% if store %} at {{ store }}{% endif %}."},
    "back_in_stock.available": {
        "ru": "{{ product }} уже есть в наличии{% if store %} в магазине {{ store }}{% endif %} — можно заказывать!",
        "en": "{{ product }} is in stock already{% if store %} at {{ store }}{% endif %} — you can order it now!"},
    "back_in_stock.notice": {
        "ru": "{{ product }} снова в наличии{% if store %} в магазине {{ store }}{% endif %}!",
        "en": "{{ product }} is back in stock{% if store %} at {{ store }}{% endif %}!"},
    "points": {
        "ru": "У вас {{ points }} баллов{% if value %} (это {{ value }}){% endif %}.{% if pending %} Ещё {{ pending }} баллов начислятся позже.{% endif %}"
              "{% if expiring %} Сгорят: {{ expiring }}.{% endif %}{% if tier %} Уровень: {{ tier }}.{% endif %}",
        "en": "You have {{ points }} points{% if value %} (worth {{ value }}){% endif %}.{% if pending %} {{ pending }} more points are on their way.{% endif %}"
              "{% if expiring %} Expiring: {{ expiring }}.{% endif %}{% if tier %} Tier: {{ tier }}.{% endif %}"},
    "points.none": {
        "ru": "У вас пока нет бонусного счёта. Он откроется с первой покупкой или при выпуске карты.",
        "en": "You have no points account yet. It opens with your first purchase or when a card is issued."},
    "loyalty_card": {
        "ru": "{% if cards %}Ваша карта: {{ cards }}. Покажите её номер на кассе или назовите телефон.{% else %}У вас нет карты лояльности. "
              "Её можно получить в любом магазине или в приложении; на кассе достаточно назвать телефон.{% endif %}",
        "en": "{% if cards %}Your card: {{ cards }}. Show its number at the till or give your phone.{% else %}You have no loyalty card. "
              "Get one in any store or in the app; at the till your phone number is enough.{% endif %}"},
    "returns": {
        "ru": "Вернуть или обменять товар можно в течение 14 дней в любом нашем магазине или курьером: нужен товар в "
              "товарном виде и номер заказа. Деньги вернутся тем же способом оплаты.{% if order %} Оформить возврат "
              "по заказу №{{ order.number }}? Ответьте «да».{% endif %}",
        "en": "You can return or exchange an item within 14 days in any of our stores or by courier: bring it unused with "
              "the order number. The money goes back the way you paid.{% if order %} Shall I start a return for order "
              "#{{ order.number }}? Reply \"yes\".{% endif %}"},
    "returns.started": {
        "ru": "Возврат по заказу №{{ order.number }} оформлен (заявка {{ request }}). Принесите товар в любой магазин и "
              "назовите номер заказа — сотрудник уже видит заявку.",
        "en": "A return for order #{{ order.number }} is started (request {{ request }}). Bring the item to any store with "
              "the order number — the staff can see the request."},
    "delivery_options": {
        "ru": "Доставляем курьером (1–3 дня, бесплатно от 3 000 ₽, иначе 299 ₽) и в пункты выдачи. Самовывоз из "
              "магазина — бесплатно, обычно в тот же день.{% if points %} Пункты выдачи: {{ points }}.{% endif %}",
        "en": "We deliver by courier (1–3 days, free from 3,000 ₽, else 299 ₽) and to pickup points. Collecting from a "
              "store is free, usually the same day.{% if points %} Pickup points: {{ points }}.{% endif %}"},
    "change_address": {
        "ru": "Адрес доставки меняет сотрудник — передаю ваш вопрос.",
        "en": "A person changes delivery addresses — I am passing your question on."},
    "human": {
        "ru": "Зову сотрудника — он увидит всю переписку, повторять ничего не нужно.",
        "en": "Calling a person — they will see this whole conversation, no need to repeat anything."},
    "handover": {
        "ru": "Передаю вопрос сотруднику — он увидит всю переписку, повторять ничего не нужно.",
        "en": "I am passing this to a person — they will see this whole conversation, no need to repeat anything."},
    "not_understood": {
        "ru": "Извините, я не понял вопрос. Я могу рассказать о заказе, самовывозе, наличии товара, баллах, возврате и "
              "доставке. Переформулируйте, пожалуйста, или напишите «оператор».",
        "en": "Sorry, I did not understand. I can help with an order, pickup, stock, points, returns and delivery. "
              "Please rephrase, or write \"agent\"."},
    "identify": {
        "ru": "Чтобы показать ваши данные, подтвердите, что это вы: напишите телефон или email, на который оформлены "
              "заказы, — я пришлю одноразовый код.",
        "en": "To show your details I need to confirm it is you: write the phone or email your orders are under, and "
              "I will send a one-time code."},
    "identify.other": {
        "ru": "Если заказы, баллы или карта оформлены на телефон или email — напишите его, я пришлю код подтверждения.",
        "en": "If your orders, points or card are under a phone or email, write it and I will send a code to confirm."},
    "identify.sent": {
        "ru": "Если {{ masked }} есть у нас, на него уже отправлен код. Напишите его сюда.",
        "en": "If we know {{ masked }}, a code is on its way there. Please write it here."},
    "identify.wrong": {
        "ru": "Код не подошёл{% if left %}: осталось попыток — {{ left }}{% endif %}. Проверьте и напишите ещё раз.",
        "en": "That code did not match{% if left %}: {{ left }} attempts left{% endif %}. Please check it and try again."},
    "identify.expired": {
        "ru": "Код больше не действует. Напишите телефон или email ещё раз — пришлю новый.",
        "en": "That code is no longer valid. Write your phone or email again and I will send a new one."},
    "identify.failed": {
        "ru": "Не получилось отправить код на этот адрес. Передаю вопрос сотруднику.",
        "en": "I could not send a code there. I am passing your question to a person."},
    "identify.done": {
        "ru": "Спасибо, вы подтвердили личность.",
        "en": "Thank you, you are confirmed."},
    "action.cancelled": {
        "ru": "Хорошо, не буду. Чем ещё помочь?",
        "en": "All right, I will not. Anything else?"},
}

#: The variables each answer's template is given (shown in the console beside the editor).
VARIABLES: dict[str, list[str]] = {
    "order_status": ["order.number", "order.date", "order.status", "order.pickup_code", "order.store", "order.store_hours",
                     "order.hold_until", "order.shipped_at", "order.total", "others"],
    "pickup": ["order.number", "order.status", "order.pickup_code", "order.store", "order.store_address", "order.store_hours",
               "order.hold_until"],
    "pickup.none": ["latest.number", "latest.status"],
    "extend_hold": ["order.number", "order.hold_until"],
    "extend_hold.already": ["order.number", "order.hold_until"],
    "store_hours": ["stores[].name", "stores[].address", "stores[].hours"],
    "stock": ["product", "store", "here.name", "here.available", "elsewhere"],
    "back_in_stock": ["product", "store"],
    "back_in_stock.available": ["product", "store"],
    "back_in_stock.notice": ["product", "store"],
    "points": ["points", "value", "pending", "expiring", "tier"],
    "loyalty_card": ["cards"],
    "returns": ["order.number"],
    "returns.started": ["order.number", "request"],
    "delivery_options": ["points"],
    "identify.sent": ["masked"],
    "identify.wrong": ["left"],
}
