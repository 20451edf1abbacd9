"""The customer timeline: everything a person did, on every channel, newest first.

Like the 360's sections, items come from providers that modules register (events now; orders,
messages, calls later), so `customers` never imports them. Each provider returns at most
`limit` items older than the cursor, newest first; the registry merges them and cuts the page.

An item's `title` is English (API clients get stable data). A title the module writes (not a
person's own words) also has its `title_key` and `params`: the key names an English template
that the provider registers with its `titles` (`"order.completed": "Order %(order_id)s:
completed"`), and `title == titles[title_key] % params`; the console translates the template
(web/console/labels.py) and fills in the same params, so the title reads in any language.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, true
from sqlalchemy.orm import Session

from seamline.core.errors import Unprocessable
from seamline.customers.sections import CustomerContext


@dataclass(frozen=True)
class TimelineQuery:
    limit: int = 50
    #: (occurred_at, id) of the last item already seen, for the next page.
    before: tuple[datetime, int] | None = None
    channels: list[str] | None = None
    #: Item types, e.g. "event.track", or a whole kind: "event".
    types: list[str] | None = None

    def wants(self, kind: str) -> bool:
        """Whether items of this kind may be on the page (a provider that is not wanted returns [])."""
        return self.types is None or kind in self.types or any(t.startswith(f"{kind}.") for t in self.types)

    def subtypes(self, kind: str) -> list[str] | None:
        """The subtypes of `kind` asked for ("order.paid" -> "paid"); None: every one."""
        if not self.types or kind in self.types:
            return None
        return [t.split(".", 1)[1] for t in self.types if t.startswith(f"{kind}.")]

    def older_than_cursor(self, occurred_at: ColumnElement[Any], item_id: ColumnElement[Any]) -> ColumnElement[bool]:
        """The rows after the cursor, newest first ((occurred_at, id) below it); every row on the
        first page."""
        if self.before is None:
            return true()
        at, last_id = self.before
        return or_(occurred_at < at, and_(occurred_at == at, item_id < last_id))


@dataclass
class TimelineItem:
    kind: str
    id: int
    occurred_at: datetime
    channel: str
    type: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    #: The title's template among the registered `titles` (None: the title is someone's own
    #: words, a message's text or a site's event name, shown as it is).
    title_key: str | None = None
    #: What the template is filled with.
    params: dict[str, Any] = field(default_factory=dict)


def titled(titles: Mapping[str, str], key: str, params: dict[str, Any]) -> dict[str, Any]:
    """The title fields of an item: `TimelineItem(..., **titled(TITLES, "order.completed", {"order_id": 7}))`."""
    return {"title": titles[key] % params, "title_key": key, "params": params}


TimelineProvider = Callable[[Session, CustomerContext, TimelineQuery], list[TimelineItem]]


def encode_timeline_cursor(item: TimelineItem) -> str:
    raw = json.dumps([item.occurred_at.isoformat(), item.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_timeline_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        at, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None or not isinstance(last_id, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Unprocessable("Invalid cursor", code="invalid_cursor", details={"cursor": cursor[:100]}) from None
    return parsed, last_id


class TimelineRegistry:
    def __init__(self) -> None:
        self._providers: dict[str, TimelineProvider] = {}
        self._titles: dict[str, str] = {}

    def register(self, kind: str, provider: TimelineProvider, *, titles: Mapping[str, str] | None = None) -> None:
        """`titles`: the English templates of the provider's titles by `title_key` (module doc)."""
        if kind in self._providers:
            raise ValueError(f"timeline provider {kind!r} is registered twice")
        self._providers[kind] = provider
        for key, template in (titles or {}).items():
            if self._titles.setdefault(key, template) != template:
                raise ValueError(f"timeline title {key!r} is registered twice")

    @property
    def titles(self) -> dict[str, str]:
        """Every registered title template by key (what the console translates)."""
        return dict(self._titles)

    def page(self, session: Session, context: CustomerContext, query: TimelineQuery) -> tuple[list[TimelineItem], str | None]:
        """One page, newest first, and the cursor of the next page (None at the end).

        Items of different kinds at the same instant are ordered by id; a cursor carries
        (time, id), so providers must keep ids unique across kinds at one instant — true for
        database ids of different tables only by luck, hence the kind in the sort key too."""
        probe = TimelineQuery(limit=query.limit + 1, before=query.before, channels=query.channels, types=query.types)
        items: list[TimelineItem] = []
        for provider in self._providers.values():
            items.extend(provider(session, context, probe))
        items.sort(key=lambda i: (i.occurred_at, i.id), reverse=True)
        page = items[: query.limit]
        more = len(items) > query.limit
        return page, encode_timeline_cursor(page[-1]) if more and page else None
