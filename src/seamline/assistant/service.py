"""The bot: a participant of the inbox that answers typical questions with live data and hands
over to people (docs/assistant.md).

`respond` is the inbox's `Responder` (registered by the composition root). It runs inside the
transaction that stores the customer's message, in a savepoint of its own (`inbox.service`): its
reply is queued with the message, or, if it fails, nothing it wrote remains and the conversation
goes to the queue. So the answer is queued within milliseconds of the message and never lost.

Who may read what: a person's own data (orders, pickup codes, points, cards) is answered only
when the message comes from an identifier the provider vouches for (a Telegram, WhatsApp, VK or
Viber account, an SMS sender, a web chat session with a valid `userHash`) and so belongs to the
conversation's profile, or after the person proved a phone or email with a one-time code in this
conversation (the code goes to that phone or email, never to the chat; `customers.login_codes`).
The proof also links the chat's account to that person, so their next question is answered
at once. Anyone else gets only public answers: store hours, stock, delivery, return rules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from seamline.assistant import nlu
from seamline.assistant.intents import ANSWERS, HANDOVER_REASONS, INTENTS, ORDER_STATUSES, TOPIC_NAMES
from seamline.assistant.models import (
    AssistantAnswer,
    AssistantPhrase,
    AssistantState,
    AssistantStockWatch,
    AssistantTopic,
    AssistantTurn,
)
from seamline.commerce import orders as commerce_orders
from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrder,
    CommerceProduct,
    CommerceStock,
    CommerceVariant,
)
from seamline.core.config import Settings
from seamline.core.errors import AppError
from seamline.core.formats import Formats
from seamline.core.time import utcnow
from seamline.customers import login_codes, resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import DEVICE_TYPES, IdentifierRules
from seamline.inbox import service as inbox
from seamline.inbox.adapters import InboundMessage
from seamline.inbox.models import InboxConversation, InboxMessage
from seamline.loyalty import ledger as loyalty_ledger
from seamline.loyalty import service as loyalty_service
from seamline.recommendations import service as recommendations_service

log = structlog.get_logger("seamline.assistant")

#: Channels whose sender the provider vouches for (see the module's docstring). Email is not one:
#: a From header can be forged.
VOUCHED_CHANNELS = frozenset({"telegram", "whatsapp", "vk", "viber", "sms"})
YES = frozenset({"да", "ага", "угу", "давай", "давайте", "конечно", "хорошо", "ок", "ok", "okay", "yes", "yep", "yeah",
                 "sure", "please", "da", "go", "оформи", "оформите", "хочу", "сообщите", "сообщи"})
NO = frozenset({"нет", "не", "не надо", "no", "nope", "net", "отмена", "cancel", "не нужно"})
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PICKUP_FULFILMENT = ("click_and_collect", "pickup_point")
#: One-time codes a conversation may have sent before a person takes over.
MAX_CODES = 3


# --- the model -------------------------------------------------------------------------------------

_models: dict[str, nlu.IntentModel] = {}
_model_lock = threading.Lock()


def phrases(session: Session) -> dict[str, dict[str, list[str]]]:
    """The shipped example phrases and the business's, by intent and language."""
    merged = {intent: {lang: list(texts) for lang, texts in by_lang.items()} for intent, by_lang in nlu.shipped_phrases().items()}
    for intent, lang, text in session.execute(select(AssistantPhrase.intent, AssistantPhrase.lang, AssistantPhrase.text)):
        if intent in INTENTS:
            merged.setdefault(intent, {}).setdefault(lang, []).append(text)
    return merged


@dataclass
class Edits:
    """What the business changed (answers, topics, the phrases' fingerprint), read at most once
    per `EDITS_SECONDS` per process: a turn does not pay three queries for rows that change a
    few times a year, and an edit in the console is live within seconds everywhere."""

    answers: dict[tuple[str, str], str]
    topics: dict[str, AssistantTopic]
    phrases: str
    read_at: float


EDITS_SECONDS = 5.0
_edits: list[Edits] = []


def edits(session: Session, *, fresh: bool = False) -> Edits:
    current = _edits[0] if _edits else None
    if current is not None and not fresh and time.monotonic() - current.read_at < EDITS_SECONDS:
        return current
    # The newest id alone is not enough: SQLite gives a deleted newest row's id to the next one.
    count, newest, latest = session.execute(select(func.count(), func.max(AssistantPhrase.id),
                                                   func.max(AssistantPhrase.created_at))).one()
    topics = {row.intent: AssistantTopic(intent=row.intent, human_only=row.human_only, skill=row.skill)
              for row in session.scalars(select(AssistantTopic))}
    answers = {(key, lang): template for key, lang, template in session.execute(
        select(AssistantAnswer.key, AssistantAnswer.lang, AssistantAnswer.template))}
    current = Edits(answers=answers, topics=topics, phrases=f"{count}:{newest}:{latest}", read_at=time.monotonic())
    _edits[:] = [current]
    return current


def forget_edits() -> None:
    """The next turn reads the business's edits again (after an edit in this process)."""
    _edits.clear()


def model(session: Session) -> nlu.IntentModel:
    """The intent model for the current phrases: trained once per process, and again after the
    business changes the phrases (their count and newest id are the fingerprint)."""
    fingerprint = edits(session).phrases
    found = _models.get(fingerprint)
    if found is not None:
        return found
    with _model_lock:
        found = _models.get(fingerprint)
        if found is None:
            found = nlu.IntentModel.fit(phrases(session), fingerprint=fingerprint)
            _models.clear()
            _models[fingerprint] = found
            log.info("assistant model trained", examples=found.examples, seconds=round(found.seconds, 3))
    return found


