"""The console's Analytics area (web/console/pages/analytics.py): who may open it, each section
in Russian and English over the hand-computed world of tests/analytics/world.py, the CSV behind
a table, the people behind a number, and a mirror never synced."""

from __future__ import annotations

import csv
import io
import re

import pytest

from seamline.analytics import tasks
from seamline.web.reports import charts
from tests.analytics import world

PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}
HX = {"HX-Request": "true"}


@pytest.fixture
def synced(database, settings, tmp_path):
    """The world, with a few storefront events, synced into a mirror of its own."""
    world.build(database)
    world.add_events(database, [("a:anon-anna", "web", "Product Viewed", 0), ("u:anna", "web", "Product Added", 1),
                                ("u:anna", "web", "Checkout Started", 2), ("u:boris", "web", "Product Viewed", 20),
                                ("a:x", "app", "Product Viewed", 40)])
    settings.analytics_mirror_path = str(tmp_path / "mirror.duckdb")
    tasks.sync(database, settings)
    return settings


def _text(html: str) -> str:
    html = re.sub(r"<(script|style|datalist)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&amp;", "&")


def _csv(response) -> list[list[str]]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


@pytest.mark.parametrize(("role", "locale"), [("admin", "en"), ("marketer", "ru")])
def test_every_section_renders_with_the_worlds_numbers(client, synced, staff_client, role, locale):
    staff_client(role, locale=locale)
    page = client.get("/console/analytics", params=PERIOD)
    assert page.status_code == 200, page.text
    assert 'data-test="nav-analytics"' in page.text and "echarts.min.js" in page.text
    for metric in charts.METRICS:  # every section is a fragment the page loads once shown
        assert f'hx-get="/console/analytics/sections/{metric}?from=2026-11-01&amp;to=2026-11-30' in page.text
    sections = {}
    for metric in charts.METRICS:
        response = client.get(f"/console/analytics/sections/{metric}", params=PERIOD, headers=HX)
        assert response.status_code == 200, (metric, response.text)
        assert "<html" not in response.text and 'data-test="an-problem"' not in response.text, metric
        sections[metric] = response.text
    conversion = _text(sections["conversion"])
    if locale == "ru":
        assert "Кросс-канальная конверсия" in conversion and "Начатые покупки 6" in conversion
        assert "Завершённые покупки 4" in conversion and "66,67" in conversion and "Самовывоз" in conversion
        assert "Мобильное приложение" in conversion and "Колл-центр" in conversion  # channels in words
        assert "Сторонники" in _text(sections["satisfaction"]) and "Цепь Маркова" in sections["attribution"]
        for metric, html in sections.items():  # no channel code and no English heading on a Russian page
            text = _text(html)
            assert not re.search(r"(?<![\w:-])(call_center|web|app|single_channel|first_touch)(?![\w-])", text), metric
            assert charts.TITLES[metric] not in text, metric
    else:
        assert "Purchases started 6" in conversion and "Completed purchases 4" in conversion and "66.67%" in conversion
        assert "Website" in conversion and "Mobile app" in conversion and "Call center" in conversion
    # every chart is an ECharts option in a data attribute: a Sankey for journeys, bars elsewhere
    assert '"type": "sankey"' in sections["journeys"] and '"type": "bar"' in sections["attribution"]
    assert sections["omnichannel"].count('"type": "bar"') == 4
    assert 'class="small an-heat"' in sections["cohorts"]


@pytest.mark.parametrize("role", ["agent", "clerk"])
def test_agents_and_clerks_may_not_open_it(client, staff_client, role):
    staff_client(role, **({"store": "S1"} if role == "clerk" else {}))
    assert 'data-test="nav-analytics"' not in client.get("/console/").text
    for url in ("/console/analytics", "/console/analytics/sections/conversion",
                "/console/analytics/conversion.csv?table=conversion:by_channel",
                "/console/analytics/people?metric=conversion"):
        assert client.get(url, params=PERIOD).status_code == 403, url


