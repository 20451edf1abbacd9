"""The DuckDB mirror: incremental, follows the identity graph, forgets what erasure erased."""

from __future__ import annotations

from datetime import datetime, timezone

import threading
from sqlalchemy import insert

from seamline.analytics.mirror import Mirror, reading
from seamline.events.models import EventRecord


def _people_of_events(path: str) -> dict[str, int | None]:
    with reading(path) as connection:
        rows = connection.execute(
            "SELECT e.person_key, p.person_id FROM events e LEFT JOIN event_people p USING (person_key)"
        ).fetchall()
    return dict(rows)


def _customer(client, admin_headers, **identifiers) -> int:
    body = {"identifiers": [{"type": t, "value": v} for t, v in identifiers.items()]}
    response = client.post("/v1/customers", json=body, headers=admin_headers)
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def _track(client, write_key, *, user_id=None, anonymous_id=None, n: int, tag: str) -> None:
    for i in range(n):
        body = {"writeKey": write_key, "event": "Product Viewed", "messageId": f"{tag}-{i}"}
        body.update({"userId": user_id} if user_id else {"anonymousId": anonymous_id})
        assert client.post("/v1/track", json=body).status_code == 200


def test_sync_copies_only_what_is_new_and_follows_merges_unmerges_and_erasure(client, database, admin_headers,
                                                                              write_key, tmp_path):
    path = str(tmp_path / "mirror.duckdb")
    mirror = Mirror(database, path)
    anna = _customer(client, admin_headers, user_id="anna")
    stranger = _customer(client, admin_headers, anonymous_id="anon-1")
    _track(client, write_key, user_id="anna", n=2, tag="a")
    _track(client, write_key, anonymous_id="anon-1", n=3, tag="b")
    first = mirror.sync()
    assert first.rows["events"] == 5
    assert _people_of_events(path) == {"u:anna": anna, "a:anon-1": stranger}

    _track(client, write_key, user_id="anna", n=1, tag="c")
    assert mirror.sync().rows["events"] == 1  # only the new one

    merged = client.post(f"/v1/customers/{anna}/merge", json={"customer_id": stranger}, headers=admin_headers)
    assert merged.status_code == 200, merged.text
    after_merge = mirror.sync()
    assert after_merge.rows["events"] == 0
    assert set(_people_of_events(path).values()) == {anna}  # the anonymous history is Anna's now

    undone = client.post(f"/v1/merges/{merged.json()['id']}/undo", headers=admin_headers)
    assert undone.status_code == 200, undone.text
    mirror.sync()
    assert _people_of_events(path) == {"u:anna": anna, "a:anon-1": stranger}  # split back

    erased = client.post(f"/v1/customers/{stranger}/erase", json={"reason": "request"}, headers=admin_headers)
    assert erased.status_code == 200, erased.text
    report = mirror.sync()
    assert report.erased_people == 1
    assert _people_of_events(path) == {"u:anna": anna}  # the erased person's events are gone
    with reading(path) as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchall()[0][0] == 3
        assert connection.execute("SELECT status FROM people WHERE profile_id = ?", [stranger]).fetchall()[0][0] == "erased"
        assert connection.execute("SELECT count(*) FROM identities WHERE profile_id = ?", [stranger]).fetchall()[0][0] == 0

    # a backfill from scratch gives the same mirror
    full = mirror.sync(full=True)
    assert full.rows["events"] == 3
    assert _people_of_events(path) == {"u:anna": anna}


def test_an_id_committed_after_its_neighbours_were_copied_is_still_copied(database, tmp_path):
    """On PostgreSQL a transaction can commit id 3 after ids 1, 2 and 4 were copied: the gap is
    remembered and looked for at the next syncs."""
    path = str(tmp_path / "mirror.duckdb")
    mirror = Mirror(database, path)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)

    def event(i: int) -> dict:
        return {"id": i, "source_id": 1, "message_id": f"m{i}", "type": "track", "name": "E", "person": "a:x",
                "channel": "web", "timestamp": now, "received_at": now, "payload": "{}"}

    from seamline.events.models import EventSource

    with database.write() as session:
        session.add(EventSource(id=1, name="site", channel="web"))
        session.flush()
        session.execute(insert(EventRecord), [event(1), event(2), event(4)])
    assert mirror.sync().rows["events"] == 3
    with database.write() as session:
        session.execute(insert(EventRecord), [event(3)])
    assert mirror.sync().rows["events"] == 1
    with reading(path) as connection:
        assert [r[0] for r in connection.execute("SELECT id FROM events ORDER BY id").fetchall()] == [1, 2, 3, 4]
    assert mirror.sync().rows["events"] == 0


def test_a_sync_waits_for_the_readers_and_a_reader_for_the_sync(database, tmp_path):
    """One writer or many readers (the file lock): a dashboard never reads a half-written sync."""
    path = str(tmp_path / "mirror.duckdb")
    mirror = Mirror(database, path)
    mirror.sync()
    done = threading.Event()
    with reading(path) as connection:
        worker = threading.Thread(target=lambda: (mirror.sync(), done.set()))
        worker.start()
        assert not done.wait(0.5)  # the sync waits for the reader
        assert connection.execute("SELECT count(*) FROM events").fetchall()[0][0] == 0
    worker.join(30)
    assert done.is_set()