def warm(database: Any, settings: Settings) -> None:
    """Train the intent model now (about 0.3 s), so the first message after a start is answered
    as fast as the rest: a server or worker calls it at start when the bot is on."""
    if settings.assistant_enabled:
        with database.read() as session:
            model(session)


# --- texts ------------------------------------------------------------------------------------------

_templates = ImmutableSandboxedEnvironment(autoescape=False, trim_blocks=True)


def answer_template(session: Session, key: str, lang: str) -> str:
    return edits(session).answers.get((key, lang)) or ANSWERS[key][lang]


def render(session: Session, key: str, lang: str, context: dict[str, Any] | None = None) -> str:
    """An answer in `lang`: the business's template if they wrote one, else the default; a
    template that fails or says nothing falls back to the default. Empty when that says nothing
    either (no stores to list): the turn then hands over (`Turn.answer`), never a template's
    source to a customer."""
    for template in (answer_template(session, key, lang), ANSWERS[key][lang]):
        try:
            text = _templates.from_string(template).render(**(context or {})).strip()
        except TemplateError as exc:
            log.warning("assistant answer template failed; using the default", key=key, lang=lang, error=str(exc)[:200])
            continue
        if text:
            return text
    return ""


def check_template(template: str) -> None:
    """Raise `TemplateError` when the business's template does not parse."""
    _templates.parse(template)


def topic_settings(session: Session) -> dict[str, AssistantTopic]:
    return edits(session).topics


def human_only(topics: dict[str, AssistantTopic], intent: str) -> bool:
    row = topics.get(intent)
    return row.human_only if row is not None else INTENTS[intent].human_only


# --- one turn ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What a turn comes to: the text to send (None: nothing), a handover, and how to record it."""

    text: str | None
    outcome: str = "answered"
    handover: inbox.Handover | None = None
    pending: dict[str, Any] | None = None
    topic: str | None = None


