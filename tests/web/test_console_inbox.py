"""The agent's inbox in the console: queue, take, reply (once), notes, resolve, the 360 panel."""

from __future__ import annotations

import re

from tests.inbox.conftest import Visitor
from tests.web.conftest import add_staff, sign_in


def _agent_signed_in(client, database, *, online: bool = True) -> tuple[str, int]:
    _, agent_id = add_staff(database, email="maria@example.com", role="agent", locale="ru")
    csrf = sign_in(client, "maria@example.com")
    if online:
        assert client.post("/console/inbox/availability", data={"status": "online"}, headers={"X-CSRF-Token": csrf}).status_code == 204
    return csrf, agent_id


def test_a_chat_reaches_the_agent_and_the_reply_is_sent_once(client, database, write_key):
    csrf, _ = _agent_signed_in(client, database)
    visitor = Visitor(client, write_key)
    visitor.say("Можно вернуть один тюбик крема?")
    mine = client.get("/console/inbox?view=mine")
    assert mine.status_code == 200 and "Входящие" in mine.text  # the agent's language
    conversation_id = int(re.search(r'data-test="conversation-(\d+)"', mine.text).group(1))
    page = client.get(f"/console/inbox/{conversation_id}")
    assert "Можно вернуть один тюбик крема?" in page.text and 'data-test="side-panel"' in page.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    for _ in range(2):  # a double submit of the same form
        sent = client.post(f"/console/inbox/{conversation_id}/reply", data={"text": "Да, в любом магазине.", "nonce": nonce},
                           headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
        assert sent.status_code == 200, sent.text
    thread = visitor.client.get("/v1/webchat/messages", headers=visitor.headers).json()
    assert [m["text"] for m in thread["items"] if m["direction"] == "out"] == ["Да, в любом магазине."]


def test_an_empty_reply_is_refused_readably(client, database, write_key):
    csrf, _ = _agent_signed_in(client, database)
    Visitor(client, write_key).say("hello")
    conversation_id = int(re.search(r'data-test="conversation-(\d+)"', client.get("/console/inbox").text).group(1))
    refused = client.post(f"/console/inbox/{conversation_id}/reply", data={"text": "  "}, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert refused.status_code == 422 and 'data-test="flash-error"' in refused.text


def test_queue_take_note_and_resolve(client, database, write_key):
    csrf, agent_id = _agent_signed_in(client, database, online=False)
    Visitor(client, write_key).say("Где мой заказ?")
    queue = client.get("/console/inbox?view=queue")
    conversation_id = int(re.search(r'data-test="conversation-(\d+)"', queue.text).group(1))
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    taken = client.post(f"/console/inbox/{conversation_id}/take", headers=headers)
    assert taken.status_code == 200 and 'data-test="resolve"' in taken.text
    assert f'data-test="conversation-{conversation_id}"' in client.get("/console/inbox/list?view=mine").text
    noted = client.post(f"/console/inbox/{conversation_id}/note", data={"text": "VIP, be nice"}, headers=headers)
    assert 'data-kind="note"' in noted.text
    resolved = client.post(f"/console/inbox/{conversation_id}/status", data={"status": "resolved"}, headers=headers)
    assert 'data-test="reopen"' in resolved.text
    assert f'data-test="conversation-{conversation_id}"' not in client.get("/console/inbox/list?view=mine").text


def test_clerks_and_marketers_have_no_inbox(client, database):
    add_staff(database, email="m@example.com", role="marketer")
    csrf = sign_in(client, "m@example.com")
    assert client.get("/console/inbox").status_code == 403
    assert client.post("/console/inbox/1/reply", data={"text": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 403
