"""The fast paths of email and phone normalization give exactly what the libraries give.

`IdentifierRules._email` / `_phone` try `customers.fast_normalize` before email_validator and
phonenumbers. The oracle here is the implementation from before the fast paths (library only):
for generated inputs, both give the same value, or the same error (class, code, details,
message). Rerun when upgrading either library.
"""

from __future__ import annotations

import email_validator
import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from seamline.core.config import Settings
from seamline.core.errors import Unprocessable
from seamline.customers.fast_normalize import fast_email, fast_phone
from seamline.customers.identifiers import IdentifierRules

MANY = settings(max_examples=3000, deadline=None, derandomize=True)
REGIONS = ["RU", "KZ", "US", "GB", "DE", "IT", "FR", "BY", "UA", "BR", "AR", "MX", "CN", "IN", "AE", "TR", "VA", "JE",
           "CA", "AU", "CX", "FI", "AX", "BL", "SH", "TA", "001", "ZZ", ""]
_rules: dict[str, IdentifierRules] = {}


def rules_for(region: str) -> IdentifierRules:
    if region not in _rules:
        _rules[region] = IdentifierRules(Settings(_env_file=None, default_region=region))
    return _rules[region]


# --- the oracle: `_email` and `_phone` as they were, the libraries only ---------------------------

_PHONE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}

def library_email(type_name: str, value: str) -> str:
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise Unprocessable(
            f"Invalid email {value!r}: {exc}",
            code="invalid_email",
            details={"type": type_name, "value": value, "reason": str(exc)},
        ) from None
    return checked.normalized.lower()


def library_phone(type_name: str, value: str, region: str) -> str:
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


def outcome(function, *args):
    try:
        return ("value", function(*args))
    except Unprocessable as exc:
        return ("error", type(exc), exc.code, exc.details, exc.message)
    except Exception as exc:  # noqa: BLE001 - whatever the library raises, both must raise it
        return ("raised", type(exc), str(exc))


def assert_same_email(value: str) -> None:
    assert outcome(rules_for("RU")._email, "email", value) == outcome(library_email, "email", value)


def assert_same_phone(value: str, region: str = "RU") -> None:
    assert outcome(rules_for(region)._phone, "phone", value) == outcome(library_phone, "phone", value, region)


# --- phones --------------------------------------------------------------------------------------

TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
         phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.PREMIUM_RATE,
         phonenumbers.PhoneNumberType.VOIP, phonenumbers.PhoneNumberType.SHARED_COST,
         phonenumbers.PhoneNumberType.UAN, phonenumbers.PhoneNumberType.PERSONAL_NUMBER]
EXAMPLES = [n for r in REGIONS[:-3] for t in TYPES if (n := phonenumbers.example_number_for_type(r, t)) is not None]
EXAMPLES += [phonenumbers.example_number_for_non_geo_entity(code) for code in (800, 808, 870, 881, 882, 883, 888, 979)]
PREFIXES = ["", "+", "8", "7", "0", "00", "810", "011", "1", "+7", "+8", "+0", "+00", "+1", "+39", "+39 0", "+44 0",
            "+49 0", "+7 8", "+375", "+380", "+54 9", "+55", "8 10", "++7", "+ 7"]


def spread(text: str, draw) -> str:
    """The characters of `text` with separators drawn between them."""
    separators = st.sampled_from(["", "", "", " ", "-", "(", ")", ".", " (", ") ", "--", "  "])
    return "".join(c + draw(separators) for c in text)


@st.composite
def written_phones(draw) -> str:
    """A real number (example numbers of many regions and types), written in one of the usual
    ways, sometimes with a digit changed, dropped or added."""
    number = draw(st.sampled_from(EXAMPLES))
    cc = str(number.country_code)
    nsn = phonenumbers.national_significant_number(number)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if draw(st.integers(0, 3)) == 0:
        position = draw(st.integers(0, len(nsn)))
        digit = draw(st.sampled_from("0123456789"))
        nsn = draw(st.sampled_from([nsn[:position] + digit + nsn[position + 1:], nsn[:position] + nsn[position + 1:],
                                    nsn[:position] + digit + nsn[position:]]))
    return draw(st.sampled_from([
        f"+{cc}{nsn}",
        f"+{cc} {nsn}",
        f"{cc}{nsn}",
        f"8{nsn}",
        f"0{nsn}",
        f"1{nsn}",
        nsn,
        f"810{cc}{nsn}",
        f"00{cc}{nsn}",
        f"+{cc}0{nsn}",
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966),
        national,
        spread(f"+{cc}{nsn}", draw),
        spread(f"8{nsn}", draw),
        spread(nsn, draw),
        spread(f"{cc}{nsn}", draw),
    ]))


