"""Identifier types, normalization and the merge rules, all read from Settings.

`8 (916) 123-45-67` and `+79161234567` are one phone; ` Anna@Example.COM ` and
`anna@example.com` one email. Normalization happens once, here, before anything is stored or
looked up. Emails and phones of the common shapes take the fast paths of `fast_normalize`
(equal to the libraries on them: phones ~3x, emails ~25x cheaper); anything else goes to email_validator and
phonenumbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from seamline.core.config import Settings
from seamline.core.errors import Unprocessable
from seamline.customers.fast_normalize import fast_email, fast_phone

# Keep phonenumbers' compiled metadata patterns instead of recompiling them through `re`'s small
# cache: its own switch for programs that check numbers of many regions (is_valid_number 20 -> 14 µs).
phonenumbers.enable_pattern_cache()

MAX_VALUE_LENGTH = 320
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_PHONE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


@dataclass(frozen=True, order=True)
class Identifier:
    type: str
    value: str


#: Identifiers a device holds (a cookie, an app install): whoever sends one is that device. They
#: are never "verified" (nobody vouches for a cookie), but a browser may gather new identifiers
#: around the one it holds (docs/customers.md, "Trust").
DEVICE_TYPES = frozenset({"anonymous_id", "device_id"})


class IdentifierRules:
    """What the settings say about identifiers: types, normalization, priority, limits, blocklist."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.types = settings.identifier_types
        for name, kind in self.types.items():
            if kind not in ("text", "email", "phone"):
                raise ValueError(f"identifier type {name!r} has unknown kind {kind!r} (text, email or phone)")
        self._blocked_patterns = [re.compile(p) for p in settings.blocked_values]
        # Event collection normalizes the same ids over and over; valid results are memoized
        # (errors are not: they are raised afresh each time).
        self.normalize = lru_cache(maxsize=200_000)(self._normalize)
        self.is_blocked = lru_cache(maxsize=200_000)(self._is_blocked)

    @cached_property
    def priority(self) -> dict[str, int]:
        order = [t for t in self.settings.identifier_priority if t in self.types]
        order += sorted(t for t in self.types if t not in order)
        return {t: i for i, t in enumerate(order)}

    @cached_property
    def blocked_exact(self) -> set[Identifier]:
        blocked = set()
        for raw in self.settings.blocked_extra_values:
            for type_name, kind in self.types.items():
                try:
                    blocked.add(self.normalize(type_name, raw))
                except Unprocessable:
                    continue
        return blocked

    def limit(self, type_name: str) -> int:
        return self.settings.identifier_limits.get(type_name, self.settings.identifier_default_limit)

    def check_type(self, type_name: str) -> str:
        if type_name not in self.types:
            raise Unprocessable(
                f"Unknown identifier type {type_name!r}",
                code="unknown_identifier_type",
                details={"type": type_name, "known_types": sorted(self.types)},
            )
        return type_name

    def _normalize(self, type_name: str, raw: str) -> Identifier:
        kind = self.types[self.check_type(type_name)]
        value = raw.strip() if isinstance(raw, str) else raw
        if not isinstance(value, str) or not value:
            raise Unprocessable(
                f"Empty {type_name}", code="invalid_identifier", details={"type": type_name, "value": raw}
            )
        if _CONTROL.search(value) or len(value) > MAX_VALUE_LENGTH:
            raise Unprocessable(
                f"Invalid {type_name}: control characters or longer than {MAX_VALUE_LENGTH}",
                code="invalid_identifier",
                details={"type": type_name, "value": raw[:MAX_VALUE_LENGTH], "reason": "control characters or too long"},
            )
        if kind == "email":
            return Identifier(type_name, self._email(type_name, value))
        if kind == "phone":
            return Identifier(type_name, self._phone(type_name, value))
        return Identifier(type_name, value)

    def _email(self, type_name: str, value: str) -> str:
        fast = fast_email(value)
        if fast is not None:
            return fast
        try:
            checked = validate_email(value, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError as exc:
            raise Unprocessable(
                f"Invalid email {value!r}: {exc}",
                code="invalid_email",
                details={"type": type_name, "value": value, "reason": str(exc)},
            ) from None
        return checked.normalized.lower()

    def _phone(self, type_name: str, value: str) -> str:
        region = self.settings.default_region
        fast = fast_phone(value, region)
        if fast is not None:
            return fast
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException as exc:
            reason = _PHONE_REASONS.get(exc.error_type, "not a phone number")
            raise Unprocessable(
                f"Invalid phone {value!r}: {reason}",
                code="invalid_phone",
                details={"type": type_name, "value": value, "reason": reason, "default_region": region},
            ) from None
        if not phonenumbers.is_valid_number(number):
            raise Unprocessable(
                f"Invalid phone {value!r}: not a valid number for its region",
                code="invalid_phone",
                details={"type": type_name, "value": value, "reason": "not a valid number", "default_region": region},
            )
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def _is_blocked(self, identifier: Identifier) -> bool:
        return identifier in self.blocked_exact or any(p.search(identifier.value) for p in self._blocked_patterns)

    def prepare(self, pairs: list[tuple[str, str]]) -> tuple[list[Identifier], list[Identifier]]:
        """Normalize, drop duplicates, order by priority; returns (usable, blocked)."""
        usable: list[Identifier] = []
        blocked: list[Identifier] = []
        seen: set[Identifier] = set()
        for type_name, raw in pairs:
            try:
                ident = self.normalize(type_name, raw)
            except Unprocessable:
                # A placeholder that is not even a valid phone or email ("0", "000-000", "null")
                # is what a blocked value is for: ignore it rather than fail the request.
                placeholder = Identifier(self.check_type(type_name), raw.strip() if isinstance(raw, str) else "")
                if not placeholder.value or not any(p.search(placeholder.value) for p in self._blocked_patterns):
                    raise
                ident = placeholder
            if ident in seen:
                continue
            seen.add(ident)
            (blocked if self.is_blocked(ident) else usable).append(ident)
        usable.sort(key=lambda i: (self.priority[i.type], i.value))
        return usable, blocked
