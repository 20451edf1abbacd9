"""Opaque cursors for keyset pagination (`?cursor=...&limit=...`)."""

from __future__ import annotations

import base64
import binascii

from seamline.core.errors import Unprocessable


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        last_id = int(value)
        if kind != "id" or not 0 <= last_id < 2**62:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unprocessable("Invalid cursor", code="invalid_cursor", details={"cursor": cursor[:100]}) from None
    return last_id
