"""Provider webhooks are answered once what they sent is stored; the `inbox.inbound` job turns
the stored parts into messages in batches, in the order they came, one batch at a time in the
cluster, and a part that fails is set aside without holding up the rest of its batch. Telegram
is the provider (its documented update format)."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, text

from seamline.app import create_app
from seamline.core.queue import TaskRegistry, run_due
from seamline.core.queue.models import Job
from seamline.core.time import utcnow
from seamline.inbox import delivery, realtime, service
from seamline.inbox.adapters import adapter_for
from seamline.inbox.models import InboxConversation, InboxInbound, InboxMessage
from tests.inbox.conftest import create_agent, process_inbound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telegram"
SECRET = "webhook-secret-1"


@pytest.fixture
def client(settings, database):
    tg = settings.model_copy(update={"inbox_telegram_webhook_secret": SecretStr(SECRET), "inbox_inbound_batch": 2})
    with TestClient(create_app(tg, database=database)) as test_client:
        yield test_client


def update(n: int, words: str, chat: int | None = None) -> dict:
    """The documented text message, as the n-th one of its chat (another person's with `chat`)."""
    body = copy.deepcopy(json.loads((FIXTURES / "text_message.json").read_text()))
    body["update_id"] += n + (chat or 0) * 1000
    body["message"]["message_id"] += n
    body["message"]["text"] = words
    if chat is not None:
        body["message"]["from"]["id"] = body["message"]["chat"]["id"] = chat
    return body


def lane(body: dict) -> int:
    return delivery.lane_of(adapter_for("telegram"), json.dumps(body).encode(), 4)


def post(client, body: dict) -> dict:
    response = client.post("/v1/channels/telegram/webhook", json=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert response.status_code == 200, response.text
    (stored,) = response.json()["stored"]
    return stored


def inbound_jobs(database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.task == delivery.INBOUND.name))


def customer_texts(database) -> list[str]:
    with database.read() as session:
        return list(session.scalars(select(InboxMessage.text).where(InboxMessage.direction == "in").order_by(InboxMessage.id)))


def statuses(database) -> list[str]:
    with database.read() as session:
        return list(session.scalars(select(InboxInbound.status).order_by(InboxInbound.id)))


def test_the_provider_is_answered_once_its_message_is_stored_and_the_job_processes_it_in_order(client, database, settings):
    words = ["Здравствуйте!", "Заказ 1042", "Можно забрать сегодня?", "Спасибо"]
    for n, text_ in enumerate(words):
        stored = post(client, update(n, text_))
        assert stored == {"duplicate": False, "status": "received", "message_id": None, "error": None}
    assert post(client, update(0, words[0]))["duplicate"] is True  # Telegram sent it again: still one row
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(InboxConversation)) == 0  # answered before processing
    assert statuses(database) == ["received"] * 4 and inbound_jobs(database) == 1  # one queued job stands for them all

    tasks = TaskRegistry()
    delivery.register_tasks(tasks, database, client.app.state.settings, client.app.state.identifier_rules)
    assert run_due(database, tasks, "inbound") == 1  # it takes every batch waiting (two of 2)
    assert customer_texts(database) == words and statuses(database) == ["processed"] * 4
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(InboxConversation)) == 1
    assert inbound_jobs(database) == 0
    post(client, update(9, "Ещё вопрос"))  # after a job started, the next webhook queues the next job
    assert inbound_jobs(database) == 1 and run_due(database, tasks, "inbound") == 1
    assert customer_texts(database)[-1] == "Ещё вопрос"


