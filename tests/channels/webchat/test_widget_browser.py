"""The web chat widget (widget.js) in a real Chromium, against a live Seamline server, on SQLite
and PostgreSQL.

As in tests/events/test_tracker_browser.py the shop is another origin than Seamline: its pages
come from a small HTTP server on another loopback port and load both the tracker (the snippet of
docs/tracker.md) and the widget's one tag, so every call of the widget is cross-origin. The agent
side is played through the inbox API; what the widget shows is read inside its (open) shadow root,
which Playwright's CSS locators pierce.

Needs Debian's `chromium` (`.ci/run` installs it) driven by Playwright; never `playwright install`.
Skipped where Chromium is missing, except under CI, where that fails.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.events import service as events_service
from tests.browser import launch_chromium, live_server, skip_without_chromium
from tests.conftest import make_key

DOCS = Path(__file__).resolve().parents[3] / "docs" / "tracker.md"
TIMEOUT = 10_000  # ms, for what the widget shows

skip_without_chromium()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from launch_chromium()


@pytest.fixture
def settings(request, database, settings_for):
    """Settings, with a test's overrides: `@pytest.mark.parametrize("settings", [{...}], indirect=True)`."""
    return settings_for(database.url, **getattr(request, "param", {}))


@pytest.fixture
def seamline_url(settings, database) -> Iterator[str]:
    """The Seamline app served by uvicorn in a thread (lifespan, WebSockets); its base URL."""
    with live_server(create_app(settings, database=database)) as url:
        yield url


