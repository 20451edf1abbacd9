"""The points ledger: accounts, entries, lots; the hold, first-in-first-out spending and expiry.

Every change of points is one `LoyaltyEntry` appended under the account's row lock (PostgreSQL
`FOR UPDATE`; SQLite admits one writer at a time), with the running totals of the account
updated in the same transaction. An entry's `idempotency_key` makes each effect happen once:
an earning per order, a reversal per return, a client's retried request.

Lots (what each credit has left) follow fixed rules, which `rebuild` replays from the entries:
- a credit to pending (an earning inside the hold) is a pending lot until its `available_at`;
  the release moves what is left of it to spendable points, expiring `expiry_days` later;
- a credit to spendable points first pays off a debt (negative balance), the rest is a lot;
- spending takes from lots soonest-expiring first (then oldest); a reversal takes from its own
  order's lot first; what no lot covers becomes a debt when allowed (reversals), else the
  spend is refused (409 `insufficient_points`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from seamline.commerce.models import CommercePayment, CommercePaymentTransaction
from seamline.core.errors import Conflict
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.loyalty.models import (
    LoyaltyAccount,
    LoyaltyCard,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyWalletEntry,
)
from seamline.loyalty.schemas import ProgramPut

#: Kinds of entries that credit spendable points (each makes a lot).
CREDITS = ("welcome", "birthday", "campaign", "adjust", "restore", "transfer")
#: The wallet's name as commerce's payment provider (`wallet.WalletProvider`).
WALLET_PROVIDER = "wallet"


class InsufficientPoints(Conflict):
    code = "insufficient_points"


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- accounts -----------------------------------------------------------------------------------


def _accounts_of(session: Session, profile_id: int, *, lock: bool) -> tuple[int, list[LoyaltyAccount]]:
    canonical = resolution.canonical_profile(session, profile_id).id
    ids = customers_service.merged_profile_ids(session, canonical)
    query = select(LoyaltyAccount).where(LoyaltyAccount.profile_id.in_(ids)).order_by(LoyaltyAccount.id)
    if lock and is_postgres(session):
        query = query.with_for_update()
    return canonical, list(session.scalars(query.execution_options(populate_existing=lock)))


def find_account(session: Session, profile_id: int) -> LoyaltyAccount | None:
    """The account of a customer (of the profile they were merged into), read only. Merges bring
    accounts onto the surviving profile, so that is the one place to look, except after a batch
    identity rebuild, which moves no accounts (they come together at the next change)."""
    canonical = resolution.canonical_profile(session, profile_id).id
    found = session.scalar(select(LoyaltyAccount).where(LoyaltyAccount.profile_id == canonical))
    return found if found is not None else next(iter(_accounts_of(session, canonical, lock=False)[1]), None)


def account_for(
    session: Session, profile_id: int, *, program: ProgramPut, create: bool, channel: str | None = None,
    now: datetime | None = None, welcome: bool = True,
) -> LoyaltyAccount | None:
    """The customer's account, locked for a change; opened (with the welcome bonus) when `create`.
    Two profiles merged into one person each with an account: the later account's points,
    lots, wallet and cards move into the first, by `transfer` entries."""
    now = now or utcnow()
    canonical, accounts = _accounts_of(session, profile_id, lock=True)
    if not accounts:
        if not create:
            return None
        account = LoyaltyAccount(profile_id=canonical, enrolled_channel=channel, created_at=now, updated_at=now)
        session.add(account)
        session.flush()
        if program.welcome_points and welcome:
            credit(session, account, program.welcome_points, kind="welcome", program=program, channel=channel,
                   key=f"welcome:{account.id}", now=now, reference=f"account:{account.id}")
        return account
    primary = accounts[0]
    for other in accounts[1:]:
        _fold(session, primary, other, program=program, now=now)
    if primary.profile_id != canonical:
        primary.profile_id = canonical
    return primary


def _fold(session: Session, primary: LoyaltyAccount, other: LoyaltyAccount, *, program: ProgramPut, now: datetime) -> None:
    """Move everything of `other` into `primary`: its points leave by a `transfer` entry (its lots
    emptied) and arrive as new credits (spendable, and pending until its latest hold ends)."""
    available, pending = other.points_available, other.points_pending
    key = f"transfer:{other.id}:{primary.id}:{now.isoformat()}"
    if available or pending:
        append(session, other, kind="transfer", available=-available, pending=-pending, reference=f"account:{primary.id}",
               key=f"{key}:out", now=now)
        held = session.scalar(select(func.max(LoyaltyLot.available_at)).where(
            LoyaltyLot.account_id == other.id, LoyaltyLot.state == "pending", LoyaltyLot.remaining > 0))
        session.execute(update(LoyaltyLot).where(LoyaltyLot.account_id == other.id).values(remaining=0))
        reference = f"account:{other.id}"
        if available > 0:
            credit(session, primary, available, kind="transfer", program=program, now=now, reference=reference, key=f"{key}:in")
        elif available < 0:
            debit(session, primary, -available, kind="transfer", now=now, allow_debt=True, reference=reference, key=f"{key}:in")
        if pending:
            credit(session, primary, pending, kind="transfer", program=program, now=now, hold_until=held or now,
                   reference=reference, key=f"{key}:held")
    if other.wallet_balance:
        for account, sign in ((other, -1), (primary, 1)):
            session.add(LoyaltyWalletEntry(account_id=account.id, kind="transfer", amount=sign * other.wallet_balance,
                                           currency=program.currency, reference=f"account:{other.id if sign > 0 else primary.id}",
                                           created_at=now))
        primary.wallet_balance += other.wallet_balance
        other.wallet_balance = 0
    session.execute(update(LoyaltyCard).where(LoyaltyCard.account_id == other.id).values(account_id=primary.id))
    other.profile_id = None
    session.flush()


def lock_account(session: Session, account_id: int) -> LoyaltyAccount:
    query = select(LoyaltyAccount).where(LoyaltyAccount.id == account_id)
    if is_postgres(session):
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one()


# --- entries --------------------------------------------------------------------------------------


def client_key(scope: str, key: str) -> str:
    """A client's Idempotency-Key under a scope ("adjust", "topup"), hashed when it would not fit
    the 200-character column."""
    scoped = f"{scope}:{key}"
    return scoped if len(scoped) <= 200 else f"{scope}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def applied(session: Session, key: str) -> bool:
    return session.scalar(select(LoyaltyEntry.id).where(LoyaltyEntry.idempotency_key == key)) is not None


def append(
    session: Session, account: LoyaltyAccount, *, kind: str, available: int = 0, pending: int = 0, spend: int = 0,
    key: str | None = None, now: datetime, order_id: int | None = None, reference: str = "", channel: str | None = None,
    source_entry_id: int | None = None, available_at: datetime | None = None, expires_at: datetime | None = None,
    staff: str | None = None, api_key_id: int | None = None, comment: str = "",
) -> LoyaltyEntry:
    """One entry and the account's running totals (the account row is locked by the caller)."""
    entry = LoyaltyEntry(
        account_id=account.id, kind=kind, available_delta=available, pending_delta=pending, spend_delta=spend,
        order_id=order_id, source_entry_id=source_entry_id, available_at=available_at, expires_at=expires_at,
        reference=reference, channel=channel, staff=staff, api_key_id=api_key_id, comment=comment,
        idempotency_key=key, created_at=now,
    )
    session.add(entry)
    account.points_available += available
    account.points_pending += pending
    account.updated_at = now
    session.flush()
    return entry