def test_a_part_that_fails_is_set_aside_and_the_rest_of_its_batch_goes_on(client, database, monkeypatch):
    publish = service.publish_message

    def publish_then_fail(session, conversation, message, **kwargs):  # fails after telling the watchers
        view = publish(session, conversation, message, **kwargs)
        if message.text == "boom":
            raise RuntimeError("the adapter could not read this one")
        return view

    told: list[str] = []
    dispatch = realtime.HUB.dispatch
    monkeypatch.setattr(service, "publish_message", publish_then_fail)
    monkeypatch.setattr(realtime.HUB, "dispatch", lambda topics, payload: (
        told.append((payload.get("message") or {}).get("text")), dispatch(topics, payload)))
    for n, text_ in enumerate(["first", "boom", "third"]):
        post(client, update(n, text_))
    assert process_inbound(client) == 3
    assert statuses(database) == ["processed", "failed", "processed"]
    assert customer_texts(database) == ["first", "third"]  # the failed one left nothing behind
    with database.read() as session:
        failed = session.scalar(select(InboxInbound).where(InboxInbound.status == "failed"))
    assert "could not read this one" in failed.error and failed.attempts == 1
    deadline = time.monotonic() + 5  # on PostgreSQL the notices come back through LISTEN
    while not {"first", "third"} <= set(told) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert {"first", "third"} <= set(told) and "boom" not in told  # nobody was told of what was rolled back

    monkeypatch.setattr(service, "publish_message", publish)
    assert delivery.retry_inbound(database, rules=client.app.state.identifier_rules, settings=client.app.state.settings,
                                  stale_seconds=0) == 1
    assert customer_texts(database) == ["first", "third", "boom"]


def test_a_part_left_without_its_job_is_handed_back_to_its_lane(client, database):
    """A crash between storing and processing (or a lane beyond a lowered lane count): the inbox
    job gives the lane its job back, and the lane processes the part in its order."""
    post(client, update(0, "Здравствуйте!"))
    with database.write() as session:
        session.execute(Job.__table__.delete().where(Job.task == delivery.INBOUND.name))  # as if it was lost
    state = client.app.state
    assert delivery.retry_inbound(database, rules=state.identifier_rules, settings=state.settings) == 0  # not stale yet
    assert delivery.retry_inbound(database, rules=state.identifier_rules, settings=state.settings, stale_seconds=0) == 1
    assert statuses(database) == ["received"] and inbound_jobs(database) == 1  # handed to its lane, not processed aside
    tasks = TaskRegistry()
    delivery.register_tasks(tasks, database, state.settings, state.identifier_rules)
    assert run_due(database, tasks, "inbound") == 1 and customer_texts(database) == ["Здравствуйте!"]


def test_one_batch_at_a_time_in_the_cluster(client, database):
    if database.is_sqlite:
        pytest.skip("SQLite has one writer: its write transaction is the turn")
    anna = update(0, "Здравствуйте!")
    other_chat = next(c for c in range(222222222, 222222300) if lane(update(0, "", c)) != lane(anna))
    post(client, anna)
    post(client, update(0, "Добрый день", other_chat))
    state = client.app.state
    done: list[int] = []
    with database.write() as other:  # another worker is processing a batch of Anna's lane
        other.execute(text("SELECT pg_advisory_xact_lock(:kind, :lane)"), {"kind": delivery._PROCESSING_LOCK, "lane": lane(anna)})
        waiting = threading.Thread(target=lambda: done.append(
            delivery.process_inbound(database, rules=state.identifier_rules, settings=state.settings, lane=lane(anna))))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and statuses(database) == ["received", "received"]  # it waits for its turn
        assert delivery.process_inbound(database, rules=state.identifier_rules, settings=state.settings,
                                        lane=lane(update(0, "", other_chat))) == 1  # another lane goes on meanwhile
        assert statuses(database) == ["received", "processed"]
    waiting.join(10)
    assert done == [1] and statuses(database) == ["processed", "processed"]


