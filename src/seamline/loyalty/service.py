"""Loyalty's business: enrolment, earning at handover, reversal on returns and cancellations,
spending points at checkout, staff adjustments, and what loyalty adds to the customer 360 and
the timeline.

Commerce publishes domain events (`commerce.events`) and loyalty subscribes at import, so the
order system never imports loyalty. Each listener runs inside the transaction of the change
that published it, and each effect has an idempotency key in the ledger ("earn:order:12",
"reverse:return:3"), so a handover, return or cancellation delivered twice changes points once.

- Earning: when the goods reach the customer (pickup, delivery, a till sale), pending until
  `hold_days` have passed (the return window), then spendable (`ledger.release_due`).
- Returns take back earned points in proportion to the money returned, counted over all of
  the order's returns so far (rounding never drifts; the last return of everything takes back
  exactly what is left), from the order's own lot first (pending or not), then first in first
  out, into a debt if they were spent already. Points spent on the order come back in the same
  proportion, as a new credit.
- Cancellation gives back everything spent (and takes back anything earned).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.commerce import events as commerce_events
from seamline.commerce import promotions, redemption
from seamline.commerce.models import CommerceOrder, CommerceReturn
from seamline.commerce.priced import PricedCart
from seamline.core.auth.models import ApiKey
from seamline.core.db import DriverSQL
from seamline.core.errors import Unprocessable
from seamline.core.time import utcnow
from seamline.customers import imports as customer_imports
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.models import CustomerIdentity, CustomerTrait
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry, titled
from seamline.loyalty import cards, ledger, rules, wallet
from seamline.loyalty.models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from seamline.loyalty.schemas import AdjustmentCreate, ProgramPut

log = structlog.get_logger("seamline.loyalty")
ENTRY_PAGE = 50


def _now(now: datetime | None) -> datetime:
    return now or utcnow()


def enroll(session: Session, *, customer_id: int, channel: str | None) -> LoyaltyAccount:
    """Open the customer's account (with the welcome bonus); an open account is returned as is."""
    program = rules.get_program(session)
    customers_service.get_profile(session, customer_id)
    return ledger.account_for(session, customer_id, program=program, create=True, channel=channel)


# --- earning and reversal -------------------------------------------------------------------------


def earn_for_order(session: Session, order: CommerceOrder, *, now: datetime | None = None) -> LoyaltyEntry | None:
    """Points for an order handed over (see the module doc); once per order."""
    if order.profile_id is None:
        return None
    now, key = _now(now), f"earn:order:{order.id}"
    program = rules.get_program(session)
    account = ledger.account_for(session, order.profile_id, program=program, create=program.auto_enroll,
                                 channel=order.channel, now=now)
    if account is None or ledger.applied(session, key):
        return None
    first = not rules.earned_before_in_channel(session, account.id, order.channel)
    points = rules.order_points(session, program, lines=rules.paid_lines(session, order.id), tier=account.tier,
                                channel=order.channel, first_in_channel=first)
    entry = ledger.credit(session, account, points, kind="earn", program=program, now=now,
                          hold_until=now + timedelta(days=program.hold_days), spend=order.total, order_id=order.id,
                          reference=f"order:{order.id}", channel=order.channel, key=key)
    rules.evaluate_tier(session, account, program=program, now=now)
    return entry


def _order_sums(session: Session, order_id: int, account_id: int) -> dict[str, tuple[int, int, int]]:
    """{kind: (available, pending, spend)} of an order's entries."""
    rows = session.execute(
        select(LoyaltyEntry.kind, func.sum(LoyaltyEntry.available_delta), func.sum(LoyaltyEntry.pending_delta),
               func.sum(LoyaltyEntry.spend_delta))
        .where(LoyaltyEntry.order_id == order_id, LoyaltyEntry.account_id == account_id).group_by(LoyaltyEntry.kind)
    )
    return {kind: (int(a or 0), int(p or 0), int(s or 0)) for kind, a, p, s in rows}