@dataclass
class Turn:
    session: Session
    settings: Settings
    conversation: InboxConversation
    state: AssistantState
    message: InboxMessage
    inbound: InboundMessage
    lang: str = "ru"
    person_id: int = 0
    facts: list[str] = field(default_factory=list)
    prediction: nlu.Prediction | None = None

    # -- who is writing --

    def vouched(self) -> bool:
        """The message comes from an identifier its provider vouches for (module docstring)."""
        inbound = self.inbound
        if inbound.channel == "webchat":
            return inbound.customer_id is not None and inbound.continue_within is None
        if inbound.channel not in VOUCHED_CHANNELS:
            return False
        claimed = set(inbound.claimed)
        return any(i not in claimed and i[0] not in DEVICE_TYPES for i in inbound.identifiers)

    def identified(self) -> bool:
        if self.state.verified_profile_id is not None:
            verified = resolution.canonical_profile(self.session, self.state.verified_profile_id).id
            if verified == self.person_id:
                return True
        return self.vouched()

    def profile_ids(self) -> list[int]:
        return customers_service.merged_profile_ids(self.session, self.person_id)

    @property
    def fmt(self) -> Formats:
        return Formats(self.lang)

    def say(self, key: str, context: dict[str, Any] | None = None) -> str:
        return render(self.session, key, self.lang, context)

    # -- the dialogue --

    def run(self, prediction: nlu.Prediction | None = None) -> Reply:
        text = (self.message.text or "").strip()
        if prediction is None:
            pending = self.state.pending or {}
            if pending:
                reply = self.continue_pending(pending, text)
                if reply is not None:
                    return reply
            if self.inbound.attachments or self.inbound.attachment_ids:
                # A photo of a damaged item, a receipt: a person looks at files, the bot does not.
                return self.hand_over("attachment", topic=None, say="handover")
            if not text:
                return self.not_understood(None)
            if _only_contact(text):  # a phone or an email on its own: they want to be recognised
                reply = self.on_identifier({"intent": (self.state.topics or [None])[-1]}, text)
                if reply is not None:
                    return reply
            prediction = model(self.session).predict(text)
            deferred = _ask_llm(self, prediction)
            if deferred is not None:
                return deferred
        self.prediction = prediction
        self.lang = prediction.lang if text else self.lang
        self.state.pending = None
        intent, confidence = prediction.intent, prediction.confidence
        if confidence < self.settings.assistant_unsure_confidence or intent == nlu.OUT_OF_SCOPE:
            return self.not_understood(prediction)
        if confidence < self.settings.assistant_confidence:
            return self.hand_over("low_confidence", topic=intent, say="handover")
        self.state.misunderstood = 0
        topics = topic_settings(self.session)
        if intent == "human":
            return self.hand_over("requested", topic=None, say="human")
        if human_only(topics, intent):
            return self.hand_over("human_only", topic=intent, say="change_address" if intent == "change_address" else "handover")
        if INTENTS[intent].personal and not self.identified():
            return self.ask_identity(intent)
        return self.answer(intent, text)

    def answer(self, intent: str, text: str) -> Reply:
        handler: Callable[[str], Reply] = getattr(self, f"on_{intent}", None) or (lambda _text: Reply(self.say(intent), topic=intent))
        reply = handler(text)
        reply.topic = reply.topic or intent
        if not reply.text and reply.handover is None:  # nothing to say (no stores to list): a person answers
            return self.hand_over("action_failed", topic=intent, say="handover")
        return reply

    def continue_pending(self, pending: dict[str, Any], text: str) -> Reply | None:
        """The answer to what the bot asked, or None when the message is about something else."""
        step = pending.get("step")
        if step == "identifier":
            return self.on_identifier(pending, text)
        if step == "code":
            return self.on_code(pending, text)
        if step == "confirm":
            words = nlu.fold(text)
            if words in YES or words.split(" ")[0] in YES:
                self.state.pending = None
                return self.confirmed(pending)
            if words in NO or words.split(" ")[0] in NO:
                self.state.pending = None
                return Reply(self.say("action.cancelled"), topic=pending.get("intent"))
            return None
        if step == "product":
            product = self.product_named(text)
            if product is None:
                return None
            self.state.pending = None
            return self.on_stock(text, product=product) if pending.get("intent") == "stock" else self.on_back_in_stock(text, product=product)
        return None

    def not_understood(self, prediction: nlu.Prediction | None) -> Reply:
        self.state.misunderstood += 1
        if self.state.misunderstood >= 2:
            return self.hand_over("misunderstood", topic=None, say="handover", outcome="not_understood")
        return Reply(self.say("not_understood"), outcome="not_understood")

    def hand_over(self, reason: str, *, topic: str | None, say: str, outcome: str = "handover") -> Reply:
        topics = topic_settings(self.session)
        skill = topics[topic].skill if topic and topic in topics else None
        return Reply(self.say(say), outcome=outcome, topic=topic,
                     handover=inbox.Handover(reason=reason, topic=topic, skill=skill, summary=self.summary(reason, topic)))

    def summary(self, reason: str, topic: str | None) -> str:
        """What the agent reads first, in the inbox's language."""
        lang = "en" if self.settings.inbox_language == "en" else "ru"
        topics = [TOPIC_NAMES[t][lang] for t in [*self.state.topics, *([topic] if topic else [])] if t in TOPIC_NAMES]
        seen = list(dict.fromkeys(topics))
        who = ("identified" if self.identified() else "not identified") if lang == "en" else (
            "личность подтверждена" if self.identified() else "личность не подтверждена")
        last = (self.message.text or "").strip()[:300]
        if lang == "en":
            parts = [f"Bot: handed over because {HANDOVER_REASONS[reason]['en']}.",
                     f"Topics: {', '.join(seen) or '—'}.", f"Customer: {who}.", f"Last message: «{last}»."]
        else:
            parts = [f"Бот: передал, потому что {HANDOVER_REASONS[reason]['ru']}.",
                     f"Темы: {', '.join(seen) or '—'}.", f"Клиент: {who}.", f"Последнее сообщение: «{last}»."]
        return " ".join(parts + list(dict.fromkeys([*(self.state.facts or []), *self.facts])))

    # -- identity --

    def ask_identity(self, intent: str) -> Reply:
        return Reply(self.say("identify"), outcome="asked", pending={"step": "identifier", "intent": intent}, topic=intent)

    def on_identifier(self, pending: dict[str, Any], text: str) -> Reply | None:
        found = [("phone", p) for p in nlu.phones(text)] + [("email", e) for e in nlu.emails(text)]
        if not found:
            return None
        type_name, value = found[0]
        if (self.state.codes_requested or 0) >= MAX_CODES:
            # Someone naming number after number: the codes would go to their owners; a person
            # looks at it instead (and nobody's phone is flooded from one chat).
            return self.hand_over("not_identified", topic=pending.get("intent"), say="identify.failed")
        self.state.codes_requested = (self.state.codes_requested or 0) + 1
        rules = _rules(self.settings)
        try:
            login_codes.request_code(self.session, settings=self.settings, rules=rules, identifier_type=type_name, value=value)
        except AppError as exc:
            if exc.code == "too_many_codes":
                return self.hand_over("not_identified", topic=pending.get("intent"), say="identify.failed")
            # Not ours, or no way to reach it: answered as if sent, so nobody learns which
            # numbers are customers'; the code that never comes cannot be confirmed.
            log.info("assistant could not send a code", reason=exc.code)
        masked = _mask(type_name, value)
        return Reply(self.say("identify.sent", {"masked": masked}), outcome="asked", topic=pending.get("intent"),
                     pending={"step": "code", "intent": pending.get("intent"), "type": type_name, "value": value, "text": pending.get("text")})

    def on_code(self, pending: dict[str, Any], text: str) -> Reply | None:
        code = nlu.code(text, login_codes.CODE_DIGITS)
        if code is None:
            return None
        rules = _rules(self.settings)
        link = [i for i in self.inbound.identifiers if i not in set(self.inbound.claimed)]
        result = login_codes.verify_code(self.session, rules=rules, identifier_type=pending["type"], value=pending["value"],
                                         code=code, link=link, channel=self.inbound.channel)
        if result.error is not None:
            if result.error.code == "invalid_code" and result.error.details.get("attempts_left"):
                return Reply(self.say("identify.wrong", {"left": result.error.details["attempts_left"]}), outcome="asked",
                             pending=pending, topic=pending.get("intent"))
            return Reply(self.say("identify.expired"), outcome="asked", topic=pending.get("intent"),
                         pending={"step": "identifier", "intent": pending.get("intent")})
        self.state.verified_profile_id = result.customer_id
        self.state.verified_at = utcnow()
        self.person_id = resolution.canonical_profile(self.session, self.conversation.customer_id).id
        if self.person_id != resolution.canonical_profile(self.session, result.customer_id).id:
            # The chat's account could not join that person (their limits): answer for the
            # person who proved the code, in this conversation only.
            self.person_id = resolution.canonical_profile(self.session, result.customer_id).id
        done = self.say("identify.done")
        intent = pending.get("intent")
        if intent in INTENTS and INTENTS[intent].personal:
            reply = self.answer(intent, "")
            reply.text = f"{done} {reply.text}" if reply.text else done
            return reply
        return Reply(done, topic=intent)

    # -- answers with data --

    def orders(self, limit: int = 10) -> list[CommerceOrder]:
        return commerce_orders.orders_of_customer(self.session, self.profile_ids(), limit=limit)

    def named_order(self, orders: list[CommerceOrder], text: str) -> CommerceOrder | None:
        mine = {o.id: o for o in orders}
        for number in nlu.numbers(text):
            if number in mine:
                return mine[number]
        return None

    def order_context(self, order: CommerceOrder) -> dict[str, Any]:
        fmt = self.fmt
        location = self.session.get(CommerceLocation, order.pickup_location_id) if order.pickup_location_id else None
        zone = Formats(self.lang, timezone=location.timezone) if location is not None else fmt
        shipped = None
        if order.status == "shipped":
            shipped = self.session.scalar(select(func.max(commerce_orders.CommerceOrderStatus.created_at)).where(
                commerce_orders.CommerceOrderStatus.order_id == order.id, commerce_orders.CommerceOrderStatus.status == "shipped"))
        waiting = order.status in ("confirmed", "ready_for_pickup")
        return {
            "number": order.id, "date": fmt.date(order.created_at), "status": ORDER_STATUSES.get(order.status, {}).get(self.lang, order.status),
            "pickup_code": order.pickup_code if order.fulfilment in PICKUP_FULFILMENT and waiting else None,
            "store": (location.name_ru if self.lang == "ru" else location.name_en) if location is not None else None,
            "store_address": location.address if location is not None else None,
            "store_hours": _today_hours(location, self.lang) if location is not None and waiting else None,
            "hold_until": zone.datetime(order.reserved_until) if order.status == "ready_for_pickup" and order.reserved_until else None,
            "shipped_at": fmt.date(shipped) if shipped else None,
            "total": fmt.money(order.total, order.currency),
        }

    def on_order_status(self, text: str) -> Reply:
        orders = self.orders()
        if not orders:
            return self.no_orders("order_status")
        order = self.named_order(orders, text) or next((o for o in orders if o.status in commerce_orders.OPEN_STATUSES + ("shipped",)), orders[0])
        others = [o for o in orders[:4] if o.id != order.id and o.status in commerce_orders.OPEN_STATUSES + ("shipped",)]
        others_text = ", ".join(f"№{o.id} — {ORDER_STATUSES.get(o.status, {}).get(self.lang, o.status)}" if self.lang == "ru"
                                else f"#{o.id} — {ORDER_STATUSES.get(o.status, {}).get(self.lang, o.status)}" for o in others)
        self.facts.append(f"{'Order' if self.settings.inbox_language == 'en' else 'Заказ'} {order.id}: {order.status}.")
        return Reply(self.say("order_status", {"order": self.order_context(order), "others": others_text}))

    def no_orders(self, intent: str) -> Reply:
        return self.nothing_yet(intent, key="order_status.none")

    def nothing_yet(self, intent: str, *, key: str | None = None, context: dict[str, Any] | None = None) -> Reply:
        """The person's profile here has none of it: they may be known under another phone or
        email (an app account, a card), so unless they proved one already, offer a code."""
        text = self.say(key or f"{intent}.none", context)
        if self.state.verified_profile_id is None:
            return Reply(f"{text} {self.say('identify.other')}", outcome="asked", pending={"step": "identifier", "intent": intent})
        return Reply(text)

    def waiting_pickup(self, orders: list[CommerceOrder], text: str) -> CommerceOrder | None:
        waiting = [o for o in orders if o.fulfilment in PICKUP_FULFILMENT and o.status in ("confirmed", "ready_for_pickup")]
        named = self.named_order(waiting, text)
        return named or next((o for o in waiting if o.status == "ready_for_pickup"), waiting[0] if waiting else None)

    def on_pickup(self, text: str) -> Reply:
        orders = self.orders()
        if not orders:
            return self.no_orders("pickup")
        order = self.waiting_pickup(orders, text)
        if order is None:
            latest = orders[0]
            return Reply(self.say("pickup.none", {"latest": {"number": latest.id, "status": ORDER_STATUSES.get(latest.status, {}).get(self.lang)}}))
        self.facts.append(f"{'Order' if self.settings.inbox_language == 'en' else 'Заказ'} {order.id}: {order.status}.")
        return Reply(self.say("pickup", {"order": self.order_context(order)}), outcome="acted")

    def on_extend_hold(self, text: str) -> Reply:
        orders = self.orders()
        order = self.waiting_pickup(orders, text) if orders else None
        if order is None or order.status != "ready_for_pickup":
            return Reply(self.say("extend_hold.none"))
        try:
            order, extended = commerce_orders.extend_hold(self.session, order_id=order.id, hours=self.settings.assistant_hold_extension_hours,
                                                          channel=self.inbound.channel)
        except AppError:
            return self.hand_over("action_failed", topic="extend_hold", say="handover")
        context = {"order": self.order_context(order)}
        if not extended:
            reply = self.hand_over("human_only", topic="extend_hold", say="extend_hold.already")
            reply.text = self.say("extend_hold.already", context)
            return reply
        self.facts.append(f"{'Hold of order' if self.settings.inbox_language == 'en' else 'Продлено хранение заказа'} {order.id}.")
        return Reply(self.say("extend_hold", context), outcome="acted")

    def on_points(self, text: str) -> Reply:
        account = loyalty_ledger.find_account(self.session, self.person_id)
        if account is None:
            return self.nothing_yet("points")
        view = loyalty_service.account_view(self.session, account, entry_limit=0)
        fmt = self.fmt
        expiring = ", ".join(f"{fmt.number(e['points'])} — {fmt.date(e['expires_at'])}" for e in view["expiring"][:3])
        return Reply(self.say("points", {
            "points": fmt.number(view["points"]), "value": fmt.money(view["points_value"], view["currency"]) if view["points_value"] else None,
            "pending": fmt.number(view["pending"]) if view["pending"] else None, "expiring": expiring, "tier": view["tier"]}))

    def on_loyalty_card(self, text: str) -> Reply:
        account = loyalty_ledger.find_account(self.session, self.person_id)
        cards = [c for c in (loyalty_service.account_view(self.session, account, entry_limit=0)["cards"] if account else [])
                 if c.get("status", "active") == "active"]
        if not cards:
            return self.nothing_yet("loyalty_card", key="loyalty_card", context={"cards": ""})
        return Reply(self.say("loyalty_card", {"cards": ", ".join(_mask("card", c["number"]) for c in cards)}))

    def on_returns(self, text: str) -> Reply:
        order = None
        if self.identified():
            orders = [o for o in self.orders() if o.status == "completed"]
            order = self.named_order(orders, text) or (orders[0] if orders else None)
        if order is None:
            return Reply(self.say("returns", {}))
        return Reply(self.say("returns", {"order": {"number": order.id}}), outcome="asked",
                     pending={"step": "confirm", "intent": "returns", "action": "start_return", "order_id": order.id})

    def confirmed(self, pending: dict[str, Any]) -> Reply:
        if pending.get("action") == "start_return" and self.identified():
            mine = {o.id for o in self.orders(limit=50)}
            if pending.get("order_id") not in mine:
                return self.hand_over("action_failed", topic="returns", say="handover")
            try:
                order, _ = commerce_orders.request_return(self.session, order_id=pending["order_id"], channel=self.inbound.channel)
            except AppError:
                return self.hand_over("action_failed", topic="returns", say="handover")
            self.facts.append(f"{'Return requested for order' if self.settings.inbox_language == 'en' else 'Оформлен возврат по заказу'} {order.id}.")
            return Reply(self.say("returns.started", {"order": {"number": order.id}, "request": f"R-{order.id}"}), outcome="acted",
                         topic="returns")
        if pending.get("action") == "back_in_stock":
            product = self.session.get(CommerceProduct, pending.get("product_id"))
            if product is not None:
                return self.watch(product, pending.get("location_id"))
        return Reply(self.say("action.cancelled"))

    # -- public answers --

    def stores(self) -> list[CommerceLocation]:
        return list(self.session.scalars(select(CommerceLocation).where(
            CommerceLocation.active.is_(True), CommerceLocation.kind.in_(("store", "pickup_point"))).order_by(CommerceLocation.code)))

    def home_store(self) -> CommerceLocation | None:
        if not self.person_id:
            return None
        try:
            store_id = recommendations_service.person_history(self.session, self.settings, self.person_id)["store_id"]
        except AppError:
            return None
        return self.session.get(CommerceLocation, store_id) if store_id else None

    def store_named(self, text: str) -> CommerceLocation | None:
        """The store or pickup point the message names ("на Тверской", "Arbat store")."""
        found = nlu.place_in(text, {s.id: [s.name_ru, s.name_en] for s in self.stores()})
        return self.session.get(CommerceLocation, found) if found is not None else None

    def on_store_hours(self, text: str) -> Reply:
        named = self.store_named(text)
        home = named or self.home_store()
        stores = [named] if named is not None else sorted(
            (s for s in self.stores() if s.kind == "store"), key=lambda s: (home is None or s.id != home.id, s.code))[:5]
        return Reply(self.say("store_hours", {"stores": [
            {"name": s.name_ru if self.lang == "ru" else s.name_en, "address": s.address, "hours": _week_hours(s, self.lang)}
            for s in stores]}))

    def on_delivery_options(self, text: str) -> Reply:
        points = [s for s in self.stores() if s.kind == "pickup_point" and s.pickup_enabled][:5]
        return Reply(self.say("delivery_options", {"points": ", ".join(
            f"{s.name_ru if self.lang == 'ru' else s.name_en}{f' ({s.address})' if s.address else ''}" for s in points)}))

    def product_named(self, text: str) -> CommerceProduct | None:
        found = nlu.product_in(text, _catalog(self.session))
        return self.session.get(CommerceProduct, found.product_id) if found is not None else None

    def product_name(self, product: CommerceProduct) -> str:
        return product.name_ru if self.lang == "ru" else product.name_en

    def on_stock(self, text: str, *, product: CommerceProduct | None = None) -> Reply:
        product = product or self.product_named(text)
        if product is None:
            return Reply(self.say("stock.which"), outcome="asked", pending={"step": "product", "intent": "stock"})
        home = self.store_named(text) or self.home_store()
        free = _free_by_location(self.session, product.id)
        here = None
        if home is not None and free.get(home.id, 0) > 0:
            here = {"name": self.store_name(home), "available": free[home.id]}
        stores = {s.id: s for s in self.stores()}
        elsewhere = [f"{self.store_name(stores[loc])} ({count})" for loc, count in sorted(free.items(), key=lambda kv: -kv[1])
                     if count > 0 and loc in stores and (home is None or loc != home.id)][:3]
        context = {"product": self.product_name(product), "store": self.store_name(home) if home else None,
                   "here": here, "elsewhere": ", ".join(elsewhere)}
        if here is None and not elsewhere:
            return Reply(self.say("stock", context), outcome="asked", pending={
                "step": "confirm", "intent": "back_in_stock", "action": "back_in_stock", "product_id": product.id,
                "location_id": home.id if home else None})
        return Reply(self.say("stock", context))

    def store_name(self, location: CommerceLocation) -> str:
        return location.name_ru if self.lang == "ru" else location.name_en

    def on_back_in_stock(self, text: str, *, product: CommerceProduct | None = None) -> Reply:
        product = product or self.product_named(text)
        if product is None:
            return Reply(self.say("stock.which"), outcome="asked", pending={"step": "product", "intent": "back_in_stock"})
        home = self.home_store()
        return self.watch(product, home.id if home else None)

    def watch(self, product: CommerceProduct, location_id: int | None) -> Reply:
        location = self.session.get(CommerceLocation, location_id) if location_id else None
        context = {"product": self.product_name(product), "store": self.store_name(location) if location else None}
        free = _free_by_location(self.session, product.id)
        if (free.get(location_id, 0) if location_id else sum(free.values())) > 0:
            return Reply(self.say("back_in_stock.available", context), topic="back_in_stock")
        existing = self.session.scalar(select(AssistantStockWatch.id).where(
            AssistantStockWatch.customer_id == self.person_id, AssistantStockWatch.product_id == product.id,
            AssistantStockWatch.notified_at.is_(None), AssistantStockWatch.cancelled.is_(False)))
        if existing is None:
            self.session.add(AssistantStockWatch(customer_id=self.person_id, conversation_id=self.conversation.id, product_id=product.id,
                                                 location_id=location_id, lang=self.lang, created_at=utcnow()))
        return Reply(self.say("back_in_stock", context), outcome="acted", topic="back_in_stock")