def test_csv_of_a_table_holds_the_numbers(client, synced, staff_client):
    staff_client("marketer", locale="en")
    response = client.get("/console/analytics/conversion.csv", params={**PERIOD, "table": "conversion:by_channel"})
    rows = _csv(response)
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == \
        'attachment; filename="seamline-conversion-by-channel-2026-11-01-2026-11-30.csv"'
    assert rows[0] == ["Started in", "Started", "Completed purchases", "Conversion, %"]
    by = {row[0]: row[1:] for row in rows[1:]}
    assert by == {"Website": ["2", "1", "50"], "Mobile app": ["2", "1", "50"], "Store": ["1", "1", "100"],
                  "Call center": ["1", "1", "100"]}
    summary = {row[0]: row[1] for row in _csv(client.get("/console/analytics/conversion.csv",
                                                         params={**PERIOD, "table": "conversion:summary"}))[1:]}
    assert (summary["Purchases started"], summary["Completed purchases"], summary["Conversion"]) == ("6", "4", "66.67")
    # money in currency units, as a number: order 1 (10.00), the till's 4.00...
    matrix = _csv(client.get("/console/analytics/conversion.csv", params={**PERIOD, "table": "conversion:matrix"}))
    assert matrix[0][-1] == "Revenue, RUB"
    assert sorted(float(row[-1]) for row in matrix[1:]) == [4.0, 9.0, 10.0, 30.0]
    pickup = {row[0]: row[1] for row in _csv(client.get("/console/analytics/conversion.csv",
                                                        params={**PERIOD, "table": "click_and_collect:summary"}))[1:]}
    assert (pickup["Share of remote orders"], pickup["Picked up of ready"]) == ("66.67", "50")
    nps = _csv(client.get("/console/analytics/satisfaction.csv", params={**PERIOD, "table": "satisfaction:nps"}))
    assert {row[0]: row[-1] for row in nps[1:]} == {"Telegram": "50", "Website": "0"}
    funnel = _csv(client.get("/console/analytics/funnel.csv", params={
        **PERIOD, "table": "funnel:steps", "step": ["Product Viewed", "Product Added", "Checkout Started"]}))
    assert [row[1] for row in funnel[1:]] == ["3", "1", "1"]
    assert client.get("/console/analytics/conversion.csv", params={**PERIOD, "table": "nope"}).status_code == 404
    assert client.get("/console/analytics/weather.csv", params=PERIOD).status_code == 404


def test_a_russian_csv_is_russian_and_still_numbers(client, synced, staff_client):
    staff_client("admin", locale="ru")
    rows = _csv(client.get("/console/analytics/conversion.csv", params={**PERIOD, "table": "conversion:by_channel"}))
    assert rows[0][0] == "Начата в" and ["Сайт", "2", "1", "50"] in rows


def test_the_people_behind_a_number(client, synced, staff_client):
    """Started on the web: Anna (1) and Vera (3); omnichannel: Anna and Boris; NPS detractors: Anna
    (her survey says web, score 3); the November cohort: all three; dropped after viewing: Boris
    and the app's unknown visitor (Anna went on to add to the cart)."""
    staff_client("marketer", locale="en")
    section = client.get("/console/analytics/sections/conversion", params=PERIOD, headers=HX).text
    link = re.search(r'href="(/console/analytics/people\?[^"]*started_channel=web[^"]*)"', section).group(1)

    def listed(url: str, params: dict | None = None) -> set:
        page = client.get(url.replace("&amp;", "&"), params=params)
        assert page.status_code == 200, page.text
        return set(map(int, re.findall(r'data-test="person-(\d+)"', page.text))) | (
            {"visitor"} if 'data-test="visitor"' in page.text else set())

    assert listed(link) == {1, 3}
    assert 'href="/console/customers/1"' in client.get(link.replace("&amp;", "&")).text
    assert listed("/console/analytics/people", {**PERIOD, "metric": "omnichannel", "kind": "omnichannel"}) == {1, 2}
    assert listed("/console/analytics/people", {**PERIOD, "metric": "satisfaction", "kind": "nps", "channel": "web",
                                                "group": "detractors"}) == {1}
    assert listed("/console/analytics/people", {**PERIOD, "metric": "cohorts", "cohort": "2026-11-01",
                                                "unit": "month"}) == {1, 2, 3}
    assert listed("/console/analytics/people", {**PERIOD, "metric": "engagement", "channel": "app"}) == {"visitor"}
    steps = {"step": ["Product Viewed", "Product Added", "Checkout Started"]}
    funnel = client.get("/console/analytics/sections/funnel", params={**PERIOD, **steps}, headers=HX).text
    dropped = re.search(r'href="(/console/analytics/people\?[^"]*dropped_after=1[^"]*)"', funnel).group(1)
    assert listed(dropped) == {2, "visitor"}
    assert client.get("/console/analytics/people", params={**PERIOD, "metric": "weather"}).status_code == 404


def test_funnel_options_and_bad_periods_are_said_not_raised(client, synced, staff_client):
    staff_client("admin", locale="en")
    strict = client.get("/console/analytics/sections/funnel", params={
        **PERIOD, "step": ["Product Viewed", "Product Added"], "order": "strict", "breakdown": "channel"}, headers=HX)
    assert strict.status_code == 200 and 'name="order"' in strict.text and 'value="strict" selected' in strict.text
    backwards = client.get("/console/analytics", params={"from": "2026-11-30", "to": "2026-11-01"})
    assert backwards.status_code == 200 and "The period starts after it ends." in backwards.text
    assert "hx-get" not in backwards.text.split('data-test="an-error"')[1]
    garbled = client.get("/console/analytics/sections/conversion", params={"from": "yesterday"}, headers=HX)
    assert garbled.status_code == 200 and "YYYY-MM-DD" in garbled.text
    one_step = client.get("/console/analytics/sections/funnel", params={**PERIOD, "step": ["A"]}, headers=HX)
    assert "at least two steps" in one_step.text


