"""Benchmark: `seamline loyalty rebuild` on the points ledger of 1,000,000 orders.

Setup (not timed): a ledger generated straight into `loyalty_entry` (COPY on PostgreSQL,
executemany on SQLite), as the live code would have written it over the last two years for
`--orders` orders of `--accounts` accounts (orders per account skewed: a lognormal weight per
account, some accounts without orders):

- per order handed over, an `earn` (pending, `available_at` = handover + 14 days, spend = the
  paid amount, 5 % of it in points at 1 point = 1 rouble), and 14 days later (+ the job's
  delay) its `release` to spendable points, expiring 365 days after `available_at` (none when
  a return took back all of it while held);
- at checkout, some orders spend points earned before (`redeem`, at most the balance and at
  most 30 % of the order, first in first out);
- 5 % of handed-over orders are returned (a full or half `reverse`: from the order's pending
  lot if still held, else from its spendable lot first, then first in first out, into a debt
  when spent already) and the points spent on them come back (`restore`, a new credit);
- lots still holding points a year after they became spendable `expire`.

The generator keeps each account's lots as the live code does, so the replay agrees with it:
after the first rebuild, `ledger.check` must return []. Entry ids follow time (the table is in
the order the live system would have written it), accounts start with zero totals and no lots
(the derived state lost). Then, timed in one process:

- **cold**: the rebuild derives every lot and corrects every account with entries;
- **warm**: the same rebuild again on consistent data: 0 accounts corrected;

each followed by `ledger.check` (timed, must be []). For the reading of where the time goes,
also timed apart afterwards: the rebuild's ledger query alone (read without replay) and its
wallet statement alone (`UPDATE loyalty_account SET wallet_balance = ...`, every account row).

    .venv/bin/python bench/loyalty_rebuild.py --backend both
    .venv/bin/python bench/loyalty_rebuild.py --backend postgresql --orders 1000000 --accounts 200000
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import ClassVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import throwaway_database

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.customers.rebuild import BulkWriter
from seamline.loyalty import ledger, rules
from seamline.loyalty import rebuild as loyalty_rebuild
from seamline.loyalty.rebuild import _ENTRY_COLUMNS, FETCH, rebuild_accounts
from seamline.loyalty.schemas import ProgramPut, Tier

US = 1_000_000
HOUR, DAY = 3600 * US, 86_400 * US
HOLD, EXPIRY, JOB_DELAY = 14 * DAY, 365 * DAY, 10 * 60 * US  # the program's defaults; the loyalty job runs every 5-10 min
SPAN = 730 * DAY
#: Tier spend counts entries of the last 365 days *at the rebuild's clock*: an earning or return
#: whose date leaves the window between the cold and the warm run would (rightly) change the
#: account's tier spend. No earning or return is dated in the first GAP after `now - 365 days`
#: (they move to its end), so the warm run finds nothing to correct within GAP of generation.
TIER_WINDOW, GAP = 365 * DAY, 6 * HOUR
P_REDEEM, P_RETURN = 0.30, 0.05
CHANNELS = ("store", "web", "app", "call_center")
CHANNEL_WEIGHTS = (0.40, 0.35, 0.20, 0.05)
KINDS = ("earn", "release", "redeem", "reverse", "restore", "expire")
EARN, RELEASE, REDEEM, REVERSE, RESTORE, EXPIRE = range(6)

PROGRAM = ProgramPut(tiers=[
    Tier(code="silver", name_ru="Серебро", name_en="Silver", min_spend=30_000_00),
    Tier(code="gold", name_ru="Золото", name_en="Gold", min_spend=100_000_00),
])


@dataclass
class Ledger:
    """The generated entries, column by column, in generation order (grouped by account, in time
    order within an account); `ids` gives each its id (time order over all accounts)."""

    now: int  # µs since the epoch
    accounts: int
    orders: int
    account: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    available: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    spend: list[int] = field(default_factory=list)
    order_id: list[int] = field(default_factory=list)  # 0: none
    source: list[int] = field(default_factory=list)  # index of the source entry, -1: none
    available_at: list[int] = field(default_factory=list)  # -1: none
    expires_at: list[int] = field(default_factory=list)  # -1: none
    created: list[int] = field(default_factory=list)
    channel: list[int] = field(default_factory=list)  # -1: none
    #: Every lot as the simulation left it: [spendable?, remaining, expires_at, entry index].
    lots: list[list[int]] = field(default_factory=list)
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.kind)

    def counts(self) -> dict[str, int]:
        found = np.bincount(np.asarray(self.kind), minlength=len(KINDS))
        return {name: int(n) for name, n in zip(KINDS, found)}


def generate(orders: int, accounts: int, *, now: datetime, seed: int = 5) -> Ledger:
    """Simulate every account's ledger under the live rules (see the module doc)."""
    rng = np.random.default_rng(seed)
    r = random.Random(seed)
    t_now = int(now.timestamp() * US)
    gap_start, gap_end = t_now - TIER_WINDOW, t_now - TIER_WINDOW + GAP
    led = Ledger(now=t_now, accounts=accounts, orders=orders)
    # Orders: times uniform over two years (ids in time order), accounts by a skewed weight,
    # paid totals lognormal around 3,000 roubles (minor units).
    times = np.sort(rng.integers(t_now - SPAN, t_now - 2 * HOUR, orders))
    weights = rng.lognormal(0.0, 1.0, accounts)
    owner = rng.choice(accounts, size=orders, p=weights / weights.sum()) + 1
    totals = np.clip(rng.lognormal(np.log(300_000), 0.8, orders), 10_000, 10_000_000).astype(np.int64)
    channels = rng.choice(len(CHANNELS), size=orders, p=CHANNEL_WEIGHTS)
    by_account = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[by_account], np.arange(1, accounts + 2))

    A, K, AV, PE, SP, OR, SO, AA, EA, CR, CH = (led.account, led.kind, led.available, led.pending, led.spend, led.order_id,
                                                led.source, led.available_at, led.expires_at, led.created, led.channel)

    def emit(acc: int, kind: int, t: int, available: int = 0, pending: int = 0, spend: int = 0, order: int = 0,
             source: int = -1, available_at: int = -1, expires_at: int = -1, channel: int = -1) -> int:
        A.append(acc); K.append(kind); AV.append(available); PE.append(pending); SP.append(spend); OR.append(order)
        SO.append(source); AA.append(available_at); EA.append(expires_at); CR.append(t); CH.append(channel)
        return len(K) - 1

    def outside_gap(t: int) -> int:
        return gap_end + r.randrange(HOUR) if gap_start <= t < gap_end else t

    def fifo(lots: list) -> list:
        return sorted((lot for lot in lots if lot[0] and lot[1] > 0), key=lambda lot: (lot[2], lot[3]))

    def take(order: list, points: int) -> None:
        for lot in order:
            if points <= 0:
                return
            taken = min(lot[1], points)
            lot[1] -= taken
            points -= taken

    order_ids = np.arange(1, orders + 1)
    for acc in range(1, accounts + 1):
        picked = by_account[bounds[acc - 1]:bounds[acc]]
        if not len(picked):
            continue
        heap: list = []
        n = 0
        for o, t, total, ch in zip(order_ids[picked].tolist(), times[picked].tolist(), totals[picked].tolist(),
                                   channels[picked].tolist()):
            heap.append((t, n, 0, (o, total, ch)))
            n += 1
        heapq.heapify(heap)
        balance = 0
        lots: list = []  # [available?, remaining, expires_at, entry index]
        while heap:
            t, _, event, data = heapq.heappop(heap)
            if event == 0:  # checkout: maybe spend points, then the handover earns
                o, total, ch = data
                spent = 0
                if balance > 0 and r.random() < P_REDEEM:
                    spent = min(balance, total * 30 // 100 // 100)
                    if spent > 0:
                        take(fifo(lots), spent)
                        balance -= spent
                        emit(acc, REDEEM, t, available=-spent, order=o, channel=ch)
                handover = t + (r.randrange(60 * US) if ch == 0 else r.randrange(DAY, 5 * DAY))
                if handover < t_now:
                    heapq.heappush(heap, (outside_gap(handover), n, 1, (o, total - spent * 100, spent, ch)))
                    n += 1
            elif event == 1:  # earn, pending for the hold
                o, paid, spent, ch = data
                points = max(1, paid // 2000)
                idx = emit(acc, EARN, t, pending=points, spend=paid, order=o, available_at=t + HOLD, channel=ch)
                lot = [0, points, t + HOLD, idx]
                lots.append(lot)
                led.lots.append(lot)
                if (release := t + HOLD + r.randrange(JOB_DELAY)) < t_now:
                    heapq.heappush(heap, (release, n, 2, (lot, o)))
                    n += 1
                if r.random() < P_RETURN and (back := outside_gap(t + r.randrange(DAY, 30 * DAY))) < t_now:
                    heapq.heappush(heap, (back, n, 3, (lot, o, points, paid, spent, ch)))
                    n += 1
            elif event == 2:  # release: what is left of the lot becomes spendable (after any debt)
                lot, o = data
                points, debt = lot[1], max(0, -balance)
                if not points:  # taken back whole while held: nothing to release (`ledger.release_due`)
                    continue
                expires = lot[2] + EXPIRY
                emit(acc, RELEASE, t, available=points, pending=-points, order=o, source=lot[3], expires_at=expires)
                lot[0], lot[1], lot[2] = 1, max(0, points - debt), expires
                balance += points
                if (expiry := expires + r.randrange(JOB_DELAY)) < t_now:
                    heapq.heappush(heap, (expiry, n, 4, lot))
                    n += 1
            elif event == 3:  # a return: take back earned points, give back spent ones
                lot, o, earned, paid, spent, ch = data
                half = r.random() < 0.3
                points = earned // 2 if half else earned
                from_pending = min(points, lot[1]) if not lot[0] else 0
                lot[1] -= from_pending
                rest = points - from_pending
                if rest:
                    order = fifo(lots)
                    if lot[0]:
                        order = [lot] + [other for other in order if other is not lot]
                    take(order, rest)
                emit(acc, REVERSE, t, available=-rest, pending=-from_pending, spend=-(paid // 2 if half else paid), order=o,
                     source=lot[3], channel=ch)
                balance -= rest
                give = spent // 2 if half else spent
                if give:
                    debt = max(0, -balance)
                    idx = emit(acc, RESTORE, t, available=give, order=o, available_at=t, expires_at=t + EXPIRY, channel=ch)
                    if give > debt:
                        credit = [1, give - debt, t + EXPIRY, idx]
                        lots.append(credit)
                        led.lots.append(credit)
                        if (expiry := t + EXPIRY + r.randrange(JOB_DELAY)) < t_now:
                            heapq.heappush(heap, (expiry, n, 4, credit))
                            n += 1
                    balance += give
            else:  # expiry of what is left of a lot
                lot = data
                if lot[1] > 0:
                    emit(acc, EXPIRE, t, available=-lot[1], source=lot[3])
                    balance -= lot[1]
                    lot[1] = 0
            if len(lots) > 16:
                lots = [lot for lot in lots if not lot[0] or lot[1] > 0]
    created = np.asarray(led.created, dtype=np.int64)
    in_time = np.lexsort((np.arange(len(created)), created))  # time, then generation order (an account's own order)
    led.ids = np.empty(len(created), dtype=np.int64)
    led.ids[in_time] = np.arange(1, len(created) + 1)
    return led


class _TimedCursor:
    """The rebuild's write cursor, timing the statements of interest (see `TimedWriter`)."""

    LABELS: ClassVar[dict[str, str]] = {"DELETE FROM loyalty_lot": "lots delete", "UPDATE loyalty_account SET wallet_balance": "wallet"}

    def __init__(self, cursor, seconds: dict[str, float]):
        self._cursor, self._seconds = cursor, seconds

    def execute(self, sql, *args, **kwargs):
        label = next((name for prefix, name in self.LABELS.items() if sql.startswith(prefix)), None)
        t = time.perf_counter()
        try:
            return self._cursor.execute(sql, *args, **kwargs)
        finally:
            if label:
                self._seconds[label] = self._seconds.get(label, 0.0) + time.perf_counter() - t

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)


class TimedWriter(BulkWriter):
    """`BulkWriter` timing what the rebuild's write phase does, put in place of the rebuild's
    writer by `timed_rebuild` (the rebuild's own code runs unchanged): lots inserted, account
    columns corrected, lots deleted, the wallet statement."""

    seconds: ClassVar[dict[str, float]] = {}

    def __init__(self, cursor, postgres: bool):
        super().__init__(_TimedCursor(cursor, TimedWriter.seconds), postgres)

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if table != "loyalty_lot":
            return super().insert(table, columns, rows)
        t = time.perf_counter()
        super().insert(table, columns, rows)
        self.seconds["lots insert"] = self.seconds.get("lots insert", 0.0) + time.perf_counter() - t

    def update_from(self, table: str, column: str, keys: list[int], values: list, *, text: bool = False) -> None:
        t = time.perf_counter()
        super().update_from(table, column, keys, values, text=text)
        self.seconds["accounts corrected"] = self.seconds.get("accounts corrected", 0.0) + time.perf_counter() - t


def timed_rebuild(database: Database):
    """`rebuild_accounts` with the write phase's parts timed; "commit" is what the report's total
    has beyond replay and write (the commit, and on SQLite the foreign key check of the lots)."""
    TimedWriter.seconds = {}
    loyalty_rebuild.BulkWriter = TimedWriter
    try:
        report = rebuild_accounts(database)
    finally:
        loyalty_rebuild.BulkWriter = BulkWriter
    parts = {k: round(v, 2) for k, v in TimedWriter.seconds.items()}
    parts["other write (lot rows built, accounts read and compared)"] = round(report.seconds["write"] - sum(TimedWriter.seconds.values()), 2)
    parts["commit"] = round(report.seconds["total"] - report.seconds["replay"] - report.seconds["write"], 2)
    return report, parts


def _stamps(values: list[int] | np.ndarray, *, postgres: bool) -> list[str | None]:
    arr = np.asarray(values, dtype=np.int64)
    text = np.datetime_as_string(arr.astype("datetime64[us]"), unit="us")
    out = [f"{s[:10]} {s[11:]}+00" if postgres else f"{s[:10]} {s[11:]}" for s in text.tolist()]
    for i in np.flatnonzero(arr < 0).tolist():
        out[i] = None
    return out


ENTRY_COLUMNS = ("id", "account_id", "kind", "available_delta", "pending_delta", "spend_delta", "order_id", "source_entry_id",
                 "available_at", "expires_at", "reference", "channel", "comment", "idempotency_key", "created_at")


def entry_rows(led: Ledger, *, postgres: bool):
    """Rows of `ENTRY_COLUMNS` in id order."""
    ids = led.ids.tolist()
    created, available_at, expires_at = (_stamps(c, postgres=postgres) for c in (led.created, led.available_at, led.expires_at))
    for i in np.argsort(led.ids).tolist():
        kind, o, s = led.kind[i], led.order_id[i], led.source[i]
        source_id = ids[s] if s >= 0 else None
        if kind == EARN:
            key, reference = f"earn:order:{o}", f"order:{o}"
        elif kind == RELEASE:
            key, reference = f"release:{source_id}", f"entry:{source_id}"
        elif kind == REDEEM:
            key, reference = f"redeem:order:{o}", f"order:{o}"
        elif kind == REVERSE:
            key, reference = f"reverse:return:{o}", f"return:{o}"
        elif kind == RESTORE:
            key, reference = f"restore:return:{o}", f"return:{o}"
        else:
            key, reference = f"expire:{source_id}", f"entry:{source_id}"
        ch = led.channel[i]
        yield (ids[i], led.account[i], KINDS[kind], led.available[i], led.pending[i], led.spend[i], o or None, source_id,
               available_at[i], expires_at[i], reference, CHANNELS[ch] if ch >= 0 else None, "", key, created[i])


def _copy(cursor, table: str, columns: tuple[str, ...], rows) -> None:
    """COPY in text format, a megabyte at a time (none of the values needs escaping)."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        chunk: list[str] = []
        for row in rows:
            chunk.append("\t".join("\\N" if v is None else str(v) for v in row))
            if len(chunk) >= 10_000:
                copy.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            copy.write("\n".join(chunk) + "\n")


def load(database: Database, led: Ledger, *, profiles: bool = False) -> None:
    """Accounts 1..N with zero totals (profile_id = the account's id when `profiles`, after
    making profiles 1..N; else NULL), the program, and the ledger (not timed)."""
    postgres = database.dialect == "postgresql"
    start = datetime.fromtimestamp((led.now - SPAN - DAY) / US, UTC)
    stamp = start.isoformat(" ") if postgres else start.strftime("%Y-%m-%d %H:%M:%S.%f")
    with database.write() as session:
        rules.put_program(session, PROGRAM)
    with database.bulk_write() as session:
        cursor = session.connection().connection.dbapi_connection.cursor()
        accounts = range(1, led.accounts + 1)
        account_columns = ("id", "profile_id", "points_available", "points_pending", "wallet_balance", "tier_spend",
                           "created_at", "updated_at")
        account_rows = ((i, i if profiles else None, 0, 0, 0, 0, stamp, stamp) for i in accounts)
        if postgres:
            if profiles:
                _copy(cursor, "customer_profile", ("id", "status", "created_at", "updated_at"),
                      ((i, "active", stamp, stamp) for i in accounts))
            _copy(cursor, "loyalty_account", account_columns, account_rows)
            _copy(cursor, "loyalty_entry", ENTRY_COLUMNS, entry_rows(led, postgres=True))
            for table in ("customer_profile", "loyalty_account", "loyalty_entry"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest((SELECT max(id) FROM {table}), 1))")
        else:
            if profiles:
                cursor.executemany("INSERT INTO customer_profile (id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)",
                                   ((i, stamp, stamp) for i in accounts))
            cursor.executemany(f"INSERT INTO loyalty_account ({', '.join(account_columns)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               account_rows)
            marks = ", ".join("?" for _ in ENTRY_COLUMNS)
            cursor.executemany(f"INSERT INTO loyalty_entry ({', '.join(ENTRY_COLUMNS)}) VALUES ({marks})",
                               entry_rows(led, postgres=False))


def settle(database: Database) -> None:
    """PostgreSQL: what autovacuum does after a bulk load on a live system (not timed). SQLite:
    nothing (Seamline never runs ANALYZE there, so the planner works without statistics)."""
    if database.dialect == "postgresql":
        with database.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE loyalty_account, loyalty_entry, loyalty_lot, customer_profile")


def lots_as_simulated(database: Database, led: Ledger) -> int:
    """How many lots the rebuild left different from the generator's own (entry, state,
    remaining): a check of the replay finer than `ledger.check`'s sums."""
    expected = {int(led.ids[lot[3]]): ("available" if lot[0] else "pending", lot[1]) for lot in led.lots if lot[1] > 0}
    with database.read() as session:
        found = {e: (s, r) for e, s, r in session.connection().exec_driver_sql(
            "SELECT entry_id, state, remaining FROM loyalty_lot")}
    return sum(1 for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))


