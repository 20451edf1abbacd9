"""The console's Marketing area (web/console/pages/marketing.py) on both databases: who may open
it, segments (the rule in words, the live estimate and its errors in the reader's language,
save, evaluate, archive, members), journeys (from a ready-made one, steps in words, start /
pause / archive with the console's CSRF, the people in it and one person's steps), templates
(RU and EN, a preview with a real customer, a test send that says what happened) and a
journey's results."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from seamline.core.auth.schemas import Scope
from seamline.marketing.journeys import engine
from seamline.marketing.journeys.models import MarketingEnrollment
from seamline.web.console.pages import marketing as page
from tests.conftest import make_key

HX = {"HX-Request": "true"}
HELLO = {"ru": {"subject": "Привет, {{ person.first_name }}", "text": "Привет, {{ person.first_name }}! Ваши баллы: {{ points.available }}",
                "html": "<p>Привет, <b>{{ person.first_name }}</b> {{ person.nickname }}</p><script>alert(1)</script>"},
         "en": {"subject": "Hello, {{ person.first_name }}", "text": "Hello, {{ person.first_name }}!"}}


@pytest.fixture
def settings(database, settings_for):
    """Email reaches people (no quiet hours, no global cap), as marketing's own tests have it."""
    return settings_for(database.url, inbox_smtp_host="127.0.0.1", inbox_smtp_port=2525, inbox_email_address="shop@example.com",
                        marketing_quiet_hours="", marketing_cap_messages=0)


@pytest.fixture
def api(client, database) -> dict[str, dict[str, str]]:
    return {"admin": {"Authorization": f"Bearer {make_key(database, Scope.admin, name='admin')}"},
            "marketing": {"Authorization": f"Bearer {make_key(database, Scope.marketing, name='marketer')}"}}


def _customer(client, api, name: str, email: str, *, consent: bool, city: str = "Moscow") -> int:
    response = client.post("/v1/customers", headers=api["admin"], json={
        "identifiers": [{"type": "email", "value": email}], "traits": {"first_name": name, "city": city},
        "consents": [{"channel": "email", "purpose": "marketing", "granted": consent}]})
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def _post(client, api, path: str, body: dict) -> dict:
    response = client.post(path, headers=api["marketing"], json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
def world(client, api) -> dict:
    """Anna (consent) and Boris (none) in Moscow, Vera in Kazan; a segment of Muscovites with an
    email consent; the abandoned cart journey with a coupon; a journey with a split that Anna and
    Boris went through; a template."""
    anna = _customer(client, api, "Анна", "anna@example.com", consent=True)
    boris = _customer(client, api, "Борис", "boris@example.com", consent=False)
    vera = _customer(client, api, "Вера", "vera@example.com", consent=True, city="Kazan")
    segment = _post(client, api, "/v1/marketing/segments", {"name": "Москва с email", "rules": {"type": "and", "rules": [
        {"type": "trait", "key": "city", "op": "eq", "value": "Moscow"}, {"type": "consent", "channel": "email"}]}})
    promotion = client.put("/v1/promotions/COMEBACK10", headers=api["admin"], json={
        "name_ru": "Скидка 10%", "name_en": "10% off", "kind": "percent", "value": 10, "requires_coupon": True})
    assert promotion.status_code in (200, 201), promotion.text
    cart = _post(client, api, "/v1/marketing/journeys/from-template", {"template": "abandoned_cart", "promotion": "COMEBACK10", "channel": "email"})
    template = _post(client, api, "/v1/marketing/templates", {"name": "Привет", "content": HELLO})
    split = _post(client, api, "/v1/marketing/journeys", {"name": "A/B привет", "definition": {
        "trigger": {"type": "api"}, "goal": {"type": "order"}, "steps": [
            {"id": "ab", "type": "split", "arms": [{"name": "A", "percent": 50, "next": "hello"},
                                                   {"name": "B", "percent": 50, "next": "hello"}]},
            {"id": "hello", "type": "send", "template_id": template["id"], "channel": "email", "next": "later"},
            {"id": "later", "type": "wait", "minutes": 90}]}})
    assert client.post(f"/v1/marketing/journeys/{split['id']}/start", headers=api["marketing"]).status_code == 200
    for customer_id in (anna, boris):
        _post(client, api, f"/v1/marketing/journeys/{split['id']}/enroll", {"customer_id": customer_id})
    app = client.app
    app.state.database.run_write(lambda s: engine.advance_due(s, settings=app.state.settings,
                                                              now=datetime.now(timezone.utc) + timedelta(seconds=1)))
    return {"anna": anna, "boris": boris, "vera": vera, "segment": segment["id"], "cart": cart["id"], "split": split["id"],
            "template": template["id"]}


def _text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")


def _get(client, url: str, **kwargs) -> str:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code, response.text[:2000])
    return response.text


