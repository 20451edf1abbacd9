"""The console's campaigns (web/console/pages/marketing.py, "campaigns") on both databases: who
may open them, the list and a campaign's page in the reader's language, the form that makes a
draft (every field of CampaignCreate) or says what is wrong and makes nothing, schedule and
cancel with the console's CSRF, and the results per variant and the holdout after a run, worded
as what happened (scheduled is not sent; queued is not sent until the channel says so)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from seamline.inbox.models import InboxMessage
from seamline.marketing import reactor
from seamline.marketing.journeys import engine
from seamline.marketing.journeys.models import MarketingEnrollment
from seamline.marketing.messages.models import MarketingMessage
from tests.web.test_console_marketing import HX, _customer, _get, _post, _text, api, settings  # noqa: F401 - fixtures

NEW = "/console/marketing/campaigns/new"


@pytest.fixture
def world(client, api) -> dict:
    """Five Muscovites (Boris without an email consent) and Vera in Kazan; a segment of
    Muscovites; two templates; a draft, a campaign scheduled for tomorrow and one cancelled."""
    people = {name: _customer(client, api, name, f"{email}@example.com", consent=email != "boris")
              for name, email in (("Анна", "anna"), ("Борис", "boris"), ("Глеб", "gleb"), ("Дина", "dina"), ("Егор", "egor"))}
    _customer(client, api, "Вера", "vera@example.com", consent=True, city="Kazan")
    segment = _post(client, api, "/v1/marketing/segments", {"name": "Москва", "rules": {
        "type": "trait", "key": "city", "op": "eq", "value": "Moscow"}})
    templates = [_post(client, api, "/v1/marketing/templates", {"name": f"Зима {name}", "content": {
        "ru": {"subject": "Зима", "text": f"Вариант {name}, {{{{ person.first_name }}}}"},
        "en": {"subject": "Winter", "text": f"Variant {name}"}}})["id"] for name in ("A", "B")]
    variants = [{"name": "A", "template_id": templates[0], "percent": 50}, {"name": "B", "template_id": templates[1], "percent": 50}]
    draft = _post(client, api, "/v1/marketing/campaigns", {"name": "Черновик зимы", "segment_id": segment["id"], "variants": variants,
                                                          "holdout_percent": 10, "channel": "email", "per_minute": 100,
                                                          "ab_test": {"test_percent": 30, "metric": "delivered", "after_hours": 6}})
    tomorrow = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    later = _post(client, api, "/v1/marketing/campaigns", {"name": "Завтрашняя", "segment_id": segment["id"], "local_time": "10:00",
                                                          "send_at": tomorrow.isoformat(), "variants": variants[:1]})
    assert client.post(f"/v1/marketing/campaigns/{later['id']}/schedule", headers=api["marketing"]).status_code == 200
    gone = _post(client, api, "/v1/marketing/campaigns", {"name": "Отменённая", "segment_id": segment["id"], "variants": variants[:1]})
    assert client.post(f"/v1/marketing/campaigns/{gone['id']}/cancel", headers=api["marketing"]).status_code == 200
    return {"people": people, "segment": segment["id"], "templates": templates, "draft": draft["id"], "later": later["id"],
            "cancelled": gone["id"], "tomorrow": tomorrow}


def _campaign(client, api, campaign_id: int) -> dict:
    response = client.get(f"/v1/marketing/campaigns/{campaign_id}", headers=api["marketing"])
    assert response.status_code == 200, response.text
    return response.json()


def _campaigns(client, api) -> list[dict]:
    return client.get("/v1/marketing/campaigns", headers=api["marketing"]).json()


def _key(client) -> str:
    return re.search(r'name="key" value="([^"]+)"', _get(client, NEW)).group(1)


def _form(world: dict, **values: str) -> dict[str, str]:
    """A valid form: two variants 50/50, a holdout, tomorrow at this time in the console's zone."""
    return {"name": "Зимняя распродажа", "segment_id": str(world["segment"]), "channel": "email",
            "template_A": str(world["templates"][0]), "percent_A": "50", "template_B": str(world["templates"][1]), "percent_B": "50",
            "template_C": "", "percent_C": "", "holdout": "10", "when": "now", "send_at": "", "local_time": "10:00",
            "per_minute": "", "test_percent": "20", "metric": "converted", "after_hours": "4", **values}