def _take_back(
    session: Session, account: LoyaltyAccount, order: CommerceOrder, share: Fraction, *, key: str, spend: int,
    channel: str | None, reference: str, now: datetime,
) -> None:
    """Take back `share` of what the order earned (less what earlier reversals took) and of what
    it spent (given back)."""
    program = rules.get_program(session)
    sums = _order_sums(session, order.id, account.id)
    earned = sum(sums.get("earn", (0, 0, 0))[:2])
    taken = -sum(sums.get("reverse", (0, 0, 0))[:2])
    take = max(0, int(earned * share) - taken)
    if (take or spend) and not ledger.applied(session, f"reverse:{key}"):
        earning = session.scalar(select(LoyaltyEntry).where(LoyaltyEntry.idempotency_key == f"earn:order:{order.id}"))
        lot = session.scalar(select(LoyaltyLot).where(LoyaltyLot.entry_id == earning.id)) if earning else None
        from_pending = min(take, lot.remaining) if lot is not None and lot.state == "pending" else 0
        if from_pending:
            lot.remaining -= from_pending
        rest = take - from_pending
        if rest:
            lots = ledger.spendable_lots(session, account.id)
            if lot is not None and lot.state == "available":
                lots = [lot] + [other for other in lots if other.id != lot.id]
            ledger.take_from_lots(lots, rest)
        ledger.append(session, account, kind="reverse", available=-rest, pending=-from_pending, spend=spend,
                      order_id=order.id, source_entry_id=earning.id if earning else None, reference=reference,
                      channel=channel, key=f"reverse:{key}", now=now)
    spent = -sums.get("redeem", (0, 0, 0))[0]
    restored = sums.get("restore", (0, 0, 0))[0]
    give = max(0, int(spent * share) - restored)
    if give and not ledger.applied(session, f"restore:{key}"):
        ledger.credit(session, account, give, kind="restore", program=program, now=now, order_id=order.id,
                      reference=reference, channel=channel, key=f"restore:{key}")
    rules.evaluate_tier(session, account, program=program, now=now)


def _order_account(session: Session, order: CommerceOrder | None) -> LoyaltyAccount | None:
    if order is None or order.profile_id is None:
        return None
    found = ledger.find_account(session, order.profile_id)
    return ledger.lock_account(session, found.id) if found else None


def on_return(session: Session, event: commerce_events.OrderReturned, *, now: datetime | None = None) -> None:
    order = session.get(CommerceOrder, event.order_id)
    account = _order_account(session, order)
    if account is None:
        return
    returned = session.scalar(select(func.coalesce(func.sum(CommerceReturn.amount), 0)).where(CommerceReturn.order_id == order.id))
    share = Fraction(1) if event.full or order.total <= 0 else min(Fraction(int(returned), order.total), Fraction(1))
    _take_back(session, account, order, share, key=f"return:{event.return_id}", spend=-event.amount, channel=event.channel,
               reference=f"return:{event.return_id}", now=_now(now))


def on_cancel(session: Session, event: commerce_events.OrderCancelled, *, now: datetime | None = None) -> None:
    order = session.get(CommerceOrder, event.order_id)
    account = _order_account(session, order)
    if account is None:
        return
    spend = -_order_sums(session, order.id, account.id).get("earn", (0, 0, 0))[2]
    _take_back(session, account, order, Fraction(1), key=f"cancel:{order.id}", spend=spend, channel=event.channel,
               reference=f"cancel:{order.id}", now=_now(now))


def _on_handover(session: Session, event: commerce_events.OrderHandedOver) -> None:
    earn_for_order(session, event.order)


def _on_profiles_merged(session: Session, targets: dict[int, int]) -> None:
    """Two people found to be one: their accounts become one (`ledger.account_for` folds them)."""
    program = rules.get_program(session)
    for target in sorted(set(targets.values())):
        ledger.account_for(session, target, program=program, create=False)


# --- spending at checkout ---------------------------------------------------------------------------


