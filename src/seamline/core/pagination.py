"""Opaque cursors for keyset pagination (`?cursor=...&limit=...`).

Every paged list of the API answers `{"items": [...], "next_cursor": "..." | null}`: pass
`next_cursor` back as `cursor` for the next page; null means there is none. The cursor is
opaque (today the last id of the page, base64); clients must not build one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query

from seamline.core.errors import Unprocessable
from seamline.core.schemas import MAX_ID, query_id

T = TypeVar("T")

#: The `cursor` query parameter of every paged list.
CursorQuery = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page; leave out for the first")]
#: The old `before_id` parameter some lists took before they had cursors: still honoured.
BeforeIdQuery = Annotated[int | None, query_id(deprecated=True,
                                            description="Deprecated: use `cursor`. Items with a smaller id than this")]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        last_id = int(value)
        if kind != "id" or not 0 <= last_id <= MAX_ID:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unprocessable("Invalid cursor", code="invalid_cursor", details={"cursor": cursor[:100]}) from None
    return last_id


def before(cursor: str | None, before_id: int | None = None) -> int | None:
    """The id a newest-first page starts below: the cursor's, else the deprecated `before_id`."""
    decoded = decode_cursor(cursor)
    return decoded if decoded is not None else before_id


def page(rows: Sequence[T], limit: int, key: Callable[[T], int] = lambda row: row.id) -> tuple[list[T], str | None]:  # type: ignore[attr-defined]
    """Rows fetched with `limit + 1` -> (the page, the next page's cursor or None)."""
    items = list(rows[:limit])
    return items, encode_cursor(key(items[-1])) if len(rows) > limit else None
