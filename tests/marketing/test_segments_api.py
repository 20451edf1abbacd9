"""Segments through the API, and kept current by what happens (the reactor's jobs)."""

from __future__ import annotations

import base64

from seamline.core.queue.worker import run_due

VIEWED_CREAMS = {"type": "event", "name": "Product Viewed", "within_days": 30,
                 "where": [{"property": "category", "op": "eq", "value": "creams"}]}


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def send(client, key: str, path: str, **message) -> None:
    response = client.post(f"/v1/{path}", json=message, headers=_basic(key))
    assert response.status_code == 200, response.text
    assert client.app.state.event_writer.wait_idle()


def react(client) -> int:
    """Run the marketing queue's jobs, and the jobs they queue, until none is due."""
    app, total = client.app, 0
    for _ in range(10):
        ran = run_due(app.state.database, app.state.runtime.tasks, "marketing")
        if not ran:
            return total
        total += ran
    return total


def person(client, headers, user_id: str) -> int:
    return client.get(f"/v1/customers/lookup?user_id={user_id}", headers=headers).json()["id"]


def test_scopes(client, read_headers, write_headers, marketing_headers, admin_headers):
    body = {"name": "Cream lovers", "rules": VIEWED_CREAMS}
    for headers in (read_headers, write_headers):
        assert client.post("/v1/marketing/segments", json=body, headers=headers).status_code == 403
        assert client.get("/v1/marketing/segments", headers=headers).status_code == 403
    assert client.post("/v1/marketing/segments", json=body).status_code == 401
    assert client.post("/v1/marketing/segments", json=body, headers=marketing_headers).status_code == 201
    assert client.get("/v1/marketing/segments", headers=admin_headers).status_code == 200


def test_bad_rules_are_422(client, marketing_headers):
    bad = [
        {"type": "trait", "key": "tier", "op": "gt", "value": "gold"},  # a number operator with a word
        {"type": "trait", "key": "x'; drop", "op": "exists"},  # not a key
        {"type": "event", "name": "X", "where": [{"property": "a..b", "op": "exists"}]},
        {"type": "loyalty"},
        {"type": "segment", "segment_id": 999},  # no such segment
        {"type": "and", "rules": [{"type": "not", "rule": {"type": "not", "rule": {"type": "not", "rule": {"type": "not", "rule": {
            "type": "not", "rule": {"type": "not", "rule": {"type": "orders"}}}}}}}]},  # too deep
        {"type": "sql", "query": "select 1"},
    ]
    for rule in bad:
        response = client.post("/v1/marketing/segments", json={"name": "x", "rules": rule}, headers=marketing_headers)
        assert response.status_code == 422, (rule, response.text)
    assert client.get("/v1/marketing/segments", headers=marketing_headers).json() == []


def test_segment_follows_events_orders_and_traits(client, marketing_headers, admin_headers, server_key):
    """Anna enters when she views creams (the reactor's job), Boris never does; an edited rule
    moves people at once; entries and exits are logged with their cause."""
    send(client, server_key, "identify", userId="anna", traits={"email": "anna@example.com", "tier": "gold"})
    send(client, server_key, "identify", userId="boris", traits={"tier": "silver"})
    react(client)
    created = client.post("/v1/marketing/segments", json={"name": "Cream lovers", "rules": VIEWED_CREAMS},
                          headers={**marketing_headers, "Idempotency-Key": "seg-1"})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["member_count"] == 0 and segment["evaluated_version"] == 1
    again = client.post("/v1/marketing/segments", json={"name": "Cream lovers", "rules": VIEWED_CREAMS},
                        headers={**marketing_headers, "Idempotency-Key": "seg-1"})
    assert again.status_code == 200 and again.json()["id"] == segment["id"]

    send(client, server_key, "track", userId="anna", event="Product Viewed", properties={"category": "creams"})
    send(client, server_key, "track", userId="boris", event="Product Viewed", properties={"category": "shoes"})
    assert react(client) >= 1
    anna, boris = person(client, admin_headers, "anna"), person(client, admin_headers, "boris")
    members = client.get(f"/v1/marketing/segments/{segment['id']}/members", headers=marketing_headers).json()
    assert [m["profile_id"] for m in members["items"]] == [anna]
    mine = client.get(f"/v1/marketing/customers/{anna}/segments", headers=marketing_headers).json()
    assert [s["name"] for s in mine["segments"]] == ["Cream lovers"]
    assert [(c["change"], c["cause"]) for c in mine["changes"]] == [("entered", "event")]

    # a trait change moves people through the profile listener
    gold = client.post("/v1/marketing/segments", json={"name": "Gold", "rules": {
        "type": "trait", "key": "tier", "op": "eq", "value": "gold"}}, headers=marketing_headers).json()
    assert gold["member_count"] == 1
    send(client, server_key, "identify", userId="boris", traits={"tier": "gold"})
    react(client)
    assert client.get(f"/v1/marketing/segments/{gold['id']}", headers=marketing_headers).json()["member_count"] == 2
    assert {m["profile_id"] for m in client.get(f"/v1/marketing/segments/{gold['id']}/members",
                                                  headers=marketing_headers).json()["items"]} == {anna, boris}

    # a segment of a segment, and an edit that empties the first one
    both = client.post("/v1/marketing/segments", json={"name": "Gold cream lovers", "rules": {"type": "and", "rules": [
        {"type": "segment", "segment_id": segment["id"]}, {"type": "segment", "segment_id": gold["id"]}]}},
        headers=marketing_headers).json()
    assert both["member_count"] == 1
    cycle = client.patch(f"/v1/marketing/segments/{segment['id']}", json={"rules": {"type": "segment", "segment_id": both["id"]}},
                         headers=marketing_headers)
    assert cycle.status_code == 422 and cycle.json()["error"]["code"] == "segment_cycle"
    edited = client.patch(f"/v1/marketing/segments/{segment['id']}", json={"rules": {**VIEWED_CREAMS, "count": {"op": "gte", "value": 2}}},
                          headers=marketing_headers).json()
    assert edited["version"] == 2 and edited["member_count"] == 0
    mine = client.get(f"/v1/marketing/customers/{anna}/segments", headers=marketing_headers).json()
    assert ("exited", "edited") in [(c["change"], c["cause"]) for c in mine["changes"] if c["segment"] == "Cream lovers"]
    in_use = client.post(f"/v1/marketing/segments/{gold['id']}/archive", headers=marketing_headers)
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "segment_in_use"


def test_estimate(client, marketing_headers, server_key):
    for user in ("a", "b", "c"):
        send(client, server_key, "identify", userId=user, traits={"city": "Kazan" if user != "c" else "Moscow"})
    rule = {"type": "trait", "key": "city", "op": "eq", "value": "Kazan"}
    answer = client.post("/v1/marketing/segments/estimate", json={"rules": rule}, headers=marketing_headers).json()
    assert answer["count"] == 2 and answer["of"] == 3 and len(answer["sample_ids"]) == 2
    assert client.get("/v1/marketing/segments", headers=marketing_headers).json() == []  # nothing written