# --- the responder --------------------------------------------------------------------------------


def respond(session: Session, *, settings: Settings, conversation: InboxConversation, message: InboxMessage,
            inbound: InboundMessage) -> bool | inbox.Handover | None:
    """The inbox's `Responder` (see the module's docstring)."""
    if not settings.assistant_enabled or inbound.channel not in settings.assistant_channels or inbound.kind != "message":
        return None
    started = time.perf_counter()
    now = utcnow()
    state = session.get(AssistantState, conversation.id)
    if state is None:
        state = AssistantState(conversation_id=conversation.id, lang="en" if settings.inbox_language == "en" else "ru", misunderstood=0, topics=[], facts=[], turns=0,
                               outcome="open", codes_requested=0, started_at=now, last_turn_at=now)
        session.add(state)
    elif state.outcome != "open":
        state.outcome, state.ended_at, state.handover_reason, state.misunderstood = "open", None, None, 0
    turn = Turn(session=session, settings=settings, conversation=conversation, state=state, message=message, inbound=inbound,
                lang=state.lang or "ru", person_id=resolution.canonical_profile(session, conversation.customer_id).id)
    reply = turn.run()
    return _finish(session, turn, reply, started=started, now=now)


def _finish(session: Session, turn: Turn, reply: Reply, *, started: float, now: datetime) -> bool | inbox.Handover:
    state = turn.state
    state.lang = turn.lang
    state.turns += 1
    state.last_turn_at = now
    if reply.pending is not None:
        state.pending = reply.pending
    if turn.facts:
        state.facts = list(dict.fromkeys([*(state.facts or []), *turn.facts]))[-8:]
    if reply.topic and reply.topic not in (state.topics or []) and reply.topic in INTENTS:
        state.topics = [*(state.topics or []), reply.topic]
    if reply.text:
        inbox.bot_reply(session, settings=turn.settings, conversation=turn.conversation, text=reply.text,
                        meta={"intent": reply.topic, "outcome": reply.outcome})
    if reply.handover is not None:
        state.outcome, state.handover_reason, state.ended_at, state.pending = "handed_over", reply.handover.reason, now, None
    last = turn.prediction
    session.add(AssistantTurn(
        conversation_id=turn.conversation.id, message_id=turn.message.id, customer_id=turn.person_id,
        intent=reply.topic or (last.intent if last else None), confidence=round(last.confidence, 4) if last else 0.0, lang=turn.lang,
        outcome=reply.outcome, text=(turn.message.text or "")[:1000] if reply.outcome == "not_understood" else None,
        millis=round((time.perf_counter() - started) * 1000, 3), created_at=now))
    return reply.handover if reply.handover is not None else True


