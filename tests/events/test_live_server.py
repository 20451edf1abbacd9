"""Against a real `seamline serve` process: the official Segment Python library, and durability
when the server is killed with SIGKILL in the middle of a load."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest
from segment.analytics import Client
from sqlalchemy import select

from seamline.customers.models import CustomerIdentity
from seamline.devtools.serve import ServerProcess
from seamline.events import service as events_service
from seamline.events.models import EventRecord


@pytest.fixture
def source_key(database) -> str:
    with database.write() as session:
        return events_service.create_source(session, name="Backend", channel="server", server_side=True)[1]


@pytest.fixture
def server(database, tmp_path):
    process = ServerProcess(database.url, log_path=tmp_path / "server.log").start()
    yield process
    process.stop()


def stored(database) -> dict[str, EventRecord]:
    with database.read() as session:
        return {r.message_id: r for r in session.scalars(select(EventRecord))}


def test_the_official_segment_python_library_delivers_unchanged(server, source_key, database):
    errors = []
    client = Client(
        source_key, host=server.base_url, sync_mode=True, max_retries=0,
        on_error=lambda error, _batch: errors.append(error),
    )
    client.identify("anna-1", {"email": "anna@example.com", "first_name": "Анна"}, anonymous_id="cookie-1")
    client.track("anna-1", "Order Completed", {"order_id": "A-1", "revenue": 1990.5, "products": [{"sku": "CREAM-50"}]},
                 context={"campaign": {"source": "newsletter", "name": "spring"}})
    client.page("anna-1", category="Shop", name="Cream", properties={"url": "https://shop.example/p/cream"})
    client.screen("anna-1", name="Cart")
    client.group("anna-1", "company-7", {"plan": "b2b"})
    client.alias("old-anna", "anna-1")  # (previous_id, user_id)
    client.flush()
    assert errors == []

    events = stored(database)
    assert len(events) == 6
    by_type = {e.type: e for e in events.values()}

    track = json.loads(by_type["track"].payload)
    assert track["event"] == "Order Completed"
    assert track["properties"] == {"order_id": "A-1", "revenue": 1990.5, "products": [{"sku": "CREAM-50"}]}
    assert track["context"]["campaign"] == {"source": "newsletter", "name": "spring"}
    assert track["context"]["library"]["name"] == "analytics-python"
    assert track["sentAt"]  # the library's batch sentAt, applied for clock skew
    assert json.loads(by_type["identify"].payload)["traits"]["first_name"] == "Анна"
    assert json.loads(by_type["page"].payload)["category"] == "Shop"
    assert by_type["alias"].user_id == "anna-1"
    # identify and alias fed the identity graph (right after the answer): one profile holds all four identifiers
    deadline = time.monotonic() + 20
    while True:
        with database.read() as session:
            if events_service.identity_work_backlog(session) == 0:
                break
        assert time.monotonic() < deadline, "the identity work of the batch was not applied"
        time.sleep(0.05)
    with database.read() as session:
        holders = session.execute(
            select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.profile_id)
        ).all()
    assert {(t, v) for t, v, _ in holders} == {
        ("user_id", "anna-1"), ("anonymous_id", "cookie-1"), ("email", "anna@example.com"), ("anonymous_id", "old-anna")
    }
    assert len({p for _, _, p in holders}) == 1


def test_a_bad_key_is_refused_to_the_library(server):
    from segment.analytics.request import APIError

    client = Client("sl_nope_nope", host=server.base_url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as refused:
        client.track("u", "E")
    assert refused.value.status == 401


def test_every_acknowledged_event_survives_a_sigkill(server, source_key, database, tmp_path):
    """Writers send batches as fast as they can; the server is killed with SIGKILL mid-load.
    After a restart, every messageId that was answered 200 is there."""
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(base_url=server.base_url, auth=(source_key, ""), timeout=10) as http:
            while not stop.is_set():
                ids = [f"w{n}-{uuid.uuid4()}" for _ in range(50)]
                batch = {"batch": [{"type": "track", "event": "Tap", "userId": f"u{n}-{i % 7}", "messageId": m,
                                    "properties": {"i": i}} for i, m in enumerate(ids)]}
                try:
                    response = http.post("/v1/batch", json=batch)
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 200:
                    with lock:
                        acknowledged.extend(ids)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(15)
    assert len(acknowledged) >= 1000, "the load never got going"

    restarted = ServerProcess(database.url, log_path=tmp_path / "restarted.log").start()
    try:
        with httpx.Client(base_url=restarted.base_url, auth=(source_key, ""), timeout=10) as http:
            assert http.post("/v1/track", json={"userId": "u", "event": "After restart"}).status_code == 200
    finally:
        restarted.stop()
    events = stored(database)
    missing = [m for m in acknowledged if m not in events]
    assert missing == [], f"{len(missing)} acknowledged events lost"
