"""The Segment-compatible collection API, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime, timedelta, timezone

import pytest

from seamline.events import service as events_service


@pytest.fixture
def source_key(database) -> str:
    with database.write() as session:
        _source, key = events_service.create_source(session, name="Website", channel="web")
    return key


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def events_of(client, admin_headers, **query) -> list[dict]:
    response = client.get("/v1/events", params={"limit": 500, **query}, headers=admin_headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def page(message_id: str, anonymous_id: str = "anon-1", **extra) -> dict:
    return {
        "type": "page", "messageId": message_id, "anonymousId": anonymous_id, "name": "Cream",
        "properties": {"path": "/p/cream"}, "timestamp": "2026-11-20T10:00:00.000Z", **extra,
    }


def test_every_call_type_is_stored_as_sent(client, source_key, admin_headers):
    context = {"campaign": {"source": "newsletter", "medium": "email", "name": "spring"}, "ip": "10.0.0.1"}
    calls = {
        "identify": {"userId": "u-1", "anonymousId": "a-1", "traits": {"email": "anna@example.com", "name": "Анна"}},
        "track": {"userId": "u-1", "event": "Order Completed", "properties": {"revenue": 12.5, "currency": "RUB"}},
        "page": {"anonymousId": "a-1", "name": "Home", "properties": {"url": "https://shop.example/"}},
        "screen": {"userId": "u-1", "name": "Cart"},
        "group": {"userId": "u-1", "groupId": "company-7", "traits": {"plan": "b2b"}},
        "alias": {"userId": "u-1", "previousId": "a-1"},
    }
    for kind, body in calls.items():
        body = {**body, "messageId": f"m-{kind}", "context": context, "integrations": {"All": True}}
        response = client.post(f"/v1/{kind}", json=body, headers=basic(source_key))
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}
    stored = {e["message_id"]: e for e in events_of(client, admin_headers)}
    assert set(stored) == {f"m-{kind}" for kind in calls}
    track = stored["m-track"]
    assert track["type"] == "track" and track["event"] == "Order Completed"
    assert track["properties"] == {"revenue": 12.5, "currency": "RUB"}
    assert track["context"]["campaign"] == context["campaign"]  # UTM kept for attribution
    assert track["channel"] == "web"
    assert track["integrations"] == {"All": True}
    assert stored["m-identify"]["traits"]["name"] == "Анна"


def test_write_key_in_the_body_and_missing_or_wrong_keys(client, source_key, admin_headers):
    ok = client.post("/v1/track", json={"writeKey": source_key, "userId": "u", "event": "E", "messageId": "wk"})
    assert ok.status_code == 200
    assert "writeKey" not in events_of(client, admin_headers)[0]["message"]  # the secret is not stored
    missing = client.post("/v1/track", json={"userId": "u", "event": "E"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    wrong = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic("sl_abc_def"))
    assert wrong.status_code == 401
    staff = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=admin_headers)
    assert staff.status_code == 403 and staff.json()["error"]["code"] == "not_a_write_key"


def test_replayed_events_and_batches_are_stored_once(client, source_key, admin_headers):
    batch = {"batch": [page("m1"), page("m2"), page("m1")]}  # a batch repeating itself, too
    for _ in range(3):
        assert client.post("/v1/batch", json=batch, headers=basic(source_key)).status_code == 200
    assert client.post("/v1/page", json=page("m2"), headers=basic(source_key)).status_code == 200
    assert sorted(e["message_id"] for e in events_of(client, admin_headers)) == ["m1", "m2"]


def test_the_same_message_id_from_two_sources_is_two_events(client, database, source_key, admin_headers):
    with database.write() as session:
        _, app_key = events_service.create_source(session, name="App", channel="app")
    client.post("/v1/page", json=page("same"), headers=basic(source_key))
    client.post("/v1/screen", json={**page("same"), "type": "screen"}, headers=basic(app_key))
    assert sorted(e["channel"] for e in events_of(client, admin_headers)) == ["app", "web"]


def test_clock_skew_is_corrected_by_sent_at(client, source_key, admin_headers):
    """A device whose clock is 2 hours fast: the event happened 5 s before it was sent."""
    fast = datetime.now(timezone.utc) + timedelta(hours=2)
    body = {
        "batch": [page("skewed", timestamp=(fast - timedelta(seconds=5)).isoformat())],
        "sentAt": fast.isoformat(),
    }
    before = datetime.now(timezone.utc)
    assert client.post("/v1/batch", json=body, headers=basic(source_key)).status_code == 200
    after = datetime.now(timezone.utc)
    (event,) = events_of(client, admin_headers)
    timestamp = datetime.fromisoformat(event["timestamp"])
    received = datetime.fromisoformat(event["received_at"])
    assert before <= received <= after
    assert abs((received - timestamp) - timedelta(seconds=5)) < timedelta(milliseconds=1)
    assert event["original_timestamp"] == body["batch"][0]["timestamp"]  # the device's own value is kept


def test_a_clock_thousands_of_years_off_rejects_that_event_only(client, source_key, admin_headers):
    """Found by schemathesis: the skew correction (or a year-1 time with a positive offset) left the
    calendar, and the whole batch was a 500 that stored nothing."""
    body = {"batch": [{**page("far", timestamp="0687-10-07T14:21:42-23:09"), "sentAt": "4392-01-24T00:58:13Z"},
                      page("year-one", timestamp="0001-01-01T00:00:00+05:00"),
                      page("fine")]}
    response = client.post("/v1/batch", json=body, headers=basic(source_key))
    assert response.status_code == 400, response.text
    rejected = response.json()["error"]["details"]["rejected"]
    assert {(r["messageId"], r["code"]) for r in rejected} == {("far", "invalid_timestamp"), ("year-one", "invalid_timestamp")}
    assert [e["message_id"] for e in events_of(client, admin_headers)] == ["fine"]


def test_without_sent_at_the_timestamp_is_trusted_and_without_timestamp_it_is_the_receive_time(
    client, source_key, admin_headers
):
    client.post("/v1/page", json=page("trusted"), headers=basic(source_key))
    client.post("/v1/page", json={k: v for k, v in page("now").items() if k != "timestamp"}, headers=basic(source_key))
    events = {e["message_id"]: e for e in events_of(client, admin_headers)}
    assert events["trusted"]["timestamp"].startswith("2026-11-20T10:00:00")
    assert events["now"]["timestamp"] == events["now"]["received_at"]


def test_gzip_and_text_plain_bodies(client, source_key, admin_headers):
    raw = json.dumps({"batch": [page("gz1"), page("gz2")]}).encode()
    response = client.post(
        "/v1/batch", content=gzip.compress(raw),
        headers={**basic(source_key), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    plain = client.post(
        "/v1/page", content=json.dumps({**page("txt"), "writeKey": source_key}), headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 200
    assert len(events_of(client, admin_headers)) == 3
    bad = client.post("/v1/batch", content=b"not gzip", headers={**basic(source_key), "Content-Encoding": "gzip"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_gzip"


def test_invalid_events_are_named_and_the_rest_of_the_batch_is_stored(client, source_key, admin_headers):
    big = page("big", properties={"blob": "x" * 33_000})
    batch = {
        "batch": [
            page("ok1"),
            {"type": "track", "messageId": "no-event", "userId": "u"},
            {"type": "page", "messageId": "no-id"},
            big,
            page("bad-time", timestamp="yesterday"),
            "not an object",
            {"type": "bogus", "userId": "u", "messageId": "bogus"},
            page("ok2"),
        ]
    }
    response = client.post("/v1/batch", json=batch, headers=basic(source_key))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_events"
    rejected = {r["index"]: r for r in error["details"]["rejected"]}
    assert set(rejected) == {1, 2, 3, 4, 5, 6}
    assert rejected[1]["code"] == "missing_event" and rejected[1]["messageId"] == "no-event"
    assert rejected[2]["code"] == "missing_id"
    assert rejected[3]["code"] == "event_too_large"
    assert rejected[4]["code"] == "invalid_timestamp"
    assert rejected[5]["code"] == "invalid_message"
    assert rejected[6]["code"] == "invalid_type"
    assert error["details"]["stored"] == 2
    assert sorted(e["message_id"] for e in events_of(client, admin_headers)) == ["ok1", "ok2"]


def test_batches_over_500_kb_and_malformed_json_are_refused_whole(client, source_key, admin_headers):
    batch = {"batch": [page(f"m{i}", properties={"blob": "x" * 20_000}) for i in range(30)]}  # ~600 KB
    response = client.post("/v1/batch", json=batch, headers=basic(source_key))
    assert response.status_code == 400 and response.json()["error"]["code"] == "batch_too_large"
    bomb = gzip.compress(json.dumps(batch).encode())  # small on the wire, too big inflated
    response = client.post("/v1/batch", content=bomb, headers={**basic(source_key), "Content-Encoding": "gzip"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "batch_too_large"
    response = client.post("/v1/batch", content=b"{not json", headers=basic(source_key))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert client.post("/v1/batch", json={"batch": "x"}, headers=basic(source_key)).status_code == 400
    assert events_of(client, admin_headers) == []


def test_type_must_match_the_endpoint(client, source_key):
    response = client.post("/v1/track", json={**page("p"), "type": "page"}, headers=basic(source_key))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["rejected"][0]["code"] == "invalid_type"


def test_collection_is_open_to_other_origins_but_the_rest_of_the_api_is_not(client):
    preflight = client.options(
        "/v1/batch",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    other = client.options(
        "/v1/customers", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers


def test_sources_api(client, admin_headers, read_headers):
    created = client.post("/v1/sources", json={"name": "Store POS", "channel": "store"}, headers=admin_headers)
    assert created.status_code == 201
    key = created.json()["write_key"]
    assert client.post("/v1/track", json={"userId": "u", "event": "Sale"}, headers=basic(key)).status_code == 200
    listed = client.get("/v1/sources", headers=read_headers).json()
    assert [s["channel"] for s in listed] == ["store"] and "write_key" not in listed[0]
    bad = client.post("/v1/sources", json={"name": "X", "channel": "fax"}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_channel"
    assert client.post("/v1/sources", json={"name": "X", "channel": "web"}, headers=read_headers).status_code == 403


def test_tracker_script_is_served(client):
    response = client.get("/seamline.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "seamline" in response.text


def test_listing_events_by_an_id_with_a_nul_character_is_a_clear_error(client, admin_headers):
    # PostgreSQL text cannot hold NUL; the filter is refused the same way on both databases.
    response = client.get("/v1/events", params={"anonymous_id": "a\x00b"}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
