"""Bulk import of customers from a CRM or accounting system export (CSV or JSONL; docs/import.md).

Three passes, nothing written before the third:

1. **Validate** the whole file: every identifier normalized by `IdentifierRules`, consents checked
   against the configured vocabulary, balances non-negative integers. Every bad row is collected
   (row, column, reason); any error means `ImportInvalid` and nothing is written.
2. **Plan** in memory: rows that share an identifier, and rows whose identifiers already exist,
   form connected components (scipy, as the rebuild does). A component that touches at most one
   live profile, vouches for no identifier that was only claimed, and whose identifiers fit every
   per-type limit is *simple*: it is one profile (the existing one, or a new one) and is written
   in bulk. Anything else (a row that would merge existing profiles, break a limit, or take back
   a claim) is *resolved*: its rows go through `service.upsert_customer`, the per-request path, in
   file order, so merges, conflicts and trust follow exactly the rules of every other write.
3. **Write** under the write lock in one transaction (a failure leaves nothing behind): profiles,
   identities and links through the driver (COPY / executemany, `rebuild.BulkWriter`), traits by
   one upsert statement per batch, consents appended only when they change something, and
   opening balances handed to the registered `opening_balances` hook (the loyalty ledger, wired
   by the composition root: customers never import loyalty).

Re-importing the same file changes nothing: identifiers exist (same profiles), links are added
only to new identifiers, traits are re-set to the same values, a consent equal to one already
recorded is not repeated, and each balance's idempotency key (`import:opening:...`) is in the
ledger already.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import Unprocessable
from seamline.core.time import utcnow
from seamline.customers import service
from seamline.customers.identifiers import Identifier, IdentifierRules
from seamline.customers.rebuild import BulkWriter
from seamline.customers.schemas import ConsentIn, CustomerUpsert, IdentifierIn

#: CSV column names that stand for an identifier type under another name.
ALIASES = {"card": "loyalty_card", "external_id": "user_id"}
BALANCE_COLUMN = "loyalty.opening_balance"
#: Errors answered at most (the CLI prints them all).
MAX_REPORTED_ERRORS = 1000
BATCH = 5000
#: Rows per piece of the file a validating process takes (a file of fewer than two is checked in-process).
VALIDATE_CHUNK = 20_000
_LOOKUP_CHUNK = 900

#: (session, [(profile id, points, idempotency key)]) -> (credited, already applied)
OpeningBalances = Callable[[Session, list[tuple[int, int, str]]], tuple[int, int]]
_opening_balances: list[OpeningBalances] = []


def register_opening_balances(handler: OpeningBalances) -> None:
    """Who records opening balances (the loyalty ledger); registered by the composition root."""
    if handler not in _opening_balances:
        _opening_balances[:] = [handler]


@dataclass
class RowError:
    row: int
    column: str
    reason: str


class ImportInvalid(Unprocessable):
    code = "import_invalid"

    def __init__(self, errors: list[RowError]):
        shown = errors[:MAX_REPORTED_ERRORS]
        super().__init__(
            f"{len(errors)} problem(s) in the file; nothing was imported",
            details={"error_count": len(errors), "errors": [asdict(e) for e in shown], "truncated": len(errors) > len(shown)},
        )
        self.errors = errors


@dataclass
class Consent:
    channel: str
    purpose: str
    granted: bool
    at: datetime | None


@dataclass
class ImportRow:
    number: int
    #: Normalized, deduplicated, in priority order; the first is the row's primary.
    identifiers: list[Identifier]
    traits: dict[str, Any]
    consents: list[Consent]
    balance: int | None
    ignored: int = 0


@dataclass
class ImportReport:
    sha256: str
    rows: int = 0
    identifiers: int = 0
    ignored_identifiers: int = 0
    people: int = 0
    people_new: int = 0
    people_existing: int = 0
    rows_resolved_one_by_one: int = 0
    profiles_created: int = 0
    identities_created: int = 0
    links_created: int = 0
    traits_set: int = 0
    consents_recorded: int = 0
    balances_credited: int = 0
    balances_already_applied: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str, int, int], None]


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


# --- parse and validate ------------------------------------------------------------------------


def detect_format(name: str | None, content_type: str | None = None) -> str:
    """jsonl for a name or content type that says JSON (`.jsonl`, `.ndjson`, `application/x-ndjson`), else csv."""
    return "jsonl" if "json" in f"{name or ''} {content_type or ''}".lower() else "csv"


def _date(text: str) -> datetime:
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


_YES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}


class _Validator:
    def __init__(self, rules: IdentifierRules):
        self.rules = rules
        self.errors: list[RowError] = []
        self.rows: list[ImportRow] = []

    def error(self, row: int, column: str, reason: str) -> None:
        self.errors.append(RowError(row, column, reason))

    def identifier_type(self, name: str) -> str | None:
        name = ALIASES.get(name, name)
        return name if name in self.rules.types else None

    def add(self, number: int, pairs: list[tuple[str, str, str]], traits: dict[str, Any],
            consents: list[tuple[str, str, Any, Any, str]], balance: Any, balance_column: str) -> None:
        """One row: pairs (column, type, raw value); consents (channel, purpose, granted, at, column)."""
        before = len(self.errors)
        identifiers: list[Identifier] = []
        ignored = 0
        for column, type_name, raw in pairs:
            try:
                usable, blocked = self.rules.prepare([(type_name, raw)])
            except Unprocessable as exc:
                self.error(number, column, exc.message)
                continue
            identifiers += usable
            ignored += len(blocked)
        if not pairs:
            self.error(number, "", "no identifier")
        elif not identifiers and len(self.errors) == before:
            self.error(number, "", "no usable identifier: every value is blocked from identifying anyone")
        settings = self.rules.settings
        checked: list[Consent] = []
        for channel, purpose, granted, at, column in consents:
            if channel not in settings.consent_channels:
                self.error(number, column, f"unknown consent channel {channel!r}")
                continue
            if purpose not in settings.consent_purposes:
                self.error(number, column, f"unknown consent purpose {purpose!r}")
                continue
            if isinstance(granted, str):
                granted = _YES.get(granted.strip().lower())
            if not isinstance(granted, bool):
                self.error(number, column, "consent must be yes or no")
                continue
            when = None
            if at not in (None, ""):
                try:
                    when = _date(at) if isinstance(at, str) else None
                    if when is None:
                        raise ValueError
                except ValueError:
                    self.error(number, column + ".at", f"not an ISO 8601 date: {at!r}")
                    continue
            checked.append(Consent(channel, purpose, granted, when))
        points = None
        if balance not in (None, ""):
            if isinstance(balance, str) and balance.strip().lstrip("+").isdigit():
                points = int(balance.strip())
            elif isinstance(balance, int) and not isinstance(balance, bool) and balance >= 0:
                points = balance
            else:
                self.error(number, balance_column, f"opening balance must be a whole number of points, 0 or more: {balance!r}")
        if len(self.errors) > before:
            return
        seen: set[Identifier] = set()
        unique = [i for i in identifiers if not (i in seen or seen.add(i))]
        unique.sort(key=lambda i: (self.rules.priority[i.type], i.value))
        self.rows.append(ImportRow(number, unique, traits, checked, points or None, ignored))


def _duplicates(rows: list[ImportRow]) -> list[RowError]:
    """Rows equal to an earlier row once normalized (the same export line twice)."""
    first: dict[int, int] = {}
    errors = []
    for row in rows:
        try:  # CSV traits are text: hashable as they are; JSON values may not be
            traits: Any = hash(frozenset(row.traits.items()))
        except TypeError:
            traits = json.dumps(row.traits, sort_keys=True, default=str)
        fingerprint = hash((tuple(row.identifiers), traits,
                            tuple((c.channel, c.purpose, c.granted, c.at) for c in row.consents), row.balance))
        if fingerprint in first:
            errors.append(RowError(row.number, "", f"duplicate of row {first[fingerprint]}"))
        else:
            first[fingerprint] = row.number
    return errors


def _csv_columns(header: list[str], check: _Validator) -> list[tuple[str, str, Any]]:
    """(kind, column name, parsed) per column; unknown columns are errors of row 1."""
    columns: list[tuple[str, str, Any]] = []
    for name in (h.strip() for h in header):
        parts = name.split(".")
        if name == BALANCE_COLUMN:
            columns.append(("balance", name, None))
        elif name == "consent_at":
            columns.append(("consent_at", name, None))
        elif parts[0] == "trait" and len(parts) == 2 and parts[1]:
            columns.append(("trait", name, parts[1]))
        elif parts[0] == "consent" and len(parts) == 3:
            columns.append(("consent", name, (parts[1], parts[2])))
        elif parts[0] == "consent" and len(parts) == 4 and parts[3] == "at":
            columns.append(("consent_at_of", name, (parts[1], parts[2])))
        elif len(parts) == 1 and check.identifier_type(name):
            columns.append(("identifier", name, check.identifier_type(name)))
        else:
            check.error(1, name, "unknown column")
    return columns


def _check_csv_rows(check: _Validator, columns: list[tuple[str, str, Any]], items: list[tuple[int, list[str]]]) -> None:
    width = len(columns)
    for number, values in items:
        if len(values) != width:
            check.error(number, "", f"{len(values)} fields, the header has {width}")
            continue
        pairs, traits, consents, balance = [], {}, [], None
        consent_at, consent_at_of = None, {}
        for (kind, _name, parsed), value in zip(columns, values):
            if kind == "consent_at":
                consent_at = value
            elif kind == "consent_at_of":
                consent_at_of[parsed] = value
        for (kind, name, parsed), value in zip(columns, values):
            if kind == "identifier":
                pairs += [(name, parsed, v) for v in value.split(";") if v.strip()]
            elif kind == "trait" and value != "":
                traits[parsed] = value
            elif kind == "consent" and value.strip():
                consents.append((*parsed, value, consent_at_of.get(parsed) or consent_at, name))
            elif kind == "balance":
                balance = value
        check.add(number, pairs, traits, consents, balance, BALANCE_COLUMN)


def _check_jsonl_rows(check: _Validator, _columns: Any, items: list[tuple[int, str]]) -> None:
    allowed = {"identifiers", "traits", "consents", "opening_balance"}
    for number, line in items:
        try:
            item = json.loads(line)
        except ValueError as exc:
            check.error(number, "", f"not JSON: {exc}")
            continue
        if not isinstance(item, dict):
            check.error(number, "", "not a JSON object")
            continue
        for key in sorted(set(item) - allowed):
            check.error(number, key, "unknown field")
        pairs, consents = [], []
        for i, ident in enumerate(item.get("identifiers") or []):
            column = f"identifiers[{i}]"
            if not (isinstance(ident, dict) and isinstance(ident.get("type"), str) and isinstance(ident.get("value"), str)):
                check.error(number, column, "expected {\"type\": ..., \"value\": ...} with text values")
            elif (type_name := check.identifier_type(ident["type"])) is None:
                check.error(number, column, f"unknown identifier type {ident['type']!r}")
            else:
                pairs.append((column, type_name, ident["value"]))
        traits = item.get("traits") or {}
        if not isinstance(traits, dict):
            check.error(number, "traits", "expected an object")
            traits = {}
        for i, c in enumerate(item.get("consents") or []):
            column = f"consents[{i}]"
            if not (isinstance(c, dict) and isinstance(c.get("channel"), str) and isinstance(c.get("purpose"), str)):
                check.error(number, column, "expected {\"channel\", \"purpose\", \"granted\", \"at\"}")
            else:
                consents.append((c["channel"], c["purpose"], c.get("granted"), c.get("at"), column))
        check.add(number, pairs, traits, consents, item.get("opening_balance"), "opening_balance")


_CHECKERS = {"csv": _check_csv_rows, "jsonl": _check_jsonl_rows}
_worker_rules: IdentifierRules | None = None


def _start_worker(settings: Settings) -> None:
    global _worker_rules
    _worker_rules = IdentifierRules(settings)


def _check_chunk(format: str, columns: Any, items: list) -> tuple[list[ImportRow], list[RowError]]:
    check = _Validator(_worker_rules)
    _CHECKERS[format](check, columns, items)
    return check.rows, check.errors


def _items(text: str, format: str, check: _Validator) -> tuple[Any, list]:
    """The file's header (CSV columns) and its rows as (row number, fields or line)."""
    if format == "jsonl":
        return None, [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        check.error(1, "", "empty file: a header row is expected")
        return [], []
    columns = _csv_columns(header, check)
    items = []
    for values in reader:
        if any(v.strip() for v in values):
            items.append((reader.line_num, values))
    return columns, items


def validate(data: bytes, *, format: str, rules: IdentifierRules, progress: Progress = _no_progress,
             workers: int = 1) -> list[ImportRow]:
    """Every row of the file, checked; `ImportInvalid` with every problem if any. With `workers`
    > 1 and a large file, identifiers are normalized in that many processes (phone and email
    normalization is most of the time of an import)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportInvalid([RowError(0, "", f"not UTF-8 text: {exc}")]) from None
    if "\x00" in text:
        raise ImportInvalid([RowError(0, "", "the file holds a NUL character")])
    if format not in _CHECKERS:
        raise Unprocessable(f"Unknown import format {format!r} (csv or jsonl)", code="unknown_import_format")
    check = _Validator(rules)
    columns, items = _items(text, format, check)
    del text
    if check.errors:
        raise ImportInvalid(check.errors)
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    chunk = VALIDATE_CHUNK
    if workers > 1 and len(items) > 2 * chunk:
        context = multiprocessing.get_context("spawn")  # safe in a threaded server, unlike fork
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=(rules.settings,)) as pool:
            futures = [pool.submit(_check_chunk, format, columns, items[i : i + chunk]) for i in range(0, len(items), chunk)]
            for future in futures:
                done_rows, done_errors = future.result()
                rows += done_rows
                errors += done_errors
                progress("validated", len(rows) + len(errors), len(items))
    else:
        for start in range(0, len(items), chunk):
            _CHECKERS[format](check, columns, items[start : start + chunk])
            progress("validated", len(check.rows) + len(check.errors), len(items))
        rows, errors = check.rows, check.errors
    errors = sorted(errors + _duplicates(rows), key=lambda e: e.row)
    if errors:
        raise ImportInvalid(errors)
    if not rows:
        raise ImportInvalid([RowError(0, "", "no rows")])
    return rows


# --- plan --------------------------------------------------------------------------------------


@dataclass
class _Existing:
    identity: dict[Identifier, tuple[int, int, bool]]  # -> (identity id, profile id, verified)
    profile_status: dict[int, str]
    profile_counts: dict[int, dict[str, int]]


def _load_existing(cursor, postgres: bool, identifiers: Iterable[Identifier]) -> _Existing:  # noqa: ANN001
    """The stored identities among the file's identifiers, their profiles' status and per-type
    counts: the file's identifiers go into a temporary table (COPY / executemany) joined once
    with the unique (type, value) index, instead of thousands of `IN (...)` lookups."""
    temp = "tmp_import_identifier"
    cursor.execute(f"DROP TABLE IF EXISTS {temp}")
    cursor.execute(f"CREATE TEMPORARY TABLE {temp} (type TEXT, value TEXT)")
    BulkWriter(cursor, postgres).insert(temp, ["type", "value"], [(i.type, i.value) for i in identifiers])
    if postgres:
        cursor.execute(f"ANALYZE {temp}")
    cursor.execute(
        f"SELECT i.type, i.value, i.id, i.profile_id, i.verified_at IS NOT NULL FROM {temp} t "
        "JOIN customer_identity i ON i.type = t.type AND i.value = t.value"
    )
    found = {Identifier(t, v): (identity_id, profile_id, bool(verified))
             for t, v, identity_id, profile_id, verified in cursor.fetchall()}
    status: dict[int, str] = {}
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if found:
        matched = (f"SELECT DISTINCT i.profile_id FROM {temp} t "
                   "JOIN customer_identity i ON i.type = t.type AND i.value = t.value")
        cursor.execute(f"SELECT id, status FROM customer_profile WHERE id IN ({matched})")
        status.update(cursor.fetchall())
        cursor.execute(f"SELECT profile_id, type, COUNT(*) FROM customer_identity WHERE profile_id IN ({matched}) "
                       "GROUP BY profile_id, type")
        for profile_id, type_name, count in cursor.fetchall():
            counts[profile_id][type_name] = count
    cursor.execute(f"DROP TABLE {temp}")
    return _Existing(found, status, counts)


@dataclass
class _Plan:
    #: Per simple component: (existing profile id or None, row indexes in file order).
    simple: list[tuple[int | None, list[int]]]
    #: Rows resolved one by one, in file order.
    resolved: list[int]
    #: Per row, the index of each of its identifiers (in the row's order) among the file's.
    row_index: list[list[int]]
    #: Per identifier index, its stored identity's id (0: new).
    identity_ids: list[int]


def _plan(rows: list[ImportRow], existing: _Existing, rules: IdentifierRules) -> _Plan:
    index: dict[Identifier, int] = {}
    row_index = [[index.setdefault(ident, len(index)) for ident in row.identifiers] for row in rows]
    n_ident = len(index)
    row_primary = np.fromiter((ids[0] for ids in row_index), dtype=np.int64, count=len(rows))
    row_a = [ids[0] for ids in row_index for _ in range(len(ids) - 1)]
    row_b = [k for ids in row_index for k in ids[1:]]
    identity_ids = [0] * n_ident
    profile_node: dict[int, int] = {}
    ext_a, ext_b = [], []
    for ident, (identity_id, pid, _verified) in existing.identity.items():
        i = index.get(ident)
        if i is not None:
            identity_ids[i] = identity_id
            ext_a.append(i)
            ext_b.append(profile_node.setdefault(pid, n_ident + len(profile_node)))
    n = n_ident + len(profile_node)
    a = np.array(row_a + ext_a, dtype=np.int64)
    b = np.array(row_b + ext_b, dtype=np.int64)
    ncomp, labels = connected_components(coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)), directed=False)
    row_comp = labels[row_primary]

    # Components that need the per-request path: more than one profile, a profile not active, a
    # claimed identifier, or more identifiers of a type than its limit.
    complex_comps: set[int] = set()
    profiles_of: dict[int, list[int]] = defaultdict(list)
    for pid, node in profile_node.items():
        profiles_of[int(labels[node])].append(pid)
    for comp, pids in profiles_of.items():
        if len(pids) > 1 or existing.profile_status.get(pids[0]) != "active":
            complex_comps.add(comp)
    for ident, (_iid, _pid, verified) in existing.identity.items():
        if not verified and ident in index:
            complex_comps.add(int(labels[index[ident]]))
    type_names = sorted({ident.type for ident in index})
    code = {t: k for k, t in enumerate(type_names)}
    kinds = np.fromiter((code[ident.type] for ident in index), dtype=np.int64, count=n_ident)
    new = np.ones(n_ident, dtype=bool)
    new[ext_a] = False
    width = len(type_names)
    counts = np.bincount(labels[:n_ident][new] * width + kinds[new], minlength=ncomp * width).reshape(ncomp, width)
    limits = np.array([rules.limit(t) for t in type_names])
    complex_comps.update(np.flatnonzero((counts > limits).any(axis=1)).tolist())
    for comp, pids in profiles_of.items():
        stored = existing.profile_counts.get(pids[0], {})
        if comp not in complex_comps and any(counts[comp, k] and counts[comp, k] + stored.get(t, 0) > limits[k]
                                             for k, t in enumerate(type_names)):
            complex_comps.add(comp)

    simple_rows: dict[int, list[int]] = defaultdict(list)
    resolved: list[int] = []
    for r, comp in enumerate(row_comp.tolist()):
        (resolved.append(r) if comp in complex_comps else simple_rows[comp].append(r))
    simple = [(profiles_of[c][0] if c in profiles_of else None, members) for c, members in simple_rows.items()]
    return _Plan(simple, resolved, row_index, identity_ids)


# --- write -------------------------------------------------------------------------------------


def import_customers(
    database: Database, *, rules: IdentifierRules, data: bytes, format: str, source: str = "import",
    progress: Progress = _no_progress, workers: int | None = None,
) -> ImportReport:
    """Validate, plan and write a whole file (see the module's docstring); `ImportInvalid` if any
    row is bad, and then nothing is written."""
    started = time.perf_counter()
    report = ImportReport(sha256=hashlib.sha256(data).hexdigest())
    workers = workers or rules.settings.customers_import_workers or os.cpu_count() or 1
    rows = validate(data, format=format, rules=rules, progress=progress, workers=workers)
    report.rows = len(rows)
    report.identifiers = sum(len(r.identifiers) for r in rows)
    report.ignored_identifiers = sum(r.ignored for r in rows)
    report.seconds["validate"] = round(time.perf_counter() - started, 3)
    progress("validated", len(rows), len(rows))

    checked = ("customer_identity", "customer_profile", "customer_link", "customer_trait", "customer_consent")
    with database.bulk_write(check_tables=checked) as session:
        t0 = time.perf_counter()
        postgres = database.dialect == "postgresql"
        cursor = session.connection().connection.dbapi_connection.cursor()
        if postgres:
            cursor.execute("LOCK TABLE customer_profile, customer_identity, customer_link IN EXCLUSIVE MODE")
        else:
            cursor.execute("PRAGMA cache_size = -1048576")
        existing = _load_existing(cursor, postgres, {i for r in rows for i in r.identifiers})
        plan = _plan(rows, existing, rules)
        report.people = len(plan.simple)
        report.people_existing = sum(1 for pid, _ in plan.simple if pid is not None)
        report.people_new = report.people - report.people_existing
        report.rows_resolved_one_by_one = len(plan.resolved)
        report.seconds["plan"] = round(time.perf_counter() - t0, 3)
        progress("planned", report.people, report.people)

        t1 = time.perf_counter()
        balances = _write_simple(session, cursor, postgres, rows, plan, existing, source, report, progress)
        for done, r in enumerate(plan.resolved, 1):
            balances += _resolve_one(session, rules, rows[r], source, report)
            if done % 1000 == 0:
                progress("resolved one by one", done, len(plan.resolved))
        if balances:
            if not _opening_balances:
                raise RuntimeError("no opening balance handler is registered (seamline.runtime.wire registers loyalty's)")
            for start in range(0, len(balances), BATCH):
                credited, skipped = _opening_balances[0](session, balances[start : start + BATCH])
                report.balances_credited += credited
                report.balances_already_applied += skipped
                progress("balances", min(start + BATCH, len(balances)), len(balances))
        session.flush()
        report.seconds["write"] = round(time.perf_counter() - t1, 3)
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report


def _balance_key(row: ImportRow) -> str:
    primary = row.identifiers[0]
    digest = hashlib.sha256(f"{primary.type}\x1f{primary.value}".encode()).hexdigest()[:40]
    return f"import:opening:{digest}"


def _resolve_one(session: Session, rules: IdentifierRules, row: ImportRow, source: str, report: ImportReport) -> list:
    data = CustomerUpsert(
        identifiers=[IdentifierIn(type=i.type, value=i.value) for i in row.identifiers],
        traits=row.traits,
        consents=[ConsentIn(channel=c.channel, purpose=c.purpose, granted=c.granted) for c in row.consents],
        source=source,
    )
    outcome = service.upsert_customer(session, rules=rules, data=data)
    report.profiles_created += int(outcome.resolution.created_profile)
    return [(outcome.resolution.profile_id, row.balance, _balance_key(row))] if row.balance else []


def _write_simple(session: Session, cursor, postgres: bool, rows: list[ImportRow], plan: _Plan,  # noqa: ANN001
                  existing: _Existing, source: str, report: ImportReport, progress: Progress) -> list:
    writer = BulkWriter(cursor, postgres)
    now = utcnow()
    stamp = writer.timestamp(now)
    cursor.execute("SELECT COALESCE(MAX(id), 0) FROM customer_profile")
    next_profile = cursor.fetchone()[0] + 1
    cursor.execute("SELECT COALESCE(MAX(id), 0) FROM customer_identity")
    next_identity = first_new = cursor.fetchone()[0] + 1
    identity_ids = plan.identity_ids
    linked: set[tuple[int, int]] = set()
    consents_seen = _existing_consents(cursor, postgres, [pid for pid, _ in plan.simple if pid is not None])
    balances: list[tuple[int, int, str]] = []
    total = len(plan.simple)
    for start in range(0, total, BATCH):
        profiles, identities, links, traits, consents = [], [], [], [], []
        for pid, members in plan.simple[start : start + BATCH]:
            if pid is None:
                pid = next_profile
                next_profile += 1
                profiles.append((pid, "active", stamp, stamp))
            for r in members:
                row, keys = rows[r], plan.row_index[r]
                for k, ident in zip(keys, row.identifiers):
                    if not identity_ids[k]:
                        identity_ids[k] = next_identity
                        identities.append((next_identity, ident.type, ident.value, pid, source, stamp, stamp, source))
                        next_identity += 1
                primary = identity_ids[keys[0]]
                for k in keys[1:]:
                    other = identity_ids[k]
                    pair = (min(primary, other), max(primary, other))
                    # Ends that both existed are one profile already: nothing new is said. A pair
                    # is stored once, however many rows say it.
                    if (primary < first_new and other < first_new) or pair in linked:
                        continue
                    linked.add(pair)
                    links.append((*pair, source, False, False, True, stamp))
                if row.traits:
                    traits.append((primary, row.traits, source, now, True))
                for c in row.consents:
                    at = c.at.astimezone(timezone.utc) if c.at else now
                    state = consents_seen.setdefault((pid, c.channel, c.purpose), [None, set(), None])
                    # Not repeated: the current state already, or this very consent recorded before.
                    if state[0] == c.granted or (c.granted, at) in state[1]:
                        continue
                    consents.append((primary, c.channel, c.purpose, c.granted, source, writer.timestamp(at)))
                    state[1].add((c.granted, at))
                    if state[2] is None or at >= state[2]:
                        state[0], state[2] = c.granted, at
                if row.balance:
                    balances.append((pid, row.balance, _balance_key(row)))
        clock = time.perf_counter()
        for table, columns, batch in (
            ("customer_profile", ["id", "status", "created_at", "updated_at"], profiles),
            ("customer_identity", ["id", "type", "value", "profile_id", "source", "created_at", "verified_at", "verified_by"],
             identities),
            ("customer_link", ["identity_a_id", "identity_b_id", "source", "forced", "revoked", "trusted", "created_at"], links),
            ("customer_consent", ["identity_id", "channel", "purpose", "granted", "source", "recorded_at"], consents),
        ):
            writer.insert(table, columns, batch)
            clock = _lap(report, table, clock)
        service.insert_trait_rows(session, traits)
        _lap(report, "customer_trait", clock)
        report.profiles_created += len(profiles)
        report.identities_created += len(identities)
        report.links_created += len(links)
        report.traits_set += sum(len(t[1]) for t in traits)
        report.consents_recorded += len(consents)
        progress("written", min(start + BATCH, total), total)
    if postgres:
        for table in ("customer_profile", "customer_identity"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))")
    return balances


def _lap(report: ImportReport, name: str, since: float) -> float:
    """Add the time since `since` to `report.seconds["write:<name>"]`; the time now."""
    now = time.perf_counter()
    key = f"write:{name}"
    report.seconds[key] = round(report.seconds.get(key, 0.0) + now - since, 3)
    return now


def _existing_consents(cursor, postgres: bool, profile_ids: list[int]) -> dict[tuple, list]:  # noqa: ANN001
    """Per (profile, channel, purpose): [current granted, {(granted, recorded at)}, latest recorded at]."""
    mark = "%s" if postgres else "?"
    found: dict[tuple, list] = {}
    for start in range(0, len(profile_ids), _LOOKUP_CHUNK):
        chunk = profile_ids[start : start + _LOOKUP_CHUNK]
        cursor.execute(
            "SELECT i.profile_id, c.channel, c.purpose, c.granted, c.recorded_at FROM customer_consent c "
            f"JOIN customer_identity i ON i.id = c.identity_id WHERE i.profile_id IN ({', '.join([mark] * len(chunk))}) "
            "ORDER BY c.recorded_at, c.id",
            chunk,
        )
        for pid, channel, purpose, granted, recorded_at in cursor.fetchall():
            at = _as_time(recorded_at)
            state = found.setdefault((pid, channel, purpose), [None, set(), None])
            state[0], state[2] = bool(granted), at
            state[1].add((bool(granted), at))
    return found


def _as_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
