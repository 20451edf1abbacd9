"""`seamline loyalty rebuild`: recompute every account's derived state from the ledger alone.

The ledger (`loyalty_entry`) is the truth; the running totals of each account and its lots
(what each credit has left, for the hold and first-in-first-out expiry) are derived. The rebuild
replays every entry in (account, id) order under the rules `ledger` applies live:

- a credit to pending makes a pending lot (until the entry's `available_at`); a credit to
  spendable points first pays off a debt, the rest is a lot expiring at the entry's `expires_at`;
- a release makes its source lot spendable (what is left after paying off a debt), expiring at
  the release's `expires_at`; an expiry empties its source lot;
- a reversal takes its pending part from its source lot, its spendable part from the source lot
  (when spendable) and then first in, first out; any other debit takes first in, first out
  (soonest expiry first, then oldest, never-expiring last); a transfer out empties every lot.

Then lots are rewritten, and the accounts whose totals, tier spend or tier differ are corrected
(how many is reported: 0 on a healthy database), and wallets are summed from their ledger. The
run holds the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an EXCLUSIVE lock on the
accounts that still lets readers read), so live changes wait rather than interleave.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from seamline.core.db import Database
from seamline.core.time import utcnow
from seamline.customers.rebuild import BulkWriter
from seamline.loyalty import rules
from seamline.loyalty.ledger import CREDITS

FETCH = 50_000
_ENTRY_COLUMNS = ("account_id, id, kind, available_delta, pending_delta, spend_delta, source_entry_id, order_id, "
                  "available_at, expires_at, created_at, CASE WHEN kind = 'transfer' THEN idempotency_key END")


@dataclass
class LoyaltyRebuildReport:
    entries: int = 0
    accounts: int = 0
    lots: int = 0
    accounts_corrected: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Lot:
    __slots__ = ("entry_id", "state", "points", "remaining", "order_id", "available_at", "expires_at")

    def __init__(self, entry_id: int, state: str, points: int, remaining: int, order_id: int | None, available_at: Any,
                 expires_at: Any):
        self.entry_id, self.state, self.points, self.remaining = entry_id, state, points, remaining
        self.order_id, self.available_at, self.expires_at = order_id, available_at, expires_at


def _fifo(lots: dict[int, _Lot]) -> list[_Lot]:
    spendable = [lot for lot in lots.values() if lot.state == "available" and lot.remaining > 0]
    spendable.sort(key=lambda lot: (lot.expires_at is None, lot.expires_at or 0, lot.entry_id))
    return spendable


def _take(lots: list[_Lot], points: int) -> None:
    for lot in lots:
        if points <= 0:
            return
        taken = min(lot.remaining, points)
        lot.remaining -= taken
        points -= taken


class _Account:
    """One account's replay."""

    __slots__ = ("available", "pending", "spend", "lots")

    def __init__(self) -> None:
        self.available = self.pending = self.spend = 0
        self.lots: dict[int, _Lot] = {}

    def apply(self, row: tuple, since: Any) -> None:
        _account, entry_id, kind, available, pending, spend, source, order_id, available_at, expires_at, created_at, key = row
        if created_at >= since:
            self.spend += spend
        lots = self.lots
        if kind == "release":
            lot = lots.get(source)
            if lot is not None:
                lot.state, lot.remaining, lot.expires_at = "available", max(0, available - max(0, -self.available)), expires_at
        elif kind == "expire":
            lot = lots.get(source)
            if lot is not None:
                lot.remaining = 0
        elif kind == "transfer" and key is not None and key.endswith(":out"):
            for lot in lots.values():
                lot.remaining = 0
        elif pending > 0:  # an earning (or a transfer) inside its hold
            lots[entry_id] = _Lot(entry_id, "pending", pending, pending, order_id, available_at, None)
        elif available > 0 and (kind == "earn" or kind in CREDITS):
            left = available - max(0, -self.available)
            if left > 0:
                lots[entry_id] = _Lot(entry_id, "available", available, left, order_id, available_at, expires_at)
        else:
            own = lots.get(source) if kind == "reverse" else None
            if pending < 0 and own is not None and own.state == "pending":
                own.remaining -= min(-pending, own.remaining)
            if available < 0:
                order = _fifo(lots)
                if own is not None and own.state == "available":
                    order = [own] + [lot for lot in order if lot is not own]
                _take(order, -available)
        self.available += available
        self.pending += pending