def spendable(session: Session, account: LoyaltyAccount, *, now: datetime | None = None) -> int:
    """Spendable points, counting earnings whose hold has just run out (released on the next change)."""
    due = session.scalar(select(func.coalesce(func.sum(LoyaltyLot.remaining), 0)).where(
        LoyaltyLot.account_id == account.id, LoyaltyLot.state == "pending", LoyaltyLot.available_at <= _now(now)))
    return account.points_available + int(due or 0)


class Redeemer:
    """Points as the last step of pricing in every channel (`commerce.redemption`)."""

    def quote(self, session: Session, *, customer_id: int, points: int, cart: PricedCart, channel: str | None,
              card_numbers: Sequence[str]) -> int:
        cards.refuse_blocked(session, card_numbers)
        program = rules.get_program(session)
        cap = cart.total * program.max_redeem_percent // 100
        if points * program.point_value > cap:
            raise Unprocessable(
                f"Points may pay at most {program.max_redeem_percent}% of the order: {cap // program.point_value} points",
                code="points_over_cap", details={"requested": points, "max_points": cap // program.point_value},
            )
        account = ledger.find_account(session, customer_id)
        available = spendable(session, account) if account else 0
        if available < points:
            raise ledger.InsufficientPoints(f"{points} points asked, {max(available, 0)} available",
                                            details={"requested": points, "available": max(available, 0)})
        return points * program.point_value

    def debit(self, session: Session, *, customer_id: int, points: int, order_id: int, channel: str | None) -> None:
        program = rules.get_program(session)
        account = ledger.account_for(session, customer_id, program=program, create=False)
        if account is None:
            raise ledger.InsufficientPoints("The customer has no points", details={"requested": points, "available": 0})
        release_account(session, account, program=program)
        ledger.debit(session, account, points, kind="redeem", now=utcnow(), order_id=order_id, reference=f"order:{order_id}",
                     channel=channel, key=f"redeem:order:{order_id}")


def release_account(session: Session, account: LoyaltyAccount, *, program: ProgramPut, now: datetime | None = None) -> None:
    """Release the account's earnings whose hold ran out (the account is locked)."""
    for lot in session.scalars(select(LoyaltyLot).where(LoyaltyLot.account_id == account.id, LoyaltyLot.state == "pending",
                                                        LoyaltyLot.remaining > 0, LoyaltyLot.available_at <= _now(now))
                               .order_by(LoyaltyLot.id)):
        ledger.release(session, account, lot, program=program, now=_now(now))


def _in_tiers(session: Session, profile_id: int, wanted: Any) -> bool:
    account = ledger.find_account(session, profile_id)
    return account is not None and account.tier is not None and account.tier in (wanted or [])


def subscribe() -> None:
    """What loyalty does when other domains act (called once by `seamline.runtime.wire`): points
    for a handed-over order, back for a return or a cancellation; accounts folded when two
    profiles merge; points spent at checkout; the `tiers` condition of promotions; opening
    balances of a customer import."""
    commerce_events.on_order_handed_over(_on_handover)
    commerce_events.on_order_returned(on_return)
    commerce_events.on_order_cancelled(on_cancel)
    resolution.on_profiles_merged(_on_profiles_merged)
    redemption.register(Redeemer())
    promotions.register_condition("tiers", _in_tiers)
    wallet.offer_as_payment()
    customer_imports.register_opening_balances(open_balances)


# --- staff adjustments ----------------------------------------------------------------------------


def adjust(
    session: Session, *, customer_id: int, data: AdjustmentCreate, api_key: ApiKey | None, idempotency_key: str | None,
    now: datetime | None = None,
) -> tuple[LoyaltyEntry, bool]:
    """A manual change of points by a staff member, with the reason kept in the ledger (and the
    log). `api_key` is the integration's key; None when a person made it in the console (then
    `data.staff`, their login, is the whole audit). A retry with the same Idempotency-Key
    returns the first entry; (entry, whether new)."""
    now, program = _now(now), rules.get_program(session)
    customers_service.get_profile(session, customer_id)
    key = ledger.client_key("adjust", idempotency_key) if idempotency_key else None
    if key and (done := session.scalar(select(LoyaltyEntry).where(LoyaltyEntry.idempotency_key == key))) is not None:
        if done.available_delta != data.points or done.comment != data.comment:
            raise Unprocessable("This Idempotency-Key was used for a different adjustment", code="idempotency_key_reused")
        return done, False
    account = ledger.account_for(session, customer_id, program=program, create=True, now=now)
    release_account(session, account, program=program, now=now)
    api_key_id = api_key.id if api_key is not None else None
    audit = dict(staff=data.staff, api_key_id=api_key_id, comment=data.comment, key=key,
                 reference=f"campaign:{data.campaign}" if data.campaign else f"staff:{data.staff}")
    if data.points > 0:
        entry = ledger.credit(session, account, data.points, kind=data.reason, program=program, now=now, **audit)
    else:
        entry = ledger.debit(session, account, -data.points, kind=data.reason, now=now, **audit)
    log.info("loyalty adjustment", account_id=account.id, customer_id=customer_id, points=data.points, reason=data.reason,
             staff=data.staff, api_key_id=api_key_id, entry_id=entry.id)
    return entry, True


def open_balances(session: Session, items: list[tuple[int, int, str]], *, now: datetime | None = None) -> tuple[int, int]:
    """Opening balances of a customer import (`customers.imports`): per (profile id, points,
    idempotency key), an `adjust` credit in the ledger unless that key is there already; an
    account opened for it gets no welcome bonus (the balance is what the old system owed).
    Profiles without an account (and without profiles merged into them), the usual case of an
    import, get account, entry and lot in three set-based inserts; others go through
    `account_for` and `credit`. Returns (credited, already applied)."""
    now, program = _now(now), rules.get_program(session)
    sql = DriverSQL(session)
    done = set(session.scalars(select(LoyaltyEntry.idempotency_key)
                               .where(LoyaltyEntry.idempotency_key.in_([key for _, _, key in items]))))
    todo = [(pid, points, key) for pid, points, key in items if key not in done and points > 0]
    profiles = sorted({pid for pid, _, _ in todo})
    busy: set[int] = set()
    for start in range(0, len(profiles), 900):
        chunk = profiles[start : start + 900]
        marks = ", ".join("?" * len(chunk))
        busy.update(r[0] for r in sql.execute(f"SELECT profile_id FROM loyalty_account WHERE profile_id IN ({marks})", chunk))
        busy.update(r[0] for r in sql.execute(
            f"SELECT merged_into_id FROM customer_profile WHERE merged_into_id IN ({marks})", chunk))
        busy.update(r[0] for r in sql.execute(
            f"SELECT id FROM customer_profile WHERE status <> 'active' AND id IN ({marks})", chunk))
    fresh: dict[int, list[tuple[int, str]]] = {}
    credited = 0
    for profile_id, points, key in todo:
        if profile_id in busy:
            account = ledger.account_for(session, profile_id, program=program, create=True, now=now, welcome=False)
            ledger.credit(session, account, points, kind="adjust", program=program, now=now, key=key,
                          reference="import", comment="opening balance")
            credited += 1
        else:
            fresh.setdefault(profile_id, []).append((points, key))
    if fresh:
        session.flush()
        stamp, expires = sql.time(now), ledger.expiry_of(program, now)
        expires = sql.time(expires) if expires else None
        account_ids = _new_ids(sql, "loyalty_account", len(fresh))
        sql.insert_rows("loyalty_account", ("id", "profile_id", "points_available", "points_pending", "wallet_balance",
                                            "tier_spend", "created_at", "updated_at"),
                        [(aid, pid, sum(p for p, _ in credits), 0, 0, 0, stamp, stamp)
                         for aid, (pid, credits) in zip(account_ids, fresh.items())])
        entries = [(aid, points, key) for aid, credits in zip(account_ids, fresh.values()) for points, key in credits]
        entry_ids = _new_ids(sql, "loyalty_entry", len(entries))
        sql.insert_rows("loyalty_entry", ("id", "account_id", "kind", "available_delta", "pending_delta", "spend_delta",
                                          "available_at", "expires_at", "reference", "comment", "idempotency_key",
                                          "created_at"),
                        [(eid, aid, "adjust", points, 0, 0, stamp, expires, "import", "opening balance", key, stamp)
                         for eid, (aid, points, key) in zip(entry_ids, entries)])
        sql.insert_rows("loyalty_lot", ("account_id", "entry_id", "state", "points", "remaining", "available_at", "expires_at"),
                        [(aid, eid, "available", points, points, stamp, expires)
                         for eid, (aid, points, _key) in zip(entry_ids, entries)])
        credited += len(entries)
    return credited, len(items) - credited


def _new_ids(sql: DriverSQL, table: str, count: int) -> list[int]:
    """`count` ids for rows inserted with explicit ids: from the sequence on PostgreSQL (safe beside
    concurrent inserts), after the largest on SQLite (one writer at a time)."""
    if not sql.sqlite:
        return [r[0] for r in sql.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                                          "FROM generate_series(1, ?)", (count,)).fetchall()]
    first = sql.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0]
    return list(range(first, first + count))


