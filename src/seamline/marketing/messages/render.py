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
- `nearest_store`: `name`, `address`, `distance_km`, `pickup_today` of the pickup store nearest
  the person holding their cart (messages/service.py `nearest_store_of`);
- `recommendations`: up to 4 "for you" products (`name`, `image_url`, `price`, `currency`,
  `url` to the shop's product page, tracked as a recommendation; docs/recommendations.md): in
  stock where the person shops, nothing they just bought; popular ones for a newcomer;
- `coupon`, `store`, `event` and whatever else the journey's context holds;
- filters `money(minor, currency)`, `date(value)`, `datetime(value)`, `number(value)`.
"""

from __future__ import annotations

import functools
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, meta
from jinja2.filters import FILTERS as DEFAULT_FILTERS
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


#: What one rendering may spend. A template is written by staff, but a loop gone wrong (or one
#: written to hurt) must not hold a worker for hours or fill its memory: the items all its
#: `range()`s draw, and how large a repeated string or list, a power, a number given to a method
#: or filter (a width, a count), or a width in a format may be.
MAX_STEPS = 100_000
MAX_SIZE = 100_000
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(\d{6,}|\*)|\{[^{}]*:[^{}]*\d{6,}[^{}]*\}")
_STEPS: ContextVar[list[int]] = ContextVar("marketing_template_steps")


def _too_costly(what: str) -> Unprocessable:
    return Unprocessable(f"The template would cost too much to render: {what}", code="template_too_costly")


def _counted_range(*args: int) -> Any:
    """`range`, its items counted against the rendering's budget (nested loops multiply)."""
    items = range(*args)
    if len(items) > MAX_STEPS:
        raise _too_costly(f"a range of {len(items)} items")
    budget = _STEPS.get(None)
    for item in items:
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                raise _too_costly(f"loops of more than {MAX_STEPS} steps in all")
        yield item


def _check_size(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
        raise _too_costly(f"the number {value} given to a method or filter")
    if isinstance(value, str) and _WIDE_FORMAT.search(value):
        raise _too_costly("a format width of six digits or more")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with the costs above bounded."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                if isinstance(sized, (str, list, tuple)) and isinstance(times, int) and len(sized) * times > MAX_SIZE:
                    raise _too_costly(f"a repetition of more than {MAX_SIZE} items")
        elif operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64 and isinstance(left, (int, float)) and abs(left) > 1:
                raise _too_costly(f"the power {left} ** {right}")
        elif operator == "%" and isinstance(left, str):
            _check_size(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja2's signature
        for value in (*args, *kwargs.values()):
            _check_size(value)
        if getattr(__obj, "__name__", "") == "replace" and isinstance(getattr(__obj, "__self__", None), str) and len(args) >= 2:
            _check_replace(__obj.__self__, args[0], args[1])
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and attribute in ("format", "format_map"):  # the widths are in the string
            _check_size(obj)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str) and argument in ("format", "format_map"):
            _check_size(obj)
        return super().getitem(obj, argument)


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
        if len(text) + (text.count(old) if old else len(text) + 1) * (len(new) - len(old)) > MAX_RENDERED:
            raise _too_costly(f"a replacement making more than {MAX_RENDERED} characters")


def _checked_filter(apply: Any) -> Any:
    """A built-in filter, refusing sizes above the bounds (it keeps the filter's context marker)."""

    @functools.wraps(apply)
    def checked(*args: Any, **kwargs: Any) -> Any:
        values = [v for v in (*args, *kwargs.values()) if isinstance(v, (str, int))]
        for value in values:
            if isinstance(value, int) or apply is DEFAULT_FILTERS["format"]:
                _check_size(value)
        if apply is DEFAULT_FILTERS["replace"] and len(values) >= 3:
            _check_replace(*values[:3])
        return apply(*args, **kwargs)

    return checked


@functools.lru_cache(maxsize=64)
def _environment(locale: str, timezone: str, html: bool) -> ImmutableSandboxedEnvironment:
    """One sandboxed environment per language, time zone and kind of part (its filters format for them)."""
    env = _BoundedSandbox(undefined=_Recorder, autoescape=html, trim_blocks=True, lstrip_blocks=True)
    env.globals["range"] = _counted_range
    for name in ("center", "indent", "wordwrap", "truncate", "format", "replace", "batch", "slice", "round"):
        env.filters[name] = _checked_filter(env.filters[name])
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
    token, steps = _MISSING.set(missing), _STEPS.set([MAX_STEPS])
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
        _STEPS.reset(steps)
    url = out["url"] if out["url"] and out["url"].lower().startswith(("https://", "http://")) else None
    return Rendered(chosen, out["subject"], out["text"] or "", out["html"], sorted(set(missing)), url)


@functools.lru_cache(maxsize=512)
def _compiled(locale: str, timezone: str, html: bool, source: str) -> Any:
    """A template compiled once per process (rendering 100,000 messages compiles it once)."""
    return _environment(locale, timezone, html).from_string(source)
