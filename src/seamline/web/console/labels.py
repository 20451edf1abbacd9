"""What the console shows for the codes and texts the domain keeps, in the reader's language.

The API speaks in stable codes and English (`completed`, `click_and_collect`, `store:msk-city`,
"Order 72: completed"); API clients need data that does not change with a language. The console
turns them into words here, in one place:

- `VOCABULARIES`: every code a page shows (order statuses, fulfilment kinds, channels, identifier
  types, consent purposes, trait names...) -> its English name, a msgid translated with the
  vocabulary as gettext context (`msgctxt "order_status"`), so one English word can be translated
  differently in two places ("Cancelled" order, "Cancelled" payment). An unknown code is shown as
  it is (a new channel, an installation's own trait).
- Location codes (`msk-city`, a source `store:msk-city`) become the location's name in the
  reader's language (`name_ru` / `name_en`), read once per page when first asked for.
- Texts built in Python (timeline titles, an inbox conversation's system messages) carry a key
  and their params besides their English text; `text()` finds the key's English template,
  translates it and fills in the params, params that are codes turned into words too
  (`PARAM_WORDS`). The templates live with the code that builds the English text (the timeline
  providers' `TITLES`, `inbox.service.SYSTEM_TEXTS`), so there is one English original.

The Russian is in `web/locale/ru/LC_MESSAGES/labels.po`; tests/web/test_translations.py fails
when a code or a template here has no translation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any

from babel import Locale

from seamline.web import i18n


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "a msgid, translated later"
    return message


VOCABULARIES: dict[str, dict[str, str]] = {
    #: Why the chat bot handed a conversation over (assistant.intents.HANDOVER_REASONS).
    "bot_reason": {
        "requested": N_("the customer asked for a person"), "misunderstood": N_("the bot did not understand twice"),
        "low_confidence": N_("the bot was not sure"), "human_only": N_("a topic for people only"),
        "action_failed": N_("the bot could not do it"), "not_identified": N_("the customer could not be identified"),
        "attachment": N_("the customer sent a file"), "error": N_("the bot failed"),
        # written outside the bot: an agent answered while the bot held it (assistant.service.close_idle),
        # and a reason not recorded (assistant.service.stats)
        "agent": N_("an agent took the conversation over"), "unknown": N_("not recorded"),
    },
    #: The chat bot's topics (its intents).
    "bot_topic": {
        "greeting": N_("Greeting"), "thanks": N_("Thanks"), "order_status": N_("Order tracking"),
        "pickup": N_("Pickup and collection code"), "extend_hold": N_("Longer pickup hold"), "store_hours": N_("Store hours"),
        "stock": N_("Product stock"), "back_in_stock": N_("Back in stock alert"), "points": N_("Points"),
        "loyalty_card": N_("Loyalty card"), "returns": N_("Returns and exchanges"), "delivery_options": N_("Delivery options"),
        "change_address": N_("Delivery address change"), "human": N_("Asked for a person"), "out_of_scope": N_("Out of scope"),
    },
    "order_status": {
        "pending_payment": N_("Awaiting payment"), "confirmed": N_("Confirmed"), "ready_for_pickup": N_("Ready for pickup"),
        "shipped": N_("Shipped"), "completed": N_("Completed"), "cancelled": N_("Cancelled"), "returned": N_("Returned"),
        "partially_returned": N_("Partly returned"),
    },
    "fulfilment": {
        "delivery": N_("Delivery"), "click_and_collect": N_("Click & collect"), "pickup_point": N_("Pickup point"),
        "in_store": N_("In-store sale"),
    },
    "payment_status": {
        "unpaid": N_("Unpaid"), "pending": N_("Pending"), "paid": N_("Paid"), "partially_refunded": N_("Partly refunded"),
        "refunded": N_("Refunded"), "requested": N_("Requested"), "succeeded": N_("Succeeded"), "failed": N_("Failed"),
        "created": N_("Created"), "authorized": N_("Authorized"), "canceled": N_("Cancelled"), "cancelled": N_("Cancelled"),
    },
    "payment_method": {
        "on_pickup": N_("Payment on pickup"), "test": N_("Test payment"), "webhook": N_("Online payment"), "wallet": N_("Wallet"),
    },
    #: A reservation of an order line's stock at a location.
    "allocation_status": {"active": N_("reserved"), "released": N_("released"), "committed": N_("taken from stock")},
    #: Where something happened or is sent: orders, events, messages, consents, identities' sources.
    "channel": {
        "web": N_("Website"), "app": N_("Mobile app"), "store": N_("Store"), "pos": N_("Store till"),
        "call_center": N_("Call center"), "phone": N_("Phone"), "email": N_("Email"), "sms": N_("SMS"),
        "push": N_("Push notifications"), "phone_call": N_("Phone calls"), "web_push": N_("Browser notifications"),
        "webchat": N_("Web chat"), "telegram": N_("Telegram"), "whatsapp": N_("WhatsApp"), "vk": N_("VK"),
        "viber": N_("Viber"), "webpush": N_("Browser notifications"), "mobilepush": N_("App notifications"),
        "messenger": N_("Messenger"), "loyalty": N_("Loyalty"), "server": N_("Server"),
        "api": N_("API"), "console": N_("Console"), "courier": N_("Courier"), "warehouse": N_("Warehouse"),
        "other": N_("Other"),
    },
    "identifier_type": {
        "user_id": N_("User ID"), "anonymous_id": N_("Visitor ID"), "email": N_("Email"), "phone": N_("Phone"),
        "loyalty_card": N_("Loyalty card"), "device_id": N_("Device ID"), "telegram_id": N_("Telegram ID"),
        "whatsapp": N_("WhatsApp"), "vk_id": N_("VK ID"), "viber_id": N_("Viber ID"),
    },
    "consent_purpose": {
        "service": N_("Service messages"), "marketing": N_("Marketing"), "personal_data": N_("Personal data processing"),
    },
    #: Traits of a profile; an installation's own traits are shown by their key.
    "trait": {
        "first_name": N_("First name"), "last_name": N_("Last name"), "name": N_("Name"), "birthday": N_("Birthday"),
        "city": N_("City"), "locale": N_("Language"), "preferred_store": N_("Preferred store"), "address": N_("Address"),
        "app_platform": N_("App platform"), "telegram_username": N_("Telegram username"), "gender": N_("Gender"),
        "company": N_("Company"), "title": N_("Job title"), "email": N_("Email"), "phone": N_("Phone"),
    },
    "loyalty_entry": {
        "earn": N_("Earned"), "release": N_("Became spendable"), "redeem": N_("Spent"), "reverse": N_("Taken back"),
        "restore": N_("Given back"), "expire": N_("Expired"), "welcome": N_("Welcome bonus"), "birthday": N_("Birthday bonus"),
        "campaign": N_("Campaign"), "adjust": N_("Adjustment"), "transfer": N_("Transfer"),
        "topup": N_("Top-up"), "payment": N_("Payment"), "refund": N_("Refund"),
    },
    "card_status": {"active": N_("active"), "blocked": N_("blocked")},
    "card_kind": {"physical": N_("plastic card"), "virtual": N_("virtual card")},
    "location_kind": {"store": N_("Store"), "warehouse": N_("Warehouse"), "pickup_point": N_("Pickup point")},
    "conversation_status": {"open": N_("open"), "pending": N_("pending"), "snoozed": N_("snoozed"), "resolved": N_("resolved")},
    "agent_status": {"online": N_("online"), "away": N_("away"), "offline": N_("offline")},
    "delivery_status": {
        "queued": N_("queued"), "sent": N_("sent"), "delivered": N_("delivered"), "read": N_("read"), "failed": N_("failed"),
        "received": N_("received"),
    },
    "inbox_view": {"mine": N_("mine"), "queue": N_("queue"), "open": N_("open"), "resolved": N_("resolved")},
    "merge_reason": {
        "link": N_("a shared identifier"), "manual": N_("merged by staff"), "conflict_resolution": N_("conflict resolved"),
    },
    #: What a ledger entry refers to (`order:7`, `return:3`): the word before the number or name.
    "reference": {
        "order": N_("Order"), "return": N_("Return"), "cancel": N_("Cancelled order"), "account": N_("Account"),
        "entry": N_("Entry"), "campaign": N_("Campaign"), "birthday": N_("Birthday"), "payment": N_("Payment"),
    },
    #: The job queue (core/queue): its queues and its periodic tasks (`Periodic.name`).
    "job_queue": {"periodic": N_("Periodic tasks"), "webhooks": N_("Webhooks"), "outbound": N_("Outgoing messages"),
                  "inbound": N_("Incoming messages")},
    "periodic_task": {
        "stock-sync": N_("Import stock files from the accounting system"), "order-expiry": N_("Cancel orders whose hold ran out"),
        "refunds": N_("Resend refunds a provider could not take"), "loyalty": N_("Loyalty: held points, expiry, birthdays, tiers"),
        "inbox": N_("SLA breaches, snoozed conversations, failed inbound"),
        "webchat-sessions": N_("Remove old web chat sessions"), "inbox-imap": N_("Check the support mailbox"),
        "assistant": N_("Chat bot: resolve quiet conversations, tell who waits that a product is back"),
    },
    "sla_clock": {"first_response": N_("first response"), "next_response": N_("next response"), "resolution": N_("resolution")},
    #: Tracked events' names: the storefront's (the demo's) and other Segment e-commerce spec names.
    "event_name": {
        "Product Viewed": N_("Product Viewed"), "Product Added": N_("Product Added"), "Product Removed": N_("Product Removed"),
        "Cart Viewed": N_("Cart Viewed"), "Checkout Started": N_("Checkout Started"), "Order Completed": N_("Order Completed"),
        "Order Cancelled": N_("Order Cancelled"), "Order Refunded": N_("Order Refunded"),
        "Products Searched": N_("Products Searched"), "Product List Viewed": N_("Product List Viewed"),
        "Coupon Applied": N_("Coupon Applied"), "Signed Up": N_("Signed Up"), "Signed In": N_("Signed In"),
        "Signed Out": N_("Signed Out"),
        # what ready-made journeys start on (marketing/journeys/library.py): the app's or a beacon's, the server's
        "Store Entered": N_("Store Entered"), "Back In Stock": N_("Back In Stock"),
    },
    #: Marketing (the console's Marketing area; its sentences: web/console/marketing_words.py).
    "journey_status": {"draft": N_("Draft"), "active": N_("Active"), "paused": N_("Paused"), "archived": N_("Archived")},
    "segment_status": {"active": N_("Active"), "archived": N_("Archived")},
    #: A campaign's status (marketing_campaign.status); the console also says `nothing_sent` (every
    #: person reached, no message queued) and `sending` while people or messages are still to go.
    "campaign_status": {
        "draft": N_("Draft"), "scheduled": N_("Scheduled"), "sending": N_("Sending"), "testing": N_("A/B test running"),
        "sent": N_("Sent"), "cancelled": N_("Cancelled"), "nothing_sent": N_("Finished, nothing sent"),
    },
    "enrollment_status": {"waiting": N_("in the journey"), "done": N_("left")},
    "exit_reason": {
        "completed": N_("went through to the end"), "goal": N_("reached the goal"), "segment_exit": N_("left the segment"),
        "archived": N_("the journey was archived"), "merged": N_("profile merged into another"), "erased": N_("profile erased"),
        "holdout": N_("holdout, followed to the end"), "error": N_("a step failed"),
    },
    #: Why a marketing message was not sent (marketing_message.reason, outbound's refusals) or
    #: why a channel cannot take it.
    "send_reason": {
        "capped": N_("over the frequency cap"), "journey_capped": N_("over the journey's frequency cap"),
        "no_marketing_consent": N_("no marketing consent"), "consent_withdrawn": N_("consent withdrawn"),
        "customer_unreachable": N_("no channel reaches the customer"), "quiet_hours": N_("quiet hours"),
        "channel_not_configured": N_("the channel is not set up"), "channel_unreachable": N_("no address on this channel"),
        "channel_cannot_send": N_("the channel cannot send this"), "live_channel_only_when_named": N_("a live channel, used only when chosen"),
        "whatsapp_window_closed": N_("the WhatsApp 24-hour window is closed"), "customer_not_found": N_("no such customer"),
        "customer_erased": N_("the customer was erased"), "unknown_channel": N_("unknown channel"), "unknown": N_("unknown reason"),
        "address_bounced": N_("the address bounced"), "template_render_failed": N_("the template failed for this person"),
        "template_too_costly": N_("the template would cost too much to render"), "template_too_long": N_("the message came out too long"),
    },
    #: Which list a recommended product comes from (recommendations/service.py `reason`).
    "recommendation_reason": {"for_you": N_("picked for them"), "popular_in_store": N_("popular in their store"),
                              "popular": N_("popular"), "bought_together": N_("bought together"), "similar": N_("similar")},
    "message_status": {"queued": N_("queued"), "skipped": N_("skipped"), "held": N_("held until quiet hours end"),
                       "test": N_("test send")},
    "step_kind": {
        "wait": N_("Wait"), "branch": N_("Condition"), "split": N_("A/B split"), "send": N_("Message"),
        "update_trait": N_("Set a trait"), "give_points": N_("Give points"), "give_coupon": N_("Give a coupon"),
        "notify_agent": N_("Task for an agent"),
    },
    "trigger_kind": {"event": N_("An action of the person"), "segment_entered": N_("Entering a segment"), "date": N_("A date"),
                     "api": N_("Through the API")},
}

#: Params of a built text whose values are codes: the vocabulary they are words of (a list: each).
PARAM_VOCABULARIES = {"event": "event_name", "clocks": "sla_clock", "reason": "bot_reason", "topic": "bot_topic"}
#: Params that are location codes (shown as the location's name).
PLACE_PARAMS = ("location",)
#: Params that are times (ISO strings in stored texts).
TIME_PARAMS = ("until",)

Places = Mapping[str, tuple[str, str]]


def load_places(session: Any) -> dict[str, tuple[str, str]]:
    """Every location's code -> (Russian name, English name)."""
    from sqlalchemy import select

    from seamline.commerce.models import CommerceLocation

    rows = session.execute(select(CommerceLocation.code, CommerceLocation.name_ru, CommerceLocation.name_en))
    return {code: (ru, en) for code, ru, en in rows}


