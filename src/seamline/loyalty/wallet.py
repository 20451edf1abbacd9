"""The stored-value wallet: money (minor units) topped up in any channel and spent on orders.

An append-only ledger (`loyalty_wallet_entry`) with the running balance on the account, changed
under the account's row lock like points. Paying an order from the wallet goes through a local
payment provider of commerce (`wallet`, a `LocalProvider`): its capture debits the wallet and its
refund (a return, a cancellation) credits it, each inside the transaction that writes the payment
ledger's capture or refund, so the two ledgers move together or not at all. An empty wallet
refuses the capture (409 `insufficient_funds`) and nothing is written.

`ledger.check` proves the two ledgers against each other, order by order: what the payment
ledger captured through the wallet is what the wallet was debited for the order, and what it
refunded is what the wallet was credited back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.commerce import orders, payment_providers, payments
from seamline.commerce.models import CommerceOrder, CommercePayment, CommerceRefund
from seamline.commerce.payment_providers import (
    PaymentEvent,
    ProviderPayment,
    ProviderRefund,
)
from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.loyalty import ledger, rules
from seamline.loyalty.models import LoyaltyAccount, LoyaltyWalletEntry
from seamline.loyalty.schemas import ProgramPut

PROVIDER = ledger.WALLET_PROVIDER


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class WalletProvider:
    """Commerce's view of the wallet: every capture and refund moves money in the wallet's
    ledger, in the caller's transaction (see the module doc)."""

    name, remote = PROVIDER, False

    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    def capture_in(self, session: Session, *, order: CommerceOrder, payment: CommercePayment,
                   channel: str | None) -> ProviderPayment:
        """Debit the order's customer's wallet by the payment's amount, or refuse (409
        `no_wallet`, `insufficient_funds`; 422 `currency_mismatch`) before writing anything."""
        program = rules.get_program(session)
        if payment.currency != program.currency:
            raise Unprocessable(f"The wallet holds {program.currency}, the order costs {payment.currency}",
                                code="currency_mismatch")
        account = ledger.account_for(session, order.profile_id, program=program, create=False) if order.profile_id else None
        if account is None:
            raise Conflict("The order's customer has no wallet", code="no_wallet")
        append(session, account, kind="payment", amount=-payment.amount, currency=payment.currency,
               key=f"wallet:payment:{payment.id}", order_id=order.id, channel=channel, reference=f"payment:{payment.id}")
        return ProviderPayment(reference=f"wallet:{payment.idempotency_key}", status="succeeded")

    def refund_in(self, session: Session, *, order: CommerceOrder, payment: CommercePayment,
                  refund: CommerceRefund) -> ProviderRefund:
        """Credit the wallet the order was paid from; never more than the wallet was debited for
        the order less what it got back already (else the refund fails and nothing moves)."""
        reference = f"wallet:{refund.idempotency_key}"
        key = f"wallet:refund:{refund.id}"
        if _existing(session, key) is not None:  # credited when it was requested (before the local refunds)
            return ProviderRefund(reference=reference, status="succeeded")
        moved = dict(session.execute(
            select(LoyaltyWalletEntry.kind, func.sum(LoyaltyWalletEntry.amount))
            .where(LoyaltyWalletEntry.order_id == order.id, LoyaltyWalletEntry.kind.in_(("payment", "refund")))
            .group_by(LoyaltyWalletEntry.kind)).all())
        left = -int(moved.get("payment") or 0) - int(moved.get("refund") or 0)
        if refund.currency != payment.currency or refund.amount > left:
            return ProviderRefund(reference=reference, status="failed")
        program = rules.get_program(session)
        account = ledger.account_for(session, order.profile_id, program=program, create=False) if order.profile_id else None
        if account is None:  # the person was erased: the account that paid keeps the books, and the money
            debited = session.scalar(select(LoyaltyWalletEntry.account_id).where(
                LoyaltyWalletEntry.order_id == order.id, LoyaltyWalletEntry.kind == "payment").order_by(LoyaltyWalletEntry.id))
            account = ledger.lock_account(session, debited)
        append(session, account, kind="refund", amount=refund.amount, currency=refund.currency, key=key, order_id=order.id,
               reference=f"return:{refund.return_id}" if refund.return_id else f"order:{order.id}")
        return ProviderRefund(reference=reference, status="succeeded")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: float) -> PaymentEvent:
        raise NotFound("The wallet sends no webhooks", code="no_webhooks")