URLS = ["/console/marketing/campaigns", NEW, "/console/marketing/campaigns/{draft}", "/console/marketing/campaigns/{later}",
        "/console/marketing/campaigns/{cancelled}"]


@pytest.mark.parametrize(("role", "locale"), [("marketer", "ru"), ("admin", "en")])
def test_campaign_pages_render_in_the_readers_language(client, staff_client, world, role, locale):
    staff_client(role, locale=locale)
    pages = {url: _get(client, url.format(**world)) for url in URLS}
    listed, form = _text(pages["/console/marketing/campaigns"]), pages[NEW]
    draft = _text(pages["/console/marketing/campaigns/{draft}"])
    later_html = pages["/console/marketing/campaigns/{later}"]
    later, cancelled = _text(later_html), _text(pages["/console/marketing/campaigns/{cancelled}"])
    assert 'data-test="mk-tab-campaigns"' in listed or 'data-test="mk-tab-campaigns"' in pages["/console/marketing/campaigns"]
    assert all(name in listed for name in ("Черновик зимы", "Завтрашняя", "Отменённая", "Москва"))
    assert f'<option value="{world["segment"]}"' in form and f'<option value="{world["templates"][1]}"' in form
    assert 'name="csrf"' in form and 'type="datetime-local"' in form
    # a scheduled campaign is not sent: no "sent" figures, the time it goes
    assert 'data-test="campaign-kpis"' not in later_html and 'data-test="campaign-cancel"' in later_html
    assert 'data-test="campaign-schedule"' not in later_html
    if locale == "ru":
        assert "Кампании" in listed and "Новая кампания" in listed and "Запланирована" in listed and "Отменена" in listed
        assert "Не запущена: ничего не отправлено" in listed
        assert "Черновик: ничего не отправлено." in draft and "После планирования запустится сразу." in draft
        for words in ("Вариант A · 50 % · Зима A", "Вариант B · 50 % · Зима B", "10 % · ничего не получает",
                      "не больше 100 человек в минуту", "сначала 30 % аудитории; через 6 ч вариант с лучшей доставляемостью",
                      "Эл. почта", "Запланировать: отправить сейчас", "Отменить кампанию"):
            assert words in draft, words
        assert "Запланирована на" in later and "пока ничего не отправлено" in later and "Отправлено" not in later
        assert "Каждый клиент получит её в 10:00 по своему часовому поясу." in later
        assert "Ничего не отправлено." in cancelled and "Отменить кампанию" not in cancelled
        assert "Тестовая группа, %" in _text(form) and "Контрольная группа, %" in _text(form)
        for url, html in pages.items():  # no code of the campaign's left untranslated on a Russian page
            shown = _text(re.sub(r"<(script|select)\b.*?</\1>", " ", html, flags=re.S))
            assert not re.search(r"\b(draft|scheduled|sending|testing|sent|cancelled|holdout|converted|delivered|email)\b", shown), url
    else:
        assert "Campaigns" in listed and "Scheduled" in listed and "Not started: nothing sent" in listed
        assert "A draft: nothing has been sent." in draft and "Variant A · 50 % · Зима A" in draft
        assert "Scheduled for" in later and "nothing has been sent yet" in later


@pytest.mark.parametrize("role", ["agent", "clerk"])
def test_agents_and_clerks_may_not_open_campaigns(client, staff_client, world, api, role):
    csrf = staff_client(role, **({"store": "store-1"} if role == "clerk" else {}))
    for url in URLS:
        assert client.get(url.format(**world)).status_code == 403, url
    for url in (NEW, "/console/marketing/campaigns/{draft}/schedule", "/console/marketing/campaigns/{later}/cancel"):
        assert client.post(url.format(**world), data={"csrf": csrf, **_form(world)}).status_code == 403, url
    assert _campaign(client, api, world["draft"])["status"] == "draft"  # nothing changed
    assert _campaign(client, api, world["later"])["status"] == "scheduled"
    assert len(_campaigns(client, api)) == 3