digit_runs = st.builds(lambda prefix, digits: prefix + digits, st.sampled_from(PREFIXES),
                       st.text(alphabet="0123456789", max_size=18))
phone_junk = st.text(alphabet="0123456789+()-. xX#,;*/~aZ\u0663\uff11\u00a0", max_size=24)
any_phone = st.one_of(written_phones(), digit_runs, phone_junk)


@MANY
@given(any_phone)
@example("+79161234567")
@example("8 (916) 123-45-67")
@example("+7 916 123 45 67")
@example("89161234567")
@example("79161234567")
@example("9161234567")
@example("8 800 555 35 35")  # toll free: 8 is the national prefix, then 800
@example("8005553535")  # 8 stays: the 10 digits are already a Russian number
@example("+7 8 916 123 45 67")  # parse strips a national prefix even after +7
@example("+78005553535")
@example("87012345678")  # Kazakhstan, shares +7
@example("+7 701 234 56 78")
@example("810 49 151 12345678")  # Russian IDD
@example("8 10 916 123 45 67")
@example("+39 06 1234 5678")  # Italian leading zero kept
@example("+39 0 6")
@example("+3900")
@example("+44 0 20 7183 8750")  # national prefix after the country code
@example("+1 (212) 555-0123")
@example("12125550123")
@example("+0 123 456")
@example("+999 123 456")
@example("+12")
@example("+1")
@example("12")
@example("(916) 123-45-67.")
@example("916 123 45 67 ext. 12")
@example("+7 916 123 45 67 # 12")
@example("+7916123456789012345")
@example("+" + "9" * 20)
@example("9" * 251)
def test_phone_equals_the_library(value):
    assert_same_phone(value)


@MANY
@given(any_phone, st.sampled_from(REGIONS))
@example("0151 12345678", "DE")
@example("+49 0151 12345678", "DE")
@example("06 1234 5678", "IT")
@example("020 7183 8750", "GB")
@example("44 20 7183 8750", "GB")
@example("1 212 555 0123", "US")
@example("011 7 916 123 45 67", "US")
@example("8 029 123 45 67", "BY")
@example("011 15 2345 6789", "AR")
@example("7 701 234 56 78", "KZ")
@example("+7 916 123 45 67", "ZZ")
@example("916 123 45 67", "ZZ")
@example("+800 1234 5678", "001")
def test_phone_equals_the_library_in_other_default_regions(value, region):
    assert_same_phone(value, region)


def test_usual_phone_shapes_take_the_fast_path():
    for value in ["+79161234567", "8 (916) 123-45-67", "+7 916 123 45 67", "89161234567", "9161234567",
                  "79161234567", "+7 (701) 234-56-78", "+49 151 12345678", "+44 20 7183 8750", "+39 06 1234 5678",
                  "+1 212 555 0123", "8 800 555 35 35"]:
        assert fast_phone(value, "RU") == library_phone("phone", value, "RU"), value


