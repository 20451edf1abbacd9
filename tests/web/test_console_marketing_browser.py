"""The Marketing area in a real Chromium, in Russian: typing a segment's rule updates its live
size estimate (and says what is wrong with a broken one), the template's RU / EN tabs, a preview
with a customer found by name (the HTML in a sandboxed frame), a campaign made with its form and
one sent with its results, and the segment, journey, preview and campaign pages at 1280 px and
on a 390 px phone without anything wider than the window.

Screenshots go to `$SEAMLINE_SCREENSHOTS` (docs/screenshots/marketing-*.png come from
`SEAMLINE_SCREENSHOTS=docs/screenshots pytest tests/web/test_console_marketing_browser.py`), else
to the test's temporary folder. Needs Debian's chromium (tests/browser.py); layout does not
depend on the database: SQLite only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.marketing.journeys import engine
from seamline.marketing.journeys.models import MarketingEnrollment
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key
from tests.web.conftest import PASSWORD, add_staff

skip_without_chromium()

WAIT = 10_000
SIZES = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
PEOPLE = [("Анна", "Петрова", "Moscow", True, "anna"), ("Борис", "Смирнов", "Moscow", False, "boris"),
          ("Вера", "Кузнецова", "Kazan", True, "vera"), ("Григорий", "Константинопольский", "Moscow", True, "grigory"),
          ("Дарья", "Орлова", "Moscow", True, "darya"), ("Егор", "Волков", "Moscow", True, "egor"),
          ("Жанна", "Соколова", "Kazan", False, "zhanna"), ("Зоя", "Лебедева", "Moscow", True, "zoya"),
          ("Илья", "Новиков", "Moscow", True, "ilya"), ("Кира", "Морозова", "Moscow", False, "kira"),
          ("Лев", "Павлов", "Kazan", True, "lev"), ("Мария", "Семёнова", "Moscow", True, "maria")]
#: Who bought after the messages (the goal reached: the engine records the order and its total). With
#: the split's step id "split" and this journey (id 1) people 2, 3, 8, 9, 10 go to A, 1, 5, 7, 11, 12 to
#: B and 4, 6 are held out (engine.arm_of); buyers in each.
CONVERTED = {1: 249_000, 7: 118_000, 8: 399_000, 4: 189_000, 3: 99_000}
HTML = ('<h1 style="font-family: sans-serif">Привет, {{ person.first_name }}!</h1>'
        '<p>У вас {{ points.available }} баллов. <a href="{{ shop_url }}">В магазин</a></p>')


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def world(database, settings_for) -> Iterator[dict]:
    if not database.url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database")
    add_staff(database, email="marketer@example.com", role="marketer", locale="ru")
    admin = {"Authorization": f"Bearer {make_key(database, Scope.admin)}"}
    marketing = {"Authorization": f"Bearer {make_key(database, Scope.marketing, name='marketer')}"}
    settings = settings_for(database.url, inbox_smtp_host="127.0.0.1", inbox_smtp_port=2525, inbox_email_address="shop@example.com",
                            marketing_quiet_hours="", marketing_cap_messages=0)
    app = create_app(settings, database=database)
    with live_server(app) as url:
        api = httpx.Client(base_url=url, timeout=20)

        def post(path: str, body: dict, headers: dict = marketing) -> dict:
            response = api.post(path, json=body, headers=headers)
            assert response.status_code in (200, 201), f"{path}: {response.text}"
            return response.json()

        people = [post("/v1/customers", {
            "identifiers": [{"type": "email", "value": f"{email}@example.com"}],
            "traits": {"first_name": first, "last_name": last, "city": city},
            "consents": [{"channel": "email", "purpose": "marketing", "granted": consent}]}, admin)["customer"]["id"]
            for first, last, city, consent, email in PEOPLE]
        segment = post("/v1/marketing/segments", {"name": "Москвичи с согласием на email", "rules": {"type": "and", "rules": [
            {"type": "trait", "key": "city", "op": "eq", "value": "Moscow"}, {"type": "consent", "channel": "email"},
            {"type": "not", "rule": {"type": "orders", "within_days": 90, "count": {"op": "gte", "value": 2}}}]}})
        promotion = api.put("/v1/promotions/COMEBACK10", headers=admin, json={
            "name_ru": "Скидка 10%", "name_en": "10% off", "kind": "percent", "value": 10, "requires_coupon": True})
        assert promotion.status_code in (200, 201), promotion.text
        template = post("/v1/marketing/templates", {"name": "Приветствие с баллами", "content": {
            "ru": {"subject": "Привет, {{ person.first_name }}", "text": "Привет, {{ person.first_name }}! У вас {{ points.available }} баллов.",
                   "html": HTML},
            "en": {"subject": "Hello, {{ person.first_name }}", "text": "Hello, {{ person.first_name }}!"}}})
        journey = post("/v1/marketing/journeys", {"name": "Приветствие: A/B с контрольной группой", "definition": {
            "trigger": {"type": "segment_entered", "segment_id": segment["id"]}, "goal": {"type": "order"},
            "frequency_cap": {"messages": 2, "days": 7}, "reentry": {"policy": "after_days", "days": 30},
            "steps": [
                {"id": "wait_1h", "type": "wait", "minutes": 60, "next": "split"},
                {"id": "split", "type": "split", "arms": [{"name": "A", "percent": 40, "next": "hello"},
                                                       {"name": "B", "percent": 40, "next": "coupon"},
                                                       {"name": "holdout", "percent": 20, "holdout": True}]},
                {"id": "hello", "type": "send", "template_id": template["id"], "channel": "email", "next": "clicked"},
                {"id": "clicked", "type": "branch", "engaged": "clicked", "next": "points", "else_next": "coupon"},
                {"id": "points", "type": "give_points", "points": 100, "comment": "Спасибо"},
                {"id": "coupon", "type": "give_coupon", "promotion": "COMEBACK10", "valid_days": 3, "next": "send_coupon"},
                {"id": "send_coupon", "type": "send", "template_id": template["id"], "channel": "email"}]}})
        post("/v1/marketing/journeys/from-template", {"template": "abandoned_cart", "promotion": "COMEBACK10", "channel": "email"})
        api_journey = post("/v1/marketing/journeys", {"name": "Тест", "definition": {"trigger": {"type": "api"}, "steps": [
            {"id": "w", "type": "wait", "minutes": 1}]}})
        assert api.post(f"/v1/marketing/journeys/{journey['id']}/start", headers=marketing).status_code == 200
        assert api.post(f"/v1/marketing/journeys/{api_journey['id']}/start", headers=marketing).status_code == 200
        # people entered through the API's enroll of the journey (its segment trigger only takes new entries)
        with database.write() as session:
            from seamline.marketing.journeys import service as journeys

            found = journeys.get_journey(session, journey["id"])
            for customer_id in people:
                journeys.enroll(session, journey=found, profile_id=customer_id, check=False)
        now = datetime.now(timezone.utc)
        for later in (1, 61):
            database.run_write(lambda s, m=later: engine.advance_due(s, settings=settings, now=now + timedelta(minutes=m)))

        def convert(session):  # noqa: ANN001, ANN202
            from sqlalchemy import select

            for n, revenue in CONVERTED.items():
                row = session.scalar(select(MarketingEnrollment).where(MarketingEnrollment.profile_id == people[n],
                                                                       MarketingEnrollment.journey_id == journey["id"]))
                row.converted_at, row.conversion_order_id, row.conversion_revenue = now + timedelta(hours=3), 100 + n, revenue
                row.status, row.exit_reason, row.finished_at, row.step_id, row.wake_at = "done", "goal", row.converted_at, None, None

        database.run_write(convert)
        campaign = _sent_campaign(database, settings, post, api, marketing, segment["id"], template["id"])
        yield {"url": url, "people": people, "segment": segment["id"], "journey": journey["id"], "template": template["id"],
               "campaign": campaign}
        api.close()


def _sent_campaign(database, settings, post, api, marketing, segment_id: int, template_id: int) -> int:  # noqa: ANN001
    """A campaign of two variants and a holdout, sent to the segment: the channel reported most
    messages sent, some delivered, opened and clicked; two people bought."""
    from sqlalchemy import select

    from seamline.inbox.models import InboxMessage
    from seamline.marketing import reactor
    from seamline.marketing.messages.models import MarketingMessage

    coupon = post("/v1/marketing/templates", {"name": "Скидка 10 % по промокоду", "content": {
        "ru": {"subject": "Скидка для вас", "text": "{{ person.first_name }}, дарим скидку 10 %!"}}})
    campaign = post("/v1/marketing/campaigns", {
        "name": "Весенняя распродажа", "segment_id": segment_id, "channel": "email", "holdout_percent": 20, "per_minute": 500,
        "variants": [{"name": "A", "template_id": template_id, "percent": 50}, {"name": "B", "template_id": coupon["id"], "percent": 50}]})
    scheduled = api.post(f"/v1/marketing/campaigns/{campaign['id']}/schedule", headers=marketing)
    assert scheduled.status_code == 200, scheduled.text
    journey_id = scheduled.json()["journey_id"]
    at = datetime.now(timezone.utc) + timedelta(seconds=1)
    reactor.campaigns(database, settings, now=at)
    database.run_write(lambda s: engine.advance_due(s, settings=settings, now=at + timedelta(minutes=1)))

    def report(session):  # noqa: ANN001, ANN202 - what the channel, tracking and the engine record
        messages = session.scalars(select(MarketingMessage).where(MarketingMessage.status == "queued",
                                                                  MarketingMessage.journey_id == journey_id)
                                   .order_by(MarketingMessage.id)).all()
        for n, message in enumerate(messages):
            session.get(InboxMessage, message.inbox_message_id).delivery_status = "delivered" if n % 3 else "sent"
            if n % 2 == 0:
                message.opened_at = at + timedelta(minutes=5)
            if n % 4 == 0:
                message.clicked_at = at + timedelta(minutes=6)
        for n, message in enumerate(messages[:3:2]):
            enrollment = session.scalar(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == message.journey_id,
                                                                          MarketingEnrollment.profile_id == message.profile_id))
            enrollment.converted_at, enrollment.conversion_order_id = at + timedelta(hours=2), 300 + n
            enrollment.conversion_revenue = 189_000

    database.run_write(report)
    return campaign["id"]


def _signed_in(browser, url: str, viewport: dict):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport=viewport, locale="ru-RU")
    page = context.new_page()
    page.goto(f"{url}/console/login")
    page.fill("[data-test=login-email]", "marketer@example.com")
    page.fill("[data-test=login-password]", PASSWORD)
    with page.expect_navigation():
        page.click("[data-test=login-submit]")
    return context, page


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SEAMLINE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_typing_a_rule_updates_its_estimate(browser, world, tmp_path):
    context, page = _signed_in(browser, world["url"], SIZES["desktop"])
    page.goto(f"{world['url']}/console/marketing/segments/new")
    estimate = page.locator("[data-test=estimate]")
    estimate.locator("[data-test=estimate-count]").wait_for(timeout=WAIT)  # the starter rule, counted on load
    rules = page.locator("[data-test=segment-rules]")
    rules.fill("")
    rules.type('{"type": "trait", "key": "city", "op": "eq", "value": "Moscow"}', delay=5)
    page.wait_for_function("document.querySelector('[data-test=estimate-count]')"
                           " && document.querySelector('[data-test=estimate-count]').textContent.includes('9 из 12')", timeout=WAIT)
    assert "Мария Семёнова" in estimate.inner_text()  # a few of them (the newest), by name
    rules.fill("")
    rules.type('{"type": "trait", "key": "city", "op": "equals", "value": "Moscow"}', delay=5)
    page.locator("[data-test=estimate-problem]", has_text="op: допустимо одно из").wait_for(timeout=WAIT)
    rules.fill("")
    rules.type('{"type": "trait", "key": "city", "op": "eq", "value": "Kazan"}', delay=5)
    page.locator("[data-test=estimate-count]", has_text="3 из 12").wait_for(timeout=WAIT)
    assert page.evaluate(NO_OVERFLOW)
    page.screenshot(path=str(_shots(tmp_path) / "marketing-segment-form-desktop.png"), full_page=True)
    context.close()
    context, page = _signed_in(browser, world["url"], SIZES["phone"])
    page.goto(f"{world['url']}/console/marketing/segments/{world['segment']}/edit")
    page.locator("[data-test=estimate-count]", has_text="7 из 12").wait_for(timeout=WAIT)
    assert page.evaluate(NO_OVERFLOW), page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(_shots(tmp_path) / "marketing-segment-form-phone.png"), full_page=True)
    context.close()


def test_segment_journey_and_preview_fit_desktop_and_phone(browser, world, tmp_path):
    url, shots = world["url"], _shots(tmp_path)
    for size, viewport in SIZES.items():
        context, page = _signed_in(browser, url, viewport)
        page.goto(f"{url}/console/marketing/segments/{world['segment']}")
        assert "Трейт city = Moscow" in page.inner_text("[data-test=rule-words]")
        assert page.evaluate(NO_OVERFLOW), (size, "segment", page.evaluate("document.documentElement.scrollWidth"))
        page.screenshot(path=str(shots / f"marketing-segment-{size}.png"), full_page=True)

        page.goto(f"{url}/console/marketing/journeys/{world['journey']}")
        steps = page.locator("[data-test=journey-steps]")
        assert "A/B-тест" in steps.inner_text() and "Выдать купон промоакции COMEBACK10 на 3 дня" in steps.inner_text()
        assert page.locator("[data-test=enrollments] tbody tr").count() == len(world["people"])
        assert "достиг цели" in page.inner_text("[data-test=journey-exits]")
        assert page.evaluate(NO_OVERFLOW), (size, "journey", page.evaluate("document.documentElement.scrollWidth"))
        page.screenshot(path=str(shots / f"marketing-journey-{size}.png"), full_page=True)

        page.goto(f"{url}/console/marketing/templates/{world['template']}")
        page.click("[data-test=lang-tab-en]")  # the tabs: one language at a time
        assert page.locator("[data-test=lang-en]").is_visible() and not page.locator("[data-test=lang-ru]").is_visible()
        page.click("[data-test=lang-tab-ru]")
        page.fill("[data-test=preview-search]", "Григорий")
        pick = page.locator(f"[data-test=pick-{world['people'][3]}]")
        pick.wait_for(timeout=WAIT)
        pick.click()
        preview = page.locator("[data-test=preview]")
        preview.wait_for(timeout=WAIT)
        assert "Привет, Григорий" in page.inner_text("[data-test=preview-subject]")
        frame = page.frame_locator("[data-test=preview-html]")
        assert frame.locator("h1").inner_text(timeout=WAIT) == "Привет, Григорий!"
        assert page.get_attribute("[data-test=preview-html]", "sandbox") == ""
        page.select_option("[data-test=test-send-channel]", "email")
        page.click("[data-test=test-send]")
        page.locator("[data-test=test-send-result]", has_text="Поставлено в очередь").wait_for(timeout=WAIT)
        assert page.evaluate(NO_OVERFLOW), (size, "template", page.evaluate("document.documentElement.scrollWidth"))
        preview.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"marketing-preview-{size}.png"), full_page=True)

        page.goto(f"{url}/console/marketing/journeys/{world['journey']}/results")
        page.wait_for_selector(".an-chart[data-drawn] svg", timeout=WAIT)  # ECharts drew the charts
        assert page.locator(".an-chart[data-drawn]").count() == 2
        assert "контрольная группа" in page.inner_text("[data-test=results-arms]")
        assert page.evaluate(NO_OVERFLOW), (size, "results", page.evaluate("document.documentElement.scrollWidth"))
        page.screenshot(path=str(shots / f"marketing-results-{size}.png"), full_page=True)

        page.goto(f"{url}/console/marketing/people/{world['people'][0]}/channels")
        assert "Эл. почта" in page.inner_text("[data-test=channel-ranking]")
        assert page.evaluate(NO_OVERFLOW), (size, "channels", page.evaluate("document.documentElement.scrollWidth"))
        page.screenshot(path=str(shots / f"marketing-channels-{size}.png"), full_page=True)
        context.close()


def test_a_campaign_is_made_and_its_results_fit_desktop_and_phone(browser, world, tmp_path):
    url, shots = world["url"], _shots(tmp_path)
    context, page = _signed_in(browser, url, SIZES["desktop"])
    page.goto(f"{url}/console/marketing/campaigns")
    page.click("[data-test=campaign-new]")
    page.fill("[data-test=campaign-name]", "Тест из браузера")
    page.select_option("[data-test=campaign-segment]", str(world["segment"]))
    page.select_option("[data-test=campaign-template-A]", str(world["template"]))
    page.select_option("[data-test=campaign-template-B]", str(world["template"]))
    page.fill("[data-test=campaign-percent-A]", "60")
    page.fill("[data-test=campaign-percent-B]", "60")
    page.click("[data-test=campaign-create]")
    problem = page.locator("[data-test=campaign-problem]")
    assert "Доли вариантов должны в сумме давать 100 (сейчас 120)" in problem.inner_text()  # said, and nothing made
    assert page.input_value("[data-test=campaign-name]") == "Тест из браузера"
    page.fill("[data-test=campaign-percent-B]", "40")
    with page.expect_navigation():
        page.click("[data-test=campaign-create]")
    assert "Черновик: ничего не отправлено." in page.inner_text("[data-test=campaign-state]")
    page.once("dialog", lambda dialog: dialog.dismiss())  # "start sending now?": not now
    page.click("[data-test=campaign-schedule]")
    assert page.get_attribute("[data-test=campaign]", "data-status") == "draft"
    context.close()
    for size, viewport in SIZES.items():
        context, page = _signed_in(browser, url, viewport)
        page.goto(f"{url}/console/marketing/campaigns/new")
        assert page.evaluate(NO_OVERFLOW), (size, "campaign form", page.evaluate("document.documentElement.scrollWidth"))
        page.screenshot(path=str(shots / f"marketing-campaign-form-{size}.png"), full_page=True)
        page.goto(f"{url}/console/marketing/campaigns/{world['campaign']}")
        results = page.locator("[data-test=campaign-results]")
        assert "Контрольная группа" in results.inner_text() and "Вариант B" in results.inner_text()
        assert "Отправлена" in page.inner_text("[data-test=campaign-status]")
        assert page.evaluate(NO_OVERFLOW), (size, "campaign", page.evaluate("document.documentElement.scrollWidth"))
        page.screenshot(path=str(shots / f"marketing-campaign-{size}.png"), full_page=True)
        context.close()