def for_request(request: Any, locale: str, fmt: i18n.Formats) -> Labels:
    """The reader's words on a console page: locations read when a page first names one; the
    templates of the timeline's titles (registered by the modules) and of the inbox's system
    messages."""
    from seamline.inbox.service import SYSTEM_TEXTS
    from seamline.web.console.deps import database

    state = request.app.state
    timeline = getattr(state, "customer_timeline", None)

    def places() -> Places:
        with database(request).read() as session:
            return load_places(session)

    return Labels(locale, places=places, templates={**SYSTEM_TEXTS, **(timeline.titles if timeline else {})}, fmt=fmt)


def for_reader(request: Any) -> Labels:
    """The signed-in person's words outside a template (a message made in Python)."""
    staff = getattr(request.state, "staff", None)
    settings = request.app.state.settings
    locale = staff.user.locale if staff else i18n.DEFAULT_LOCALE
    return for_request(request, locale, i18n.Formats(locale, settings.console_timezone, settings.default_region))


class Labels:
    """The words for one reader: `label.order_status("completed")` -> "Выполнен",
    `label.place("msk-city")` -> "Москва-Сити", `label.text(key, params, english)`.
    In templates as `label`."""

    def __init__(self, locale: str, *, places: Callable[[], Places] | None = None,
                 templates: Mapping[str, str] | None = None, fmt: i18n.Formats | None = None):
        self.locale = locale
        self._translations = i18n.translations(locale)
        self._load_places = places
        self._places: Places | None = None
        self._templates = templates or {}
        self._fmt = fmt or i18n.Formats(locale)

    def __call__(self, vocabulary: str, code: Any) -> str:
        if code is None or code == "":
            return "—"
        english = VOCABULARIES[vocabulary].get(code) if isinstance(code, str) else None
        return str(code) if english is None else self._translations.pgettext(vocabulary, english)

    def __getattr__(self, vocabulary: str) -> Callable[[Any], str]:
        if vocabulary not in VOCABULARIES:
            raise AttributeError(vocabulary)
        return lambda code: self(vocabulary, code)

    def queue(self, code: str) -> str:
        """A job queue's name; a channel's send queue (`outbound.telegram`) as both words."""
        prefix, _, channel = code.partition(".")
        return f"{self.job_queue(prefix)}: {self.channel(channel)}" if channel else self.job_queue(code)

    # --- places and sources -------------------------------------------------------------------

    def place(self, code: str | None) -> str:
        """A location's name in the reader's language; the code when there is no such location."""
        if not code:
            return "—"
        if self._places is None:
            self._places = self._load_places() if self._load_places else {}
        names = self._places.get(code)
        if names is None:
            return code
        return (names[0] if self.locale == "ru" else names[1]) or code

    def source(self, source: str | None) -> str:
        """Where a fact came from: `store:msk-city` -> the store's name, `web` -> "Website",
        `staff:ann@shop.example` -> the staff member, `events:server` / `carts:web` (a module
        and its channel) -> the channel; anything else as it is."""
        if not source:
            return "—"
        kind, _, rest = source.partition(":")
        if kind == "store" and rest:
            return self.place(rest)
        if kind == "staff" and rest:
            return rest
        if rest and rest in VOCABULARIES["channel"]:
            return self("channel", rest)
        return self("channel", source)

    def reference(self, reference: str | None) -> str:
        """What a ledger entry refers to: `order:7` -> "Order #7", `campaign:spring` -> "Campaign
        spring", `staff:ann@shop.example` -> the staff member; anything else as it is."""
        if not reference:
            return ""
        kind, _, rest = reference.partition(":")
        if kind == "staff" and rest:
            return rest
        if not rest or kind not in VOCABULARIES["reference"]:
            return reference
        return f"{self('reference', kind)} {'#' + rest if rest.isdigit() else rest}"

    def trait_value(self, key: str, value: Any) -> Any:
        """A trait's value where it is a code (a store, a language); other values unchanged."""
        if isinstance(value, str):
            if key == "preferred_store" or value.startswith("store:"):
                return self.source(value) if value.startswith("store:") else self.place(value)
            if key == "app_platform":
                return {"android": "Android", "ios": "iOS"}.get(value, value)
            if key == "locale":
                try:
                    return Locale.parse(value.replace("-", "_")).get_display_name(self._fmt.babel) or value
                except (ValueError, TypeError):
                    return value
        return value

    # --- texts built in Python --------------------------------------------------------------

    def text(self, key: str | None, params: Mapping[str, Any] | None, english: str) -> str:
        """A text built from `key`'s template and `params`, in the reader's language; the
        English text when the key is unknown (an older row, a module without templates) or the
        params do not fit the template."""
        template = self._templates.get(key) if key else None
        if template is None:
            return english
        try:
            return self._translations.gettext(template) % self.words(params or {})
        except (KeyError, TypeError, ValueError):
            return english

    def words(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Params with their codes turned into the reader's words."""
        shown: dict[str, Any] = {}
        for name, value in params.items():
            if name in PARAM_VOCABULARIES:
                vocabulary, known = PARAM_VOCABULARIES[name], VOCABULARIES[PARAM_VOCABULARIES[name]]
                if isinstance(value, str) and value not in known:  # a list in an English text: "first response, resolution"
                    codes = [part.replace(" ", "_") for part in value.split(", ")]
                    value = codes if all(code in known for code in codes) else value
                value = ", ".join(self(vocabulary, v) for v in value) if isinstance(value, list) else self(vocabulary, value)
            elif name in PLACE_PARAMS:
                value = self.place(value)
            elif name in TIME_PARAMS and value:
                value = self._fmt.datetime(value if isinstance(value, datetime) else str(value))
            shown[name] = value
        return shown

    def timeline(self, item: Any) -> str:
        """A timeline item's title (a TimelineItem or its dict)."""
        get = item.get if isinstance(item, Mapping) else lambda name: getattr(item, name, None)
        return self.text(get("title_key"), get("params"), get("title"))

    def system(self, message: Mapping[str, Any]) -> str:
        """An inbox message's text; a system message's (kind "event") from its key and params,
        or, for one written without them (before keys existed), from its English text when it
        is one of the templates."""
        meta, text = message.get("meta") or {}, message.get("text") or ""
        if message.get("kind") != "event":
            return text
        if "text_key" in meta:
            return self.text(meta["text_key"], meta.get("text_params"), text)
        for key, pattern in _system_patterns(tuple(sorted((k, v) for k, v in self._templates.items()
                                                         if k.startswith("conversation.")))):
            if found := pattern.fullmatch(text):
                return self.text(key, found.groupdict(), text)
        return text


@lru_cache(maxsize=8)
def _system_patterns(templates: tuple[tuple[str, str], ...]) -> list[tuple[str, re.Pattern[str]]]:
    """Each system message template as a pattern of its English text, the most specific first
    ("Transferred to agent %(agent)s: %(note)s" before "Transferred to agent %(agent)s")."""
    found = []
    for key, template in templates:
        parts = re.split(r"%\(([a-z_]+)\)[-+ 0#]*\d*[sdif]", template)
        literal = "".join(parts[0::2])
        pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
        found.append((len(literal), key, re.compile(pattern, re.S)))
    return [(key, pattern) for _, key, pattern in sorted(found, key=lambda f: -f[0])]


_reader: ContextVar[Labels | None] = ContextVar("console_labels", default=None)


@contextmanager
def reading(labels: Labels) -> Iterator[None]:
    """`labels` are the words of the page being rendered (templating.render); `current` finds them."""
    token = _reader.set(labels)
    try:
        yield
    finally:
        _reader.reset(token)


class _Current:
    """The rendered page's Labels: the `label` global of every template, imported macros too
    (which do not see the page's context)."""

    def _labels(self) -> Labels:
        return _reader.get() or Labels(i18n.DEFAULT_LOCALE)

    def __call__(self, vocabulary: str, code: Any) -> str:
        return self._labels()(vocabulary, code)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._labels(), name)


current = _Current()