def expiry_of(program: ProgramPut, at: datetime) -> datetime | None:
    return at + timedelta(days=program.expiry_days) if program.expiry_days else None


def credit(
    session: Session, account: LoyaltyAccount, points: int, *, kind: str, program: ProgramPut, now: datetime,
    hold_until: datetime | None = None, spend: int = 0, **fields: Any,
) -> LoyaltyEntry:
    """Add points: pending until `hold_until` when it is later than now, else spendable."""
    if hold_until is not None and hold_until > now:
        entry = append(session, account, kind=kind, pending=points, spend=spend, available_at=hold_until, now=now, **fields)
        if points:
            session.add(LoyaltyLot(account_id=account.id, entry_id=entry.id, state="pending", points=points, remaining=points,
                                   order_id=entry.order_id, available_at=hold_until))
        return entry
    debt = max(0, -account.points_available)
    entry = append(session, account, kind=kind, available=points, spend=spend, available_at=now,
                   expires_at=expiry_of(program, now), now=now, **fields)
    if points > debt:
        session.add(LoyaltyLot(account_id=account.id, entry_id=entry.id, state="available", points=points,
                               remaining=points - debt, order_id=entry.order_id, available_at=now, expires_at=entry.expires_at))
    session.flush()
    return entry


def spendable_lots(session: Session, account_id: int) -> list[LoyaltyLot]:
    """Soonest-expiring first, then oldest; lots that never expire last."""
    return list(session.scalars(
        select(LoyaltyLot).where(LoyaltyLot.account_id == account_id, LoyaltyLot.state == "available",
                                 LoyaltyLot.remaining > 0)
        .order_by(LoyaltyLot.expires_at.is_(None), LoyaltyLot.expires_at, LoyaltyLot.entry_id)
    ))