def adjustments(session: Session, *, limit: int, before_id: int | None) -> list[LoyaltyEntry]:
    """The audit trail: every manual adjustment and campaign credit, newest first."""
    query = select(LoyaltyEntry).where(LoyaltyEntry.kind.in_(("adjust", "campaign")))
    if before_id:
        query = query.where(LoyaltyEntry.id < before_id)
    return list(session.scalars(query.order_by(LoyaltyEntry.id.desc()).limit(limit)))


# --- scheduled work -----------------------------------------------------------------------------------


def birthday_bonuses(session: Session, *, now: datetime | None = None, limit: int = 1000) -> int:
    """The birthday bonus for members whose `birthday` trait (YYYY-MM-DD) is today; once a year."""
    now, program = _now(now), rules.get_program(session)
    if not program.birthday_points:
        return 0
    today = now.date()
    suffix = f"-{today.month:02d}-{today.day:02d}"
    given = 0
    rows = session.execute(
        select(LoyaltyAccount.id, CustomerTrait.value).join(CustomerIdentity, CustomerIdentity.profile_id == LoyaltyAccount.profile_id)
        .join(CustomerTrait, CustomerTrait.identity_id == CustomerIdentity.id).where(CustomerTrait.key == "birthday")
    ).all()
    for account_id, value in rows:
        if not isinstance(value, str) or not value[:10].endswith(suffix):
            continue
        key = f"birthday:{account_id}:{today.year}"
        if ledger.applied(session, key):
            continue
        account = ledger.lock_account(session, account_id)
        ledger.credit(session, account, program.birthday_points, kind="birthday", program=program, now=now, key=key,
                      reference=f"birthday:{today.year}")
        given += 1
        if given >= limit:
            break
    return given