# --- helpers ----------------------------------------------------------------------------------------

_rules_cache: dict[int, IdentifierRules] = {}


def _rules(settings: Settings) -> IdentifierRules:
    found = _rules_cache.get(id(settings))
    if found is None:
        found = _rules_cache[id(settings)] = IdentifierRules(settings)
    return found


def _only_contact(text: str) -> bool:
    """A message that is a phone or an email and at most a couple of words besides."""
    contacts = nlu.phones(text) + nlu.emails(text)
    if not contacts:
        return False
    rest = nlu.fold(nlu._EMAIL.sub(" ", text))
    rest = "".join(ch for ch in rest if not ch.isdigit() and ch not in "+-()#")
    return len(rest.split()) <= 3


def _mask(kind: str, value: str) -> str:
    if kind == "email" and "@" in value:
        name, domain = value.split("@", 1)
        return f"{name[:1]}***@{domain}"
    digits = value.replace(" ", "")
    return f"{digits[:2]}***{digits[-2:]}" if kind == "phone" else f"•••• {digits[-4:]}"


_catalog_cache: dict[str, Any] = {"at": 0.0, "names": {}}
CATALOG_SECONDS = 60.0


def _catalog(session: Session) -> dict[int, list[str]]:
    """Active products' names (Russian, English, code), read at most once a minute per process."""
    if time.monotonic() - _catalog_cache["at"] > CATALOG_SECONDS:
        names: dict[int, list[str]] = {}
        for product_id, name_ru, name_en, code in session.execute(select(
                CommerceProduct.id, CommerceProduct.name_ru, CommerceProduct.name_en, CommerceProduct.code)
                .where(CommerceProduct.active.is_(True))):
            names[product_id] = [n for n in (name_ru, name_en, code) if n]
        _catalog_cache.update(at=time.monotonic(), names=names)
    return _catalog_cache["names"]