def rebuild_accounts(database: Database) -> LoyaltyRebuildReport:
    report = LoyaltyRebuildReport()
    started = time.perf_counter()
    now = utcnow()
    with database.bulk_write(check_tables=("loyalty_lot",)) as session:
        program = rules.get_program(session)
        postgres = database.dialect == "postgresql"
        connection = session.connection()
        dbapi = connection.connection.dbapi_connection
        writer = BulkWriter(dbapi.cursor(), postgres)
        since = writer.timestamp(now - timedelta(days=program.tier_window_days))
        if postgres:
            writer.cursor.execute("LOCK TABLE loyalty_account, loyalty_entry, loyalty_lot IN EXCLUSIVE MODE")
            reader = dbapi.cursor(name="loyalty_rebuild")  # server side: the ledger never sits in memory whole
        else:
            reader = dbapi.cursor()
        reader.execute(f"SELECT {_ENTRY_COLUMNS} FROM loyalty_entry ORDER BY account_id, id")

        replayed: dict[int, _Account] = {}
        lot_rows: list[tuple] = []
        current_id, current = None, None
        while rows := reader.fetchmany(FETCH):
            for row in rows:
                if row[0] != current_id:
                    current_id, current = row[0], _Account()
                    replayed[current_id] = current
                current.apply(row, since)
            report.entries += len(rows)
        reader.close()
        report.seconds["replay"] = round(time.perf_counter() - started, 3)

        t1 = time.perf_counter()
        for account_id, account in replayed.items():
            lot_rows.extend((account_id, lot.entry_id, lot.state, lot.points, lot.remaining, lot.order_id, lot.available_at,
                             lot.expires_at) for lot in account.lots.values() if lot.remaining > 0)
        writer.cursor.execute("DELETE FROM loyalty_lot")
        writer.insert("loyalty_lot", ["account_id", "entry_id", "state", "points", "remaining", "order_id", "available_at",
                                      "expires_at"], lot_rows)
        report.lots = len(lot_rows)

        writer.cursor.execute("SELECT id, points_available, points_pending, tier_spend, tier FROM loyalty_account")
        wrong: dict[str, tuple[list[int], list[Any]]] = {c: ([], []) for c in ("points_available", "points_pending", "tier_spend", "tier")}
        for account_id, available, pending, tier_spend, tier in writer.cursor.fetchall():
            report.accounts += 1
            found = replayed.get(account_id) or _Account()
            reached = rules.tier_for_spend(program, found.spend)
            expected = {"points_available": found.available, "points_pending": found.pending, "tier_spend": found.spend,
                        "tier": reached.code if reached else None}
            stored = {"points_available": available, "points_pending": pending, "tier_spend": tier_spend, "tier": tier}
            if expected != stored:
                report.accounts_corrected += 1
            for column, value in expected.items():
                if value != stored[column]:
                    wrong[column][0].append(account_id)
                    wrong[column][1].append(value)
        for column, (keys, values) in wrong.items():
            if keys:
                writer.update_from("loyalty_account", column, keys, values, text=column == "tier")
        writer.cursor.execute(
            "UPDATE loyalty_account SET wallet_balance = COALESCE((SELECT SUM(amount) FROM loyalty_wallet_entry w "
            "WHERE w.account_id = loyalty_account.id), 0)")
        report.seconds["write"] = round(time.perf_counter() - t1, 3)
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report
