"""Webhook destinations: signed, at least once, retried with backoff, dead letters, and never in
the way of collection. The receiver is a real HTTP server on loopback."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from seamline.events import service as events_service
from seamline.events.destinations import deliver_due, verify


class Receiver:
    """Answers with the queued statuses (then 200), records what it got; can be held."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[dict] = []
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.release.wait(30)
                receiver.received.append({"body": body, "headers": dict(self.headers)})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def source_key(database) -> str:
    with database.write() as session:
        return events_service.create_source(session, name="Web", channel="web")[1]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def add_destination(client, admin_headers, url: str, **extra) -> dict:
    response = client.post("/v1/destinations", json={"name": "hook", "url": url, **extra}, headers=admin_headers)
    assert response.status_code == 201, response.text
    return response.json()


def batch(*ids: str, kind: str = "track") -> dict:
    return {"batch": [{"type": kind, "event": "E", "name": "N", "userId": "u", "messageId": m} for m in ids]}


def test_delivered_signed_and_filtered_by_type(client, database, settings, admin_headers, source_key, receiver):
    destination = add_destination(client, admin_headers, receiver.url, types=["track"])
    assert client.post("/v1/batch", json=batch("t1", "t2"), headers=basic(source_key)).status_code == 200
    assert client.post("/v1/batch", json=batch("p1", kind="page"), headers=basic(source_key)).status_code == 200
    with httpx.Client() as http:
        assert deliver_due(database, settings=settings, client=http) == 1
        assert deliver_due(database, settings=settings, client=http) == 0  # nothing due twice
    (got,) = receiver.received
    assert [e["messageId"] for e in json.loads(got["body"])["batch"]] == ["t1", "t2"]
    assert verify(destination["secret"], got["headers"]["X-Seamline-Signature"], got["body"])
    assert not verify("another-secret-of-16+", got["headers"]["X-Seamline-Signature"], got["body"])
    assert not verify(destination["secret"], got["headers"]["X-Seamline-Signature"], got["body"] + b" ")


def test_failures_are_retried_then_dead_lettered_and_can_be_sent_again(
    client, database, settings_for, admin_headers, source_key, receiver
):
    settings = settings_for(database.url, delivery_max_attempts=3, delivery_backoff_seconds=0.001)
    destination = add_destination(client, admin_headers, receiver.url)
    client.post("/v1/batch", json=batch("m1"), headers=basic(source_key))
    receiver.statuses = [500, 503, 500]
    import time

    with httpx.Client() as http:
        for _ in range(3):
            time.sleep(0.01)  # past the (tiny) backoff
            assert deliver_due(database, settings=settings, client=http) == 1
        time.sleep(0.01)
        assert deliver_due(database, settings=settings, client=http) == 0  # dead: no more attempts
    assert len(receiver.received) == 3
    assert len({r["headers"]["X-Seamline-Delivery"] for r in receiver.received}) == 1  # same id on every retry
    listing = client.get(f"/v1/destinations/{destination['id']}/dead-letters", headers=admin_headers).json()
    dead = listing["items"]
    assert listing["next_cursor"] is None
    assert [(d["status"], d["attempts"], d["message_ids"]) for d in dead] == [("dead", 3, ["m1"])]
    assert "HTTP 500" in dead[0]["last_error"]

    retried = client.post(f"/v1/destinations/{destination['id']}/dead-letters/{dead[0]['id']}/retry", headers=admin_headers)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    with httpx.Client() as http:
        assert deliver_due(database, settings=settings, client=http) == 1
    assert len(receiver.received) == 4
    assert client.get(f"/v1/destinations/{destination['id']}/dead-letters", headers=admin_headers).json() == {
        "items": [], "next_cursor": None}
    missing = client.post(f"/v1/destinations/{destination['id']}/dead-letters/999/retry", headers=admin_headers)
    assert missing.status_code == 404


def test_an_unreachable_destination_is_an_error_not_a_crash(client, database, settings, admin_headers, source_key):
    from seamline.devtools.serve import free_port

    add_destination(client, admin_headers, f"http://127.0.0.1:{free_port()}/nobody")
    client.post("/v1/batch", json=batch("m1"), headers=basic(source_key))
    with httpx.Client() as http:
        assert deliver_due(database, settings=settings, client=http) == 1
    from seamline.events.models import EventDelivery

    with database.read() as session:
        (delivery,) = session.query(EventDelivery).all()
    assert delivery.status == "pending" and delivery.attempts == 1 and "ConnectError" in delivery.last_error


def test_a_stuck_destination_never_slows_collection(
    database, settings_for, admin_headers, source_key, receiver
):
    """The receiver holds every request; collection goes on answering meanwhile, and once the
    receiver lets go the embedded worker delivers everything."""
    from fastapi.testclient import TestClient

    from seamline.app import create_app

    settings = settings_for(database.url, serve_worker=True)
    receiver.release.clear()
    with TestClient(create_app(settings, database=database)) as client:
        add_destination(client, admin_headers, receiver.url)
        for i in range(5):
            response = client.post("/v1/batch", json=batch(f"m{i}"), headers=basic(source_key))
            assert response.status_code == 200
        receiver.release.set()
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ids = {e["messageId"] for r in receiver.received for e in json.loads(r["body"])["batch"]}
            if ids == {f"m{i}" for i in range(5)}:
                break
            time.sleep(0.05)
        assert ids == {f"m{i}" for i in range(5)}


def test_destination_validation(client, admin_headers, read_headers):
    bad = client.post("/v1/destinations", json={"name": "x", "url": "ftp://example.com/x"}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_url"
    bad = client.post("/v1/destinations", json={"name": "x", "url": "https://e.com/x", "types": ["click"]}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_event_type"
    assert client.get("/v1/destinations", headers=read_headers).status_code == 403