def forget_catalog() -> None:
    _catalog_cache["at"] = 0.0


def _free_by_location(session: Session, product_id: int) -> dict[int, int]:
    """Units of the product free to sell per active location (all its active variants)."""
    free = func.sum(CommerceStock.on_hand - CommerceStock.reserved - CommerceLocation.safety_stock)
    rows = session.execute(
        select(CommerceStock.location_id, free)
        .join(CommerceVariant, CommerceVariant.id == CommerceStock.variant_id)
        .join(CommerceLocation, CommerceLocation.id == CommerceStock.location_id)
        .where(CommerceVariant.product_id == product_id, CommerceVariant.active.is_(True), CommerceLocation.active.is_(True))
        .group_by(CommerceStock.location_id))
    return {location_id: max(int(count or 0), 0) for location_id, count in rows}


def _hours_of(location: CommerceLocation, day: str, lang: str) -> str:
    hours = (location.opening_hours or {}).get(day)
    return f"{hours[0]}–{hours[1]}" if hours else ("закрыто" if lang == "ru" else "closed")


def _today_hours(location: CommerceLocation, lang: str) -> str:
    local = utcnow().astimezone(ZoneInfo(location.timezone))
    return _hours_of(location, DAYS[local.weekday()], lang)


DAY_NAMES = {"ru": ("пн", "вт", "ср", "чт", "пт", "сб", "вс"), "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def _week_hours(location: CommerceLocation, lang: str) -> str:
    """"пн–пт 10:00–22:00, сб–вс 11:00–20:00": days with the same hours run together."""
    runs: list[tuple[int, int, str]] = []
    for index, day in enumerate(DAYS):
        hours = _hours_of(location, day, lang)
        if runs and runs[-1][2] == hours and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index, hours)
        else:
            runs.append((index, index, hours))
    names = DAY_NAMES[lang]
    return ", ".join(f"{names[a]}{'–' + names[b] if b != a else ''} {hours}" for a, b, hours in runs)


