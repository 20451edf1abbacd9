"""Settings edited with fields, not JSON (issue 18, item 12): the loyalty program's tiers, channel
bonuses and category multipliers as rows (amounts in the currency, add and remove rows), an SLA
policy's business hours per weekday with a time zone and holidays; refusals in the person's
language; the JSON API (/v1/loyalty/program, /v1/inbox/sla-policies) unchanged."""

from __future__ import annotations

import re

import pytest

from seamline.core.auth.schemas import Scope
from tests.conftest import make_key

HX = {"HX-Request": "true"}
PROGRAM = {"name_ru": "Бонусы", "name_en": "Bonuses", "points_name_ru": "баллы", "points_name_en": "points",
           "currency": "RUB", "point_value": "100", "earn_percent": "5", "max_redeem_percent": "30",
           "welcome_points": "0", "birthday_points": "0", "hold_days": "14", "expiry_days": "365",
           "tier_window_days": "365", "card_check_digit": "luhn", "card_prefix": "7700", "auto_enroll": "true"}


def post(client, path: str, csrf: str, data: dict | None = None):
    return client.post(path, data=data or {}, headers={**HX, "X-CSRF-Token": csrf})


@pytest.fixture
def api(client, database):
    headers = {"Authorization": f"Bearer {make_key(database, Scope.admin, name='seed')}"}

    def call(method: str, path: str, **kwargs):
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    return call


def values(page: str, prefix: str) -> dict[str, str]:
    """{field name: value} of the text inputs whose name starts with `prefix` (not the checkboxes)."""
    return {name: value for name, value in re.findall(rf'name="({prefix}[^"]*)" value="([^"]*)"', page)
            if not name.endswith(("-remove", "-first_order_only"))}


def test_tiers_are_rows_with_amounts_in_the_currency(client, api, staff_client):
    api("PATCH", "/v1/loyalty/program", json={"tiers": [
        {"code": "silver", "name_ru": "Серебро", "name_en": "Silver", "min_spend": 2000000, "earn_multiplier": 1.2},
        {"code": "gold", "name_ru": "Золото", "name_en": "Gold", "min_spend": 5000050, "earn_multiplier": 1.5}]})
    csrf = staff_client("marketer")
    page = client.get("/console/settings?tab=loyalty").text
    assert 'name="tiers"' not in page and "<textarea" not in page  # no JSON left
    shown = values(page, "tiers-")
    assert shown["tiers-0-code"] == "silver" and shown["tiers-0-min_spend"] == "20000"
    assert shown["tiers-1-min_spend"] == "50000.50" and shown["tiers-1-earn_multiplier"] == "1.5"
    assert shown["tiers-2-code"] == "" and shown["tiers-3-code"] == ""  # blank rows to add tiers

    # "Add a row" shows the form as typed with one more blank row, and saves nothing.
    typed = {**PROGRAM, **{k: v for k, v in shown.items()}, "tiers-2-code": "platinum", "add_row": "tiers"}
    more = post(client, "/console/settings/loyalty", csrf, typed)
    assert more.status_code == 200 and 'data-test="flash-ok"' not in more.text
    grown = values(more.text, "tiers-")
    assert grown["tiers-2-code"] == "platinum" and "tiers-5-code" in grown and "tiers-6-code" not in grown
    assert len(api("GET", "/v1/loyalty/program")["tiers"]) == 2

    # Remove silver, add platinum from "150 000,00" roubles; the JSON API reads the same program.
    saved = post(client, "/console/settings/loyalty", csrf, {
        **PROGRAM, **shown, "tiers-0-remove": "true", "tiers-2-code": "platinum", "tiers-2-name_ru": "Платина",
        "tiers-2-name_en": "Platinum", "tiers-2-min_spend": "150 000,00", "tiers-2-earn_multiplier": "2",
        "channel_bonuses-0-channel": "app", "channel_bonuses-0-points": "500", "channel_bonuses-0-first_order_only": "true",
        "category_multipliers-0-category": "face", "category_multipliers-0-multiplier": "0"})
    assert saved.status_code == 200, saved.text
    program = api("GET", "/v1/loyalty/program")
    assert program["tiers"] == [
        {"code": "gold", "name_ru": "Золото", "name_en": "Gold", "min_spend": 5000050, "earn_multiplier": 1.5},
        {"code": "platinum", "name_ru": "Платина", "name_en": "Platinum", "min_spend": 15000000, "earn_multiplier": 2.0}]
    assert program["channel_bonuses"] == [{"channel": "app", "points": 500, "multiplier": 1.0, "first_order_only": True}]
    assert program["category_multipliers"] == {"face": 0.0}
    after = values(saved.text, "tiers-")
    assert after["tiers-0-code"] == "gold" and after["tiers-1-min_spend"] == "150000"