def timed_check(database: Database) -> tuple[float, int]:
    t = time.perf_counter()
    with database.read() as session:
        problems = ledger.check(session)
    seconds = time.perf_counter() - t
    if problems:
        print(json.dumps(problems[:5], default=str, indent=1), file=sys.stderr)
    return seconds, len(problems)


def read_alone(database: Database) -> float:
    """The rebuild's ledger query with nothing done with the rows: the read's share."""
    t = time.perf_counter()
    with database.read() as session:
        dbapi = session.connection().connection.dbapi_connection
        reader = dbapi.cursor(name="bench_read") if database.dialect == "postgresql" else dbapi.cursor()
        reader.execute(f"SELECT {_ENTRY_COLUMNS} FROM loyalty_entry ORDER BY account_id, id")
        while reader.fetchmany(FETCH):
            pass
        reader.close()
    return time.perf_counter() - t


def wallet_alone(database: Database) -> float:
    """The rebuild's wallet statement alone (it rewrites every account row)."""
    t = time.perf_counter()
    with database.write() as session:
        session.connection().exec_driver_sql(
            "UPDATE loyalty_account SET wallet_balance = COALESCE((SELECT SUM(amount) FROM loyalty_wallet_entry w "
            "WHERE w.account_id = loyalty_account.id), 0)")
    return time.perf_counter() - t


