"""Counting a text into SMS: GSM-7 and UCS-2 at their boundaries, the extension table's double
septets, surrogate pairs, parts that never split an escape or a pair, and the console's counter."""

from __future__ import annotations

import pytest

from seamline.channels.sms import segments
from seamline.channels.sms.segments import GSM7, UCS2, count, split


@pytest.mark.parametrize(("length", "parts", "per_part", "remaining"), [
    (1, 1, 160, 159), (160, 1, 160, 0), (161, 2, 153, 145), (306, 2, 153, 0), (307, 3, 153, 152), (459, 3, 153, 0),
])
def test_gsm7_boundaries(length, parts, per_part, remaining):
    counted = count("a" * length)
    assert (counted.encoding, counted.units, counted.parts, counted.per_part, counted.remaining) == (
        GSM7, length, parts, per_part, remaining)


def test_the_extension_table_takes_two_septets():
    for char in "^{}\\[~]|€\x0c":
        assert segments.SEPTETS[char] == 2, repr(char)
    assert count("{" * 80).as_dict() == {
        "encoding": GSM7, "parts": 1, "units": 160, "per_part": 160, "remaining": 0, "unicode_chars": []}
    assert count("{" * 80 + "a").parts == 2
    assert count("Price: 10€ [sale]").units == 20  # 17 characters, three of them escaped


def test_the_basic_table_beyond_ascii_is_still_gsm7():
    counted = count("Café à Malmö: £5, ¿qué? ÆØÅ ΔΦΓ\r\n@$_")
    assert counted.encoding == GSM7 and counted.units == len("Café à Malmö: £5, ¿qué? ÆØÅ ΔΦΓ\r\n@$_")
    assert count("`").encoding == UCS2 and count("ç").encoding == UCS2  # not in the default alphabet


def test_an_escape_never_straddles_two_parts():
    text = "a" * 152 + "€" + "a" * 152  # 306 septets: two parts by arithmetic, three in fact
    parts = split(text)
    assert parts[0] == "a" * 152 and parts[1].startswith("€")
    assert [sum(segments.SEPTETS[c] for c in p) for p in parts] == [152, 153, 1]
    assert count(text).parts == 3 and "".join(parts) == text


@pytest.mark.parametrize(("length", "parts", "per_part", "remaining"), [
    (70, 1, 70, 0), (71, 2, 67, 63), (134, 2, 67, 0), (135, 3, 67, 66),
])
def test_cyrillic_is_ucs2(length, parts, per_part, remaining):
    counted = count("д" * length)
    assert (counted.encoding, counted.units, counted.parts, counted.per_part, counted.remaining) == (
        UCS2, length, parts, per_part, remaining)


def test_one_cyrillic_letter_makes_the_whole_text_ucs2():
    counted = count("Hello, " + "a" * 60 + " Анна!")
    assert counted.encoding == UCS2 and counted.units == 73 and counted.parts == 2
    assert counted.unicode_chars == ("А", "н", "а")


def test_emoji_are_surrogate_pairs_and_are_not_split():
    assert count("😀").units == 2
    assert count("д" * 68 + "😀").as_dict()["parts"] == 1  # 70 units
    assert count("д" * 69 + "😀").parts == 2  # 71 units
    text = "д" * 66 + "😀" + "д" * 66  # 134 units: two parts by arithmetic, three in fact
    parts = split(text)
    assert parts[0] == "д" * 66 and parts[1].startswith("😀")
    assert [sum(segments.utf16_units(c) for c in p) for p in parts] == [66, 67, 1]
    assert count(text).parts == 3


def test_mixed_text_and_the_empty_one():
    assert count("Заказ №1042 готов 👍 {promo}").encoding == UCS2
    assert count("").as_dict() == {"encoding": GSM7, "parts": 0, "units": 0, "per_part": 160, "remaining": 160, "unicode_chars": []}
    assert split("") == []


def test_the_consoles_counter_needs_an_agent_key(client, admin_headers, read_headers):
    assert client.post("/v1/channels/sms/segments", json={"text": "hi"}).status_code == 401
    assert client.post("/v1/channels/sms/segments", json={"text": "hi"}, headers=read_headers).status_code == 403
    response = client.post("/v1/channels/sms/segments", json={"text": "Ваш заказ готов"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"encoding": UCS2, "parts": 1, "units": 15, "per_part": 70, "remaining": 55,
                               "unicode_chars": ["В", "а", "ш", "з", "к", "г", "о", "т", "в"], "max_parts": 8, "too_long": False}
    long = client.post("/v1/channels/sms/segments", json={"text": "д" * 600}, headers=admin_headers).json()
    assert long["parts"] == 9 and long["too_long"] is True
