"""The Chat bot area in a real Chromium, in Russian: the figures of a week in which customers
wrote to the bot in the web chat, a message it did not understand taught to it from the list
(after which the bot understands it), "try it", a topic's settings, texts and phrases, at 1280
px and on a 390 px phone without anything wider than the window.

Screenshots go to `$SEAMLINE_SCREENSHOTS` (docs/screenshots/console-assistant-*.png come from
`SEAMLINE_SCREENSHOTS=docs/screenshots pytest tests/web/test_console_assistant_browser.py`),
else to the test's temporary folder. Needs Debian's chromium (tests/browser.py); layout does not
depend on the database: SQLite only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from seamline.app import create_app
from seamline.assistant import service as bot
from seamline.core.auth.schemas import Scope
from seamline.core.time import utcnow
from seamline.events import service as events_service
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key
from tests.web.conftest import PASSWORD, add_staff

skip_without_chromium()

WAIT = 10_000
SIZES = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
#: What is wider than its box (for the failure's message).
WIDEST = ("[document.documentElement.scrollWidth, ...[...document.querySelectorAll('main *')]"
          ".filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX == 'visible').slice(-3)"
          ".map(e => e.tagName + '.' + e.className + ':' + e.scrollWidth + '/' + e.clientWidth)]")
#: What the week's customers wrote in the web chat, one conversation each.
CHATS = [("привет",), ("спасибо большое!",), ("where is my order?",), ("как работает доставка курьером?",),
         ("позовите оператора",), ("хочу вернуть крем, не подошёл",), ("кракозябра фыва",),
         ("можно оплатить подарочным сертификатом?", "ну сертификатом можно?"), ("привет",), ("спасибо",)]
UNKNOWN = "можно оплатить подарочным сертификатом?"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def world(database, settings_for) -> Iterator[dict]:
    if not database.url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database")
    bot._models.clear()  # noqa: SLF001 - a model trained for an earlier test's phrases (ids restart per test)
    add_staff(database, email="admin@example.com", role="admin", locale="ru")
    add_staff(database, email="returns@example.com", role="agent", skills=["returns", "lang:ru"])
    admin = {"Authorization": f"Bearer {make_key(database, Scope.admin)}"}
    with database.write() as session:
        write_key = events_service.create_source(session, name="Website", channel="web")[1]
    settings = settings_for(database.url, assistant_enabled=True)
    app = create_app(settings, database=database)
    with live_server(app) as url:
        api = httpx.Client(base_url=url, timeout=20)
        topic = api.put("/v1/assistant/topics/returns", json={"human_only": True, "skill": "returns"}, headers=admin)
        assert topic.status_code == 200, topic.text
        for text in ("хочу сдать товар обратно", "как оформить возврат заказа"):
            assert api.post("/v1/assistant/phrases", json={"intent": "returns", "text": text}, headers=admin).status_code == 201
        greeting = api.put("/v1/assistant/answers/greeting/ru", headers=admin, json={
            "template": "Здравствуйте! Я бот магазина: подскажу про заказ, самовывоз, баллы и возврат. Позвать человека — «оператор»."})
        assert greeting.status_code == 200, greeting.text
        for n, texts in enumerate(CHATS):
            token = api.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": f"visitor-{n}"}).json()["token"]
            for text in texts:
                sent = api.post("/v1/webchat/messages", json={"text": text}, headers={"Authorization": f"Bearer {token}"})
                assert sent.status_code == 201, sent.text
        # an hour later the conversations only the bot answered are resolved by it
        database.run_write(lambda s: bot.close_idle(s, settings=settings, now=utcnow() + timedelta(hours=1)))
        yield {"url": url, "api": api, "admin": admin}
        api.close()


def _signed_in(browser, url: str, viewport: dict):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport=viewport, locale="ru-RU")
    page = context.new_page()
    page.goto(f"{url}/console/login")
    page.fill("[data-test=login-email]", "admin@example.com")
    page.fill("[data-test=login-password]", PASSWORD)
    with page.expect_navigation():
        page.click("[data-test=login-submit]")
    return context, page


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SEAMLINE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_message_it_did_not_understand_is_taught_from_the_list(browser, world, tmp_path):
    url, api, admin = world["url"], world["api"], world["admin"]
    assert api.post("/v1/assistant/classify", json={"text": UNKNOWN}, headers=admin).json()["would"] == "not_understood"
    context, page = _signed_in(browser, url, SIZES["desktop"])
    page.click("[data-test=nav-assistant]")
    assert page.inner_text("[data-test=bot-conversations]") == str(len(CHATS))
    assert "клиент попросил человека" in page.inner_text("[data-test=bot-reasons]")
    item = page.locator("[data-test=bot-unknown-item]", has_text=UNKNOWN)
    item.locator("[data-test=bot-teach-intent]").select_option("human")
    with page.expect_navigation():
        item.locator("[data-test=bot-teach-submit]").click()
    assert "бот учится сразу" in page.inner_text("[data-test=flash-ok]")
    added = page.locator("[data-test=bot-unknown-item]", has_text=UNKNOWN).locator("[data-test=bot-unknown-added]")
    assert "Просьба позвать человека" in added.inner_text()
    # the bot understands it now: try it
    page.fill("[data-test=bot-try-text]", UNKNOWN)
    page.click("[data-test=bot-try-submit]")
    page.locator("[data-test=bot-try-intent]", has_text="Просьба позвать человека").wait_for(timeout=WAIT)
    assert "передаёт это человеку: клиент попросил человека" in page.inner_text("[data-test=bot-try-would]")
    assert api.post("/v1/assistant/classify", json={"text": UNKNOWN}, headers=admin).json()["intent"] == "human"
    context.close()


def test_the_pages_fit_desktop_and_phone(browser, world, tmp_path):
    url, shots = world["url"], _shots(tmp_path)
    for size, viewport in SIZES.items():
        context, page = _signed_in(browser, url, viewport)
        page.goto(f"{url}/console/assistant")
        page.fill("[data-test=bot-try-text]", "где мой заказ?")
        page.click("[data-test=bot-try-submit]")
        page.locator("[data-test=bot-try-intent]", has_text="Статус заказа").wait_for(timeout=WAIT)
        page.screenshot(path=str(shots / f"console-assistant-{size}.png"), full_page=True)
        assert page.evaluate(NO_OVERFLOW), (size, "overview", page.evaluate(WIDEST))

        page.goto(f"{url}/console/assistant/intents/returns")
        assert page.is_checked("[data-test=bot-human-only]") and page.input_value("[data-test=bot-skill]") == "returns"
        assert "как оформить возврат заказа" in page.inner_text("[data-test=bot-phrase-list]")
        page.screenshot(path=str(shots / f"console-assistant-topic-{size}.png"), full_page=True)
        assert page.evaluate(NO_OVERFLOW), (size, "topic", page.evaluate(WIDEST))

        page.goto(f"{url}/console/assistant/intents/greeting")
        answer = page.locator("[data-test=answer-greeting]")
        assert "Я бот магазина" in page.input_value("[data-test=answer-greeting-ru]")
        answer.locator("[data-test=answer-greeting-en]").fill("Hi {{ name | shout }}")
        with page.expect_navigation():
            answer.locator("[data-test=answer-greeting-save]").click()
        assert "Английский текст не разбирается" in page.inner_text("[data-test=answer-greeting-problem]")
        assert page.input_value("[data-test=answer-greeting-en]") == "Hi {{ name | shout }}"  # what was typed is kept
        page.screenshot(path=str(shots / f"console-assistant-answers-{size}.png"), full_page=True)
        assert page.evaluate(NO_OVERFLOW), (size, "answers", page.evaluate(WIDEST))
        context.close()
