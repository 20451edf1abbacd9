"""Marketing messages at volume (issue 22).

1. **Render and hand over**: `--people` people (a user id, an email, email marketing consent, a
   first name, a loyalty account) are put into a running journey whose one step sends a
   personalized template (their name, their points) by email; the clock runs while the engine
   (`marketing.reactor.advance`, the job the queue runs) renders each message and hands it to the
   inbox's outbound send (consent check, channel choice, the person's history conversation, the
   message row, its job in the `outbound.email` queue). Reported: messages per second, and the
   time for 100,000 at that rate.
2. **A million waiting**: `--waiting` people wait in a journey (bulk-inserted enrollments,
   `wake_at` spread over the next days); `--due` of them have a wait that just ended. Timed: the
   scheduler's pass that finds the due ones and moves them on (the next step is a wait), through
   the partial index of waiting enrollments by `wake_at`: it must not read the others.

    .venv/bin/python bench/marketing_messages.py --backend both --people 20000 --waiting 1000000 --due 20000

`--channel best` sends with no channel named: the outbound checks every channel it knows for
each person and the next-best-channel model (marketing/optichannel) ranks those that reach them,
from evidence rows each person is given (email and SMS), and each send is learnt (two upserts).

Prints the markdown rows of bench/README.md on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta

import sqlalchemy as sa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from _load import throwaway_database  # noqa: E402
from seamline import runtime as seamline_runtime  # noqa: E402
from seamline.core import heap  # noqa: E402
from seamline.core.config import Settings  # noqa: E402
from seamline.core.db import Database  # noqa: E402
from seamline.core.time import utcnow  # noqa: E402
from seamline.marketing import reactor  # noqa: E402
from seamline.marketing.journeys import engine  # noqa: E402
from seamline.marketing.journeys import service as journeys  # noqa: E402
from seamline.marketing.journeys.definition import Definition  # noqa: E402
from seamline.marketing.journeys.models import MarketingEnrollment  # noqa: E402
from seamline.marketing.messages import service as messages  # noqa: E402

TEMPLATE = {"ru": {"subject": "{{ person.first_name }}, для вас подборка",
                   "text": "{{ person.first_name }}, у вас {{ points.available }} баллов. Загляните: {{ shop_url }}"}}


#: Signs each message's tracking links (a throwaway database's throwaway key).
BENCH_SECRET = "bench-only-secret-key-of-a-throwaway-database"


def series(database: Database, count: int, start: int = 1) -> str:
    """A FROM clause with `i` from start to start + count - 1 (PostgreSQL and SQLite)."""
    if database.is_sqlite:
        return (f"(WITH RECURSIVE s(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM s WHERE i < {start + count - 1}) "
                f"SELECT i FROM s)")
    return f"generate_series({start}, {start + count - 1}) AS g(i)"


def people(database: Database, count: int) -> None:
    now = "CURRENT_TIMESTAMP"
    t = "TRUE" if not database.is_sqlite else "1"
    json_text = "('\"Анна ' || i || '\"')" + ("" if database.is_sqlite else "::json")
    statements = [
        f"INSERT INTO customer_profile (id, status, created_at, updated_at) SELECT i, 'active', {now}, {now} FROM {series(database, count)}",
        f"INSERT INTO customer_identity (id, type, value, profile_id, source, created_at) SELECT 2 * i, 'user_id', 'u' || i, i, 'bench', {now} "
        f"FROM {series(database, count)}",
        f"INSERT INTO customer_identity (id, type, value, profile_id, source, created_at, verified_at) SELECT 2 * i + 1, 'email', "
        f"'p' || i || '@example.com', i, 'bench', {now}, {now} FROM {series(database, count)}",
        f"INSERT INTO customer_trait (identity_id, key, value, source, observed_at, verified) SELECT 2 * i, 'first_name', "
        f"{json_text}, 'bench', {now}, {t} FROM {series(database, count)}",
        f"INSERT INTO customer_consent (identity_id, channel, purpose, granted, source, recorded_at) SELECT 2 * i + 1, 'email', "
        f"'marketing', {t}, 'bench', {now} FROM {series(database, count)}",
        f"INSERT INTO loyalty_account (id, profile_id, points_available, points_pending, wallet_balance, tier_spend, created_at, updated_at) "
        f"SELECT i, i, 100 + i % 900, 0, 0, 0, {now}, {now} FROM {series(database, count)}",
    ]
    with database.write_engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
        if not database.is_sqlite:
            for table in ("customer_profile", "customer_identity", "loyalty_account"):
                connection.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
            connection.execute(sa.text("ANALYZE"))


def make_journey(database: Database, definition: dict) -> int:
    def work(session):  # noqa: ANN001, ANN202
        journey, _ = journeys.create_journey(session, name="Bench", description="", definition=Definition.model_validate(definition),
                                             created_by="bench")
        journeys.set_status(session, journey_id=journey.id, action="start")
        return journey.id

    return database.run_write(work)


def enroll_all(database: Database, journey_id: int, count: int, *, step: str, wake: str, start: int = 1) -> None:
    """Enrollments straight into the table (what a campaign's bulk enrollment writes)."""
    with database.write_engine.begin() as connection:
        connection.execute(sa.text(
            f"INSERT INTO marketing_enrollment (journey_id, version, profile_id, status, step_id, wake_at, context, entered_at) "
            f"SELECT {journey_id}, 1, i, 'waiting', '{step}', {wake}, '{{}}', CURRENT_TIMESTAMP FROM {series(database, count, start)}"))
        if not database.is_sqlite:
            connection.execute(sa.text("ANALYZE marketing_enrollment"))


def evidence(database: Database, count: int) -> None:
    """Each person's next-best-channel evidence for email and SMS, as months of messages leave."""
    with database.write_engine.begin() as connection:
        for channel, rate in (("email", 0.2), ("sms", 0.05)):
            connection.execute(sa.text(
                f"INSERT INTO marketing_channel_evidence (profile_id, channel, cohort, responses, sends, updated_at) "
                f"SELECT i, '{channel}', 'email', {rate} * (1 + i % 7), 1 + i % 7, CURRENT_TIMESTAMP FROM {series(database, count)}"))


def render_and_hand_over(backend: str, count: int, args_batch: int = 500, channel: str = "email") -> str:
    with throwaway_database(backend, "seamline-marketing-messages") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING", inbox_smtp_host="127.0.0.1",
                            secret_key=BENCH_SECRET, inbox_email_address="shop@example.com", marketing_quiet_hours="", marketing_cap_messages=4,
                            serve_worker=False, analytics_sync_seconds=0, marketing_advance_seconds=0)
        database = Database(settings)
        people(database, count)
        if channel == "best":
            evidence(database, count)
        template_id = database.run_write(lambda s: messages.create_template(s, name="Bench", content=TEMPLATE, created_by="bench")[0].id)
        journey_id = make_journey(database, {"trigger": {"type": "api"}, "steps": [
            {"id": "send", "type": "send", "template_id": template_id, **({"channel": "email"} if channel == "email" else {})}]})
        enroll_all(database, journey_id, count, step="send", wake="CURRENT_TIMESTAMP")
        began = time.perf_counter()
        ran = 0
        while ran < count:
            done = reactor.advance(database, settings, budget_seconds=3600, batch=args_batch)
            if not done:
                break
            ran += done
        spent = time.perf_counter() - began
        with database.read() as session:
            queued = session.scalar(sa.text("SELECT count(*) FROM inbox_message WHERE direction = 'out' AND delivery_status = 'queued'"))
            jobs = session.scalar(sa.text("SELECT count(*) FROM jobs WHERE queue = 'outbound.email'"))
        database.dispose()
        assert queued == count == jobs, (queued, jobs, count)
        rate = count / spent
        return f"| {backend} | {channel} | {count:,} | {spent:.1f} s | {rate:,.0f} | {100_000 / rate:.0f} s |"


