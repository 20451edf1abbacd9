"""How many SMS a text costs: its encoding and its parts, as the network splits it.

- GSM-7 when every character is in the GSM 03.38 default alphabet: 7-bit septets, 160 in one
  SMS, 153 per part of a longer (concatenated) one. The extension table's characters
  (`^ { } [ ] ~ | \\ €` and form feed) take two septets (an escape, then the character).
- UCS-2 otherwise (a single Cyrillic letter, emoji or typographic quote is enough): UTF-16 code
  units, 70 in one SMS, 67 per part. A character outside the Basic Multilingual Plane (most
  emoji) is a surrogate pair, two units.
- A part never splits an escape sequence or a surrogate pair (the handset would show garbage),
  so a character that does not fit whole starts the next part: the count can be one more than
  units / capacity rounded up.

The alphabet comes from the `gsm0338` codec (maintained; 3GPP TS 23.038's tables, so nobody
retypes them here). The part counting is ours: the PyPI packages that split SMS are unmaintained
(smsutil's last release is from 2020, smspdu's from 2011) or brand new, and the rules above are
short. National language shift tables (Turkish, Spanish, Portuguese, Indian) are not used:
gateways here do not send them, and UCS-2 is the safe upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec

GSM7 = "GSM-7"
UCS2 = "UCS-2"
#: Units one SMS carries alone, and per part of a concatenated message (the rest is the UDH)
CAPACITY = {GSM7: (160, 153), UCS2: (70, 67)}
#: The escape to the extension table: a code, not a character
_ESCAPE = 0x1B
#: Characters that made a text UCS-2, reported at most this many (for the agent's console)
UNICODE_CHARS_SHOWN = 10


def _gsm7_septets() -> dict[str, int]:
    """Septets of each character of the default alphabet: 1 in the basic table, 2 in the extension."""
    table: dict[str, int] = {}
    for code in range(0x80):
        if code != _ESCAPE:
            table[bytes([code]).decode("gsm03.38")] = 1
    for code in range(0x80):
        try:
            char = bytes([_ESCAPE, code]).decode("gsm03.38")
        except ValueError:
            continue
        table.setdefault(char, 2)
    return table


SEPTETS = _gsm7_septets()


@dataclass(frozen=True)
class Segments:
    encoding: Literal["GSM-7", "UCS-2"]
    #: SMS the text is sent as (0 for an empty text)
    parts: int
    #: Septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text
    units: int
    #: Units one part carries: 160 or 153 (GSM-7), 70 or 67 (UCS-2)
    per_part: int
    #: Units still free in the last part
    remaining: int
    #: The first characters outside the GSM alphabet (why the text is UCS-2)
    unicode_chars: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "parts": self.parts, "units": self.units, "per_part": self.per_part,
                "remaining": self.remaining, "unicode_chars": list(self.unicode_chars)}


def utf16_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def non_gsm_chars(text: str) -> list[str]:
    """Distinct characters outside the GSM 03.38 default alphabet, in order of appearance."""
    return list(dict.fromkeys(c for c in text if c not in SEPTETS))


def encoding_of(text: str) -> Literal["GSM-7", "UCS-2"]:
    return GSM7 if all(c in SEPTETS for c in text) else UCS2


def split(text: str) -> list[str]:
    """The text as the parts it is sent in."""
    encoding = encoding_of(text)
    cost = SEPTETS.__getitem__ if encoding == GSM7 else utf16_units
    single, per_part = CAPACITY[encoding]
    if sum(cost(c) for c in text) <= single:
        return [text] if text else []
    parts, current, used = [], [], 0
    for char in text:
        units = cost(char)
        if used + units > per_part:  # does not fit whole: starts the next part
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += units
    parts.append("".join(current))
    return parts


def count(text: str) -> Segments:
    encoding = encoding_of(text)
    cost = SEPTETS.__getitem__ if encoding == GSM7 else utf16_units
    single, per_part = CAPACITY[encoding]
    parts = split(text)
    units = sum(cost(c) for c in text)
    capacity = single if len(parts) <= 1 else per_part
    last = sum(cost(c) for c in parts[-1]) if parts else 0
    shown = tuple(non_gsm_chars(text)[:UNICODE_CHARS_SHOWN]) if encoding == UCS2 else ()
    return Segments(encoding=encoding, parts=len(parts), units=units, per_part=capacity, remaining=capacity - last,
                    unicode_chars=shown)