def take_from_lots(lots: Iterable[LoyaltyLot], points: int) -> int:
    """Take up to `points` from the lots in their order; returns what none covered."""
    left = points
    for lot in lots:
        if left == 0:
            break
        taken = min(lot.remaining, left)
        lot.remaining -= taken
        left -= taken
    return left


def debit(
    session: Session, account: LoyaltyAccount, points: int, *, kind: str, now: datetime, allow_debt: bool = False,
    spend: int = 0, **fields: Any,
) -> LoyaltyEntry:
    """Take spendable points, first in, first out; beyond the balance only when `allow_debt`."""
    if not allow_debt and account.points_available < points:
        raise InsufficientPoints(
            f"{points} points asked, {max(account.points_available, 0)} available",
            details={"requested": points, "available": max(account.points_available, 0)},
        )
    take_from_lots(spendable_lots(session, account.id), points)
    return append(session, account, kind=kind, available=-points, spend=spend, now=now, **fields)


# --- the hold and expiry ----------------------------------------------------------------------------


def _each_due_lot(session: Session, condition: Any, *, limit: int,
                  handle: Callable[[LoyaltyAccount, LoyaltyLot], None]) -> int:
    """Call `handle(account, lot)` for up to `limit` lots meeting `condition`, each under its
    account's lock and only if it still meets it once locked (another process may have been
    first). Returns how many were found."""
    due = list(session.execute(select(LoyaltyLot.id, LoyaltyLot.account_id).where(condition)
                               .order_by(LoyaltyLot.account_id, LoyaltyLot.id).limit(limit)))
    for lot_id, account_id in due:
        account = lock_account(session, account_id)
        if session.scalar(select(LoyaltyLot.id).where(LoyaltyLot.id == lot_id, condition)) is not None:
            handle(account, session.get(LoyaltyLot, lot_id, populate_existing=True))
    return len(due)


def release_due(session: Session, *, program: ProgramPut, now: datetime | None = None, limit: int = 500) -> int:
    """Make earnings whose hold ran out spendable; returns how many lots were released."""
    now = now or utcnow()
    return _each_due_lot(
        session, and_(LoyaltyLot.state == "pending", LoyaltyLot.remaining > 0, LoyaltyLot.available_at <= now), limit=limit,
        handle=lambda account, lot: release(session, account, lot, program=program, now=now))


def release(session: Session, account: LoyaltyAccount, lot: LoyaltyLot, *, program: ProgramPut, now: datetime) -> None:
    points = lot.remaining
    debt = max(0, -account.points_available)
    expires_at = expiry_of(program, lot.available_at)
    append(session, account, kind="release", available=points, pending=-points, source_entry_id=lot.entry_id,
           order_id=lot.order_id, reference=f"entry:{lot.entry_id}", expires_at=expires_at, now=now,
           key=f"release:{lot.entry_id}")
    lot.state, lot.remaining, lot.expires_at = "available", max(0, points - debt), expires_at


