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


def _conversation_and_nonce(client) -> tuple[int, str]:
    conversation_id = int(re.search(r'data-test="conversation-(\d+)"', client.get("/console/inbox?view=mine").text).group(1))
    page = client.get(f"/console/inbox/{conversation_id}")
    return conversation_id, re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)


def test_the_agent_is_told_the_truth_about_sending(client, database, write_key):
    """A web chat reply is delivered to the page at once: "Отправлено". A reply on a channel that
    is not configured is refused at once (nothing could send it), and nothing is stored."""
    csrf, _ = _agent_signed_in(client, database)
    visitor = Visitor(client, write_key)
    visitor.say("Здравствуйте")
    conversation_id, nonce = _conversation_and_nonce(client)
    hx = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    sent = client.post(f"/console/inbox/{conversation_id}/reply", data={"text": "Добрый день!", "nonce": nonce}, headers=hx)
    assert sent.status_code == 200 and "Отправлено." in sent.text
    assert 'class="msg outbound message"' in sent.text  # the agent's side and colour

    by_email = client.post(f"/console/inbox/{conversation_id}/reply",
                           data={"text": "Ответ письмом", "nonce": nonce + "-2", "channel": "email"}, headers=hx)
    assert by_email.status_code == 422 and 'data-test="flash-error"' in by_email.text
    assert "Отправлено." not in by_email.text and "Ответ письмом" in by_email.text  # the draft is kept
    thread = client.get(f"/console/inbox/{conversation_id}/thread").text
    assert "Ответ письмом" not in thread


def test_a_queued_reply_says_queued_and_a_failed_one_says_why(client, database, settings_for, write_key):
    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from sqlalchemy import select

    from seamline.app import create_app
    from seamline.inbox.models import InboxMessage

    settings = settings_for(database.url, inbox_telegram_bot_token=SecretStr("123:abc"),
                            inbox_telegram_api_base="http://127.0.0.1:9")
    with TestClient(create_app(settings, database=database)) as telegram_client:
        csrf, _ = _agent_signed_in(telegram_client, database)
        Visitor(telegram_client, write_key).say("Напишите мне в Telegram")
        conversation_id, nonce = _conversation_and_nonce(telegram_client)
        with database.write() as session:  # the person is also reachable in Telegram
            from seamline.inbox.models import InboxConversation
            conversation = session.get(InboxConversation, conversation_id)
            conversation.channel_state = {**(conversation.channel_state or {}), "telegram": {"chat_id": "555"}}
        hx = {"X-CSRF-Token": csrf, "HX-Request": "true"}
        queued = telegram_client.post(f"/console/inbox/{conversation_id}/reply",
                                      data={"text": "Пишу в Telegram", "nonce": nonce, "channel": "telegram"}, headers=hx)
        assert queued.status_code == 200, queued.text
        assert "Поставлено в очередь на отправку" in queued.text and "Отправлено." not in queued.text
        assert 'data-status="queued"' in queued.text and "Ожидает отправки" in queued.text
        with database.write() as session:  # the worker gave up: the provider refused it for good
            message = session.scalar(select(InboxMessage).where(InboxMessage.text == "Пишу в Telegram"))
            message.delivery_status, message.error = "failed", "Forbidden: bot was blocked by the user"
        thread = telegram_client.get(f"/console/inbox/{conversation_id}/thread").text
        assert 'data-status="failed"' in thread and "Не доставлено: Forbidden: bot was blocked by the user" in thread