# --- idle conversations and stock alerts (periodic) ------------------------------------------------


def close_idle(session: Session, *, settings: Settings, now: datetime | None = None, limit: int = 500) -> int:
    """Conversations only the bot answered that went quiet for `assistant_idle_minutes`: resolved
    by the bot, counted as contained."""
    now = now or utcnow()
    states = list(session.scalars(select(AssistantState).where(
        AssistantState.outcome == "open", AssistantState.last_turn_at < now - timedelta(minutes=settings.assistant_idle_minutes))
        .order_by(AssistantState.last_turn_at).limit(limit)))
    closed = 0
    for state in states:
        conversation = session.get(InboxConversation, state.conversation_id)
        state.ended_at = now
        if conversation is None or not conversation.handled_by_bot or conversation.assignee_id is not None:
            state.outcome = "handed_over" if conversation is not None and not conversation.handled_by_bot else "resolved"
            state.handover_reason = state.handover_reason or ("agent" if state.outcome == "handed_over" else None)
            continue
        last = session.scalar(select(AssistantTurn.outcome).where(AssistantTurn.conversation_id == conversation.id)
                              .order_by(AssistantTurn.id.desc()).limit(1))
        # Left after "I did not understand" or a question of the bot's: not a conversation the
        # bot solved, whatever the inbox status says.
        state.outcome = "abandoned" if last in ("not_understood", "asked", "deferred") else "resolved"
        if conversation.status != "resolved":
            inbox.bot_resolved(session, settings=settings, conversation=conversation)
        closed += 1
    return closed


def notify_back_in_stock(session: Session, *, settings: Settings, limit: int = 500) -> int:
    """Tell the people waiting for products that are free to sell again (at their store, or
    anywhere when they named none), in the conversation they asked in."""
    waiting = list(session.scalars(select(AssistantStockWatch).where(
        AssistantStockWatch.notified_at.is_(None), AssistantStockWatch.cancelled.is_(False)).order_by(AssistantStockWatch.id).limit(limit)))
    told = 0
    now = utcnow()
    for watch in waiting:
        free = _free_by_location(session, watch.product_id)
        if (free.get(watch.location_id, 0) if watch.location_id else sum(free.values())) <= 0:
            continue
        product = session.get(CommerceProduct, watch.product_id)
        location = session.get(CommerceLocation, watch.location_id) if watch.location_id else None
        conversation = session.get(InboxConversation, watch.conversation_id)
        watch.notified_at = now
        if product is None or conversation is None:
            continue
        context = {"product": product.name_ru if watch.lang == "ru" else product.name_en,
                   "store": (location.name_ru if watch.lang == "ru" else location.name_en) if location else None}
        try:
            inbox.bot_reply(session, settings=settings, conversation=conversation, text=render(session, "back_in_stock.notice", watch.lang, context),
                            meta={"intent": "back_in_stock", "outcome": "notice"})
        except AppError as exc:
            log.info("back in stock notice could not be sent", watch_id=watch.id, reason=exc.code)
            continue
        told += 1
    return told