def test_a_coalesced_job_waits_for_the_enqueue_it_stands_for(database):
    """The job holding the key is locked by an enqueue until that commits: a job giving its key
    up as it starts cannot look before what the enqueue's transaction wrote is there."""
    from seamline.core.queue import service as queue_service

    with database.write() as session:
        first = delivery.INBOUND.enqueue(session, dedupe_key="k", coalesce=True)
    for _ in range(8):  # past psycopg's prepare threshold (5): a prepared statement must still find the index
        with database.write() as session:
            assert delivery.INBOUND.enqueue(session, dedupe_key="k", coalesce=True) == first  # it stands for these too
    if database.is_sqlite:
        return  # one writer: the release cannot run while the enqueue's transaction is open
    released = threading.Event()
    with database.write() as session:
        assert delivery.INBOUND.enqueue(session, dedupe_key="k", coalesce=True) == first
        releasing = threading.Thread(target=lambda: (database.run_write(lambda s: queue_service.release_key(s, first)),
                                                     released.set()))
        releasing.start()
        assert not released.wait(0.5)  # the job cannot give its key up (and look) before this commits
    assert released.wait(10)
    with database.write() as session:
        assert delivery.INBOUND.enqueue(session, dedupe_key="k", coalesce=True) != first  # the next job


def test_messages_continuing_assigned_conversations_go_in_together_in_order(client, database, admin_headers, monkeypatch):
    """Anna's conversation is an agent's: her next messages in one batch are processed together
    (`receive_continuing`: one INSERT, no routing) and keep their order; Boris, new, and the
    message Anna sends after a photo (processed on its own) go through `receive`, in order."""
    agent = create_agent(client, admin_headers)
    post(client, update(0, "Здравствуйте!"))
    process_inbound(client)
    one_by_one: list[str] = []
    together: list[list[str]] = []
    receive, receive_continuing = service.receive, service.receive_continuing
    monkeypatch.setattr(service, "receive", lambda session, **kw: (one_by_one.append(kw["inbound"].text), receive(session, **kw))[1])
    monkeypatch.setattr(service, "receive_continuing", lambda session, items: (
        together.append([inbound.text for inbound, _ in items]), receive_continuing(session, items))[1])
    told: list[tuple[list[str], str]] = []
    dispatch = realtime.HUB.dispatch
    monkeypatch.setattr(realtime.HUB, "dispatch", lambda topics, payload: (
        told.append((sorted(topics), (payload.get("message") or {}).get("text"))), dispatch(topics, payload)))

    batch_settings = client.app.state.settings.model_copy(update={"inbox_inbound_batch": 10})
    words = ["Заказ 1042", "Можно забрать сегодня?", "Спасибо"]
    for n, text_ in enumerate(words, start=1):
        post(client, update(n, text_))
    post(client, update(0, "Добрый день", chat=222222222))
    state = client.app.state
    assert delivery.process_inbound_due(database, rules=state.identifier_rules, settings=batch_settings) == 4
    assert together == [words] and one_by_one == ["Добрый день"]
    texts = customer_texts(database)  # Boris may be in another lane, processed before or after
    assert [t for t in texts if t != "Добрый день"] == ["Здравствуйте!", *words] and "Добрый день" in texts
    assert set(statuses(database)) == {"processed"}
    with database.read() as session:
        anna = session.scalar(select(InboxConversation).where(InboxConversation.assignee_id == agent["id"])
                              .order_by(InboxConversation.id).limit(1))
        last = session.scalar(select(InboxMessage).where(InboxMessage.conversation_id == anna.id).order_by(InboxMessage.id.desc()).limit(1))
        linked = dict(session.execute(select(InboxInbound.message_id, InboxMessage.text).join(
            InboxMessage, InboxMessage.id == InboxInbound.message_id)).all())
    assert last.text == "Спасибо" and abs(anna.last_message_at - last.created_at) < timedelta(seconds=1)
    assert anna.awaiting_reply_since is not None
    assert anna.status == "open" and anna.channel_state["telegram"]["provider_ids"][-1] == last.provider_message_id
    assert sorted(linked.values()) == sorted(["Здравствуйте!", *words, "Добрый день"])  # each part points at its message
    deadline = time.monotonic() + 5  # on PostgreSQL the notices come back through LISTEN
    while [t for _, t in told if t in words] != words and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(topics, t) for topics, t in told if t in words] == [
        ([f"agent:{agent['id']}", f"conversation:{anna.id}", f"webchat:{anna.customer_id}"], t) for t in words]

    one_by_one.clear(), together.clear()
    post(client, update(5, "Вот фото"))  # her conversation was resolved meanwhile: this one reopens it on its own ...
    post(client, update(6, "и ещё"))  # ... and the next follows it, in order
    with database.write() as session:
        session.execute(InboxConversation.__table__.update().where(InboxConversation.id == anna.id).values(status="resolved"))
    assert delivery.process_inbound_due(database, rules=state.identifier_rules, settings=batch_settings) == 2
    assert together == [] and one_by_one == ["Вот фото", "и ещё"] and customer_texts(database)[-2:] == ["Вот фото", "и ещё"]


