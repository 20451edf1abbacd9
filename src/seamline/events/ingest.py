"""Checking Segment-spec messages: shape, size, ids and timestamps, before anything is stored.

Pure functions, no database: `check_message` turns one raw message into a `CheckedEvent` or
raises `MessageError` with the reason; `apply_clock_skew` implements the spec's correction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from seamline.core.schemas import nul_paths

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_ID_LENGTH = 320
MAX_NAME_LENGTH = 200
MAX_MESSAGE_ID_LENGTH = 200
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


class MessageError(ValueError):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(slots=True)
class CheckedEvent:
    message_id: str
    type: str
    name: str | None
    anonymous_id: str | None
    user_id: str | None
    timestamp: datetime
    payload: bytes  # the message as received (without writeKey), JSON
    message: dict[str, Any]


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MessageError("invalid_timestamp", f"{field} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MessageError("invalid_timestamp", f"{field} is not an ISO 8601 date-time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # as Segment: a time without offset is UTC
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the year 1 in UTC
        raise MessageError("invalid_timestamp", f"{field} is out of range: {value[:40]!r}") from None


def _id(message: dict[str, Any], field: str) -> str | None:
    value = message.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MessageError("invalid_id", f"{field} must be a string")
    value = str(value)
    if len(value) > MAX_ID_LENGTH:
        raise MessageError("invalid_id", f"{field} is longer than {MAX_ID_LENGTH} characters")
    return value


def apply_clock_skew(timestamp: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """The spec's correction: the device's clock may be wrong, but the time between the event
    and its sending is right: timestamp = receivedAt - (sentAt - originalTimestamp)."""
    if timestamp is None:
        return received_at
    if sent_at is None:
        return timestamp
    return received_at - (sent_at - timestamp)


def check_message(
    raw: Any, *, default_type: str | None, batch_sent_at: datetime | None, received_at: datetime, max_bytes: int
) -> CheckedEvent:
    if not isinstance(raw, dict):
        raise MessageError("invalid_message", "an event must be a JSON object")
    message = raw
    message.pop("writeKey", None)
    kind = message.get("type", default_type)
    if default_type and kind != default_type:
        raise MessageError("invalid_type", f"type {kind!r} sent to the /{default_type} endpoint")
    if kind not in MESSAGE_TYPES:
        raise MessageError("invalid_type", f"type must be one of {', '.join(MESSAGE_TYPES)}")
    message["type"] = kind
    user_id, anonymous_id = _id(message, "userId"), _id(message, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise MessageError("missing_id", "userId or anonymousId is required")
    for field in _OBJECT_FIELDS:
        if field in message and message[field] is not None and not isinstance(message[field], dict):
            raise MessageError("invalid_field", f"{field} must be an object")
    name = None
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            raise MessageError("missing_event", "a track call needs an event name")
    elif kind in ("page", "screen"):
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise MessageError("invalid_field", "name must be a string")
    elif kind == "alias":
        if user_id is None or _id(message, "previousId") is None:
            raise MessageError("missing_id", "an alias call needs userId and previousId")
    elif kind == "group" and _id(message, "groupId") is None:
        raise MessageError("missing_id", "a group call needs groupId")
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise MessageError("invalid_field", f"the event name is longer than {MAX_NAME_LENGTH} characters")

    message_id = message.get("messageId")
    if message_id is None or message_id == "":
        # Without a messageId nobody can recognize a replay; the libraries always send one.
        message_id = f"seamline-{uuid.uuid4()}"
        message["messageId"] = message_id
    elif not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise MessageError("invalid_message_id", f"messageId must be a string of at most {MAX_MESSAGE_ID_LENGTH} characters")

    original = parse_time(message.get("timestamp"), "timestamp")
    own_sent_at = parse_time(message.get("sentAt"), "sentAt")
    sent_at = own_sent_at or batch_sent_at
    parse_time(message.get("originalTimestamp"), "originalTimestamp")
    try:
        timestamp = apply_clock_skew(original, sent_at, received_at)
    except OverflowError:  # a device clock thousands of years off: no time to correct it to
        raise MessageError("invalid_timestamp", "timestamp and sentAt are too far apart to correct the clock") from None
    if original is not None and "originalTimestamp" not in message:
        message["originalTimestamp"] = message["timestamp"]
    if sent_at is not None and own_sent_at is None:
        message["sentAt"] = sent_at.isoformat().replace("+00:00", "Z")

    try:
        payload = orjson.dumps(message)
    except TypeError as exc:  # numbers beyond 64 bits
        raise MessageError("invalid_message", f"cannot be stored: {exc}") from None
    if len(payload) > max_bytes:
        raise MessageError("event_too_large", f"the event is {len(payload)} bytes; the limit is {max_bytes}")
    if b"\\u0000" in payload and (where := nul_paths(message)):
        # PostgreSQL text cannot hold NUL (SQLite would): rejected on both, this event only.
        field = ".".join(where[0]).replace("\x00", "\\0")
        raise MessageError("nul_character", f"{field} contains a NUL character (\\u0000)")
    return CheckedEvent(message_id, kind, name, anonymous_id, user_id, timestamp, payload, message)


def person_key(*, user_id: str | None = None, anonymous_id: str | None = None) -> str:
    """The identifier an event is filed under: its userId, else its anonymousId."""
    return f"u:{user_id.strip()}" if user_id and user_id.strip() else f"a:{(anonymous_id or '').strip()}"