def _enrollment(client, journey_id: int, customer_id: int) -> MarketingEnrollment:
    with client.app.state.database.read() as s:
        from sqlalchemy import select

        return s.scalar(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey_id,
                                                          MarketingEnrollment.profile_id == customer_id))


URLS = ["/console/marketing/segments", "/console/marketing/segments/new", "/console/marketing/segments/{segment}",
        "/console/marketing/segments/{segment}/edit", "/console/marketing/journeys", "/console/marketing/journeys/new",
        "/console/marketing/journeys/{cart}", "/console/marketing/journeys/{split}", "/console/marketing/journeys/{split}/results",
        "/console/marketing/journeys/{split}/people", "/console/marketing/templates", "/console/marketing/templates/new",
        "/console/marketing/templates/{template}", "/console/marketing/people/{anna}/channels"]


@pytest.mark.parametrize(("role", "locale"), [("marketer", "ru"), ("admin", "en")])
def test_every_page_renders_in_the_readers_language(client, staff_client, world, role, locale):
    staff_client(role, locale=locale)
    assert 'data-test="nav-marketing"' in _get(client, "/console/dashboard")
    home = client.get("/console/marketing", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/console/marketing/segments"
    pages = {url: _text(_get(client, url.format(**world))) for url in URLS}
    segment = pages["/console/marketing/segments/{segment}"]
    cart = pages["/console/marketing/journeys/{cart}"]
    split = pages["/console/marketing/journeys/{split}"]
    enrollment = _enrollment(client, world["split"], world["boris"])
    steps = _text(_get(client, f"/console/marketing/enrollments/{enrollment.id}"))
    if locale == "ru":
        assert "Все условия: Трейт city = Moscow Дал согласие на рассылку: Эл. почта" in segment
        assert "Анна" in segment and "Борис" not in segment and "Вера" not in segment
        assert "Черновик" in cart and "Когда клиент совершает «Товар добавлен в корзину»" in cart
        for sentence in ("Ждать 1 ч", "Если в корзине есть товары → 3 , иначе → конец", "Ждать 1 дн.",
                         "Выдать купон промоакции COMEBACK10 на 3 дня", "Цель Заказ в любом канале"):
            assert sentence in cart, sentence
        assert "Отправить шаблон «Брошенная корзина: напоминание», канал: Эл. почта" in cart
        assert "Случайно разделить клиентов на ветки (каждого — навсегда) A · 50 % → 2 , B · 50 % → 2" in split and "Работает" in split
        assert "Ждать 1 ч 30 мин" in split and "прошли: 2" in split
        assert "Сообщение пропущено: нет согласия на рассылку" in steps and "Ветка" in steps
        assert "ждёт конца последнего ожидания" in split and "Если корзина пуста" in pages["/console/marketing/journeys/new"]
        assert "Брошенная корзина" in pages["/console/marketing/journeys/new"]
        assert "Через час после добавления товара в корзину" in pages["/console/marketing/journeys/new"]
    else:
        assert "All of: Trait city = Moscow Consented to marketing: Email" in segment
        assert "Draft" in cart and "Wait 1 h" in cart and "Give a personal coupon of promotion COMEBACK10 for 3 days" in cart
        assert "If something is in the cart → 3 , else → the end" in cart
        assert "Split people at random (each for good) into arms A · 50 % → 2 , B · 50 % → 2" in split and "Active" in split
        assert "Message skipped: no marketing consent" in steps
    if locale == "ru":  # no code of marketing's left untranslated on a Russian page (the JSON shown as JSON aside)
        for url in URLS:
            shown = _text(re.sub(r"<(details|textarea)\b.*?</\1>", " ", _get(client, url.format(**world)), flags=re.S))
            assert not re.search(r"\b(draft|active|paused|no_marketing_consent|journey_capped|segment_exit|give_coupon|"
                                 r"send|wait|split|branch)\b", shown), url


def test_a_persons_best_channel_says_why(client, staff_client, world):
    staff_client("marketer", locale="ru")
    assert 'data-test="best-channel-link"' in _get(client, f"/console/customers/{world['anna']}")
    anna = _text(_get(client, f"/console/marketing/people/{world['anna']}/channels"))
    assert "Лучший канал для клиента Анна" in anna and "Эл. почта" in anna and "Ожидаемый отклик" in anna
    assert re.search(r"1 Эл\. почта \d+(,\d)?%", anna), anna  # email ranks first, with the rate expected
    assert "Лучшие часы" in anna and "Europe/Moscow" in anna and "Пока неизвестно" in anna  # nothing sent to anyone yet
    boris = _text(_get(client, f"/console/marketing/people/{world['boris']}/channels"))
    assert re.search(r"Не используются .*Эл\. почта: нет согласия на рассылку", boris), boris[-1500:]  # not ranked, and said why
    service = _text(_get(client, f"/console/marketing/people/{world['boris']}/channels?purpose=service"))
    assert "Сервисное сообщение сначала уходит в канал" in service and "1 Эл. почта" in service
    staff_client("admin", locale="en")
    english = _text(_get(client, f"/console/marketing/people/{world['anna']}/channels"))
    assert "Best channel for Анна" in english and "Expected response" in english and "People like them" in english


@pytest.mark.parametrize("role", ["agent", "clerk"])
def test_agents_and_clerks_may_not_open_it(client, staff_client, world, role):
    csrf = staff_client(role, **({"store": "store-1"} if role == "clerk" else {}))
    assert 'data-test="nav-marketing"' not in client.get("/console/").text
    for url in URLS + ["/console/marketing"]:
        assert client.get(url.format(**world)).status_code == 403, url
    for url in ("/console/marketing/segments/estimate", "/console/marketing/journeys/{split}/pause",
                "/console/marketing/segments/{segment}/evaluate", "/console/marketing/templates/{template}/test-send"):
        assert client.post(url.format(**world), data={"csrf": csrf, "customer_id": world["anna"]}).status_code == 403, url


def test_the_estimate_counts_or_says_what_is_wrong(client, staff_client, world):
    csrf = staff_client("marketer", locale="ru")

    def estimate(rules: str) -> str:
        response = client.post("/console/marketing/segments/estimate", data={"rules": rules}, headers={**HX, "X-CSRF-Token": csrf})
        assert response.status_code == 200, response.text
        return _text(response.text)

    assert "2 из 3 человек" in estimate('{"type": "trait", "key": "city", "op": "eq", "value": "Moscow"}')
    assert "1 из 3 человек" in estimate('{"type": "and", "rules": [{"type": "trait", "key": "city", "op": "eq", "value": "Moscow"},'
                                        ' {"type": "consent", "channel": "email"}]}')
    assert "Правило — не JSON: строка 1, позиция 2." in estimate("{nope")
    assert "rules.0.op: допустимо одно из: eq, ne" in estimate('{"type": "and", "rules": [{"type": "trait", "key": "city", "op": "equals"}]}')
    assert "Неизвестный тип условия «city»" in estimate('{"type": "city"}')
    assert "правило: оператор eq требует строку, число или логическое значение" in estimate('{"type": "trait", "key": "city", "op": "eq"}')
    assert "Правило использует сегменты, которых нет или которые в архиве: 999" in estimate('{"type": "segment", "segment_id": 999}')
    assert "Напишите правило" in estimate("  ")
    # without the CSRF token nothing is counted
    assert client.post("/console/marketing/segments/estimate", data={"rules": "{}"}).status_code == 403


def test_a_segment_is_made_edited_evaluated_and_archived(client, staff_client, world):
    csrf = staff_client("marketer", locale="en")
    form = _get(client, "/console/marketing/segments/new")
    key = re.search(r'name="key" value="([^"]+)"', form).group(1)
    bad = client.post("/console/marketing/segments/new", data={"csrf": csrf, "key": key, "name": "Kazan", "rules": '{"type": "trait"}'})
    assert bad.status_code == 422 and "Missing field: " in _text(bad.text) and 'value="Kazan"' in bad.text
    body = {"csrf": csrf, "key": key, "name": "Kazan", "description": "", "rules": '{"type": "trait", "key": "city", "op": "eq", "value": "Kazan"}'}
    made = client.post("/console/marketing/segments/new", data=body, follow_redirects=False)
    assert made.status_code == 303, made.text
    again = client.post("/console/marketing/segments/new", data=body, follow_redirects=False)  # a double submit: one segment
    assert again.headers["location"] == made.headers["location"]
    url = made.headers["location"].split("?")[0]
    page_text = _text(_get(client, made.headers["location"]))
    assert "Saved." in page_text and "Trait city = Kazan" in page_text and "Вера" in page_text
    assert re.search(r'data-test="segment-size"><strong>1</strong>', client.get(url).text)
    edited = client.post(f"{url}/edit", data={**body, "rules": '{"type": "trait", "key": "city", "op": "in", "value": ["Kazan", "Moscow"]}'},
                         follow_redirects=False)
    assert edited.status_code == 303
    assert "Trait city is one of: Kazan, Moscow" in _text(_get(client, url)) and "Version of the rule 2" in _text(_get(client, url))
    evaluated = client.post(f"{url}/evaluate", headers={**HX, "X-CSRF-Token": csrf})
    assert evaluated.status_code == 200 and "Evaluated: 3 people" in _text(evaluated.text)
    assert 'data-test="flash-ok"' in evaluated.text and "<html" not in evaluated.text
    archived = client.post(f"{url}/archive", headers={**HX, "X-CSRF-Token": csrf})
    assert 'data-status="archived"' in archived.text and "no longer evaluated" in archived.text
    assert "segment-evaluate" not in archived.text
    listed = _get(client, "/console/marketing/segments")
    assert "Kazan" not in listed and "Kazan" in _get(client, "/console/marketing/segments?archived=1")
    members = client.get(f"/console/marketing/segments/{world['segment']}", headers={**HX, "HX-Target": "members"})
    assert 'id="members"' in members.text and "<html" not in members.text and "Анна" in members.text


def test_start_pause_archive_a_journey(client, staff_client, world):
    csrf = staff_client("marketer", locale="ru")
    url = f"/console/marketing/journeys/{world['cart']}"
    assert client.post(f"{url}/start").status_code == 403  # no CSRF token: nothing changes
    assert 'data-status="draft"' in _get(client, url)
    started = client.post(f"{url}/start", headers={**HX, "X-CSRF-Token": csrf})
    assert started.status_code == 200 and 'data-status="active"' in started.text and "Работает" in _text(started.text)
    assert 'data-test="journey-pause"' in started.text and 'data-test="journey-start"' not in started.text
    paused = client.post(f"{url}/pause", data={"csrf": csrf}, follow_redirects=False)  # a plain form: back to the page
    assert paused.status_code == 303
    assert 'data-status="paused"' in _get(client, url) and "Пауза" in _text(_get(client, url))
    again = client.post(f"{url}/pause", headers={**HX, "X-CSRF-Token": csrf})  # paused already: nothing changes
    assert again.status_code == 200 and 'data-status="paused"' in again.text
    archived = client.post(f"{url}/archive", headers={**HX, "X-CSRF-Token": csrf})
    assert 'data-status="archived"' in archived.text and "journey-start" not in archived.text
    refused = client.post(f"{url}/start", headers={**HX, "X-CSRF-Token": csrf})  # refused, said, nothing written
    assert refused.status_code == 422 and "Путь из архива нельзя запустить снова" in _text(refused.text)
    assert 'data-test="flash-error"' in refused.text and 'data-status="archived"' in refused.text
    listed = _text(_get(client, "/console/marketing/journeys?archived=1"))
    assert "В архиве" in listed
    assert client.post(f"{url}/explode", headers={**HX, "X-CSRF-Token": csrf}).status_code == 404


def test_a_journey_is_made_from_a_ready_made_one(client, staff_client, world):
    csrf = staff_client("marketer", locale="ru")
    refused = client.post("/console/marketing/journeys/new", data={"csrf": csrf, "template": "store_visit", "channel": "email"})
    assert refused.status_code == 422 and "назовите промоакцию" in _text(refused.text)
    made = client.post("/console/marketing/journeys/new", data={"csrf": csrf, "template": "store_visit", "channel": "email",
                                                                "promotion": "COMEBACK10", "key": "k1"}, follow_redirects=False)
    assert made.status_code == 303
    text = _text(_get(client, made.headers["location"]))
    assert "Визит в магазин" in text and "Черновик" in text and "Выдать купон промоакции COMEBACK10 на 1 день, в магазине визита" in text
    assert "Создан как черновик" in text


def test_the_people_of_a_journey_and_one_persons_steps(client, staff_client, world):
    staff_client("marketer", locale="ru")
    people = _get(client, f"/console/marketing/journeys/{world['split']}/people", headers=HX)
    assert "<html" not in people and f'href="/console/customers/{world["anna"]}"' in people
    text = _text(people)
    assert "Анна" in text and "Борис" in text and "перед шагом 3: Ждать" not in text
    anna = _enrollment(client, world["split"], world["anna"])
    assert anna.status == "waiting" and anna.arm in ("A", "B")
    row = re.search(rf'data-test="enrollment-{anna.id}">(.*?)</tr>', people, re.S).group(1)
    assert anna.arm in _text(row) and "прошёл путь до конца" not in _text(row)
    steps = _text(_get(client, f"/console/marketing/enrollments/{anna.id}"))
    assert "Сообщение поставлено в очередь" in steps and f"Ветка {anna.arm}" in steps and "Ждёт до" in steps
    waiting = _text(_get(client, f"/console/marketing/journeys/{world['split']}/people?status=done", headers=HX))
    assert "Пока никого" in waiting


def test_preview_with_a_customer_and_a_test_send(client, staff_client, world):
    csrf = staff_client("marketer", locale="ru")
    url = f"/console/marketing/templates/{world['template']}"
    hx = {**HX, "X-CSRF-Token": csrf}
    page_html = _get(client, url)
    assert 'data-test="lang-tab-ru"' in page_html and "Привет, {{ person.first_name }}" in page_html
    found = _get(client, f"{url}/customers", params={"q": "Анна"}, headers=HX)
    assert f'data-pick="{world["anna"]}"' in found
    preview = client.post(f"{url}/preview", data={"customer_id": world["anna"]}, headers=hx)
    assert preview.status_code == 200, preview.text
    text = _text(preview.text)
    assert "Привет, Анна" in text and "Ваши баллы: 0" in text
    assert re.search(r'<iframe class="mk-html" sandbox="" srcdoc="[^"]*&lt;b&gt;Анна&lt;/b&gt;', preview.text)
    assert "<script>alert" not in preview.text  # the HTML is an attribute's text, run nowhere
    assert "Нет значения для: nickname" in text  # what had no value
    english = client.post(f"{url}/preview", data={"customer_id": world["anna"], "locale": "en"}, headers=hx)
    assert "Hello, Анна!" in _text(english.text)
    assert "Выберите клиента" in _text(client.post(f"{url}/preview", data={"customer_id": ""}, headers=hx).text)
    assert "Клиент не найден" in _text(client.post(f"{url}/preview", data={"customer_id": "999999"}, headers=hx).text)

    refused = client.post(f"{url}/test-send", data={"customer_id": world["boris"], "channel": "email", "key": "t1"}, headers=hx)
    assert refused.status_code == 200
    assert "Пропущено: нет согласия на рассылку" in _text(refused.text) and "Отправлено" not in refused.text
    best = client.post(f"{url}/test-send", data={"customer_id": world["boris"], "key": "t2"}, headers=hx)
    assert "Пропущено: ни один канал не доходит до клиента" in _text(best.text)
    assert "Эл. почта: нет согласия на рассылку" in _text(best.text)  # each channel's reason
    queued = client.post(f"{url}/test-send", data={"customer_id": world["anna"], "channel": "email", "key": "t3"}, headers=hx)
    assert "Поставлено в очередь: Эл. почта" in _text(queued.text)


def test_templates_are_written_in_russian_and_english(client, staff_client, world):
    csrf = staff_client("marketer", locale="en")
    empty = client.post("/console/marketing/templates/new", data={"csrf": csrf, "name": "Empty"})
    assert empty.status_code == 422 and "Write the message in Russian, in English or in both." in _text(empty.text)
    broken = client.post("/console/marketing/templates/new", data={"csrf": csrf, "name": "Broken", "ru_text": "{{ person.first_name"})
    assert broken.status_code == 422 and "The Russian version: the text does not parse (line 1)" in _text(broken.text)
    no_text = client.post("/console/marketing/templates/new", data={"csrf": csrf, "name": "Subject only", "en_subject": "Hi"})
    assert no_text.status_code == 422 and "The English version needs its text" in _text(no_text.text)
    made = client.post("/console/marketing/templates/new", data={"csrf": csrf, "name": "Both", "ru_text": "Привет", "en_text": "Hi",
                                                                 "en_subject": "Hello"}, follow_redirects=False)
    assert made.status_code == 303
    url = made.headers["location"].split("?")[0]
    saved = client.post(url, data={"csrf": csrf, "name": "Both", "ru_text": "Здравствуйте", "en_text": "Hi"}, follow_redirects=False)
    assert saved.status_code == 303
    form = _get(client, url)
    assert "Здравствуйте" in form and "Version 2" in _text(form)
    listed = _text(_get(client, "/console/marketing/templates"))
    assert "Both" in listed and "RU EN" in listed


def test_the_results_of_a_journey(client, staff_client, world, settings):
    staff_client("marketer", locale="ru")
    anna = _enrollment(client, world["split"], world["anna"])

    def convert(session):  # noqa: ANN001, ANN202 - the goal reached, as the engine records it
        row = session.get(MarketingEnrollment, anna.id)
        row.converted_at, row.conversion_order_id, row.conversion_revenue = datetime.now(timezone.utc), 77, 150_00
        row.status, row.exit_reason, row.step_id, row.wake_at = "done", "goal", None, None

    client.app.state.database.run_write(convert)
    html = _get(client, f"/console/marketing/journeys/{world['split']}/results")
    text = _text(html)
    assert "echarts.min.js" in html and '"stack": "messages"' in html
    sends = _text(re.search(r'data-test="results-sends">(.*?)</table>', html, re.S).group(1))
    assert "В очереди" in sends and "Пропущено: нет согласия на рассылку" in sends
    assert re.search(r"2\. Отправить шаблон «Привет», канал: Эл. почта 1 0 0 0 0 0 0 1 2", sends), sends
    assert "150,00" in text and "Конверсия" in text
    journeys_list = _text(_get(client, "/console/marketing/journeys"))
    assert "A/B привет" in journeys_list and "150,00" in journeys_list
    people = _get(client, f"/console/marketing/journeys/{world['split']}/people", headers=HX)
    assert 'href="/console/orders/77"' in people and "достиг цели" in _text(people)


def test_words_of_every_ready_made_journey_and_step_are_russian():
    """Every ready-made journey's description, and every code the area names, has Russian."""
    from seamline.marketing.journeys import library
    from seamline.web import i18n

    ru = i18n.translations("ru")
    missing = [code for code, ready in library.READY.items() if ru.gettext(ready.description) == ready.description]
    assert not missing, "add the descriptions of these ready-made journeys to marketing.po: " + ", ".join(missing)
    assert page.PERMISSION == "marketing"


def test_what_is_not_there_is_said_in_the_readers_words(client, staff_client):
    staff_client("marketer", locale="ru")
    for url, words in (("/console/marketing/segments/999", "Такого сегмента нет."), ("/console/marketing/journeys/999", "Такого пути нет."),
                       ("/console/marketing/enrollments/999", "Под этим номером никого нет ни в одном пути."),
                       ("/console/marketing/templates/999", "Такого шаблона нет.")):
        response = client.get(url)
        assert response.status_code == 404 and words in response.text, url