def test_a_sender_held_back_keeps_their_later_messages_behind_them(client, database, admin_headers):
    """`_split` directly: a part that must go on its own (here: with a file) takes its sender's
    later parts with it, while another person's continuations still go together."""
    create_agent(client, admin_headers)
    post(client, update(0, "Здравствуйте!"))
    post(client, update(0, "Добрый день", chat=222222222))
    process_inbound(client)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(InboxConversation).where(
            InboxConversation.assignee_id.is_not(None), InboxConversation.status == "open")) == 2
    telegram = adapter_for("telegram")
    anna_photo, anna_text, boris_text = (telegram.parse(json.dumps(update(n, t, chat)).encode()) for n, t, chat in [
        (1, "фото", None), (2, "Вот", None), (1, "Ещё вопрос", 222222222)])
    anna_photo.attachment_ids = [1]
    rows = [InboxInbound(id=n, channel="telegram", provider_message_id=str(n), payload=b"") for n in (1, 2, 3)]
    with database.write() as session:
        continuing, rest = delivery._split(session, client.app.state.identifier_rules,
                                           list(zip(rows, [anna_photo, anna_text, boris_text], strict=True)))
        assert [row.id for row, _, _ in continuing] == [3] and [row.id for row in rest] == [1, 2]
        _, rest = delivery._split(session, client.app.state.identifier_rules, [(rows[0], None), (rows[1], anna_text)])
        assert [row.id for row in rest] == [1]  # a part that cannot be read holds nobody back: its sender is unknown


def test_a_failing_batch_of_continuations_falls_back_to_one_by_one(client, database, admin_headers, monkeypatch):
    create_agent(client, admin_headers)
    post(client, update(0, "Здравствуйте!"))
    process_inbound(client)

    def fail(session, items):
        session.add(InboxMessage(conversation_id=items[0][1].id, direction="in", kind="message", channel="telegram",
                                 text="half-written", delivery_status="received", meta={}, created_at=utcnow()))
        session.flush()
        raise RuntimeError("a batch that fails halfway")

    monkeypatch.setattr(service, "receive_continuing", fail)
    for n, text_ in enumerate(["Заказ 1042", "Спасибо"], start=1):
        post(client, update(n, text_))
    assert process_inbound(client) == 2
    assert customer_texts(database) == ["Здравствуйте!", "Заказ 1042", "Спасибо"]  # nothing half-written stayed
    assert set(statuses(database)) == {"processed"}


def test_a_lane_is_free_again_when_its_worker_stops_with_an_error(database):
    """The lane's turn is a session-level lock on PostgreSQL: it must not outlive an error."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer: its write transaction is the turn")
    with pytest.raises(RuntimeError), delivery._lane_turn(database, 3):
        with database.write() as other:  # another worker cannot take the lane meanwhile
            assert other.scalar(text("SELECT pg_try_advisory_xact_lock(:kind, 3)"), {"kind": delivery._PROCESSING_LOCK}) is False
        raise RuntimeError("the batch failed")
    with database.write() as other:
        assert other.scalar(text("SELECT pg_try_advisory_xact_lock(:kind, 3)"), {"kind": delivery._PROCESSING_LOCK}) is True
