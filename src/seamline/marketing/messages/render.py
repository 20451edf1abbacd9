"""Rendering a template for a person: sandboxed Jinja2, in their language, with live data.

The environment is Jinja2's `ImmutableSandboxedEnvironment`: a template (written by a marketer
in the console) can read the context it is given and call its filters, and nothing else: no
attribute of Python internals, no mutation, no file or import. A missing value renders as
nothing (a person without a first name gets "Hello, !"-free text when the template uses
`{{ person.first_name or "" }}`; the preview lists what was missing). HTML parts are
autoescaped; text parts are not.

What a template can use (docs/marketing.md, "Templates"):
- `person`: `name`, `first_name`, `traits` (the profile's traits as values), `locale`;
- `cart`: the person's active cart priced now: `lines` (name, sku, quantity, unit_price,
  total, image_url, url), `total`, `currency`, `url`; empty when they have none;
- `points`: `available`, `pending`, `expiring` ([{points, at}] within 30 days), `tier`;
- `coupon`, `store`, `event` and whatever else the journey's context holds;
- filters `money(minor, currency)`, `date(value)`, `datetime(value)`, `number(value)`.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from seamline.core.errors import Unprocessable
from seamline.core.formats import Formats

PARTS = ("subject", "text", "html", "url")
LOCALES = ("ru", "en")
#: A rendered part longer than this is refused (a loop gone wrong must not mail a megabyte).
MAX_RENDERED = 200_000


class _Recorder(ChainableUndefined):
    """Renders as nothing, and notes what was missing (for the preview)."""

    def __str__(self) -> str:
        if self._undefined_name:
            _MISSING.get().append(self._undefined_name)
        return ""


_MISSING: ContextVar[list[str]] = ContextVar("marketing_template_missing")


@functools.lru_cache(maxsize=64)
def _environment(locale: str, timezone: str, html: bool) -> ImmutableSandboxedEnvironment:
    """One sandboxed environment per language, time zone and kind of part (its filters format for them)."""
    env = ImmutableSandboxedEnvironment(undefined=_Recorder, autoescape=html, trim_blocks=True, lstrip_blocks=True)
    fmt = Formats(locale, timezone)
    env.filters.update(money=lambda minor, currency="RUB": fmt.money(minor, currency), date=fmt.date, datetime=fmt.datetime,
                       number=fmt.number)
    return env


def _parse(part: str, source: str) -> Any:
    return _environment("ru", "UTC", part == "html").parse(source)


def check(content: dict[str, Any]) -> None:
    """Every part of every language parses (a 422 naming the first that does not)."""
    for locale, parts in content.items():
        for part, source in parts.items():
            if not source:
                continue
            try:
                _parse(part, source)
            except TemplateError as exc:
                raise Unprocessable(f"The {locale} {part} does not parse: {exc}", code="invalid_template",
                                    details={"locale": locale, "part": part, "line": getattr(exc, "lineno", None)}) from None


def variables(content: dict[str, Any]) -> set[str]:
    """The top-level names the template reads (so only that data is loaded: a cart, points)."""
    found: set[str] = set()
    for parts in content.values():
        for part, source in parts.items():
            if source:
                found |= meta.find_undeclared_variables(_parse(part, source))
    return found


def pick_locale(content: dict[str, Any], wanted: str | None, default: str = "ru") -> str:
    """The person's language when the template has it, else the default, else any it has."""
    for locale in (wanted, default, *LOCALES):
        if locale and locale in content:
            return locale
    return next(iter(content))


@dataclass
class Rendered:
    locale: str
    subject: str | None
    text: str
    html: str | None
    missing: list[str] = field(default_factory=list)
    #: Where a push notification opens (an http(s) address; anything else renders as none).
    url: str | None = None


def render(content: dict[str, Any], context: dict[str, Any], *, locale: str | None, timezone: str = "Europe/Moscow",
           default_locale: str = "ru") -> Rendered:
    """The template's parts in the person's language (see the module doc)."""
    chosen = pick_locale(content, locale, default_locale)
    parts = content[chosen]
    out: dict[str, str | None] = {}
    missing: list[str] = []
    token = _MISSING.set(missing)
    try:
        for part in PARTS:
            source = parts.get(part)
            if not source:
                out[part] = None
                continue
            text = _compiled(chosen, timezone, part == "html", source).render(**context)
            if len(text) > MAX_RENDERED:
                raise Unprocessable(f"The {part} renders to more than {MAX_RENDERED} characters", code="template_too_long")
            out[part] = " ".join(text.split()) if part in ("subject", "url") else text
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:  # a filter given what it cannot take
        raise Unprocessable(f"The template failed to render: {exc}", code="template_render_failed") from None
    finally:
        _MISSING.reset(token)
    url = out["url"] if out["url"] and out["url"].lower().startswith(("https://", "http://")) else None
    return Rendered(chosen, out["subject"], out["text"] or "", out["html"], sorted(set(missing)), url)


@functools.lru_cache(maxsize=512)
def _compiled(locale: str, timezone: str, html: bool, source: str) -> Any:
    """A template compiled once per process (rendering 100,000 messages compiles it once)."""
    return _environment(locale, timezone, html).from_string(source)