def reevaluate_tiers(session: Session, *, now: datetime | None = None, limit: int = 1000) -> int:
    """Tiers of accounts not evaluated for a day (spend leaves the window as time passes)."""
    now, program = _now(now), rules.get_program(session)
    if not program.tiers:
        return 0
    stale = list(session.scalars(select(LoyaltyAccount.id).where(
        (LoyaltyAccount.tier_evaluated_at.is_(None)) | (LoyaltyAccount.tier_evaluated_at < now - timedelta(days=1)))
        .order_by(LoyaltyAccount.id).limit(limit)))
    for account_id in stale:
        rules.evaluate_tier(session, ledger.lock_account(session, account_id), program=program, now=now)
    return len(stale)


# --- views ----------------------------------------------------------------------------------------


def account_of_customer(session: Session, customer_id: int) -> LoyaltyAccount | None:
    customers_service.get_profile(session, customer_id)
    return ledger.find_account(session, customer_id)


#: A customer's balance in one statement: the profile, its account, the earnings whose hold ran
#: out (`spendable`), and the program's version (`rules.program_as_of`).
_BALANCE_SQL = """
SELECT p.status, a.id, a.points_available, a.points_pending, a.wallet_balance, a.tier, a.tier_spend,
       (SELECT COALESCE(SUM(l.remaining), 0) FROM loyalty_lot l
         WHERE l.account_id = a.id AND l.state = 'pending' AND l.available_at <= ?),
       (SELECT g.updated_at FROM loyalty_program g WHERE g.id = 1)
FROM customer_profile p LEFT JOIN loyalty_account a ON a.profile_id = p.id
WHERE p.id = ?"""


