"""Fast paths for the common shapes of emails and phones, equal to the libraries on them.

`email_validator.validate_email` (~75 µs) and `phonenumbers.parse` + `is_valid_number`
(~65-95 µs) dominate a bulk import. Most values are a plain ASCII address or a run of digits
with the usual separators; on those, the libraries' steps reduce to a few checks, done here with
the libraries' own data (email_validator's special-use names, phonenumbers' metadata; a phone's
validity is still phonenumbers' own `is_valid_number`; `parse` is what is mirrored). Each
function returns the normalized value, or None when the input is not such a shape or a branch
of the library could apply that is not mirrored here: the caller then asks the library, so
unusual inputs and every error still come from it. `tests/customers/test_identifier_normalization.py`
checks the equivalence on generated inputs (rerun it when upgrading either library).
"""

from __future__ import annotations

import re
from functools import lru_cache

import email_validator
import phonenumbers
from phonenumbers import PhoneMetadata

# --- email -------------------------------------------------------------------------------------

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_EMAIL = re.compile(rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:{_LABEL}\.)+[A-Za-z]{{1,63}})")


@lru_cache(maxsize=8)
def _special_suffixes(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("." + name for name in names)


def fast_email(value: str) -> str | None:
    """`validate_email(value, check_deliverability=False, allow_smtputf8=True).normalized.lower()`
    for a plain ASCII address, else None.

    A dot-atom local part of RFC 5322 atext passes the library's first local-part regex and is
    kept as is (at most 64 long, so even a `STRICT` length check passes). A domain of LDH labels
    (each at most 63, none starting or ending with '-') with an alphabetic last label passes
    every domain check; the library only lowercases it (UTS-46 mapping of ASCII). What could
    still make it fail is checked here: the total length (254), a '--' (reserved R-LDH labels,
    Punycode `xn--` labels that go through IDNA) and the special-use names, read from the
    library at each call as it does. The result is then the input lowercased.
    """
    match = _PLAIN_EMAIL.fullmatch(value)
    if match is None or len(value) > 254 or len(match[1]) > 64:
        return None
    domain = match[2].lower()
    if "--" in domain:
        return None
    names = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)
    if domain in names or domain.endswith(_special_suffixes(names)):
        return None
    return value.lower()


# --- phone -------------------------------------------------------------------------------------

_PLAIN_PHONE = re.compile(r"\+?[0-9 ().\-]+")
_MAX_INPUT_LENGTH = 250  # phonenumberutil._MAX_INPUT_STRING_LENGTH
_MAX_NSN_LENGTH = 17  # phonenumberutil._MAX_LENGTH_FOR_NSN


def _pattern(regex: str | None) -> re.Pattern | None:
    """A metadata pattern compiled; None when absent or empty (it then matches nothing)."""
    return re.compile(regex) if regex else None


class _Rules:
    """What the fast path reads of one region's metadata, with its patterns compiled once."""

    __slots__ = ("country_code", "idd", "national_prefix", "transform", "general", "lengths", "local_lengths")

    def __init__(self, metadata: PhoneMetadata):
        self.country_code = metadata.country_code
        # parse tries the IDD whenever it is set, even empty (which matches any number)
        self.idd = None if metadata.international_prefix is None else re.compile(metadata.international_prefix)
        self.national_prefix = _pattern(metadata.national_prefix_for_parsing)
        self.transform = bool(metadata.national_prefix_transform_rule)
        general = metadata.general_desc
        self.general = _pattern(general.national_number_pattern)
        self.lengths = general.possible_length
        self.local_lengths = general.possible_length_local_only

    def is_general(self, digits: str) -> bool:
        """phonenumbers' `_match_national_number` against the general description."""
        return self.general is not None and self.general.fullmatch(digits) is not None

    def strip_national_prefix(self, nsn: str) -> str | None:
        """The national number `parse` keeps after trying to strip the national prefix, or None
        when its answer is not evident here (then the library decides).

        Mirrors `_maybe_strip_national_prefix_carrier_code` and `parse`'s length test after it:
        no prefix pattern or no match leaves the number as is; a prefix without transform rule
        whose remainder matches the general pattern is stripped, and `parse` keeps the
        remainder when `_test_number_length` says IS_POSSIBLE (a possible length that is not
        local-only).
        """
        if self.national_prefix is None:
            return nsn
        match = self.national_prefix.match(nsn)
        if match is None:
            return nsn
        rest = nsn[match.end():]
        size = len(rest)
        if (self.transform or not self.is_general(rest) or size in self.local_lengths or size not in self.lengths
                or not self.lengths[0] <= size <= self.lengths[-1]):
            return None
        return rest


