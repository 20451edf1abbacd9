"""The inbox beside the best agent tools (issue 18, item 11), through HTTP: each conversation in the
list says whose it is in words (in the queue, mine, assigned to whom), shows its last message and
how long the customer has waited; the list is searched and filtered by channel; taking a
conversation says "taken", not "transferred", and the load counter follows at once; an admin who
is not an agent lands on the dashboard and sees the queue first. In a browser:
test_console_browser.py (a new message shows up, the sides of a thread)."""

from __future__ import annotations

import re

from tests.inbox.conftest import Visitor
from tests.web.conftest import PASSWORD, add_staff, sign_in


def _htmx(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def _items(html: str) -> dict[int, str]:
    """The list's conversations: id -> the item's HTML."""
    found = re.finditer(r'<a href="/console/inbox/(\d+)\?[^"]*"[^>]*class="conv".*?</a>', html, re.S)
    return {int(m.group(1)): m.group(0) for m in found}


def test_the_list_names_each_state_and_shows_the_last_message_and_the_wait(client, database, write_key):
    _, maria = add_staff(database, email="maria@example.com", role="agent", locale="ru", capacity=1)
    add_staff(database, email="ivan@example.com", role="agent", locale="ru", capacity=1)
    csrf_ivan = sign_in(client, "ivan@example.com")
    assert client.post("/console/inbox/availability", data={"status": "online"}, headers=_htmx(csrf_ivan)).status_code == 204
    Visitor(client, write_key).say("Первый: где мой заказ?")  # routed to Ivan (the only one online)
    csrf = sign_in(client, "maria@example.com")
    assert client.post("/console/inbox/availability", data={"status": "online"}, headers=_htmx(csrf)).status_code == 204
    Visitor(client, write_key).say("Второй вопрос про возврат")  # routed to Maria
    Visitor(client, write_key).say("Третий: " + "очень длинный вопрос " * 10)  # both full: it waits in the queue

    items = _items(client.get("/console/inbox?view=open").text)
    assert len(items) == 3
    first, second, third = (items[i] for i in sorted(items))
    assert 'data-state="assigned"' in first and "У оператора Ivan" in first
    assert 'data-state="mine"' in second and ">Мой<" in second
    assert 'data-state="queued"' in third and "В очереди" in third
    # The last message, shortened, and how long the customer has waited for an answer.
    assert "Второй вопрос про возврат" in second and "очень длинный вопрос" in third and "…" in third
    assert re.search(r'data-test="waiting"[^>]*>ждёт 1 мин<', third)
    # An agent's answer: the preview says who wrote it, and the customer no longer waits.
    conversation_id = sorted(items)[1]
    page = client.get(f"/console/inbox/{conversation_id}")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    assert "Назначен вам" in page.text
    sent = client.post(f"/console/inbox/{conversation_id}/reply", data={"text": "Сейчас проверю.", "nonce": nonce},
                       headers=_htmx(csrf))
    assert sent.status_code == 200, sent.text
    mine = _items(client.get("/console/inbox?view=mine").text)[conversation_id]
    assert re.search(r"Вы:</span>\s*Сейчас проверю\.", mine) and 'data-test="waiting"' not in mine


def test_search_and_channel_filter(client, database, write_key, admin_headers):
    add_staff(database, email="maria@example.com", role="agent", locale="ru")
    csrf = sign_in(client, "maria@example.com")
    anna = Visitor(client, write_key)
    anna.say("Хочу вернуть крем")
    boris = Visitor(client, write_key)
    boris.say("Где курьер?")
    # Anna becomes someone with a name and a phone: the search finds her by either.
    known = client.post("/v1/customers", headers=admin_headers, json={
        "identifiers": [{"type": "anonymous_id", "value": anna.anonymous_id}, {"type": "phone", "value": "+79161234567"}],
        "traits": {"first_name": "Анна", "last_name": "Петрова"}})
    assert known.status_code in (200, 201), known.text

    def listed(**params) -> set[str]:
        page = client.get("/console/inbox/list", params={"view": "queue", **params}, headers=_htmx(csrf))
        assert page.status_code == 200, page.text
        return {m for m in ("Хочу вернуть крем", "Где курьер?") if m in page.text}

    assert listed() == {"Хочу вернуть крем", "Где курьер?"}
    assert listed(q="курьер") == {"Где курьер?"}  # words of a message
    assert listed(q="Петрова") == {"Хочу вернуть крем"}  # the customer's name
    assert listed(q="8 916 123-45-67") == {"Хочу вернуть крем"}  # their phone, as typed
    assert listed(channel="webchat") == {"Хочу вернуть крем", "Где курьер?"}
    assert listed(channel="telegram") == set()
    assert listed(channel="no-such-channel") == {"Хочу вернуть крем", "Где курьер?"}  # ignored
    # The page keeps the search in its form, its views' links and the list's refresh.
    page = client.get("/console/inbox", params={"view": "queue", "q": "курьер", "channel": "webchat"}).text
    assert 'data-test="inbox-search"' in page and 'value="курьер"' in page
    assert re.search(r'<option value="webchat" selected>Веб-чат</option>', page)
    assert 'href="/console/inbox?view=mine&amp;q=%D0%BA%D1%83%D1%80%D1%8C%D0%B5%D1%80&amp;channel=webchat"' in page
    assert 'hx-get="/console/inbox/list?view=queue&amp;q=%D0%BA%D1%83%D1%80%D1%8C%D0%B5%D1%80&amp;channel=webchat"' in page


def test_taking_says_taken_and_the_load_counter_follows_at_once(client, database, write_key):
    _, agent_id = add_staff(database, email="maria@example.com", role="agent", locale="ru", capacity=4)
    csrf = sign_in(client, "maria@example.com")
    assert client.post("/console/inbox/availability", data={"status": "online"}, headers=_htmx(csrf)).status_code == 204
    for n in range(5):
        Visitor(client, write_key).say(f"Вопрос {n}")
    page = client.get("/console/inbox").text
    assert re.search(r'data-test="my-load"[^>]*>Нагрузка 4/4<', page)  # four routed to her, the fifth waits
    queued = list(_items(client.get("/console/inbox?view=queue").text))
    assert len(queued) == 1
    taken = client.post(f"/console/inbox/{queued[0]}/take", headers=_htmx(csrf))
    assert taken.status_code == 200, taken.text
    # The answer carries the new load out of band: "Нагрузка 5/4" at once, not after a reload.
    counter = re.search(r'<span id="my-load"[^>]*hx-swap-oob="true"[^>]*>([^<]+)</span>', taken.text)
    assert counter and counter.group(1) == "Нагрузка 5/4"
    # The thread says she took it (not "transferred to").
    assert "Взят в работу оператором Maria" in taken.text and "Передан" not in taken.text
    # A list refresh (what the live notice triggers) brings the counter too.
    refreshed = client.get("/console/inbox/list?view=mine", headers=_htmx(csrf)).text
    assert re.search(r'<span id="my-load"[^>]*hx-swap-oob="true"[^>]*>Нагрузка 5/4<', refreshed)
    assert len(_items(refreshed)) == 5
    # The API's view of the same message: key and English text.
    thread = client.get(f"/console/inbox/{queued[0]}/thread").text
    assert "Взят в работу оператором Maria" in thread


def test_a_transfer_to_someone_else_is_still_a_transfer(client, database, write_key):
    add_staff(database, email="ivan@example.com", role="agent", locale="ru")
    _, _maria = add_staff(database, email="maria@example.com", role="agent", locale="ru")
    csrf = sign_in(client, "maria@example.com")
    Visitor(client, write_key).say("Вопрос")
    conversation_id = list(_items(client.get("/console/inbox?view=queue").text))[0]
    ivan = re.search(r'<option value="(agent:\d+)">Ivan', client.get(f"/console/inbox/{conversation_id}").text).group(1)
    moved = client.post(f"/console/inbox/{conversation_id}/transfer", data={"to": ivan}, headers=_htmx(csrf))
    assert moved.status_code == 200 and "Передан оператору Ivan" in moved.text and "Взят в работу" not in moved.text


def test_an_admin_who_is_not_an_agent_lands_on_the_dashboard_and_sees_the_queue(client, database, write_key):
    add_staff(database, email="boss@example.com", role="admin", locale="ru")
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    signed = client.post("/console/login", data={"email": "boss@example.com", "password": PASSWORD, "csrf": token},
                         follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/dashboard"
    assert client.get("/console/").headers.get("location", "/console/dashboard") == "/console/dashboard"
    Visitor(client, write_key).say("Есть кто-нибудь?")
    inbox = client.get("/console/inbox").text
    assert 'data-test="view-mine"' not in inbox  # nothing is ever "mine" for them
    assert re.search(r'aria-current="page" data-test="view-queue"', inbox)
    assert "Есть кто-нибудь?" in inbox and 'data-test="not-an-agent"' in inbox
    assert 'data-test="take"' not in client.get(f"/console/inbox/{list(_items(inbox))[0]}").text
    # An agent still lands in the inbox, a clerk at the store screen.
    add_staff(database, email="maria@example.com", role="agent")
    sign_in(client, "maria@example.com")
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    again = client.post("/console/login", data={"email": "maria@example.com", "password": PASSWORD, "csrf": token},
                        follow_redirects=False)
    assert again.headers["location"] == "/console/inbox"