def waiting(backend: str, total: int, due: int) -> str:
    with throwaway_database(backend, "seamline-marketing-waiting") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING", serve_worker=False, analytics_sync_seconds=0,
                            marketing_advance_seconds=0)
        database = Database(settings)
        people(database, total)
        journey_id = make_journey(database, {"trigger": {"type": "api"}, "steps": [
            {"id": "first", "type": "wait", "minutes": 60, "next": "second"}, {"id": "second", "type": "wait", "minutes": 60 * 24 * 30}]})
        later = ("CURRENT_TIMESTAMP + (1 + i % 30) * interval '1 day'" if not database.is_sqlite
                 else "datetime('now', '+' || (1 + i % 30) || ' days')")
        enroll_all(database, journey_id, total - due, step="second", wake=later, start=due + 1)
        enroll_all(database, journey_id, due, step="second", wake="CURRENT_TIMESTAMP")
        now = utcnow() + timedelta(seconds=1)
        began = time.perf_counter()
        moved = 0
        while True:
            ran = database.run_write(lambda s: engine.advance_due(s, settings=settings, now=now, limit=1000))
            moved += ran
            if ran < 1000:
                break
        spent = time.perf_counter() - began
        with database.read() as session:  # how the scheduler finds the due: the partial index, not the million
            query = sa.select(MarketingEnrollment.id).where(MarketingEnrollment.status == "waiting", MarketingEnrollment.wake_at <= now).order_by(
                MarketingEnrollment.wake_at).limit(1000)
            sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
            plan = [str(r[-1]) for r in session.execute(sa.text(("EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN ") + sql))]
        print(f"{backend} plan: {' / '.join(plan)[:300]}", file=sys.stderr)
        database.dispose()
        assert moved == due, (moved, due)
        assert any("ix_marketing_enrollment_due" in line for line in plan), plan
        return f"| {backend} | {total:,} | {due:,} | {spent:.2f} s | {due / spent:,.0f} |"


def main() -> None:
    seamline_runtime.wire()  # the channel adapters, as in every process
    heap.settle()  # as `seamline worker` and the server do once started (core/heap.py)
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--waiting", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=20_000)
    parser.add_argument("--skip", choices=("render", "waiting"), default=None)
    parser.add_argument("--batch", type=int, default=500, help="enrollments per transaction of the scheduler")
    parser.add_argument("--channel", choices=("email", "best"), default="email",
                        help="best: no channel named, the next-best-channel model chooses")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    if args.skip != "render":
        print("| backend | channel | messages | time | messages/s | 100,000 would take |")
        print("|---|---|---|---|---|---|")
        for backend in backends:
            print(render_and_hand_over(backend, args.people, args.batch, args.channel), flush=True)
    if args.skip != "waiting":
        print("\n| backend | people waiting | due now | scheduler pass | moved/s |")
        print("|---|---|---|---|---|")
        for backend in backends:
            print(waiting(backend, args.waiting, args.due), flush=True)


if __name__ == "__main__":
    main()