@lru_cache(maxsize=None)
def _region_rules(region: str) -> _Rules | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    return None if metadata is None else _Rules(metadata)


@lru_cache(maxsize=None)
def _main_rules(country_code: int) -> _Rules:
    """The rules `parse` reads a known country code's numbers with: its main region's."""
    region = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code][0]
    return _Rules(PhoneMetadata.metadata_for_region_or_calling_code(country_code, region))


def _is_valid(country_code: int, nsn: str) -> bool:
    """`is_valid_number` of what `parse` would return: the national number as an integer, and
    its leading zeros recorded (as `parse` does), so the library sees the same number."""
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(nsn))
    zeros = len(nsn) - len(nsn.lstrip("0"))
    if zeros and len(nsn) > 1:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = min(zeros, len(nsn) - 1)
    return phonenumbers.is_valid_number(number)


def fast_phone(value: str, region: str) -> str | None:
    """The E.164 form `parse(value, region)` + `is_valid_number` + `format_number` give, for
    ASCII digits with the separators ` ()-.` and an optional leading '+'; else None.

    On such a string `parse`'s front end changes nothing but dropping the separators: there is
    no RFC 3966 part and no letter, it is viable (3 digits or more), and no extension pattern can
    match (each needs a letter, '#', '~', ',' or ';'). The rest is mirrored:

    - '+': the country code is the first of 1-3 digits phonenumbers knows (none starts with 0),
      read with its main region's metadata;
    - no '+': the default region's country code, when the region's IDD does not match the
      start; if the number starts with that country code, it is taken as country code + rest
      only in `parse`'s clear case (no national prefix at the start of the rest, the rest
      matches the region's general pattern and the whole number does not); other numbers
      starting with the country code are left to the library;
    - then the national prefix (`_Rules.strip_national_prefix`) and the length limits; validity
      is the library's own `is_valid_number` (`_is_valid`).

    The E.164 form is '+', the country code and the national number as kept: `parse` records
    its leading zeros and `format_number` writes them back.
    """
    if len(value) > _MAX_INPUT_LENGTH or _PLAIN_PHONE.fullmatch(value) is None:
        return None
    plus = value[0] == "+"
    digits = value[1:] if plus else value
    digits = digits.replace(" ", "").replace("-", "").replace("(", "").replace(")", "").replace(".", "")
    if len(digits) < 3:
        return None
    if plus:
        if digits[0] == "0":
            return None
        for size in (1, 2, 3):
            country_code = int(digits[:size])
            if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                nsn = digits[size:]
                break
        else:
            return None
        rules = _main_rules(country_code)
    else:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            return None
        rules = _region_rules(region)
        if rules.idd is not None and rules.idd.match(digits):
            return None
        country_code, nsn = rules.country_code, digits
        code = str(country_code)
        if digits.startswith(code):
            rest = digits[len(code):]
            if rules.national_prefix is not None and rules.national_prefix.match(rest):
                return None
            if rules.is_general(digits) or not rules.is_general(rest):
                return None
            nsn = rest
            rules = _main_rules(country_code)
    if len(nsn) < 2:
        return None
    nsn = rules.strip_national_prefix(nsn)
    if nsn is None or len(nsn) > _MAX_NSN_LENGTH or not _is_valid(country_code, nsn):
        return None
    return f"+{country_code}{nsn}"