# --- what the console shows -------------------------------------------------------------------------


def stats(session: Session, *, since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """Containment (of the conversations the bot finished, the share it resolved: the customer
    left after an answer; one left after "I did not understand" or a question of the bot's is
    `abandoned`, not contained), handover reasons, intents, answer time, and the messages it did
    not understand."""
    until = until or utcnow()
    in_period = (AssistantState.started_at >= since, AssistantState.started_at < until)
    outcomes = dict(session.execute(select(AssistantState.outcome, func.count()).where(*in_period).group_by(AssistantState.outcome)).all())
    reasons = dict(session.execute(select(AssistantState.handover_reason, func.count()).where(
        *in_period, AssistantState.outcome == "handed_over").group_by(AssistantState.handover_reason)).all())
    turns_in = (AssistantTurn.created_at >= since, AssistantTurn.created_at < until)
    intents = dict(session.execute(select(AssistantTurn.intent, func.count()).where(*turns_in, AssistantTurn.intent.is_not(None))
                                   .group_by(AssistantTurn.intent)).all())
    millis = sorted(m for (m,) in session.execute(select(AssistantTurn.millis).where(*turns_in)))
    unknown = [{"text": t, "at": at, "conversation_id": c, "confidence": conf} for t, at, c, conf in session.execute(
        select(AssistantTurn.text, AssistantTurn.created_at, AssistantTurn.conversation_id, AssistantTurn.confidence)
        .where(*turns_in, AssistantTurn.outcome == "not_understood", AssistantTurn.text.is_not(None))
        .order_by(AssistantTurn.id.desc()).limit(50))]
    resolved, handed, abandoned = outcomes.get("resolved", 0), outcomes.get("handed_over", 0), outcomes.get("abandoned", 0)
    finished = resolved + handed + abandoned
    return {
        "conversations": sum(outcomes.values()), "resolved": resolved, "handed_over": handed, "abandoned": abandoned,
        "open": outcomes.get("open", 0), "containment": resolved / finished if finished else None,
        "handover_reasons": dict(sorted(((k or "unknown"), v) for k, v in reasons.items())),
        "intents": dict(sorted(intents.items(), key=lambda kv: -kv[1])),
        "turns": len(millis), "p50_ms": _percentile(millis, 0.5), "p99_ms": _percentile(millis, 0.99),
        "not_understood": unknown,
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def set_answer(session: Session, *, key: str, lang: str, template: str | None, by: str) -> None:
    """The business's answer for `key` in `lang` (None or empty: back to the default)."""
    forget_edits()
    existing = session.get(AssistantAnswer, (key, lang))
    if not template or not template.strip():
        if existing is not None:
            session.delete(existing)
        return
    check_template(template)
    if existing is None:
        session.add(AssistantAnswer(key=key, lang=lang, template=template, updated_by=by, updated_at=utcnow()))
    else:
        existing.template, existing.updated_by, existing.updated_at = template, by, utcnow()


def set_topic(session: Session, *, intent: str, human_only: bool, skill: str | None) -> AssistantTopic:
    forget_edits()
    row = session.get(AssistantTopic, intent)
    if row is None:
        row = AssistantTopic(intent=intent, human_only=human_only, skill=skill or None, updated_at=utcnow())
        session.add(row)
    else:
        row.human_only, row.skill, row.updated_at = human_only, skill or None, utcnow()
    return row


def add_phrase(session: Session, *, intent: str, lang: str, text: str, by: str) -> AssistantPhrase:
    forget_edits()
    row = AssistantPhrase(intent=intent, lang=lang, text=" ".join(text.split())[:500], created_by=by, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def delete_phrase(session: Session, phrase_id: int) -> None:
    forget_edits()
    session.execute(delete(AssistantPhrase).where(AssistantPhrase.id == phrase_id))


# --- privacy --------------------------------------------------------------------------------------


def export(session: Session, context: Any) -> list[dict[str, Any]]:
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    return [{"product_id": w.product_id, "location_id": w.location_id, "created_at": w.created_at, "notified_at": w.notified_at}
            for w in session.scalars(select(AssistantStockWatch).where(AssistantStockWatch.customer_id.in_(ids)))]


def erase(session: Session, context: Any) -> int:
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    watches = session.execute(delete(AssistantStockWatch).where(AssistantStockWatch.customer_id.in_(ids))).rowcount or 0
    session.execute(update(AssistantTurn).where(AssistantTurn.customer_id.in_(ids)).values(text=None))
    return watches


# --- a second opinion from an LLM (llm.py) -----------------------------------------------------------


def _ask_llm(turn: Turn, prediction: nlu.Prediction) -> Reply | None:
    """When the model is unsure of a message (`llm.wanted`): no answer yet, and a job, queued
    with the message, that asks the LLM which intent it has and then answers it as this turn
    would have (`tasks.answer_deferred`). The conversation stays with the bot meanwhile."""
    from seamline.assistant import llm  # here, not at the top: keeps this hook in one place

    if not llm.wanted(turn.settings, prediction):
        return None
    llm.TASK.enqueue(turn.session, {"conversation_id": turn.conversation.id, "message_id": turn.message.id},
                     dedupe_key=f"assistant.llm:{turn.message.id}")
    turn.prediction, turn.lang = prediction, prediction.lang
    return Reply(None, outcome="deferred")