def test_a_campaign_is_made_with_the_form(client, staff_client, world, api, settings):
    csrf = staff_client("marketer", locale="en")
    key = _key(client)
    zone = ZoneInfo(settings.console_timezone)
    at = (datetime.now(zone) + timedelta(days=2)).replace(second=0, microsecond=0)
    body = {"csrf": csrf, "key": key, **_form(world, when="at", send_at=at.strftime("%Y-%m-%dT%H:%M"), local="1", local_time="09:30",
                                               per_minute="250", ab="1", test_percent="30", metric="delivered", after_hours="6",
                                               template_C=str(world["templates"][0]), percent_A="40", percent_B="30", percent_C="30")}
    before = len(_campaigns(client, api))
    made = client.post(NEW, data=body, follow_redirects=False)
    assert made.status_code == 303, _text(made.text)
    assert re.fullmatch(r"/console/marketing/campaigns/\d+\?done=created", made.headers["location"])
    again = client.post(NEW, data=body, follow_redirects=False)  # a double submit: one campaign
    assert again.headers["location"] == made.headers["location"] and len(_campaigns(client, api)) == before + 1
    campaign_id = int(made.headers["location"].split("/")[-1].split("?")[0])
    campaign = _campaign(client, api, campaign_id)
    assert campaign["status"] == "draft" and campaign["name"] == "Зимняя распродажа" and campaign["segment_id"] == world["segment"]
    assert campaign["variants"] == [{"name": "A", "template_id": world["templates"][0], "percent": 40},
                                    {"name": "B", "template_id": world["templates"][1], "percent": 30},
                                    {"name": "C", "template_id": world["templates"][0], "percent": 30}]
    assert campaign["holdout_percent"] == 10 and campaign["channel"] == "email" and campaign["per_minute"] == 250
    assert datetime.fromisoformat(campaign["send_at"]) == at.astimezone(timezone.utc) and campaign["local_time"] == "09:30"
    assert campaign["ab_test"] == {"test_percent": 30, "metric": "delivered", "after_hours": 6}
    assert campaign["created_by"].startswith("staff:marketer") and campaign["journey_id"] is None
    page = _text(_get(client, made.headers["location"]))
    assert "Created as a draft: nothing is sent until you schedule it." in page and "Variant C · 30 % · Зима A" in page
    # one template, sent now, on each person's best channel: the share does not matter
    simple = client.post(NEW, data={"csrf": csrf, "key": "k2", **_form(world, channel="", template_B="", percent_A="",
                                                                            holdout="0")}, follow_redirects=False)
    assert simple.status_code == 303
    one = _campaign(client, api, int(simple.headers["location"].split("/")[-1].split("?")[0]))
    assert one["variants"] == [{"name": "A", "template_id": world["templates"][0], "percent": 100}]
    assert one["channel"] is None and one["send_at"] is None and one["ab_test"] is None and one["local_time"] is None
    # on each person's best channel at their best hour (the next-best-channel model)
    best = client.post(NEW, data={"csrf": csrf, "key": "k3", **_form(world, channel="", template_B="", percent_A="", holdout="0",
                                                                          best_time="1")}, follow_redirects=False)
    assert best.status_code == 303, _text(best.text)
    assert _campaign(client, api, int(best.headers["location"].split("/")[-1].split("?")[0]))["local_time"] == "best"
    assert "at each person's best hour" in _text(_get(client, best.headers["location"]))


def test_a_bad_form_says_what_is_wrong_and_makes_nothing(client, staff_client, world, api):
    csrf = staff_client("marketer", locale="ru")
    before = _campaigns(client, api)
    past = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    bad = client.post(NEW, data={"csrf": csrf, "key": "bad", **_form(world, name=" ", percent_A="60", percent_B="60", holdout="70",
                                                                      when="at", send_at=past, per_minute="0", local="1",
                                                                      local_time="25:00", ab="1", test_percent="95")})
    assert bad.status_code == 422
    text = _text(bad.text)
    for problem in ("Назовите кампанию.", "Доли вариантов должны в сумме давать 100 (сейчас 120).",
                    "Контрольная группа — целое число процентов от 0 до 50.", "Время отправки уже прошло",
                    "Укажите время суток (ЧЧ:ММ)", "Скорость — целое число человек в минуту",
                    "Тестовая группа A/B-теста — целое число процентов от 1 до 90."):
        assert problem in text, problem
    assert 'value="60"' in bad.text and 'value="25:00"' in bad.text  # what was typed stays
    cases = [({"template_B": "", "ab": "1"}, "Для A/B-теста нужны хотя бы два варианта."),
             ({"segment_id": ""}, "Выберите сегмент (не из архива)."),
             ({"segment_id": "999999"}, "Выберите сегмент (не из архива)."),
             ({"template_A": "", "template_B": ""}, "Выберите шаблон варианта A."),
             ({"template_B": "999999"}, "Вариант B: выберите шаблон из списка."),
             ({"channel": "pigeon"}, "Выберите канал из списка."),
             ({"when": "at", "send_at": "завтра"}, "Укажите дату и время отправки."),
             ({"percent_B": "половина"}, "Вариант B: доля — целое число от 0 до 100.")]
    for values, problem in cases:
        response = client.post(NEW, data={"csrf": csrf, "key": f"bad-{problem[:10]}", **_form(world, **values)})
        assert response.status_code == 422 and problem in _text(response.text), (values, _text(response.text)[:3000])
    assert client.post(NEW, data={"key": "no-csrf", **_form(world)}).status_code == 403  # without the token nothing is made
    assert _campaigns(client, api) == before


