"""Loyalty's scheduled work, run once every `loyalty_job_interval_seconds` for the whole cluster
by the job queue's workers (see `core.queue`), and by `seamline loyalty run-jobs` for cron:

- release earnings whose hold ran out (pending -> spendable);
- expire lots past their expiry, first in, first out;
- give birthday bonuses (once a year per account);
- re-evaluate tiers not evaluated for a day (spend leaves the rolling window as time passes).

Each step works in batches of one transaction each and is safe in several processes at once
(each effect has its idempotency key; accounts are locked).
"""

from __future__ import annotations

from datetime import datetime

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic
from seamline.core.time import utcnow
from seamline.loyalty import ledger, rules, service

BATCH = 500


def _until_done(database: Database, step) -> int:  # noqa: ANN001 - step(session) -> how many it handled
    total = 0
    while True:
        done = database.run_write(step)
        total += done
        if done < BATCH:
            return total


def run_due(database: Database, *, now: datetime | None = None) -> dict[str, int]:
    """Every scheduled step once, to the end of what is due; returns how much each did."""
    now = now or utcnow()
    return {
        "released": _until_done(database, lambda s: ledger.release_due(s, program=rules.get_program(s), now=now, limit=BATCH)),
        "expired": _until_done(database, lambda s: ledger.expire_due(s, now=now, limit=BATCH)),
        "birthdays": _until_done(database, lambda s: service.birthday_bonuses(s, now=now, limit=BATCH)),
        "tiers": _until_done(database, lambda s: service.reevaluate_tiers(s, now=now, limit=BATCH)),
    }


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    if not settings.loyalty_job_interval_seconds:
        return []
    return [Periodic("loyalty", settings.loyalty_job_interval_seconds, lambda: run_due(database))]