def test_wrong_rows_are_refused_in_the_persons_language(client, api, staff_client):
    csrf = staff_client("admin", locale="ru")
    rows = {"tiers-0-code": "gold", "tiers-0-name_ru": "Золото", "tiers-0-name_en": "Gold", "tiers-0-min_spend": "много",
            "tiers-1-code": "gold", "tiers-1-name_ru": "Ещё", "tiers-1-name_en": "More", "tiers-1-min_spend": "1",
            "tiers-1-earn_multiplier": "500", "channel_bonuses-0-points": "1.5"}
    refused = post(client, "/console/settings/loyalty", csrf, {**PROGRAM, **rows})
    assert refused.status_code == 422
    flash = re.search(r'data-test="flash-error"[^>]*>(.*?)<', refused.text, re.DOTALL).group(1)
    for expected in ("Уровень 1: сумма покупок", "Уровень 2: множитель", "У каждого уровня свой код: gold",
                     "Бонус канала 1: выберите канал", "Бонус канала 1: баллы"):
        assert expected in flash, flash
    assert 'value="много"' in refused.text  # what was typed stays
    assert api("GET", "/v1/loyalty/program")["tiers"] == []


def test_sla_business_hours_per_weekday(client, api, staff_client):
    csrf = staff_client("admin")
    page = client.get("/console/settings?tab=routing").text
    assert 'name="calendar"' not in page and 'name="from-mon" value="09:00"' in page and 'type="time"' in page
    week = {f"{k}-{d}": v for d in ("mon", "tue", "wed", "thu", "fri") for k, v in
            (("open", "true"), ("from", "09:00"), ("to", "18:00"))}
    added = post(client, "/console/settings/sla-policies", csrf, {
        "name": "Office", "first_response_minutes": "60", "resolution_minutes": "960", "hours": "business",
        "timezone": "Asia/Yekaterinburg", **week, "open-sat": "true", "from-sat": "10:00", "to-sat": "16:00",
        "from-sun": "10:00", "to-sun": "16:00", "holidays": "2027-01-01, 07.01.2027"})
    assert added.status_code == 200, added.text
    (policy,) = api("GET", "/v1/inbox/sla-policies")["items"]
    assert policy["calendar"] == {
        "timezone": "Asia/Yekaterinburg", "holidays": ["2027-01-01", "2027-01-07"],
        "hours": {**{d: ["09:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, "sat": ["10:00", "16:00"]}}
    hours = re.search(rf'data-test="policy-hours-{policy["id"]}">(.*?)</td>', added.text, re.DOTALL).group(1)
    assert "Mon–Fri 09:00–18:00, Sat 10:00–16:00" in hours and "Asia/Yekaterinburg" in hours

    always = post(client, "/console/settings/sla-policies", csrf, {"name": "Chat", "first_response_minutes": "5",
                                                                    "hours": "always", **week})
    assert always.status_code == 200
    assert api("GET", "/v1/inbox/sla-policies")["items"][1]["calendar"] is None
    # The JSON API takes and gives the same calendars as before.
    api("POST", "/v1/inbox/sla-policies", json={"name": "API", "calendar": {"timezone": "UTC", "hours": {"sun": ["08:00", "12:00"]}}})
    assert "Sun 08:00–12:00" in client.get("/console/settings?tab=routing").text


def test_sla_form_refusals(client, api, staff_client):
    csrf = staff_client("admin", locale="ru")
    bad = post(client, "/console/settings/sla-policies", csrf, {
        "name": "Bad", "hours": "business", "timezone": "Mars/Olympus", "open-mon": "true", "from-mon": "18:00",
        "to-mon": "09:00", "holidays": "31.02.2027", "first_response_minutes": "0.5"})
    assert bad.status_code == 422
    flash = re.search(r'data-test="flash-error"[^>]*>(.*?)<', bad.text, re.DOTALL).group(1)
    for expected in ("Время ответа и решения — целое число минут", "Неизвестный часовой пояс «Mars/Olympus»",
                     "Понедельник: укажите начало и конец", "«31.02.2027» — не дата"):
        assert expected in flash, flash
    assert 'value="Mars/Olympus"' in bad.text and 'name="from-mon" value="18:00"' in bad.text
    closed = post(client, "/console/settings/sla-policies", csrf, {"name": "Closed", "hours": "business",
                                                                    "timezone": "Europe/Moscow"})
    assert closed.status_code == 422 and "Отметьте хотя бы один рабочий день" in closed.text
    assert api("GET", "/v1/inbox/sla-policies")["items"] == []