def test_a_mirror_never_synced_is_explained(client, database, settings, tmp_path, staff_client):
    settings.analytics_mirror_path = str(tmp_path / "never.duckdb")
    staff_client("marketer", locale="ru")
    page = client.get("/console/analytics")
    assert page.status_code == 200 and 'data-test="an-unavailable"' in page.text
    assert "seamline analytics sync" in page.text and "hx-get=\"/console/analytics/sections" not in page.text
    section = client.get("/console/analytics/sections/conversion", headers=HX)
    assert section.status_code == 200 and "зеркало ещё не синхронизировано" in section.text
    assert client.get("/console/analytics/conversion.csv?table=conversion:by_channel").status_code == 503


def test_a_segment_by_trait_narrows_the_page(client, synced, staff_client):
    """tier:gold is Anna alone: one purchase started, one completed; a malformed segment is said."""
    staff_client("marketer", locale="ru")
    summary = {row[0]: row[1] for row in _csv(client.get("/console/analytics/conversion.csv", params={
        **PERIOD, "table": "conversion:summary", "trait": "tier:gold"}))[1:]}
    assert list(summary.values())[:2] == ["1", "1"]
    page = client.get("/console/analytics", params={**PERIOD, "trait": "tier:gold"})
    assert page.status_code == 200 and 'value="tier:gold"' in page.text and "trait=tier%3Agold" in page.text
    bad = client.get("/console/analytics", params={**PERIOD, "trait": "gold"})
    assert "признак:значение" in bad.text


def test_a_funnel_broken_down_by_a_trait(client, synced, staff_client):
    staff_client("marketer", locale="en")
    section = client.get("/console/analytics/sections/funnel", params={
        **PERIOD, "step": ["Product Viewed", "Product Added"], "breakdown_trait": "tier"})
    assert section.status_code == 200 and "gold" in section.text and "silver" in section.text
    assert 'value="tier"' in section.text  # the form keeps what was asked


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_revenue_from_recommendations_by_channel(client, database, settings, tmp_path, staff_client, locale):
    """The world's recommendation clicks and order lines (tests/analytics/test_recommendations.py):
    4900 of 5800 (minor units) from recommendations, email 3000, app 1300, web 600; channels and
    reasons in words, money in the currency."""
    world.build(database)
    world.add_recommendations(database)
    settings.analytics_mirror_path = str(tmp_path / "mirror.duckdb")
    tasks.sync(database, settings)
    staff_client("marketer", locale=locale)
    page = client.get("/console/analytics", params=PERIOD)
    assert 'hx-get="/console/analytics/sections/recommendations?' in page.text
    html = client.get("/console/analytics/sections/recommendations", params=PERIOD, headers=HX).text
    assert 'data-test="table-recommendations-by_channel"' in html and 'data-test="an-problem"' not in html
    by_channel = _text(html.split('data-test="table-recommendations-by_channel"')[1].split("</table>")[0]).replace("\xa0", " ")
    by_reason = _text(html.split('data-test="table-recommendations-by_reason"')[1].split("</table>")[0])
    if locale == "ru":
        assert "Выручка от рекомендаций" in _text(html) and "Доля всей выручки" in _text(html)
        assert "Эл. почта 2 2 1 30,00 ₽ 51,72 %" in by_channel
        assert "Мобильное приложение 3 3 2 13,00 ₽" in by_channel and "Сайт 3 3 1 6,00 ₽" in by_channel
        assert "подобрано для клиента" in by_reason and "популярно в его магазине" in by_reason
        assert not re.search(r"(?<![\w:-])(web|app|email|for_you|popular_in_store)(?![\w-])", _text(html))
    else:
        assert "Revenue from recommendations" in _text(html) and "84.48%" in _text(html)
        assert "Email 2 2 1 30.00 RUB 51.72%" in by_channel
        assert "Mobile app 3 3 2 13.00 RUB 22.41%" in by_channel and "Website 3 3 1 6.00 RUB 10.34%" in by_channel
        assert "picked for them" in by_reason and "popular in their store" in by_reason
    rows = _csv(client.get("/console/analytics/recommendations.csv",
                           params={**PERIOD, "table": "recommendations:by_channel"}))
    assert rows[0][4].endswith(", RUB") and [row[4] for row in rows[1:]] == ["30", "13", "6"]  # in currency units