def quick_balance(session: Session, customer_id: int, *, now: datetime | None = None) -> dict[str, Any] | None:
    """`balance_view` of a customer through the driver, for the hot read (a checkout page, an
    app's home screen, a till), in one round trip; None when this path does not apply (no such
    profile, a merged or erased one, no account under it): then the full path answers, with its
    errors."""
    sql = DriverSQL(session)
    row = sql.execute(_BALANCE_SQL, (sql.time(_now(now)), customer_id)).fetchone()
    if row is None or row[0] != "active" or row[1] is None:
        return None
    status, account_id, available, pending, wallet, tier, tier_spend, due, program_version = row
    program = rules.program_as_of(session, program_version)
    points = available + int(due)
    return {"account_id": account_id, "customer_id": customer_id, "points": points, "pending": pending - int(due),
            "points_value": max(points, 0) * program.point_value, "currency": program.currency,
            "wallet": wallet, "tier": tier, "tier_spend": tier_spend}


def balance_view(session: Session, account: LoyaltyAccount, program: ProgramPut, *, now: datetime | None = None) -> dict[str, Any]:
    points = spendable(session, account, now=now)
    return {"account_id": account.id, "customer_id": account.profile_id, "points": points,
            "pending": account.points_pending - (points - account.points_available),
            "points_value": max(points, 0) * program.point_value, "currency": program.currency,
            "wallet": account.wallet_balance, "tier": account.tier, "tier_spend": account.tier_spend}


def entry_view(entry: LoyaltyEntry) -> dict[str, Any]:
    return {"id": entry.id, "kind": entry.kind, "points": entry.available_delta, "pending": entry.pending_delta,
            "order_id": entry.order_id, "reference": entry.reference, "channel": entry.channel, "staff": entry.staff,
            "comment": entry.comment, "created_at": entry.created_at}


def entries(session: Session, account_id: int, *, limit: int = ENTRY_PAGE, before_id: int | None = None) -> list[LoyaltyEntry]:
    query = select(LoyaltyEntry).where(LoyaltyEntry.account_id == account_id)
    if before_id:
        query = query.where(LoyaltyEntry.id < before_id)
    return list(session.scalars(query.order_by(LoyaltyEntry.id.desc()).limit(limit)))


def account_view(session: Session, account: LoyaltyAccount, *, entry_limit: int = 10, now: datetime | None = None) -> dict[str, Any]:
    """Balance, pending earnings with their dates, what expires when, tier, cards, last entries."""
    now, program = _now(now), rules.get_program(session)
    lots = list(session.scalars(select(LoyaltyLot).where(LoyaltyLot.account_id == account.id, LoyaltyLot.remaining > 0)
                                .order_by(LoyaltyLot.available_at, LoyaltyLot.id)))
    expiring: dict[datetime, int] = {}
    for lot in lots:
        expires = lot.expires_at if lot.state == "available" else (
            lot.available_at + timedelta(days=program.expiry_days) if program.expiry_days else None)
        if expires is not None:
            expiring[expires] = expiring.get(expires, 0) + lot.remaining
    return {
        **balance_view(session, account, program, now=now),
        "program": rules.program_texts(program),
        "cards": [cards.card_view(session, c) for c in cards.cards_of(session, account.id)],
        "pending_lots": [{"available_at": lot.available_at, "points": lot.remaining, "order_id": lot.order_id}
                         for lot in lots if lot.state == "pending" and lot.available_at > now],
        "expiring": [{"expires_at": at, "points": points} for at, points in sorted(expiring.items())],
        "next_tier": rules.next_tier(program, account),
        "entries": [entry_view(e) for e in entries(session, account.id, limit=entry_limit)],
    }


