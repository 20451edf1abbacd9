"""Russian and English for the web pages: gettext catalogs read from `web/locale/ru/LC_MESSAGES/*.po`
with Babel (English is the msgid itself), and Babel's locale rules for dates, numbers and money;
phone numbers through `phonenumbers`. Each area of the console keeps its own .po file; they merge
into one catalog per locale when first used. `pybabel extract -F babel.cfg` finds new strings."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from seamline.core.formats import Formats  # noqa: F401 - the pages' formatter, where they import it from

LOCALES = ("ru", "en")
DEFAULT_LOCALE = "ru"
LOCALE_DIR = Path(__file__).parent / "locale"


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
