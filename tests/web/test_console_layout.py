"""The console's frame through HTTP (issue 18, item 10): the WebSocket is asked for only where the
inbox's notices are wanted (never on the login page, never for a role without the inbox, whose
socket is told 4401 so the page stops retrying), the marketer's menu leads to the loyalty rules,
and channel icons are inline SVG, not emoji that need an emoji font. Layout in a browser:
test_layout_browser.py."""

from __future__ import annotations

import re

import pytest
from starlette.websockets import WebSocketDisconnect

#: Pictographs and symbols that only an emoji font draws (the console shows none of them).
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u26FF\u2700-\u27BF\u2B00-\u2BFF\uFE0F]")
LIVE = 'data-live-socket="/console/ws"'


def test_the_login_page_asks_for_no_websocket(client):
    page = client.get("/console/login")
    assert page.status_code == 200
    assert "data-live-socket" not in page.text
    script = client.get("/console/static/console.js").text
    assert "dataset.liveSocket" in script and "4401" in script  # no attribute, no socket; refused: no retries


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_roles_with_the_inbox_get_the_live_socket(client, staff_client, role):
    staff_client(role)
    for path in ("/console/dashboard", "/console/customers"):
        assert LIVE in client.get(path).text, path
    with client.websocket_connect("/console/ws") as socket:  # the sign-in cookie goes with it
        assert socket.receive_json()["type"] == "ready"


@pytest.mark.parametrize(("role", "extra"), [("marketer", {}), ("clerk", {"store": "store-1"})])
def test_roles_without_the_inbox_open_no_socket_and_are_told_why(client, staff_client, role, extra):
    staff_client(role, **extra)
    page = client.get("/console/customers")
    assert page.status_code == 200 and "data-live-socket" not in page.text
    # Asked anyway: accepted only to close with 4401, which console.js does not retry.
    with client.websocket_connect("/console/ws") as socket:
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == 4401


def test_the_signed_out_socket_is_told_4401(client):
    with client.websocket_connect("/console/ws") as socket:
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == 4401


def test_a_marketer_finds_the_loyalty_rules_in_the_menu(client, staff_client):
    staff_client("marketer", locale="ru")
    menu = client.get("/console/dashboard").text.split("</nav>")[0]
    link = re.search(r'<a href="(/console/settings\?tab=loyalty)"[^>]*data-test="nav-loyalty-rules">([^<]+)</a>', menu)
    assert link, menu
    assert link.group(2) == "Правила лояльности"
    rules = client.get(link.group(1))
    assert rules.status_code == 200
    assert 'aria-current="page" data-test="tab-loyalty"' in rules.text
    assert 'data-test="nav-loyalty-rules"' in rules.text.split("</nav>")[0]  # the entry is highlighted on its page
    assert re.search(r'aria-current="page" data-test="nav-loyalty-rules"', rules.text)


def test_an_admin_has_the_settings_not_a_second_loyalty_entry(client, staff_client):
    staff_client("admin")
    menu = client.get("/console/dashboard").text.split("</nav>")[0]
    assert 'href="/console/settings"' in menu and "nav-loyalty-rules" not in menu


def test_channel_icons_are_svg_not_emoji(client, staff_client, admin_headers):
    made = client.post("/v1/customers", headers=admin_headers, json={
        "identifiers": [{"type": "email", "value": "anna@example.com"}], "source": "web"})
    assert made.status_code in (200, 201), made.text
    staff_client("agent", locale="ru")
    for path in ("/console/customers?q=anna@example.com", f"/console/customers/{made.json()['customer']['id']}",
                 "/console/dashboard"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert not EMOJI.search(page.text), (path, EMOJI.findall(page.text))
    results = client.get("/console/customers?q=anna@example.com").text
    assert re.search(r'<svg class="icon"[^>]*aria-hidden="true"', results)