# --- the customer 360, timeline, export, erasure ----------------------------------------------------------


def _accounts(session: Session, context: CustomerContext) -> list[LoyaltyAccount]:
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    return list(session.scalars(select(LoyaltyAccount).where(LoyaltyAccount.profile_id.in_(ids)).order_by(LoyaltyAccount.id)))


def _section(session: Session, context: CustomerContext) -> dict[str, Any] | None:
    found = _accounts(session, context)
    return account_view(session, found[0]) if found else None


def _export(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    return [
        {**account_view(session, account, entry_limit=0),
         "entries": [entry_view(e) for e in entries(session, account.id, limit=10**9)],
         "wallet_entries": [{"kind": w.kind, "amount": w.amount, "currency": w.currency, "order_id": w.order_id,
                             "channel": w.channel, "created_at": w.created_at} for w in wallet.entries(session, account.id, limit=10**9)]}
        for account in _accounts(session, context)
    ]


def _erase(session: Session, context: CustomerContext) -> int:
    """The ledgers stay (they are the books) but lose the person; the cards are blocked."""
    found = _accounts(session, context)
    for account in found:
        for card in cards.cards_of(session, account.id):
            cards.block_card(session, card, reason="customer erased")
        account.profile_id = None
    return len(found)


def _timeline(session: Session, context: CustomerContext, query: TimelineQuery) -> list[TimelineItem]:
    """Every entry of the person's points ledger (earned, spent, reversed, expired, adjusted)."""
    if not query.wants("loyalty"):
        return []
    account_ids = [a.id for a in _accounts(session, context)]
    if not account_ids:
        return []
    found = select(LoyaltyEntry).where(LoyaltyEntry.account_id.in_(account_ids),
                                       query.older_than_cursor(LoyaltyEntry.created_at, LoyaltyEntry.id))
    if (wanted := query.subtypes("loyalty")) is not None:
        found = found.where(LoyaltyEntry.kind.in_(wanted))
    if query.channels:
        found = found.where(LoyaltyEntry.channel.in_(query.channels))
    rows = session.scalars(found.order_by(LoyaltyEntry.created_at.desc(), LoyaltyEntry.id.desc()).limit(query.limit))
    return [
        TimelineItem(kind="loyalty", id=e.id, occurred_at=e.created_at, channel=e.channel or "loyalty", type=f"loyalty.{e.kind}",
                     data=entry_view(e), **_title(e))
        for e in rows
    ]


#: What a ledger entry did, in the timeline's titles ("Points earned: +369 (order 1)").
_ENTRY_WORDS = {"earn": "earned", "release": "became spendable", "redeem": "spent", "reverse": "taken back",
                "restore": "given back", "expire": "expired", "welcome": "welcome bonus", "birthday": "birthday bonus",
                "campaign": "campaign", "adjust": "adjusted", "transfer": "transferred"}
#: The timeline's titles (customers/timeline.py): English templates by title key, translated by the console.
TITLES = {
    **{f"loyalty.{kind}": f"Points {what}: %(points)+d" for kind, what in _ENTRY_WORDS.items()},
    **{f"loyalty.{kind}.order": f"Points {what}: %(points)+d (order %(order_id)s)" for kind, what in _ENTRY_WORDS.items()},
}


def _title(entry: LoyaltyEntry) -> dict[str, Any]:
    points = entry.available_delta + entry.pending_delta
    shown = entry.available_delta if entry.kind == "release" else points
    if entry.kind not in _ENTRY_WORDS:
        subject = f" (order {entry.order_id})" if entry.order_id else ""
        return {"title": f"Points {entry.kind}: {shown:+d}{subject}"}
    if entry.order_id:
        return titled(TITLES, f"loyalty.{entry.kind}.order", {"points": shown, "order_id": entry.order_id})
    return titled(TITLES, f"loyalty.{entry.kind}", {"points": shown})


def register(sections: SectionRegistry, timeline: TimelineRegistry) -> None:
    sections.register("loyalty", _section, export=_export, erase=_erase)
    timeline.register("loyalty", _timeline, titles=TITLES)


