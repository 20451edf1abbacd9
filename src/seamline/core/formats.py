"""Babel's locale rules for what people read: dates, numbers, money, durations; phone numbers
through `phonenumbers`. Used by the web pages and by everything that writes to customers
(marketing's messages), in Russian and English."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import phonenumbers
from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_precision, get_currency_symbol

BABEL_LOCALES = {"ru": "ru_RU", "en": "en_US"}


class Formats:
    """Locale-aware formatting for templates: `fmt.money(12990, "RUB")` → "129,90 ₽"."""

    def __init__(self, locale: str, timezone: str = "Europe/Moscow", region: str = "RU"):
        self.locale = locale
        self.babel = Locale.parse(BABEL_LOCALES.get(locale, locale))
        self.zone = ZoneInfo(timezone)
        self.region = region

    def money(self, minor: int | None, currency: str = "RUB") -> str:
        if minor is None:
            return "—"
        precision = get_currency_precision(currency)
        # English has no sign for some currencies (RUB): "1,299.90 RUB" reads better than "RUB1,299.90".
        pattern = "#,##0.00\xa0¤" if self.locale == "en" and get_currency_symbol(currency, self.babel) == currency else None
        return format_currency(minor / 10**precision, currency, format=pattern, locale=self.babel)

    def number(self, value: float | int | None) -> str:
        return "—" if value is None else format_decimal(value, locale=self.babel)

    def percent(self, share: float | None) -> str:
        """A share (0.123) as a percent ("12 %" / "12%"), with one decimal under 10 %."""
        if share is None:
            return "—"
        return format_percent(share, format="#,##0.#%" if share < 0.1 else "#,##0%", locale=self.babel)

    def datetime(self, value: datetime | str | None, format: str = "short") -> str:  # noqa: A002 - Babel's word
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return format_datetime(value, format=format, tzinfo=self.zone, locale=self.babel)

    def date(self, value: datetime | str | None, format: str = "medium") -> str:  # noqa: A002
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return format_date(value, format=format, locale=self.babel)

    def elapsed(self, since: datetime | str | None, now: datetime | None = None) -> str:
        """How long since `since`, short and rounded: "12 мин", "3 ч", "2 дн." / "12 min", "3 hr"."""
        if since is None or since == "":
            return "—"
        if isinstance(since, str):
            since = datetime.fromisoformat(since)
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        # At least a minute: a wait is counted in minutes ("1 min", not "3 seconds").
        took = max((now or datetime.now(timezone.utc)) - since, timedelta(minutes=1))
        return format_timedelta(took, threshold=1, format="short", locale=self.babel)

    def phone(self, e164: str | None) -> str:
        """+79161234567 → "+7 916 123-45-67" (international: staff serve people from many regions)."""
        if not e164:
            return "—"
        try:
            parsed = phonenumbers.parse(e164, self.region)
        except phonenumbers.NumberParseException:
            return e164
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
