"""Provider webhooks are answered once what they sent is stored; the `inbox.inbound` job turns
the stored parts into messages in batches, in the order they came, one batch at a time in the
cluster, and a part that fails is set aside without holding up the rest of its batch. Telegram
is the provider (its documented update format)."""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, text

from seamline.app import create_app
from seamline.core.queue import TaskRegistry, run_due
from seamline.core.queue.models import Job
from seamline.inbox import delivery, realtime, service
from seamline.inbox.adapters import adapter_for
from seamline.inbox.models import InboxConversation, InboxInbound, InboxMessage
from tests.inbox.conftest import process_inbound

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
