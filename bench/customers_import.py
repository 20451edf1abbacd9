"""Benchmark: bulk customer import (`seamline customers import`, issue 20).

Generates a CRM export of N people (default 100,000) with about 2.5 identifiers each: a phone
in one of four formats, an email for most (mixed case), a loyalty card for some, an external id
for some; a share of people appear twice (a second row with the email in other case and a new
card: the file's own duplicates to merge); traits, consents with dates, and an opening balance
for a share of people. Writes the CSV, then on a new database of each backend:

- the import, with validate / plan / write timed apart (the service's own report);
- the machine's limit beside it: the same identity rows inserted raw into a copy of
  `customer_identity` (executemany on SQLite, COPY on PostgreSQL), in the same database;
- the re-import of the same file (the idempotent no-op).

    .venv/bin/python bench/customers_import.py --backend sqlite
    .venv/bin/python bench/customers_import.py --backend postgresql --people 1000000
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import throwaway_database  # noqa: E402

from seamline.core.config import Settings  # noqa: E402
from seamline.core.db import Database  # noqa: E402
from seamline.customers import imports  # noqa: E402
from seamline.customers.identifiers import IdentifierRules  # noqa: E402
from seamline.customers.rebuild import BulkWriter  # noqa: E402
from seamline.runtime import wire  # noqa: E402

HEADER = ["external_id", "email", "phone", "card", "trait.first_name", "trait.city", "consent.email.marketing",
          "consent.sms.marketing", "consent_at", "loyalty.opening_balance"]
NAMES = ["Анна", "Борис", "Ольга", "Дмитрий", "Елена", "Иван", "Мария", "Сергей"]
CITIES = ["Москва", "Казань", "Тверь", "Самара", "Пермь"]


def phone(i: int, style: int) -> str:
    digits = f"9{i:09d}"  # +7 9xx xxx xx xx, unique per person
    a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
    return (f"+7{digits}", f"8 ({a}) {b}-{c}-{d}", f"+7 {a} {b} {c} {d}", f"8{digits}")[style]


def generate(path: Path, people: int, *, duplicate_share: float, balance_share: float, seed: int = 20) -> dict:
    rng = random.Random(seed)
    rows = identifiers = balances = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(people):
            email = f"Person.{i}@Example.com" if rng.random() < 0.75 else ""
            card = f"2{i:012d}" if rng.random() < 0.45 else ""
            external = f"CRM-{i}" if rng.random() < 0.3 else ""
            balance = str(rng.randrange(1, 5000)) if rng.random() < balance_share else ""
            balances += bool(balance)
            writer.writerow([external, email, phone(i, i % 4), card, rng.choice(NAMES), rng.choice(CITIES),
                             rng.choice(["yes", "no", ""]), rng.choice(["yes", ""]), "2023-05-17", balance])
            rows += 1
            identifiers += 1 + bool(email) + bool(card) + bool(external)
            if email and rng.random() < duplicate_share:  # the same person again, from another store
                writer.writerow(["", email.upper(), "", f"3{i:012d}", "", rng.choice(CITIES), "", "", "", ""])
                rows += 1
                identifiers += 2
    return {"rows": rows, "identifiers_in_file": identifiers, "balances": balances}


def raw_limit(url: str, report_rows: list[tuple]) -> float:
    """Insert the same identity rows into an empty copy of customer_identity: the machine's limit."""
    database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
    postgres = database.dialect == "postgresql"
    started = time.perf_counter()
    with database.bulk_write() as session:
        cursor = session.connection().connection.dbapi_connection.cursor()
        cursor.execute("CREATE TABLE bench_identity AS SELECT * FROM customer_identity WHERE 1 = 0")
        cursor.execute("CREATE UNIQUE INDEX bench_identity_tv ON bench_identity (type, value)")
        cursor.execute("CREATE INDEX bench_identity_p ON bench_identity (profile_id)")
        writer = BulkWriter(cursor, postgres)
        for start in range(0, len(report_rows), imports.BATCH):
            writer.insert("bench_identity", ["id", "type", "value", "profile_id", "source", "created_at", "verified_at",
                                             "verified_by"], report_rows[start : start + imports.BATCH])
    seconds = time.perf_counter() - started
    with database.bulk_write() as session:
        session.connection().exec_driver_sql("DROP TABLE bench_identity")
    database.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--duplicate-share", type=float, default=0.05)
    parser.add_argument("--balance-share", type=float, default=0.05)
    parser.add_argument("--no-reimport", action="store_true", help="Skip the second import of the same file")
    args = parser.parse_args()
    wire()
    results = []
    for backend in args.backend or ["sqlite", "postgresql"]:
        with throwaway_database(backend, "customers-import") as (url, workdir):
            path = workdir / "customers.csv"
            t0 = time.perf_counter()
            shape = generate(path, args.people, duplicate_share=args.duplicate_share, balance_share=args.balance_share)
            generated = time.perf_counter() - t0
            settings = Settings(_env_file=None, database_url=url, log_level="WARNING")
            database = Database(settings)
            rules = IdentifierRules(settings)
            data = path.read_bytes()
            started = time.perf_counter()

            def progress(stage: str, done: int, total: int) -> None:
                print(f"[{time.perf_counter() - started:7.1f}s] {stage}: {done:,}{f'/{total:,}' if total else ''}",
                      file=sys.stderr)

            report = imports.import_customers(database, rules=rules, data=data, format="csv", progress=progress)
            wall = time.perf_counter() - started
            with database.read() as session:
                cursor = session.connection().connection.dbapi_connection.cursor()
                cursor.execute("SELECT id, type, value, profile_id, source, created_at, verified_at, verified_by "
                               "FROM customer_identity ORDER BY id")
                identity_rows = [tuple(r) for r in cursor.fetchall()]
            if backend == "sqlite":
                identity_rows = [(*r[:5], str(r[5]), str(r[6]), r[7]) for r in identity_rows]
            database.dispose()
            limit = raw_limit(url, identity_rows)
            again, reimport = None, 0.0
            if not args.no_reimport:
                database = Database(settings)
                t1 = time.perf_counter()
                again = imports.import_customers(database, rules=rules, data=data, format="csv")
                reimport = time.perf_counter() - t1
                database.dispose()
            results.append({
                "backend": backend, "people": args.people, **shape, "file_mb": round(len(data) / 1e6, 1),
                "generate_s": round(generated, 1), "import_s": round(wall, 2), "seconds": report.seconds,
                "profiles_created": report.profiles_created, "identities_created": report.identities_created,
                "links_created": report.links_created, "consents_recorded": report.consents_recorded,
                "balances_credited": report.balances_credited,
                "raw_identity_insert_s": round(limit, 2),
                **({"reimport_s": round(reimport, 2), "reimport_seconds": again.seconds,
                    "reimport_identities_created": again.identities_created,
                    "reimport_balances": again.balances_credited} if again else {}),
            })
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
