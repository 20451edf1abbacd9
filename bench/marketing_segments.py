"""Segments at a million profiles (issue 22): a full evaluation of typical segments, and how soon a
person enters a segment after the event that qualifies them.

PostgreSQL 15 (throwaway, fsync on, default settings) filled by its own `generate_series`:
1,000,000 profiles with a user id, an anonymous id and (70 %) an email; 3 traits each (city,
tier, age); email marketing consents for 60 % (a sixth of them withdrawn later); 2,000,000
orders over a year; 5,000,000 events over 90 days; 500,000 loyalty accounts.

    .venv/bin/python bench/marketing_segments.py [--people 1000000] [--events 5000000] [--orders 2000000] [--trials 50]

1. Full evaluation: each segment created (filled) and then evaluated again (the differences
   written), through `segments.service`.
2. Entry latency: a worker runs (its own threads, LISTEN/NOTIFY); a new event of a person who
   qualifies by it is committed the way collection commits (`events.service.store_events`), and
   the clock stops when the person's membership row is committed: the reactor's job queued in
   the event's transaction, claimed, the person re-evaluated against every segment.

Prints the markdown rows of bench/README.md on stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from _load import throwaway_database  # noqa: E402
from analytics_postgres import fill, pick  # noqa: E402
from seamline import runtime as seamline_runtime  # noqa: E402
from seamline.core.config import Settings  # noqa: E402
from seamline.core.db import Database  # noqa: E402
from seamline.events import service as events_service  # noqa: E402
from seamline.events.ingest import check_message  # noqa: E402
from seamline.events.models import EventSource  # noqa: E402
from seamline.marketing.segments import facts  # noqa: E402
from seamline.marketing.segments import service as segments  # noqa: E402
from seamline.marketing.segments.models import MarketingSegmentMember  # noqa: E402
from seamline.marketing.segments.schemas import SegmentCreate  # noqa: E402

DAYS_90 = "now() - random() * interval '90 days'"
YEAR = "now() - random() * interval '365 days'"

SEGMENTS = {
    "Moscow gold with email consent (3 conditions: traits, consent)": {"type": "and", "rules": [
        {"type": "trait", "key": "city", "op": "eq", "value": "Moscow"},
        {"type": "trait", "key": "tier", "op": "eq", "value": "gold"},
        {"type": "consent", "channel": "email"}]},
    "2+ orders worth 10,000+ in 90 days (orders)": {
        "type": "orders", "within_days": 90, "count": {"op": "gte", "value": 2}, "revenue": {"op": "gte", "value": 1_000_000}},
    "Viewed a cream in 7 days, no order in 30 (events, orders)": {"type": "and", "rules": [
        {"type": "event", "name": "Product Viewed", "within_days": 7, "where": [{"property": "category", "op": "eq", "value": "creams"}]},
        {"type": "not", "rule": {"type": "orders", "within_days": 30}}]},
    "Win-back: bought this year, not in 60 days, reachable by email, age 25-45 (6 conditions)": {"type": "and", "rules": [
        {"type": "consent", "channel": "email"},
        {"type": "identifier", "identifier_type": "email"},
        {"type": "orders", "within_days": 365},
        {"type": "not", "rule": {"type": "orders", "within_days": 60}},
        {"type": "trait", "key": "age", "op": "gte", "value": 25},
        {"type": "trait", "key": "age", "op": "lte", "value": 45}]},
}
#: The segment the latency trials qualify people for.
LATENCY_RULE = {"type": "event", "name": "Store Entered", "within_days": 1}


def build(database: Database, *, people: int, events: int, orders: int) -> None:
    statements = [
        fill("customer_profile", {"id": "i", "status": "'active'", "created_at": "now()", "updated_at": "now()"},
             f"generate_series(1, {people}) i"),
        fill("customer_identity", {"id": "3 * i", "type": "'user_id'", "value": "'u' || i", "profile_id": "i", "source": "'bench'"},
             f"generate_series(1, {people}) i"),
        fill("customer_identity", {"id": "3 * i + 1", "type": "'anonymous_id'", "value": "'a' || i", "profile_id": "i",
                                   "source": "'bench'"}, f"generate_series(1, {people}) i"),
        fill("customer_identity", {"id": "3 * i + 2", "type": "'email'", "value": "'p' || i || '@example.com'", "profile_id": "i",
                                   "source": "'bench'", "verified_at": "now()"}, f"generate_series(1, {people}) i WHERE i % 10 < 7"),
        fill("customer_trait", {"identity_id": "3 * i", "key": "'city'", "value": f"to_json({pick(['Moscow', 'Kazan', 'Perm', 'Omsk', 'Tver'])}::text)",
                                "source": "'bench'", "observed_at": "now()", "verified": "true"}, f"generate_series(1, {people}) i"),
        fill("customer_trait", {"identity_id": "3 * i", "key": "'tier'", "value": f"to_json({pick(['bronze', 'silver', 'gold'])}::text)",
                                "source": "'bench'", "observed_at": "now()", "verified": "true"}, f"generate_series(1, {people}) i"),
        fill("customer_trait", {"identity_id": "3 * i", "key": "'age'", "value": "to_json(18 + floor(random() * 60)::int)",
                                "source": "'bench'", "observed_at": "now()", "verified": "true"}, f"generate_series(1, {people}) i"),
        fill("customer_consent", {"identity_id": "3 * i", "channel": "'email'", "purpose": "'marketing'", "granted": "true",
                                  "source": "'bench'", "recorded_at": "now() - interval '30 days'"},
             f"generate_series(1, {people}) i WHERE i % 10 < 6"),
        fill("customer_consent", {"identity_id": "3 * i", "channel": "'email'", "purpose": "'marketing'", "granted": "false",
                                  "source": "'bench'", "recorded_at": "now() - interval '3 days'"},
             f"generate_series(1, {people}) i WHERE i % 10 = 0"),
        fill("event_source", {"id": "1", "name": "'site'", "channel": "'web'"}, "generate_series(1, 1)"),
        fill("event_record", {
            "id": "i", "source_id": "1", "message_id": "'m' || i", "type": "'track'",
            "name": pick(["Product Viewed"] * 5 + ["Product Added"] * 2 + ["Checkout Started", "Order Completed", "Signed In"]),
            "person": f"CASE WHEN random() < 0.5 THEN 'u:u' ELSE 'a:a' END || (1 + floor(random() * {people})::int)",
            "channel": pick(["web", "web", "app"]), "timestamp": DAYS_90, "received_at": "now()",
            "payload": f"'{{\"properties\": {{\"category\": \"' || {pick(['creams', 'shoes', 'bags', 'toys'])} || '\"}}}}'",
        }, f"generate_series(1, {events}) i"),
        fill("commerce_order", {
            "id": "i", "profile_id": f"1 + floor(random() * {people})::int", "channel": pick(["web", "app", "store"]),
            "status": pick(["completed"] * 8 + ["cancelled", "confirmed"]), "fulfilment": "'delivery'", "payment_method": "'card'",
            "currency": "'RUB'", "total": "50000 + floor(random() * 2000000)::int", "created_at": "t", "updated_at": "t"},
            f"(SELECT i, {YEAR} AS t FROM generate_series(1, {orders}) i) o"),
        fill("loyalty_account", {"id": "i", "profile_id": "2 * i", "points_available": "floor(random() * 5000)::int",
                                 "tier": pick(["silver", "gold"]), "created_at": "now()", "updated_at": "now()"},
             f"generate_series(1, {people // 2}) i"),
    ]
    with database.write_engine.begin() as connection:
        for statement in statements:
            began = time.perf_counter()
            connection.execute(sa.text(statement))
            print(f"  {statement[:60]}... {time.perf_counter() - began:.1f} s", file=sys.stderr)
        for table in ("customer_profile", "customer_identity", "customer_trait", "customer_consent", "event_record",
                      "commerce_order", "loyalty_account"):
            connection.execute(sa.text(f"ANALYZE {table}"))
        for table in ("customer_profile", "customer_identity", "event_record", "commerce_order", "loyalty_account"):
            connection.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))


def full_evaluations(database: Database, people: int) -> None:
    began = time.perf_counter()
    count = database.run_write(facts.rebuild)
    print(f"| profile facts rebuilt ({count:,} facts of {people:,} people) | {time.perf_counter() - began:.1f} s |\n")
    print(f"| segment ({people:,} profiles, PostgreSQL) | members | first evaluation | again (differences) | estimate |")
    print("|---|---|---|---|---|")
    for name, rule in SEGMENTS.items():
        data = SegmentCreate(name=name[:200], rules=rule)

        def create(session):  # noqa: ANN001, ANN202
            segment, _ = segments.create_segment(session, data=data, created_by="bench")
            return segment.id, segments.evaluate(session, segment_id=segment.id, cause="created")

        segment_id, first = database.run_write(create)
        again = database.run_write(lambda s, i=segment_id: segments.evaluate(s, segment_id=i))
        with database.read() as session:
            began = time.perf_counter()
            estimate = segments.estimate(session, rule=data.rules)
            estimated = time.perf_counter() - began
        # windows of days move with the clock between the three: a few people may differ
        assert abs(estimate["count"] - first.members) <= max(5, first.members // 1000), (estimate, first, again)
        print(f"| {name} | {first.members:,} | {first.milliseconds / 1000:.2f} s | {again.milliseconds / 1000:.2f} s | "
              f"{estimated:.2f} s |")


def entry_latency(database: Database, settings: Settings, people: int, trials: int) -> None:
    target = database.run_write(lambda s: segments.evaluate(s, segment_id=segments.create_segment(
        s, data=SegmentCreate(name="Entered a store today", rules=LATENCY_RULE), created_by="bench")[0].id)).segment_id
    built = seamline_runtime.build(settings, database=database)
    worker = built.worker(queues={"marketing": 1}, periodic=False).start()
    with database.read() as session:
        source = session.get(EventSource, 1)
        session.expunge(source)
        active = len(segments.list_segments(session))
    latencies = []
    try:
        for trial in range(trials):
            person = 1 + (trial * 7919) % people
            now = datetime.now(timezone.utc)
            event = check_message({"type": "track", "userId": f"u{person}", "event": "Store Entered", "messageId": uuid.uuid4().hex,
                                   "properties": {"store": "MSK-1"}}, default_type="track", batch_sent_at=None, received_at=now,
                                  max_bytes=32_000)
            began = time.perf_counter()
            database.run_write(lambda s, e=event: events_service.store_events(s, source=source, events=[e], received_at=now))
            while True:
                with database.read() as session:
                    if session.scalar(sa.select(sa.func.count()).select_from(MarketingSegmentMember).where(
                            MarketingSegmentMember.profile_id == person, MarketingSegmentMember.segment_id == target)):
                        break
                if time.perf_counter() - began > 10:
                    raise SystemExit(f"person {person} never entered")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - began)
    finally:
        worker.stop()
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(f"\n| entry after the qualifying event ({trials} people, {active} active segments) | p50 | p99 | max |")
    print("|---|---|---|---|")
    print(f"| event committed -> membership committed | {statistics.median(latencies) * 1000:.0f} ms | {p99 * 1000:.0f} ms | "
          f"{latencies[-1] * 1000:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    with throwaway_database("postgresql", "seamline-segments") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING", marketing_segment_refresh_seconds=0,
                            analytics_sync_seconds=0, serve_worker=False)
        database = Database(settings)
        began = time.perf_counter()
        build(database, people=args.people, events=args.events, orders=args.orders)
        print(f"filled in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        full_evaluations(database, args.people)
        entry_latency(database, settings, args.people, args.trials)
        database.dispose()


if __name__ == "__main__":
    threading.excepthook = lambda info: print(f"thread failed: {info.exc_value}", file=sys.stderr)
    main()
