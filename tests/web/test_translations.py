"""Every string the console shows has a Russian translation (the product speaks RU and EN)."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2.ext import babel_extract

from seamline.web import i18n

CONSOLE = Path(i18n.__file__).parent / "console"
OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def _console_msgids() -> set[tuple[str, str]]:
    found = set()
    for template in (CONSOLE / "templates").rglob("*.html"):
        with template.open("rb") as fh:
            for _line, _func, message, _comments in babel_extract(fh, ("_", "gettext", "ngettext"), [], OPTIONS):
                for msgid in ([message] if isinstance(message, str) else [m for m in (message or ())[:1] if m]):
                    found.add((template.name, msgid))
    for module in [*(CONSOLE / "pages").glob("*.py"), CONSOLE / "actions.py"]:
        text = module.read_text()
        for match in re.finditer(r'(?:translate\(\s*request,\s*|\bt\()"([^"]+)"', text):
            found.add((module.name, match.group(1)))
    return found


def test_every_console_string_has_a_russian_translation():
    catalog = i18n.translations("ru")._catalog  # noqa: SLF001 - gettext's own mapping
    missing = sorted(f"{where}: {msgid}" for where, msgid in _console_msgids() if msgid not in catalog)
    assert not missing, "add these to web/locale/ru/LC_MESSAGES/<area>.po:\n" + "\n".join(missing)


def test_locale_formats():
    ru, en = i18n.Formats("ru"), i18n.Formats("en")
    assert ru.money(129990, "RUB").replace("\xa0", " ") == "1 299,90 ₽"
    assert en.money(129990, "RUB") == "1,299.90\xa0RUB" and en.money(500, "USD") == "$5.00"
    assert ru.phone("+79161234567") == "+7 916 123-45-67"
    assert i18n.pick_locale(None, "en-GB,en;q=0.9") == "en" and i18n.pick_locale(None, "de-DE") == "ru"