def plan(database: Database) -> str:
    with database.read() as session:
        prefix = "EXPLAIN" if database.dialect == "postgresql" else "EXPLAIN QUERY PLAN"
        rows = session.connection().exec_driver_sql(f"{prefix} SELECT {_ENTRY_COLUMNS} FROM loyalty_entry ORDER BY account_id, id")
        return " / ".join(str(row[-1]) for row in rows)


def run_backend(backend: str, led: Ledger) -> dict:
    with throwaway_database(backend, "seamline-loyalty") as (url, _workdir):
        database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
        t = time.perf_counter()
        load(database, led)
        settle(database)
        loaded = time.perf_counter() - t
        print(f"[{backend}] loaded {len(led):,} entries in {loaded:.1f} s; plan: {plan(database)}", file=sys.stderr)
        cold, cold_parts = timed_rebuild(database)
        cold_check = timed_check(database)
        wrong_lots = lots_as_simulated(database, led)
        print(f"[{backend}] cold: {json.dumps(cold.as_dict())}, write and commit: {json.dumps(cold_parts)}, check {cold_check[0]:.2f} s, {cold_check[1]} problems, "
              f"{wrong_lots} lots unlike the simulation's", file=sys.stderr)
        settle(database)
        warm, warm_parts = timed_rebuild(database)
        warm_check = timed_check(database)
        print(f"[{backend}] warm: {json.dumps(warm.as_dict())}, write and commit: {json.dumps(warm_parts)}, check {warm_check[0]:.2f} s, {warm_check[1]} problems",
              file=sys.stderr)
        settle(database)
        read = read_alone(database)
        wallet = wallet_alone(database)
        print(f"[{backend}] apart: ledger query alone {read:.2f} s, wallet statement alone {wallet:.2f} s", file=sys.stderr)
        database.dispose()
    return {"backend": backend, "loaded": loaded, "cold": cold, "warm": warm, "cold_check": cold_check,
            "warm_check": warm_check, "cold_parts": cold_parts, "warm_parts": warm_parts, "wrong_lots": wrong_lots, "read": read, "wallet": wallet}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=200_000)
    args = parser.parse_args()

    t = time.perf_counter()
    led = generate(args.orders, args.accounts, now=datetime.now(UTC))
    counts = led.counts()
    print(f"generated {len(led):,} entries in {time.perf_counter() - t:.1f} s: {counts}", file=sys.stderr)
    results = [run_backend(b, led) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])]

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parent).stdout.strip()
    command = ".venv/bin/python bench/loyalty_rebuild.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, commit {commit}: `{command.strip()}`; ledger: "
          + ", ".join(f"{n:,} {k}" for k, n in counts.items()) + "\n")
    print("| backend | orders | entries | accounts | lots | cold rebuild s (replay, write) | corrected | check s "
          "| lots as simulated | warm rebuild s (replay, write) | corrected | check s | ledger query alone s "
          "| wallet statement alone s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for res in results:
        cold, warm = res["cold"], res["warm"]
        print(f"| {res['backend']} | {args.orders:,} | {cold.entries:,} | {cold.accounts:,} | {cold.lots:,} "
              f"| {cold.seconds['total']:.2f} ({cold.seconds['replay']:.2f}, {cold.seconds['write']:.2f}) "
              f"| {cold.accounts_corrected:,} | {res['cold_check'][0]:.2f} "
              f"| {'yes' if not res['wrong_lots'] else str(res['wrong_lots']) + ' differ'} "
              f"| {warm.seconds['total']:.2f} ({warm.seconds['replay']:.2f}, {warm.seconds['write']:.2f}) "
              f"| {warm.accounts_corrected:,} | {res['warm_check'][0]:.2f} | {res['read']:.2f} | {res['wallet']:.2f} |")
        if (res["cold_check"][1] or res["warm_check"][1] or warm.accounts_corrected or warm.lots != cold.lots
                or res["wrong_lots"]):
            failed = True
            print(f"problems ({res['backend']}): check {res['cold_check'][1]}/{res['warm_check'][1]}, "
                  f"warm corrected {warm.accounts_corrected}, lots {cold.lots}/{warm.lots}, "
                  f"lots unlike the simulation's {res['wrong_lots']}", file=sys.stderr)
    print("\n| backend | run | lots deleted s | lots inserted s | accounts corrected s | wallet statement s | other write s "
          "| commit (+ SQLite foreign key check) s |")
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        for run in ("cold", "warm"):
            parts = res[f"{run}_parts"]
            print(f"| {res['backend']} | {run} | " + " | ".join(f"{parts.get(k, 0.0):.2f}" for k in (
                "lots delete", "lots insert", "accounts corrected", "wallet",
                "other write (lot rows built, accounts read and compared)", "commit")) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