def test_schedule_and_cancel(client, staff_client, world, api):
    csrf = staff_client("marketer", locale="ru")
    hx = {**HX, "X-CSRF-Token": csrf}
    made = client.post(NEW, data={"csrf": csrf, "key": "s1", **_form(world, when="at", send_at=(
        datetime.now(timezone.utc) + timedelta(days=3)).astimezone(ZoneInfo("Europe/Moscow")).strftime("%Y-%m-%dT%H:%M"))},
                       follow_redirects=False)
    url = made.headers["location"].split("?")[0]
    assert client.post(f"{url}/schedule").status_code == 403  # no CSRF token: nothing changes
    assert _campaign(client, api, int(url.split("/")[-1]))["status"] == "draft"
    page = _get(client, url)
    assert 'data-test="campaign-schedule"' in page and "Запланировать кампанию на" in page
    scheduled = client.post(f"{url}/schedule", headers=hx)
    assert scheduled.status_code == 200 and 'data-status="scheduled"' in scheduled.text and "<html" not in scheduled.text
    text = _text(scheduled.text)
    assert "Запланирована на" in text and "пока ничего не отправлено" in text and "Отправлено" not in text
    assert 'data-test="flash-ok"' in scheduled.text and 'data-test="campaign-schedule"' not in scheduled.text
    campaign = _campaign(client, api, int(url.split("/")[-1]))
    assert campaign["status"] == "scheduled" and campaign["journey_id"]
    again = client.post(f"{url}/schedule", data={"csrf": csrf}, follow_redirects=False)  # a plain form: back to the page
    assert again.status_code == 303 and _campaign(client, api, campaign["id"])["status"] == "scheduled"
    cancelled = client.post(f"{url}/cancel", headers=hx)
    assert cancelled.status_code == 200 and 'data-status="cancelled"' in cancelled.text
    assert "Кампания отменена: больше никто её не получит." in _text(cancelled.text) and "Ничего не отправлено." in _text(cancelled.text)
    assert 'data-test="campaign-cancel"' not in cancelled.text
    assert _campaign(client, api, campaign["id"])["status"] == "cancelled"
    refused = client.post(f"{url}/schedule", headers=hx)  # refused, said, nothing written
    assert refused.status_code == 422 and "Отменённую кампанию нельзя запланировать снова" in _text(refused.text)
    assert 'data-test="flash-error"' in refused.text and _campaign(client, api, campaign["id"])["status"] == "cancelled"
    assert client.post(f"{url}/explode", headers=hx).status_code == 404
    missing = client.get("/console/marketing/campaigns/999999")
    assert missing.status_code == 404 and "Такой кампании нет." in missing.text


def _run(client, at: datetime) -> None:
    """The scheduler's job (start the campaign), then its steps (the messages), as tests/marketing do."""
    app = client.app
    reactor.campaigns(app.state.database, app.state.settings, now=at)
    app.state.database.run_write(lambda s: engine.advance_due(s, settings=app.state.settings, now=at))


