"""The console in a real Chromium: a new customer message shows up without a reload (the
console's WebSocket + HTMX), the incoming-call screen pop, keyboard use, and the inbox at
tablet width. Needs Debian's chromium (tests/browser.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from seamline.events.destinations import sign
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key
from tests.web.conftest import PASSWORD, add_staff

skip_without_chromium()

PBX_SECRET = "console-pbx-secret"
WAIT = 10_000
CALL = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "telephony" / "known_caller.json").read_text())[0]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def served(database, settings_for) -> Iterator[dict]:
    with database.write() as session:
        _, write_key = events_service.create_source(session, name="Website", channel="web")
    _, agent_id = add_staff(database, email="maria@example.com", role="agent", locale="ru")
    admin = make_key(database, Scope.admin)
    httpx_headers = {"Authorization": f"Bearer {admin}"}
    settings = settings_for(database.url, inbox_telephony_secret=SecretStr(PBX_SECRET))
    with live_server(create_app(settings, database=database)) as url:
        patched = httpx.patch(f"{url}/v1/inbox/agents/{agent_id}", json={"extension": CALL["extension"]}, headers=httpx_headers)
        assert patched.status_code == 200, patched.text
        yield {"url": url, "write_key": write_key, "admin": httpx_headers}


def _sign_in(page, url: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/console/login")
    page.fill("[data-test=login-email]", "maria@example.com")
    page.fill("[data-test=login-password]", PASSWORD)
    page.keyboard.press("Enter")  # the form works from the keyboard
    page.wait_for_selector("[data-test=staff-name]", timeout=WAIT)
    page.wait_for_function("document.body.dataset.live === '1'", timeout=WAIT)  # the console's socket is up


def _customer_writes(served: dict, text: str, anonymous_id: str = "visitor-1") -> None:
    url = served["url"]
    session = httpx.post(f"{url}/v1/webchat/sessions", json={"writeKey": served["write_key"], "anonymousId": anonymous_id}).json()
    sent = httpx.post(f"{url}/v1/webchat/messages", json={"text": text, "clientMessageId": f"m-{time.monotonic_ns()}"},
                      headers={"Authorization": f"Bearer {session['token']}"})
    assert sent.status_code == 201, sent.text


def test_new_messages_appear_without_a_reload(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    _sign_in(page, served["url"])
    with page.expect_navigation():  # the availability switch reloads the page
        page.select_option("[data-test=agent-status]", "online")
    page.wait_for_function("document.body.dataset.live === '1'", timeout=WAIT)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    _customer_writes(served, "Здравствуйте, где мой заказ?")
    entry = page.locator("[data-test=conversation-list] a").first
    entry.wait_for(timeout=WAIT)
    entry.click()
    page.locator("[data-test=thread]", has_text="где мой заказ").wait_for(timeout=WAIT)
    page.wait_for_function("document.body.dataset.live === '1'", timeout=WAIT)
    page.evaluate("window.__sameDocument = true")
    _customer_writes(served, "Номер заказа 12345")  # the same visitor: the same conversation
    page.locator("[data-test=thread]", has_text="Номер заказа 12345").wait_for(timeout=WAIT)
    assert page.evaluate("window.__sameDocument === true")
    # Keyboard: focus the reply box, type, send with the button reached by Tab.
    page.focus("[data-test=reply-text]")
    page.keyboard.type("Сейчас посмотрю.")
    page.focus("[data-test=send]")
    page.keyboard.press("Enter")
    page.locator("[data-test=thread]", has_text="Сейчас посмотрю.").wait_for(timeout=WAIT)
    context.close()


def test_incoming_call_pops_up_with_the_callers_profile(browser, served):
    url = served["url"]
    known = httpx.post(f"{url}/v1/customers", headers=served["admin"], json={
        "identifiers": [{"type": "phone", "value": "+79161234567"}], "traits": {"first_name": "Анна", "last_name": "Петрова"}})
    assert known.status_code in (200, 201), known.text
    context = browser.new_context(viewport={"width": 1024, "height": 768})  # a tablet
    page = context.new_page()
    _sign_in(page, url)
    page.goto(f"{url}/console/inbox")
    page.wait_for_function("document.body.dataset.live === '1'", timeout=WAIT)
    body = json.dumps({**CALL, "at": None} | {"at": "2026-11-24T09:00:00Z"}).encode()
    rung = httpx.post(f"{url}/v1/channels/telephony/events", content=body, headers={
        "Content-Type": "application/json", "X-Seamline-Signature": sign(PBX_SECRET, int(time.time()), body)})
    assert rung.status_code == 200, rung.text
    pop = page.locator("[data-test=screen-pop]")
    pop.wait_for(timeout=WAIT)
    assert "Анна Петрова" in pop.inner_text()
    assert pop.locator("a").get_attribute("href") == f"/console/customers/{known.json()['customer']['id']}"
    context.close()
