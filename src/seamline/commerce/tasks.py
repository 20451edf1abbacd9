"""Commerce's periodic tasks, each run once per period for the whole cluster by the job queue's
workers (see `core.queue`):

- `stock-sync`: imports the files the accounting system drops into `commerce_sync_dir`, every
  `commerce_sync_interval_seconds` (only when the folder is set);
- `order-expiry`: cancels orders whose hold ran out (unpaid, or ready for pickup and never
  collected) and releases their stock, every `commerce_expire_interval_seconds`;
- `refunds`: resends refunds a payment provider could not take yet, every
  `commerce_refund_retry_seconds`.

Each is also a command for cron (`seamline stock sync-dir`, `seamline commerce expire`,
`seamline commerce send-refunds`). All are safe to run in several processes at once.
"""

from __future__ import annotations

from pathlib import Path

from seamline.commerce import orders, payments, sync
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic

EXPIRY_BATCH = 200


def expire_due_orders(database: Database) -> list[int]:
    """Cancel every overdue order, a batch per transaction; returns their ids."""
    cancelled: list[int] = []
    while True:
        batch = database.run_write(lambda session: orders.expire_orders(session, limit=EXPIRY_BATCH))
        cancelled.extend(batch)
        if len(batch) < EXPIRY_BATCH:
            return cancelled


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    jobs = []
    if settings.commerce_sync_dir:
        folder = Path(settings.commerce_sync_dir)
        jobs.append(Periodic("stock-sync", settings.commerce_sync_interval_seconds,
                                lambda: sync.import_folder(database, settings=settings, folder=folder)))
    if settings.commerce_expire_interval_seconds:
        jobs.append(Periodic("order-expiry", settings.commerce_expire_interval_seconds,
                                lambda: expire_due_orders(database)))
    if settings.commerce_refund_retry_seconds:
        jobs.append(Periodic("refunds", settings.commerce_refund_retry_seconds,
                                lambda: payments.send_requested_refunds(database, settings=settings)))
    return jobs