def expire_due(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Take away what is left of lots past their expiry; returns how many lots expired."""
    now = now or utcnow()

    def expire(account: LoyaltyAccount, lot: LoyaltyLot) -> None:
        points, lot.remaining = lot.remaining, 0
        append(session, account, kind="expire", available=-points, source_entry_id=lot.entry_id,
               reference=f"entry:{lot.entry_id}", now=now, key=f"expire:{lot.entry_id}")

    return _each_due_lot(
        session, and_(LoyaltyLot.state == "available", LoyaltyLot.remaining > 0, LoyaltyLot.expires_at <= now), limit=limit,
        handle=expire)


# --- the consistency check ----------------------------------------------------------------------------


def check(session: Session, account_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Every account whose running totals differ from its ledgers, or whose lots do not add up
    to its points (spendable lots = the balance when it is not negative; pending lots = pending),
    then (for the whole database, without `account_ids`) every order whose wallet payments and
    refunds differ between commerce's payment ledger and the wallet's (`wallet_against_payments`).
    Empty when everything agrees."""
    def sums(query: Any) -> dict[int, tuple[int, ...]]:
        if account_ids is not None:
            query = query.having(query.selected_columns[0].in_(account_ids))
        return {row[0]: tuple(int(v or 0) for v in row[1:]) for row in session.execute(query)}

    ledger = sums(select(LoyaltyEntry.account_id, func.sum(LoyaltyEntry.available_delta), func.sum(LoyaltyEntry.pending_delta))
                  .group_by(LoyaltyEntry.account_id))
    wallet = sums(select(LoyaltyWalletEntry.account_id, func.sum(LoyaltyWalletEntry.amount)).group_by(LoyaltyWalletEntry.account_id))
    lots = sums(select(LoyaltyLot.account_id,
                       func.sum(LoyaltyLot.remaining).filter(LoyaltyLot.state == "available"),
                       func.sum(LoyaltyLot.remaining).filter(LoyaltyLot.state == "pending"))
                .group_by(LoyaltyLot.account_id))
    accounts = select(LoyaltyAccount)
    if account_ids is not None:
        accounts = accounts.where(LoyaltyAccount.id.in_(account_ids))
    problems = []
    for account in session.scalars(accounts.order_by(LoyaltyAccount.id)):
        available, pending = ledger.get(account.id, (0, 0))
        in_lots, pending_lots = lots.get(account.id, (0, 0))
        expected = {"points_available": available, "points_pending": pending, "wallet_balance": wallet.get(account.id, (0,))[0],
                    "spendable_lots": max(available, 0), "pending_lots": pending}
        found = {"points_available": account.points_available, "points_pending": account.points_pending,
                 "wallet_balance": account.wallet_balance, "spendable_lots": in_lots, "pending_lots": pending_lots}
        if found != expected:
            problems.append({"account_id": account.id, "expected": expected, "found": found})
    if account_ids is None:
        problems += wallet_against_payments(session)
    return problems


def wallet_against_payments(session: Session) -> list[dict[str, Any]]:
    """Every order whose wallet captures and refunds in the payment ledger differ from the
    wallet's entries for it: a capture without its debit (the wallet answered "paid" and kept the
    money), a debit without its capture, a refund without its credit, a credit without its
    refund. Compared order by order: `wallet_paid` is the payment ledger's captures through the
    wallet and the wallet's `payment` debits; `wallet_refunded` its refunds and the wallet's
    `refund` credits."""
    def by_order(query: Any) -> dict[int, int]:
        return {row[0]: int(row[1] or 0) for row in session.execute(query)}

    moved = (select(CommercePayment.order_id, func.sum(CommercePaymentTransaction.amount))
             .join(CommercePayment, CommercePayment.id == CommercePaymentTransaction.payment_id)
             .where(CommercePayment.provider == WALLET_PROVIDER).group_by(CommercePayment.order_id))
    captured = by_order(moved.where(CommercePaymentTransaction.kind == "capture"))
    refunded = by_order(moved.where(CommercePaymentTransaction.kind == "refund"))
    wallet = (select(LoyaltyWalletEntry.order_id, func.sum(LoyaltyWalletEntry.amount))
              .where(LoyaltyWalletEntry.order_id.is_not(None)).group_by(LoyaltyWalletEntry.order_id))
    debited = by_order(wallet.where(LoyaltyWalletEntry.kind == "payment"))
    credited = by_order(wallet.where(LoyaltyWalletEntry.kind == "refund"))
    problems = []
    for order_id in sorted(set(captured) | set(refunded) | set(debited) | set(credited)):
        expected = {"wallet_paid": captured.get(order_id, 0), "wallet_refunded": refunded.get(order_id, 0)}
        found = {"wallet_paid": -debited.get(order_id, 0), "wallet_refunded": credited.get(order_id, 0)}
        if found != expected:
            problems.append({"order_id": order_id, "expected": expected, "found": found})
    return problems
