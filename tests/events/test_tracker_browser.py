"""seamline.js in a real Chromium, against a live Seamline server, on SQLite and PostgreSQL.

The shop is a different origin than Seamline, as in real life: its pages come from a second small
HTTP server on another loopback port and load the tracker with the snippet of docs/tracker.md,
so the tracker posts cross-origin (text/plain, no preflight) and the server's CORS is exercised.
Everything is checked through what the server stored (`GET /v1/events`).

Needs Debian's `chromium` (`.ci/run` installs it) driven by Playwright; never `playwright install`.
Skipped where Chromium is missing, except under CI, where that fails.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tracker.md"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

skip_without_chromium()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def seamline_url(settings, database) -> Iterator[str]:
    """The Seamline app served by uvicorn in a thread; its base URL."""
    with live_server(create_app(settings, database=database)) as url:
        yield url


class Shop:
    """The website: every path is an HTML page that loads seamline.js with the documented snippet."""

    def __init__(self) -> None:
        self.head = ""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/favicon"):
                    self.send_error(404)
                    return
                body = (
                    f'<!doctype html><html><head><meta charset="utf-8"><title>Spring shoes</title>{shop.head}'
                    "</head><body><h1>Shoes</h1></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def install(self, seamline_url: str, write_key: str) -> None:
        """The docs' snippet, then calls made before the script can have arrived (same block)."""
        match = re.search(r"```html\n<script>\n(.*?)</script>\n```", DOCS.read_text(encoding="utf-8"), re.S)
        assert match, "docs/tracker.md must show the snippet in an html code block"
        snippet = match.group(1)
        assert "https://seamline.example.com/seamline.js" in snippet and '"WRITE_KEY"' in snippet
        snippet = snippet.replace("https://seamline.example.com", seamline_url).replace("WRITE_KEY", write_key)
        self.head = (
            f"<script>\n{snippet}\n"
            "window.callsBeforeLoad = Array.isArray(window.seamline) ? window.seamline.length : -1;\n"
            'seamline.track("Promo seen", {promo: "spring"});\n'
            "</script>"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def shop() -> Iterator[Shop]:
    site = Shop()
    yield site
    site.close()


@pytest.fixture
def setup(database, seamline_url, shop, browser):
    """A tracking source on the live server, the shop's pages using its key, a fresh browser context."""
    with database.write() as session:
        _source, write_key = events_service.create_source(session, name="Website", channel="web")
    shop.install(seamline_url, write_key)
    admin = {"Authorization": f"Bearer {make_key(database, Scope.admin)}"}
    context = browser.new_context(locale="ru-RU")
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    with httpx.Client(base_url=seamline_url, headers=admin, timeout=10) as client:
        yield {
            "events": Events(client, page), "page": page, "context": context, "shop": shop,
            "batch_url": f"{seamline_url}/v1/batch",
        }
    context.close()
    assert page_errors == []


class Events:
    """What the server stored, read through GET /v1/events (newest first)."""

    def __init__(self, client: httpx.Client, page) -> None:
        self.client, self.page = client, page

    def get(self, **query) -> list[dict]:
        response = self.client.get("/v1/events", params={"limit": 500, **query})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def wait(self, done: Callable[[list[dict]], bool], timeout: float = 8, **query) -> list[dict]:
        """Polls until `done(items)`. Waits through Playwright, whose sync API runs route
        handlers only while a Playwright call is in progress."""
        deadline = time.monotonic() + timeout
        while not done(items := self.get(**query)):
            assert time.monotonic() < deadline, f"timed out waiting for events {query}: {json.dumps(items)[:2000]}"
            self.page.wait_for_timeout(100)
        return items

    def count(self, message_id: str, **query) -> int:
        return sum(e["message_id"] == message_id for e in self.get(**query))


def of_type(items: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [e for e in items if e["type"] == kind and (name is None or name in (e["event"], e["name"]))]


def cookie(context, name: str) -> dict:
    found = [c for c in context.cookies() if c["name"] == name]
    assert len(found) == 1, context.cookies()
    return found[0]


def test_page_views_identity_and_snippet_queue(setup):
    events, page, context, shop = setup["events"], setup["page"], setup["context"], setup["shop"]
    query = "?utm_source=newsletter&utm_campaign=spring"
    page.goto(f"{shop.url}/shoes{query}")

    script = events.client.get("/seamline.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
    # The snippet's calls (load, page, track) were queued before the script arrived.
    assert page.evaluate("window.callsBeforeLoad") >= 2
    anonymous_id = cookie(context, "sl_aid")["value"]
    assert UUID4.match(anonymous_id)
    items = events.wait(lambda i: of_type(i, "page") and of_type(i, "track", "Promo seen"), anonymous_id=anonymous_id)
    assert len(items) == 2  # delivered once each, by the one-second flush

    view = of_type(items, "page")[0]
    assert view["anonymous_id"] == anonymous_id and view["user_id"] is None
    assert view["context"]["page"] == {
        "path": "/shoes", "referrer": "", "search": query, "title": "Spring shoes", "url": f"{shop.url}/shoes{query}",
    }
    assert view["context"]["campaign"] == {"source": "newsletter", "name": "spring"}
    assert view["context"]["library"]["name"] == "seamline.js" and view["context"]["library"]["version"]
    assert "Chrome" in view["context"]["userAgent"] and view["context"]["locale"] == "ru-RU"
    assert view["properties"] == view["context"]["page"]  # analytics.js: page properties default to the page
    assert UUID4.match(view["message_id"]) and view["channel"] == "web"
    promo = of_type(items, "track", "Promo seen")[0]
    assert promo["properties"] == {"promo": "spring"} and promo["anonymous_id"] == anonymous_id

    # The anonymous id: a first-party cookie for a year, and the same value in localStorage.
    aid = cookie(context, "sl_aid")
    assert aid["path"] == "/" and aid["sameSite"] == "Lax"
    assert 364 * 86400 < aid["expires"] - time.time() <= 366 * 86400
    assert page.evaluate("[localStorage.getItem('sl_aid'), seamline.anonymousId()]") == [anonymous_id] * 2

    # A reload keeps the anonymous id. (From here on, flush() saves the test the one-second wait.)
    page.reload()
    assert page.evaluate("seamline.flush()") is True
    items = events.wait(lambda i: len(of_type(i, "page")) == 2, anonymous_id=anonymous_id)
    assert cookie(context, "sl_aid")["value"] == anonymous_id
    # ... and so does a visit whose cookie is gone (localStorage keeps it), restoring the cookie.
    context.clear_cookies()
    page.reload()
    assert page.evaluate("seamline.flush()") is True
    events.wait(lambda i: len(of_type(i, "page")) == 3, anonymous_id=anonymous_id)
    assert cookie(context, "sl_aid")["value"] == anonymous_id

    # identify, then track: both carry the userId and the same anonymous id; later pages remember it.
    ids = page.evaluate(
        """async () => {
            const ids = [seamline.identify("u-1", {email: "anna@example.com"}),
                         seamline.track("Added to cart", {sku: "A-1", price: 990, currency: "RUB"})];
            return [...ids, await seamline.flush()];
        }"""
    )
    assert ids[2] is True
    items = events.wait(lambda i: len(i) == 2, user_id="u-1")
    identify, added = of_type(items, "identify")[0], of_type(items, "track", "Added to cart")[0]
    assert [identify["message_id"], added["message_id"]] == ids[:2]
    assert identify["traits"] == {"email": "anna@example.com"}
    assert added["properties"] == {"sku": "A-1", "price": 990, "currency": "RUB"}
    assert {e["anonymous_id"] for e in items} == {anonymous_id}
    page.reload()
    assert page.evaluate("seamline.flush()") is True
    items = events.wait(lambda i: of_type(i, "page"), user_id="u-1")
    assert of_type(items, "page")[0]["anonymous_id"] == anonymous_id

    # reset() forgets the user and starts a new anonymous id, in the cookie and in localStorage.
    new_id = page.evaluate("seamline.reset(), seamline.anonymousId()")
    assert new_id != anonymous_id and cookie(context, "sl_aid")["value"] == new_id
    assert page.evaluate("[localStorage.getItem('sl_aid'), seamline.userId()]") == [new_id, None]


def test_delivery_retries_batches_and_refusals(setup):
    events, page, shop, batch_url = setup["events"], setup["page"], setup["shop"], setup["batch_url"]
    # Plain-http sites have no crypto.randomUUID: the fallback must make valid v4 UUIDs too.
    page.add_init_script("delete Crypto.prototype.randomUUID")
    page.goto(f"{shop.url}/cart")
    assert page.evaluate("typeof crypto.randomUUID") == "undefined"
    anonymous_id = page.evaluate("seamline.anonymousId()")
    assert UUID4.match(anonymous_id) and page.evaluate("seamline.flush()") is True
    events.wait(lambda i: len(i) == 2, anonymous_id=anonymous_id)

    # The server answers 503 to the first batch: the message stays queued and a retry delivers it once.
    cors = {"Access-Control-Allow-Origin": "*"}  # else the browser hides the status: a network error
    posted: list[list[str]] = []

    def first_fails(route, request) -> None:
        posted.append([m["messageId"] for m in json.loads(request.post_data)["batch"]])
        if len(posted) == 1:
            route.fulfill(status=503, headers=cors, body='{"error": {}}')
        else:
            route.continue_()

    page.route(batch_url, first_fails)
    checkout, flushed, queued = page.evaluate(
        """async () => {
            const id = seamline.track("Checkout started", {step: 1});
            const flushed = await seamline.flush();
            return [id, flushed, JSON.parse(localStorage.getItem("sl_queue")).map(m => m.messageId)];
        }"""
    )
    assert UUID4.match(checkout) and flushed is False and queued == [checkout]
    events.wait(lambda i: any(e["message_id"] == checkout for e in i), anonymous_id=anonymous_id)
    assert posted[0] == [checkout] and checkout in posted[1]
    assert page.evaluate("localStorage.getItem('sl_queue')") is None
    assert events.count(checkout, anonymous_id=anonymous_id) == 1
    page.unroute(batch_url)

    # The server is down across a reload: the queue is kept in localStorage and sent by the next page.
    page.route(batch_url, lambda route: route.fulfill(status=503, headers=cors))
    wish = page.evaluate("(async () => [seamline.track('Wishlist added'), await seamline.flush()][0])()")
    page.reload()
    queued = page.evaluate("JSON.parse(localStorage.getItem('sl_queue')).map(m => m.messageId)")
    assert wish in queued
    page.unroute(batch_url)
    events.wait(
        lambda i: of_type(i, "track", "Wishlist added") and len(of_type(i, "page")) == 2, anonymous_id=anonymous_id
    )
    page.wait_for_function("localStorage.getItem('sl_queue') === null", timeout=8000)
    assert events.count(wish, anonymous_id=anonymous_id) == 1

    # A 4xx other than 429 means "never": the batch is dropped, with an error in the console.
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.route(batch_url, lambda route: route.fulfill(status=400, headers=cors, body="bad"))
    refused, flushed = page.evaluate("async () => [seamline.track('Refused'), await seamline.flush()]")
    assert flushed is True and page.evaluate("localStorage.getItem('sl_queue')") is None
    assert any("refused (HTTP 400)" in text for text in errors), errors
    page.unroute(batch_url)

    # 20 queued messages go at once, in one batch; the rest right after, in the next one.
    sizes: list[int] = []

    def count(route, request) -> None:
        sizes.append(len(json.loads(request.post_data)["batch"]))
        route.continue_()

    page.route(batch_url, count)
    page.evaluate("for (let i = 0; i < 25; i++) seamline.track('Item viewed', {i})")
    items = events.wait(lambda i: len(of_type(i, "track", "Item viewed")) == 25, anonymous_id=anonymous_id)
    assert sizes == [20, 5]
    assert sorted(e["properties"]["i"] for e in of_type(items, "track", "Item viewed")) == list(range(25))
    assert all(UUID4.match(e["message_id"]) for e in items)
    assert events.count(refused, anonymous_id=anonymous_id) == 0