class Shop:
    """The website: every path is an HTML page with the tracker's snippet and the widget's tag."""

    def __init__(self, charset: str = "utf-8") -> None:
        self.head = ""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # BaseHTTPRequestHandler's name
                if self.path.startswith("/favicon"):
                    self.send_error(404)
                    return
                body = (
                    f"<!doctype html><html><head><title>Spring shoes</title>{shop.head}"
                    "</head><body><h1>Shoes</h1></body></html>"
                ).encode(charset)
                self.send_response(200)
                self.send_header("Content-Type", f"text/html; charset={charset}")
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
        match = re.search(r"```html\n<script>\n(.*?)</script>\n```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
        assert match, "docs/tracker.md must show the snippet in an html code block"
        snippet = match.group(1).replace("https://seamline.example.com", seamline_url).replace("WRITE_KEY", write_key)
        self.head = (
            f"<script>\n{snippet}</script>\n"
            f'<script src="{seamline_url}/webchat/widget.js" data-write-key="{write_key}" async></script>'
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    """The agent side, through the inbox API with an admin key."""

    def __init__(self, client: httpx.Client, page, key: str) -> None:
        self.client, self.page, self.key = client, page, key

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.client.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else {}

    def agent(self, name: str, status: str = "online") -> dict:
        slug = name.lower().replace(" ", ".")
        agent = self.call("POST", "/v1/inbox/agents",
                          json={"name": name, "email": f"{slug}@shop.example", "skills": [], "capacity": 5})
        self.call("POST", f"/v1/inbox/agents/{agent['id']}/status", json={"status": status})
        return agent

    def conversation(self, conversation_id: int) -> dict:
        return self.call("GET", f"/v1/inbox/conversations/{conversation_id}")

    def conversations(self, **query) -> list[dict]:
        return self.call("GET", "/v1/inbox/conversations", params=query)["items"]

    def customer(self, **identifier) -> dict:
        return self.call("GET", "/v1/customers/lookup", params=identifier)

    def wait(self, fetch: Callable[[], object], done: Callable[[object], bool], timeout: float = 8) -> object:
        """Polls `fetch()` until `done(result)`, waiting through Playwright (whose sync API runs its
        handlers only while one of its calls is in progress)."""
        deadline = time.monotonic() + timeout
        while not done(result := fetch()):
            assert time.monotonic() < deadline, f"timed out: {json.dumps(result, default=str)[:2000]}"
            self.page.wait_for_timeout(100)
        return result

    @contextlib.contextmanager
    def console(self, agent_id: int, conversation_id: int) -> Iterator[Console]:
        """An agent console's WebSocket (`/v1/inbox/ws`), following the conversation."""
        url = f"{str(self.client.base_url).replace('http', 'ws', 1)}/v1/inbox/ws?key={self.key}&agent_id={agent_id}"
        with connect(url, open_timeout=5) as ws:
            console = Console(ws)
            console.expect(lambda f: f["type"] == "ready")
            ws.send(json.dumps({"type": "watch", "conversation_id": conversation_id}))
            yield console

    def only_conversation(self) -> dict:
        items = self.wait(lambda: self.conversations(), lambda items: len(items) == 1)
        return self.conversation(items[0]["id"])


class Console:
    def __init__(self, ws) -> None:
        self.ws = ws

    def expect(self, match: Callable[[dict], bool], timeout: float = 8) -> dict:
        """The next frame that matches, skipping others (the browser runs on while this waits)."""
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            try:
                frame = json.loads(self.ws.recv(timeout=0.1))
            except TimeoutError:
                continue
            if match(frame):
                return frame
            seen.append(frame)
        raise AssertionError(f"no such frame; seen: {json.dumps(seen)[:2000]}")


@pytest.fixture
def setup(request, database, seamline_url, browser):
    """A tracking source on the live server, the shop's pages using its write key, a fresh browser
    context and the inbox API. English on a UTF-8 site, unless a test asks otherwise with
    `@pytest.mark.parametrize("setup", [{"locale": ..., "charset": ...}], indirect=True)`."""
    options = {"locale": "en-US", "charset": "utf-8", **getattr(request, "param", {})}
    shop = Shop(options["charset"])
    with database.write() as session:
        _source, write_key = events_service.create_source(session, name="Website", channel="web")
    shop.install(seamline_url, write_key)
    key = make_key(database, Scope.admin)
    context = browser.new_context(locale=options["locale"])
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    with httpx.Client(base_url=seamline_url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        yield {"inbox": Inbox(client, page, key), "page": page, "shop": shop, "url": seamline_url}
    context.close()
    shop.close()
    assert page_errors == []


def open_chat(page) -> None:
    """Clicks the launcher, unless the panel is open already (it stays open across the tab's pages)."""
    page.locator("[data-sl=launcher]").wait_for(timeout=TIMEOUT)  # built, and reopened if it was open
    if page.locator("[data-sl=panel]").is_hidden():
        page.locator("[data-sl=launcher]").click()
    page.locator("[data-sl=panel]").wait_for(state="visible", timeout=TIMEOUT)


def send(page, text: str) -> None:
    page.locator("[data-sl=input]").fill(text)
    page.locator("[data-sl=send]").click()
    stored = page.locator("[data-sl=message][data-direction=in]:not(.pending)", has_text=text)
    stored.wait_for(timeout=TIMEOUT)


def shown(page, selector: str, text: str | None = None):
    locator = page.locator(selector, has_text=text) if text else page.locator(selector)
    locator.first.wait_for(state="visible", timeout=TIMEOUT)
    return locator


def texts(conversation: dict) -> list[str]:
    return [m["text"] for m in conversation["messages"] if m.get("kind", "message") == "message"]


def png(size: int = 8) -> bytes:
    """A valid grey size x size PNG, about 70 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_visitor_chats_with_an_agent_in_real_time(setup):
    inbox, page, shop = setup["inbox"], setup["page"], setup["shop"]
    # Size questions need an agent with the "sizes" skill; the one online has none: the visitor queues.
    inbox.call("POST", "/v1/inbox/routing-rules", json={"name": "Sizes", "pattern": r"\bsize", "skill": "sizes"})
    agent = inbox.agent("Olga Petrova")
    script = inbox.client.get("/webchat/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
    page.goto(f"{shop.url}/shoes")
    assert page.locator("[data-sl=panel]").is_hidden()
    open_chat(page)
    send(page, "Hello! Do you have these in size 38?")

    conversation = inbox.only_conversation()
    assert conversation["channel"] == "webchat" and conversation["assignee_id"] is None
    assert texts(conversation) == ["Hello! Do you have these in size 38?"]
    assert conversation["messages"][0]["direction"] == "in"
    # The anonymous id is the tracker's: the conversation's customer is the tracker's visitor.
    anonymous_id = page.evaluate("seamline.anonymousId()")
    assert inbox.customer(anonymous_id=anonymous_id)["id"] == conversation["customer_id"]
    shown(page, "[data-sl=queue]", "You are number 1 in the queue")

    # The agent types, then answers: both reach the open widget without a reload.
    inbox.call("POST", f"/v1/inbox/conversations/{conversation['id']}/typing",
               json={"agent_id": agent["id"], "typing": True})
    shown(page, "[data-sl=typing]", "Agent is typing…")
    reply = inbox.call("POST", f"/v1/inbox/conversations/{conversation['id']}/messages",
                       json={"text": "Yes, we do!", "agent_id": agent["id"]})
    answer = shown(page, f"[data-sl=message][data-id='{reply['id']}']", "Yes, we do!")
    assert answer.get_attribute("data-direction") == "out" and "Olga" in answer.inner_text()
    assert page.locator("[data-sl=typing]").is_hidden()
    page.locator("[data-sl=queue]").wait_for(state="hidden", timeout=TIMEOUT)  # Olga took it by answering

    # The visitor's typing shows in the agent's console: on while typing, off once sent.
    with inbox.console(agent["id"], conversation["id"]) as console:
        page.locator("[data-sl=input]").press_sequentially("Great", delay=20)
        console.expect(lambda f: f["type"] == "customer_typing" and f["typing"] is True)
        page.locator("[data-sl=send]").click()
        console.expect(lambda f: f["type"] == "customer_typing" and f["typing"] is False)

    # The answer to a send is lost: the widget sends again with the same clientMessageId, and the
    # server answers with the message it stored the first time.
    posted: list[str] = []

    def lose_first_answer(route, request) -> None:
        posted.append(request.post_data_json["clientMessageId"])
        if len(posted) == 1:
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(f"{setup['url']}/v1/webchat/messages", lose_first_answer)
    stored = page.evaluate("seamlineChat.send('Is delivery free?')")  # the host page's API; waits for the retry
    page.unroute(f"{setup['url']}/v1/webchat/messages")
    assert len(posted) == 2 and posted[0] == posted[1]
    assert stored["text"] == "Is delivery free?" and stored["direction"] == "in" and stored["kind"] == "message"
    messages = inbox.conversation(conversation["id"])["messages"]
    assert [m["id"] for m in messages if m["text"] == "Is delivery free?"] == [stored["id"]]
    assert page.locator("[data-sl=message]", has_text="Is delivery free?").count() == 1
    assert page.locator("[data-sl=message].pending").count() == 0

    # The connection drops; a reply meanwhile is fetched once the widget has reconnected.
    sockets: list = []

    def relay(ws) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/v1/webchat/ws"), relay)
    page.reload()
    shown(page, "[data-sl=message]", "Yes, we do!")  # the stored token restores the conversation
    inbox.wait(lambda: len(sockets), bool)
    sockets[0].close()
    late = inbox.call("POST", f"/v1/inbox/conversations/{conversation['id']}/messages",
                      json={"text": "Anything else?", "agent_id": agent["id"]})
    shown(page, f"[data-sl=message][data-id='{late['id']}']", "Anything else?")
    inbox.wait(lambda: len(sockets), lambda n: n >= 2, timeout=20)  # it reconnected (after its backoff; a slow machine is slow)
    assert page.locator("[data-sl=message]").count() == 5  # each message once

    # Resolved: the widget asks the survey's question; the score is stored.
    inbox.call("POST", f"/v1/inbox/conversations/{conversation['id']}/status",
               json={"status": "resolved", "agent_id": agent["id"]})
    shown(page, "[data-sl=score][data-score='5']")  # asked over the socket
    page.reload()  # a page loaded after the question still asks it (pendingSurvey in the session's state)
    page.locator("[data-sl=score][data-score='5']").click()
    shown(page, "[data-sl=survey-thanks]")
    (survey,) = inbox.call("GET", "/v1/inbox/surveys", params={"conversation_id": conversation["id"]})["items"]
    assert survey["kind"] == "csat" and survey["score"] == 5 and survey["channel"] == "webchat"


@pytest.mark.parametrize("setup", [{"locale": "ru-RU", "charset": "windows-1251"}], indirect=True)
def test_chat_started_before_login_joins_the_profile(setup):
    """In Russian (the browser's language), on a site whose pages are windows-1251, as many are."""
    inbox, page, shop = setup["inbox"], setup["page"], setup["shop"]
    inbox.agent("Olga Petrova")
    page.goto(f"{shop.url}/shoes")
    open_chat(page)
    send(page, "Where is my order?")
    anonymous = inbox.only_conversation()
    assert page.evaluate("localStorage.getItem('sl_chat_token')")

    sessions: list[dict] = []

    def session_opened(request) -> None:
        if request.method == "POST" and request.url.endswith("/v1/webchat/sessions"):
            sessions.append(request.post_data_json)

    page.on("request", session_opened)
    # The visitor logs in on this page: the next message opens a session with the user id first.
    assert page.evaluate("async () => { seamline.identify('user-42'); return await seamline.flush(); }") is True
    send(page, "It is order 1001")
    assert [s.get("userId") for s in sessions] == ["user-42"]
    assert sessions[0]["anonymousId"] == page.evaluate("seamline.anonymousId()")
    # ... and on the next pages the history is there, still one conversation.
    page.reload()
    open_chat(page)
    shown(page, "[data-sl=message]", "Where is my order?")
    assert page.locator("[data-sl=message]").count() == 2
    assert sessions[-1]["userId"] == "user-42"

    conversation = inbox.only_conversation()
    assert conversation["id"] == anonymous["id"]
    assert texts(conversation) == ["Where is my order?", "It is order 1001"]
    profile = inbox.customer(user_id="user-42")
    assert conversation["customer_id"] == profile["id"]

    # Russian, and readable on a windows-1251 page: the server must serve widget.js as UTF-8.
    assert page.locator("[data-sl=input]").get_attribute("placeholder") == "Напишите сообщение…"
    assert page.locator("[data-sl=panel] header").inner_text() == "Напишите нам"


@pytest.mark.parametrize("settings", [{"inbox_attachment_max_bytes": 1024}], indirect=True)
def test_visitor_sends_files(setup):
    inbox, page, shop = setup["inbox"], setup["page"], setup["shop"]
    inbox.agent("Olga Petrova")
    page.goto(f"{shop.url}/shoes")
    open_chat(page)
    image = png()
    page.locator("[data-sl=file]").set_input_files(files=[{"name": "shoe.png", "mimeType": "image/png", "buffer": image}])
    link = shown(page, "[data-sl=message][data-direction=in]:not(.pending) [data-sl=attachment]", "shoe.png")

    conversation = inbox.only_conversation()
    (message,) = conversation["messages"]
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "shoe.png" and attachment["size"] == len(image)
    assert attachment["content_type"] == "image/png"
    assert link.get_attribute("data-id") == str(attachment["id"])
    download = httpx.get(link.get_attribute("href"), timeout=10)  # the link works on its own (no header)
    assert download.status_code == 200 and download.content == image

    # Over the server's limit (1 KiB here): the server's message is shown, nothing is sent.
    with page.expect_response(lambda r: r.url.endswith("/v1/webchat/attachments") and r.request.method == "POST") as refused:
        page.locator("[data-sl=file]").set_input_files(
            files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 4096}]
        )
    error = refused.value.json()["error"]
    assert refused.value.status == 413 and error["code"] == "attachment_too_large"
    shown(page, "[data-sl=error]", error["message"])
    assert len(inbox.conversation(conversation["id"])["messages"]) == 1


def test_no_agent_online_asks_for_an_email(setup):
    inbox, page, shop = setup["inbox"], setup["page"], setup["shop"]
    inbox.agent("Olga Petrova", status="offline")
    page.goto(f"{shop.url}/shoes")
    open_chat(page)
    shown(page, "[data-sl=offline]", "No one is online right now — leave your email and we'll answer there")
    shown(page, "[data-sl=email-form]")
    send(page, "Can I return shoes after 30 days?")

    page.locator("[data-sl=email-input]").fill("not-an-email@")
    page.locator("[data-sl=email-input]").evaluate("input => input.type = 'text'")  # past the browser's check
    with page.expect_response(lambda r: r.url.endswith("/v1/webchat/email")) as refused:
        page.locator("[data-sl=email-submit]").click()
    assert refused.value.status == 422
    shown(page, "[data-sl=email-error]", refused.value.json()["error"]["message"])

    page.locator("[data-sl=email-input]").fill("anna@example.com")
    page.locator("[data-sl=email-submit]").click()
    shown(page, "[data-sl=email-note]", "anna@example.com")
    assert page.locator("[data-sl=email-form]").is_hidden()

    conversation = inbox.only_conversation()
    assert conversation["reply_channel"] == "email"
    profile = inbox.customer(email="anna@example.com")
    assert profile["id"] == conversation["customer_id"]
    page.reload()
    open_chat(page)  # the server remembers the email
    shown(page, "[data-sl=email-note]", "anna@example.com")
    assert page.locator("[data-sl=email-form]").is_hidden()