# --- emails --------------------------------------------------------------------------------------

ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
atoms = st.text(alphabet=ATEXT, min_size=1, max_size=12)
local_parts = st.one_of(
    st.lists(atoms, min_size=1, max_size=4).map(".".join),
    st.text(alphabet=ATEXT + '.."@ \\ä', min_size=0, max_size=20),  # stray dots, quotes, spaces, non-ASCII
    st.builds(lambda inner: f'"{inner}"', st.text(alphabet=ATEXT + ' .@"\\', max_size=12)),  # quoted
    st.sampled_from(["Info", "POSTMASTER", "a" * 64, "a" * 65, "δοκιμή", "用户", "a\u0301"]),
)
labels = st.one_of(
    st.text(alphabet="abcxyzABCXYZ0189-", min_size=1, max_size=12),
    st.sampled_from(["xn--p1ai", "xn--e1afmkfd", "xn--zz", "ab--cd", "a--b", "пример", "bücher", "ÄÖ", "例え",
                     "a" * 63, "a" * 64, "-a", "a-", "_a", "1"]),
)
tlds = st.one_of(
    st.sampled_from(["com", "COM", "ru", "Ru", "рф", "xn--p1ai", "local", "LOCAL", "test", "invalid", "localhost",
                     "onion", "arpa", "example", "a", "c0m", "123", "museum", "a" * 63, "a" * 64]),
    st.text(alphabet="abcxyzABCXYZ0189-", min_size=1, max_size=8),
)
domains = st.one_of(
    st.builds(lambda parts, tld: ".".join([*parts, tld]), st.lists(labels, min_size=0, max_size=3), tlds),
    st.sampled_from(["[127.0.0.1]", "[IPv6:::1]", "example.com.", ".example.com", "example..com", "", "a@b.com"]),
)
written_emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
plausible_emails = st.builds(  # mostly valid: the fast path's shape, and its edges
    lambda atoms, hosts, tld: ".".join(atoms) + "@" + ".".join([*hosts, tld]),
    st.lists(st.text(alphabet="abzABZ019._+-", min_size=1, max_size=10), min_size=1, max_size=3),
    st.lists(st.text(alphabet="abzABZ019-", min_size=1, max_size=10), min_size=1, max_size=3),
    st.sampled_from(["com", "Ru", "ORG", "io", "test", "local", "onion", "c0m", "x"]),
)
email_junk = st.text(alphabet="ab.@-_\"<> A\u00e4", max_size=20)
any_email = st.one_of(plausible_emails, plausible_emails, written_emails, email_junk)


@MANY
@given(any_email)
@example("Person.1@Example.com")
@example("PERSON.1@EXAMPLE.COM")
@example("anna@example.com")
@example("Info@Example.com")  # a case-insensitive mailbox name: lowercased anyway
@example("a@b.c")
@example("a@b.c0")  # the last label must end with a letter
@example("a@b.local")
@example("a@B.LOCAL")
@example("a@mail.test")
@example("a@localhost")
@example("a@xn--p1ai.ru")
@example("a@ab--cd.com")
@example("a@пример.рф")
@example('"a b"@example.com')
@example('"ab"@example.com')
@example("Anna <anna@example.com>")
@example(".a@example.com")
@example("a.@example.com")
@example("a..b@example.com")
@example("a@-example.com")
@example("a@example-.com")
@example("a@example.com.")
@example("a" * 64 + "@example.com")
@example("a" * 65 + "@example.com")
@example("a@" + "b" * 63 + ".com")
@example("a@" + "b" * 64 + ".com")
@example("a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".com")  # 254 characters
@example("a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".coms")  # 255
@example("a@" + ".".join(["b" * 61] * 4) + ".c")  # domain of 253 characters
def test_email_equals_the_library(value):
    assert_same_email(value)


@pytest.mark.parametrize("change", ["special_use", "test_environment", "strict", "not_globally_deliverable"])
def test_email_follows_the_library_settings(monkeypatch, change):
    """The fast path reads the special-use names at each call, as the library does; its shape is
    inside what the library accepts whatever its other module defaults."""
    if change == "special_use":
        monkeypatch.setattr(email_validator, "SPECIAL_USE_DOMAIN_NAMES", [*email_validator.SPECIAL_USE_DOMAIN_NAMES,
                                                                         "example.com"])
    else:
        attribute = {"test_environment": "TEST_ENVIRONMENT", "strict": "STRICT",
                     "not_globally_deliverable": "GLOBALLY_DELIVERABLE"}[change]
        monkeypatch.setattr(email_validator, attribute, change != "not_globally_deliverable")
    for value in ["anna@example.com", "anna@mail.Example.COM", "anna@example.org", "a@mail.test", "a@test",
                  "a" * 65 + "@example.com", "a@b.c0", "a@localhost"]:
        assert_same_email(value)


def test_usual_email_shapes_take_the_fast_path():
    for value in ["Person.1@Example.com", "anna@example.com", "ANNA.PETROVA+shop@Mail.Yandex.RU", "a_b-c@x-y.co.uk"]:
        assert fast_email(value) == library_email("email", value), value
