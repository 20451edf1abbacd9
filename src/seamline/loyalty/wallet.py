"""The stored-value wallet: money (minor units) topped up in any channel and spent on orders.

An append-only ledger (`loyalty_wallet_entry`) with the running balance on the account, changed
under the account's row lock like points. Paying an order from the wallet is a local payment
provider (`wallet`) of commerce: the capture is recorded in the order's payment ledger in the
same transaction as the wallet debit, and a refund of that payment (a return, a cancellation)
credits the wallet when commerce writes it (`events.on_refund_requested`), once per refund.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce import events as commerce_events
from seamline.commerce import orders, payments
from seamline.commerce.payment_providers import (
    PROVIDERS,
    ProviderPayment,
    ProviderRefund,
)
from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.loyalty import ledger
from seamline.loyalty.models import LoyaltyAccount, LoyaltyWalletEntry
from seamline.loyalty.schemas import ProgramPut

PROVIDER = "wallet"


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class WalletProvider:
    """Commerce's view of the wallet: money moves in the loyalty ledger, in the same transaction."""

    name, remote = PROVIDER, False

    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    def start_payment(self, *, order_id: int, payment_id: int, amount: int, currency: str, idempotency_key: str,
                      description: str) -> ProviderPayment:
        return ProviderPayment(reference=f"wallet:{idempotency_key}", status="succeeded")

    def refund(self, *, payment_reference: str, refund_id: int, amount: int, currency: str,
               idempotency_key: str) -> ProviderRefund:
        return ProviderRefund(reference=f"wallet:{idempotency_key}", status="succeeded")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: float) -> object:
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


def pay_order(session: Session, *, program: ProgramPut, order_id: int, channel: str | None) -> LoyaltyWalletEntry:
    """Pay what an order owes from its customer's wallet. Paying again is a no-op."""
    order = orders.get_order(session, order_id, lock=True)
    key = f"wallet:order:{order.id}"
    if (done := _existing(session, key)) is not None:
        return done
    if order.status != "pending_payment":
        raise Conflict(f"Order {order.id} is {order.status}: nothing to pay", code="invalid_order_status",
                       details={"status": order.status})
    if order.currency != program.currency:
        raise Unprocessable(f"The wallet holds {program.currency}, the order costs {order.currency}", code="currency_mismatch")
    account = ledger.account_for(session, order.profile_id, program=program, create=False) if order.profile_id else None
    if account is None:
        raise Conflict("The order's customer has no wallet", code="no_wallet")
    entry = append(session, account, kind="payment", amount=-order.total, currency=order.currency, key=key,
                   order_id=order.id, channel=channel, reference=f"order:{order.id}")
    payments.record_local_payment(session, order=order, chosen=WalletProvider(), channel=channel,
                                  idempotency_key=f"order-{order.id}-wallet")
    return entry


def _credit_refund(session: Session, event: commerce_events.RefundRequested) -> None:
    if event.provider != PROVIDER:
        return
    order = orders.get_order(session, event.order_id)
    account = ledger.find_account(session, order.profile_id) if order.profile_id else None
    if account is None:  # the person was erased: the money is paid out another way (noted on the refund)
        return
    account = ledger.lock_account(session, account.id)
    append(session, account, kind="refund", amount=event.amount, currency=event.currency, key=f"wallet:refund:{event.refund_id}",
           order_id=order.id, reference=f"return:{event.return_id}" if event.return_id else f"order:{order.id}")


def entry_view(entry: LoyaltyWalletEntry) -> dict[str, object]:
    return {"id": entry.id, "kind": entry.kind, "amount": entry.amount, "currency": entry.currency, "order_id": entry.order_id,
            "reference": entry.reference, "channel": entry.channel, "created_at": entry.created_at}


def entries(session: Session, account_id: int, *, limit: int = 50) -> list[LoyaltyWalletEntry]:
    return list(session.scalars(select(LoyaltyWalletEntry).where(LoyaltyWalletEntry.account_id == account_id)
                                .order_by(LoyaltyWalletEntry.id.desc()).limit(limit)))


# Offered to commerce as a payment provider (an order may be placed with `payment_method`
# "wallet" where SEAMLINE_COMMERCE_PAYMENT_METHODS lists it), and its refunds credited.
PROVIDERS[PROVIDER] = WalletProvider
commerce_events.on_refund_requested(_credit_refund)
