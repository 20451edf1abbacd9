"""Russian and English for the web pages: gettext catalogs read from `web/locale/ru/LC_MESSAGES/*.po`
with Babel (English is the msgid itself), and Babel's locale rules for dates, numbers and money;
phone numbers through `phonenumbers`. Each area of the console keeps its own .po file; they merge
into one catalog per locale when first used. `pybabel extract -F babel.cfg` finds new strings."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
)
from babel.support import NullTranslations, Translations

LOCALES = ("ru", "en")
DEFAULT_LOCALE = "ru"
LOCALE_DIR = Path(__file__).parent / "locale"
_BABEL_LOCALES = {"ru": "ru_RU", "en": "en_US"}


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """Every .po file of the locale merged into one gettext catalog (compiled in memory)."""
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    merged: NullTranslations | None = None
    for po in sorted(folder.glob("*.po")) if folder.is_dir() else ():
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        part = Translations(buffer)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged or NullTranslations()


def gettext(locale: str, message: str, **values: object) -> str:
    text = translations(locale).gettext(message)
    return text % values if values else text


def pick_locale(*candidates: str | None) -> str:
    """The first supported locale among a user's setting, a cookie, an Accept-Language header."""
    for candidate in candidates:
        if not candidate:
            continue
        for part in candidate.replace(" ", "").split(","):
            code = part.split(";")[0].split("-")[0].split("_")[0].lower()
            if code in LOCALES:
                return code
    return DEFAULT_LOCALE


class Formats:
    """Locale-aware formatting for templates: `fmt.money(12990, "RUB")` → "129,90 ₽"."""

    def __init__(self, locale: str, timezone: str = "Europe/Moscow", region: str = "RU"):
        self.locale = locale
        self.babel = Locale.parse(_BABEL_LOCALES.get(locale, locale))
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