def _existing(session: Session, key: str) -> LoyaltyWalletEntry | None:
    return session.scalar(select(LoyaltyWalletEntry).where(LoyaltyWalletEntry.idempotency_key == key))


def append(
    session: Session, account: LoyaltyAccount, *, kind: str, amount: int, currency: str, key: str, now: datetime | None = None,
    **fields: object,
) -> LoyaltyWalletEntry:
    """One wallet entry, once per key (the account row is locked by the caller)."""
    done = _existing(session, key)
    if done is not None:
        return done
    if amount < 0 and account.wallet_balance + amount < 0:
        raise InsufficientFunds(f"The wallet holds {account.wallet_balance}, {-amount} needed",
                                details={"balance": account.wallet_balance, "needed": -amount, "currency": currency})
    entry = LoyaltyWalletEntry(account_id=account.id, kind=kind, amount=amount, currency=currency, idempotency_key=key,
                               created_at=now or utcnow(), **fields)
    session.add(entry)
    account.wallet_balance += amount
    session.flush()
    return entry


def top_up(
    session: Session, account: LoyaltyAccount, *, program: ProgramPut, amount: int, channel: str, reference: str, key: str,
    api_key_id: int | None,
) -> LoyaltyWalletEntry:
    done = _existing(session, key)
    if done is not None and (done.kind, done.amount, done.account_id) != ("topup", amount, account.id):
        raise Unprocessable("This Idempotency-Key was used for a different top-up", code="idempotency_key_reused")
    return append(session, account, kind="topup", amount=amount, currency=program.currency, key=key, channel=channel,
                  reference=reference, api_key_id=api_key_id)


def _debit_of(session: Session, order_id: int) -> LoyaltyWalletEntry | None:
    return session.scalar(select(LoyaltyWalletEntry).where(LoyaltyWalletEntry.order_id == order_id,
                                                           LoyaltyWalletEntry.kind == "payment")
                          .order_by(LoyaltyWalletEntry.id).limit(1))


def pay_order(session: Session, *, program: ProgramPut, order_id: int, channel: str | None) -> LoyaltyWalletEntry:
    """Pay what an order owes from its customer's wallet, whatever its `payment_method`: the
    wallet's capture, through commerce's payment ledger. Paying again is a no-op."""
    order = orders.get_order(session, order_id, lock=True)
    if (done := _debit_of(session, order.id)) is not None:
        return done
    if order.status != "pending_payment":
        raise Conflict(f"Order {order.id} is {order.status}: nothing to pay", code="invalid_order_status",
                       details={"status": order.status})
    if order.currency != program.currency:
        raise Unprocessable(f"The wallet holds {program.currency}, the order costs {order.currency}", code="currency_mismatch")
    payment = payments.record_local_payment(session, order=order, chosen=WalletProvider(), channel=channel,
                                            idempotency_key=f"order-{order.id}-wallet")
    if payment is None:
        raise Conflict(f"Order {order.id} costs nothing: nothing to pay", code="nothing_to_pay")
    return _debit_of(session, order.id)


def entry_view(entry: LoyaltyWalletEntry) -> dict[str, object]:
    return {"id": entry.id, "kind": entry.kind, "amount": entry.amount, "currency": entry.currency, "order_id": entry.order_id,
            "reference": entry.reference, "channel": entry.channel, "created_at": entry.created_at}


def entries(session: Session, account_id: int, *, limit: int = 50, before_id: int | None = None) -> list[LoyaltyWalletEntry]:
    """The wallet's entries, newest first (below `before_id`, for the next page)."""
    query = select(LoyaltyWalletEntry).where(LoyaltyWalletEntry.account_id == account_id)
    if before_id is not None:
        query = query.where(LoyaltyWalletEntry.id < before_id)
    return list(session.scalars(query.order_by(LoyaltyWalletEntry.id.desc()).limit(limit)))


def offer_as_payment() -> None:
    """Offer the wallet to commerce as a local payment provider: an order may be placed with
    `payment_method` "wallet" where SEAMLINE_COMMERCE_PAYMENT_METHODS lists it, and its captures
    and refunds move the wallet's money in the payment ledger's transaction."""
    payment_providers.register(PROVIDER, WalletProvider)