def test_results_after_a_run(client, staff_client, world, api):
    csrf = staff_client("marketer", locale="ru")
    made = client.post(NEW, data={"csrf": csrf, "key": "r1", **_form(world, holdout="20")}, follow_redirects=False)
    url = made.headers["location"].split("?")[0]
    campaign_id = int(url.split("/")[-1])
    assert client.post(f"{url}/schedule", headers={**HX, "X-CSRF-Token": csrf}).status_code == 200
    _run(client, datetime.now(timezone.utc) + timedelta(seconds=1))
    campaign = _campaign(client, api, campaign_id)
    arms = campaign["results"]["arms"]
    assert campaign["status"] == "sent" and campaign["audience"] == 5 and sum(a["people"] for a in arms.values()) == 5
    queued = sum(a["queued"] for a in arms.values())
    assert queued and all(a["sent"] == 0 for a in arms.values())  # handed to the email queue; no worker sent them
    html = _get(client, url)
    text = _text(html)
    # queued is not sent: the page says the messages wait in the channel's queue
    assert "Идёт отправка" in text and f"Сообщений в очереди канала, ещё не отправлены: {queued}." in text
    assert re.search(r'data-test="campaign-sent">0<', html)

    # one of them is delivered, opened and clicked, and its person buys
    with client.app.state.database.read() as s:
        message = s.scalar(select(MarketingMessage).where(MarketingMessage.journey_id == campaign["journey_id"],
                                                          MarketingMessage.status == "queued").order_by(MarketingMessage.id).limit(1))
    arm = message.arm

    def engage(session):  # noqa: ANN001, ANN202 - what the channel, tracking and the engine record
        now = datetime.now(timezone.utc)
        row = session.get(MarketingMessage, message.id)
        row.opened_at = row.clicked_at = now
        session.get(InboxMessage, message.inbox_message_id).delivery_status = "delivered"
        enrollment = session.scalar(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == campaign["journey_id"],
                                                                      MarketingEnrollment.profile_id == message.profile_id))
        enrollment.converted_at, enrollment.conversion_order_id, enrollment.conversion_revenue = now, 77, 150_00

    client.app.state.database.run_write(engage)
    arms = _campaign(client, api, campaign_id)["results"]["arms"]
    assert arms[arm]["sent"] == arms[arm]["delivered"] == arms[arm]["opened"] == arms[arm]["clicked"] == 1
    html = _get(client, url)
    row = _text(re.search(rf'data-test="campaign-arm-{arm}">(.*?)</tr>', html, re.S).group(1))
    template = "Зима A" if arm == "A" else "Зима B"
    skipped = sum(arms[arm]["skipped"].values())
    # people, queued, sent, delivered, opened, clicked (of the sent), not delivered (of the queued), skipped, converted
    counts = f"{arms[arm]['people']} {arms[arm]['queued']} 1 1 100 % 1 100 % 1 100 % 0 0 % {skipped} 1 "
    assert re.match(rf"\s*Вариант {arm} · {template} {counts}", row), row
    assert "150,00" in row
    if "holdout" in arms:
        holdout = _text(re.search(r'data-test="campaign-arm-holdout">(.*?)</tr>', html, re.S).group(1))
        assert holdout.strip().startswith(f"Контрольная группа {arms['holdout']['people']} ничего не получает")
    if any(a["skipped"] for a in arms.values()):  # Boris has no consent (unless he is held out)
        assert "Пропущено: нет согласия на рассылку — 1" in _text(html)
    text = _text(html)
    assert re.search(r'data-test="campaign-sent">1<', html) and "Аудитория 5" in text
    listed = _get(client, "/console/marketing/campaigns")
    listed_row = _text(re.search(rf'data-test="campaign-row-{campaign_id}">(.*?)</tr>', listed, re.S).group(1))
    assert "Идёт отправка" in listed_row and "запущена" in listed_row and f"1 +{queued - 1} в очереди" in listed_row

    # the channel sent the rest: now it is sent
    def sent(session):  # noqa: ANN001, ANN202
        ids = session.scalars(select(MarketingMessage.inbox_message_id).where(MarketingMessage.journey_id == campaign["journey_id"],
                                                                              MarketingMessage.status == "queued"))
        for inbox in session.scalars(select(InboxMessage).where(InboxMessage.id.in_(list(ids)))):
            if inbox.delivery_status == "queued":
                inbox.delivery_status = "sent"

    client.app.state.database.run_write(sent)
    page = _get(client, url)
    assert "Отправлена" in _text(page) and "в очереди канала" not in _text(page)
    assert re.search(rf'data-test="campaign-sent">{queued}<', page)
    assert 'data-test="campaign-cancel"' not in page and 'data-test="campaign-schedule"' not in page
