"""Payments: providers behind two interfaces (remote, local), the payment ledger, signed webhooks, refunds.

Providers (`PaymentProvider` for remote services, `LocalProvider` for those whose money moves
in a ledger of Seamline's own), found by name in `PROVIDERS`; an order's `payment_method` names
its provider, and `SEAMLINE_COMMERCE_PAYMENT_METHODS` lists those new orders may choose:
- `on_pickup`: paid at the till when the goods are handed over (click & collect pickup, or a
  delivery completed by the courier); the capture is recorded then, by the handover's
  transaction, and only there. Refunds are paid out at the till and recorded at once.
- `test`: every payment and refund succeeds at once (`POST /v1/orders/{id}/pay` or
  `POST /v1/orders/{id}/payments`) and moves no money. For development and tests only.
- `wallet` (registered by loyalty): the customer's stored-value wallet; a capture debits it and
  a refund credits it, in the same transaction as the payment ledger's row.
- `webhook`: a payment service reached over HTTP (`SEAMLINE_COMMERCE_PSP_URL`). Requests are
  YooKassa-shaped (`POST {url}/payments`, `POST {url}/refunds`, an `Idempotence-Key` header,
  amounts as `{"value": "1990.00", "currency": "RUB"}`, our ids in `metadata`); the answer is
  usually `pending` with a confirmation URL for the customer; the outcome arrives by webhook,
  signed like Stripe's (`Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`)
  with YooKassa-shaped bodies (`{"type": "notification", "event": "payment.succeeded",
  "object": {...}}`). An adapter for a real service subclasses it or implements the protocol
  and is added to `PROVIDERS`.

The ledger: `commerce_payment` is one payment at a provider (its status follows the provider);
money moved is only in the append-only `commerce_payment_transaction` (authorization, capture,
refund, failure), each row under a unique key (the webhook event or the local action that made
it), so nothing is applied twice. What an order has paid is captures less refunds.

Local providers (`LocalProvider`: the till, the wallet, the test provider) have no service to
call: a capture or a refund is one transaction in which the provider moves the money in its own
ledger (`capture_in` / `refund_in`) and the payment ledger records it. When the provider cannot
(an empty wallet) it raises a domain error and nothing at all is written: a local capture that
moved no money cannot be recorded.

Calls to a remote provider are never made inside a database transaction (SQLite has one writer;
a slow provider must not hold it): the payment or refund is first written as `created` /
`requested` under a fixed idempotency key, the provider is called after the commit, and its
answer is recorded in a second transaction. If the provider is unreachable the row stays
`created` / `requested` and the next attempt resends it with the same key, which the provider
deduplicates.

Webhooks: verified before anything is read from the database (a bad, missing or stale
signature is a 401 and changes nothing), then stored once under (provider, event id): a
redelivered event is answered "duplicate" and changes nothing. Out of order:
- an event may arrive before the provider's answer to our request was recorded: payments and
  refunds are also found by our own id in the event's `metadata`;
- a payment status never goes back (a `canceled` after `succeeded` is ignored and stored as such);
- a refund event for a payment whose capture has not arrived yet is refused with 409, so the
  provider redelivers it after the capture;
- a refund made at the provider itself (its dashboard) is recorded as a refund without a return.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce import events, orders
from seamline.commerce.models import (
    CommerceOrder,
    CommerceOrderStatus,
    CommercePayment,
    CommercePaymentEvent,
    CommercePaymentTransaction,
    CommerceRefund,
)
from seamline.commerce.payment_providers import (
    MAX_WEBHOOK_BYTES,
    OPEN_PAYMENT,
    OPEN_REFUND,
    PROVIDERS,
    LocalProvider,
    OnPickupProvider,
    PaymentEvent,
    ProviderPayment,
    ProviderRefund,
    ProviderUnavailable,
    local_provider,
    provider,
)
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import (
    Conflict,
    NotFound,
    TransactionConflict,
    Unprocessable,
)

# --- the ledger ----------------------------------------------------------------------------------


def _lock(session: Session, model: type, row_id: int) -> Any:
    query = select(model).where(model.id == row_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def _append(session: Session, payment: CommercePayment, *, kind: str, amount: int, key: str, reference: str = "",
            refund: CommerceRefund | None = None) -> None:
    session.add(CommercePaymentTransaction(
        payment_id=payment.id, refund_id=refund.id if refund else None, kind=kind, amount=amount, currency=payment.currency,
        provider_reference=reference[:200], idempotency_key=key[:200],
    ))


def _sums(session: Session, payment_ids: list[int]) -> dict[tuple[int, str], int]:
    if not payment_ids:
        return {}
    return {
        (pid, kind): int(total)
        for pid, kind, total in session.execute(
            select(CommercePaymentTransaction.payment_id, CommercePaymentTransaction.kind,
                   func.sum(CommercePaymentTransaction.amount))
            .where(CommercePaymentTransaction.payment_id.in_(payment_ids))
            .group_by(CommercePaymentTransaction.payment_id, CommercePaymentTransaction.kind)
        )
    }


def _apply_payment_status(
    session: Session, order: CommerceOrder, payment: CommercePayment, status: str, *, key: str, reference: str,
    channel: str | None = None,
) -> bool:
    """Move a payment to the provider's status; money moves go to the ledger. A status never
    goes back (a late `canceled` after `succeeded` changes nothing). Returns whether it applied."""
    if status == "succeeded" and payment.status != "succeeded":
        payment.status = "succeeded"
        _append(session, payment, kind="capture", amount=payment.amount, key=key, reference=reference)
        if order.status == "pending_payment":
            orders.pay_order(session, order_id=order.id, channel=channel, note=f"paid: {payment.provider}")
        elif order.status == "cancelled":
            session.add(CommerceOrderStatus(order_id=order.id, status="cancelled", channel=channel,
                                            note=f"payment {payment.id} captured after cancellation: refund due"))
        return True
    if status == "authorized" and payment.status in ("created", "pending"):
        payment.status = "authorized"
        _append(session, payment, kind="authorization", amount=payment.amount, key=key, reference=reference)
        return True
    if status in ("failed", "canceled") and payment.status in OPEN_PAYMENT:
        payment.status = status
        _append(session, payment, kind="failure", amount=payment.amount, key=key, reference=reference)
        return True
    if status == "pending" and payment.status == "created":
        payment.status = "pending"
        return True
    return False


def _apply_refund_status(session: Session, payment: CommercePayment, refund: CommerceRefund, status: str, *, key: str,
                         reference: str) -> bool:
    if refund.status not in OPEN_REFUND:
        return False
    if status == "succeeded":
        refund.status = "succeeded"
        _append(session, payment, kind="refund", amount=refund.amount, key=key, reference=reference, refund=refund)
        return True
    if status == "failed":
        refund.status = "failed"
        _append(session, payment, kind="failure", amount=refund.amount, key=key, reference=reference, refund=refund)
        return True
    if status == "pending" and refund.status == "requested":
        refund.status = "pending"
        return True
    return False


def _refundable(session: Session, payment: CommercePayment) -> int:
    captured = _sums(session, [payment.id]).get((payment.id, "capture"), 0)
    committed = session.scalar(
        select(func.coalesce(func.sum(CommerceRefund.amount), 0))
        .where(CommerceRefund.payment_id == payment.id, CommerceRefund.status.in_(("requested", "pending", "succeeded")))
    )
    return captured - int(committed)


# --- starting a payment --------------------------------------------------------------------------


def _prepare_payment(session: Session, *, settings: Settings, order_id: int) -> tuple[int, bool]:
    """(payment id, whether it still has to be sent): the order's open or paid payment, else a new one."""
    order = orders.get_order(session, order_id, lock=True)
    if order.payment_method == "on_pickup":
        raise Conflict("This order is paid in the store at handover", code="paid_at_pickup")
    provider(settings, order.payment_method)
    payments = list(session.scalars(select(CommercePayment).where(CommercePayment.order_id == order.id).order_by(CommercePayment.id)))
    done = next((p for p in payments if p.status == "succeeded"), None)
    if done is not None:
        return done.id, False
    if order.status != "pending_payment":
        raise Conflict(f"Order {order.id} is {order.status}; it is not waiting for payment", code="order_not_awaiting_payment",
                       details={"status": order.status})
    current = next((p for p in reversed(payments) if p.status in OPEN_PAYMENT), None)
    if current is not None:
        return current.id, current.status == "created"
    payment = CommercePayment(order_id=order.id, provider=order.payment_method, amount=order.total, currency=order.currency,
                              status="created", idempotency_key=f"order-{order.id}-payment-{len(payments) + 1}")
    session.add(payment)
    try:
        session.flush()
    except IntegrityError:
        raise TransactionConflict() from None
    return payment.id, True


def _record_started(session: Session, *, payment_id: int, result: ProviderPayment, channel: str | None) -> None:
    payment = session.get(CommercePayment, payment_id)
    order = orders.get_order(session, payment.order_id, lock=True)
    payment = _lock(session, CommercePayment, payment_id)
    if payment.provider_reference is None:
        payment.provider_reference = result.reference
    payment.confirmation_url = payment.confirmation_url or result.confirmation_url
    _apply_payment_status(session, order, payment, result.status, key=f"payment-{payment.id}-answer",
                          reference=result.reference, channel=channel)


def start_payment(database: Database, *, settings: Settings, order_id: int, channel: str | None = None) -> int:
    """Start (or resume) the payment of an order waiting for it; returns the payment id. A local
    provider captures in one transaction with its own ledger (`_pay_locally`); a remote one is
    called after the payment row is committed."""
    with database.read() as session:
        method = orders.get_order(session, order_id).payment_method
    local = local_provider(settings, method)
    if local is not None:
        return database.run_write(lambda s: _pay_locally(s, settings=settings, order_id=order_id, chosen=local,
                                                         channel=channel))
    payment_id, to_send = database.run_write(lambda s: _prepare_payment(s, settings=settings, order_id=order_id))
    if not to_send:
        return payment_id
    with database.read() as session:
        payment = session.get(CommercePayment, payment_id)
        request = {"order_id": payment.order_id, "payment_id": payment.id, "amount": payment.amount,
                   "currency": payment.currency, "idempotency_key": payment.idempotency_key,
                   "description": f"Order {payment.order_id}"}
        name = payment.provider
    result = provider(settings, name).start_payment(**request)
    database.run_write(lambda s: _record_started(s, payment_id=payment_id, result=result, channel=channel))
    return payment_id


def _pay_locally(session: Session, *, settings: Settings, order_id: int, chosen: LocalProvider,
                 channel: str | None) -> int:
    """`start_payment` through a local provider: the payment row, the money moved in the
    provider's ledger and the capture, in this one transaction (or none of them)."""
    payment_id, to_send = _prepare_payment(session, settings=settings, order_id=order_id)
    if to_send:
        payment = _lock(session, CommercePayment, payment_id)
        if payment.provider != chosen.name:
            raise Conflict(f"Payment {payment.id} is through {payment.provider}, the order through {chosen.name}",
                           code="wrong_payment_provider")
        _capture_locally(session, orders.get_order(session, order_id), payment, chosen, channel=channel)
    return payment_id


def pay_with_test_provider(database: Database, *, settings: Settings, order_id: int, channel: str | None) -> None:
    """`POST /orders/{id}/pay`: the test provider's explicit payment."""
    with database.read() as session:
        order = orders.get_order(session, order_id)
    if order.payment_method != "test":
        raise Conflict(f"Order {order_id} is paid through {order.payment_method}, not the test provider",
                       code="wrong_payment_provider")
    start_payment(database, settings=settings, order_id=order_id, channel=channel)


def record_payment_at_handover(session: Session, *, order: CommerceOrder, channel: str | None) -> None:
    """Pay on pickup: the money taken at the till when the goods are handed over (called by the
    handover itself, in its transaction)."""
    if order.payment_method == "on_pickup":
        record_local_payment(session, order=order, chosen=OnPickupProvider(), channel=channel,
                             idempotency_key=f"order-{order.id}-at-handover")


def record_local_payment(session: Session, *, order: CommerceOrder, chosen: LocalProvider, channel: str | None,
                         idempotency_key: str) -> CommercePayment | None:
    """Capture what is due on an order through a local provider (the till, the customer's wallet),
    inside the caller's transaction (the order row locked by the caller); nothing when it is paid
    already or costs nothing."""
    if order.total <= 0 or session.scalar(select(CommercePayment.id).where(CommercePayment.order_id == order.id,
                                                                          CommercePayment.status == "succeeded")):
        return None
    payment = CommercePayment(order_id=order.id, provider=chosen.name, amount=order.total, currency=order.currency,
                              status="created", idempotency_key=idempotency_key)
    session.add(payment)
    try:
        session.flush()
    except IntegrityError:
        raise TransactionConflict() from None
    _capture_locally(session, order, payment, chosen, channel=channel)
    return payment


def _capture_locally(session: Session, order: CommerceOrder, payment: CommercePayment, chosen: LocalProvider, *,
                     channel: str | None) -> None:
    """The provider takes the money in its own ledger (or raises, and the transaction with this
    payment row rolls back), then the payment ledger records the capture."""
    result = chosen.capture_in(session, order=order, payment=payment, channel=channel)
    payment.provider_reference = result.reference
    _apply_payment_status(session, order, payment, result.status, key=f"payment-{payment.id}-local",
                          reference=result.reference, channel=channel)


def _refund_locally(session: Session, order: CommerceOrder, payment: CommercePayment, refund: CommerceRefund,
                    chosen: LocalProvider) -> None:
    """The provider gives the money back in its own ledger, and the payment ledger records the
    refund, in this one transaction; once per refund (only an open refund moves money)."""
    if refund.status not in OPEN_REFUND:
        return
    result = chosen.refund_in(session, order=order, payment=payment, refund=refund)
    refund.provider_reference = result.reference
    _apply_refund_status(session, payment, refund, result.status, key=f"refund-{refund.id}-answer",
                         reference=result.reference)


# --- refunds -------------------------------------------------------------------------------------


def request_refunds(session: Session, *, settings: Settings | None, order: CommerceOrder, amount: int,
                    return_id: int | None) -> list[CommerceRefund]:
    """Refund `amount` of an order's captured payments (oldest first, never more than each has
    left). Local providers refund at once, in this transaction (their own ledger and ours);
    remote refunds (and every refund when no `settings` are given) stay `requested` until
    `send_requested_refunds` runs after the commit. The order row must be locked by the caller."""
    left, refunds = amount, []
    payments = session.scalars(select(CommercePayment).where(CommercePayment.order_id == order.id,
                                                             CommercePayment.status == "succeeded").order_by(CommercePayment.id))
    for payment in list(payments):
        take = min(left, _refundable(session, payment))
        if take <= 0:
            continue
        refund = CommerceRefund(payment_id=payment.id, return_id=return_id, amount=take, currency=payment.currency,
                                status="requested",
                                idempotency_key=f"return-{return_id}-payment-{payment.id}" if return_id else
                                f"order-{order.id}-refund-{payment.id}-{left}")
        session.add(refund)
        session.flush()
        refunds.append(refund)
        events.refund_requested(session, events.RefundRequested(
            refund_id=refund.id, order_id=order.id, provider=payment.provider, amount=take, currency=payment.currency,
            return_id=return_id))
        left -= take
        local = local_provider(settings, payment.provider) if settings is not None else None
        if local is not None:
            _refund_locally(session, order, payment, refund, local)
        if left == 0:
            break
    return refunds


def _record_refund_answer(session: Session, *, refund_id: int, result: ProviderRefund) -> None:
    refund = _lock(session, CommerceRefund, refund_id)
    payment = session.get(CommercePayment, refund.payment_id)
    if refund.provider_reference is None:
        refund.provider_reference = result.reference
    _apply_refund_status(session, payment, refund, result.status, key=f"refund-{refund.id}-answer", reference=result.reference)


def _give_back_locally(session: Session, *, refund_id: int, chosen: LocalProvider) -> bool:
    refund = session.get(CommerceRefund, refund_id)
    payment = session.get(CommercePayment, refund.payment_id)
    order = orders.get_order(session, payment.order_id, lock=True)  # the order first, as every payment write
    refund = _lock(session, CommerceRefund, refund_id)
    payment = _lock(session, CommercePayment, payment.id)
    was = refund.status
    _refund_locally(session, order, payment, refund, chosen)
    return was in OPEN_REFUND and refund.status == "succeeded"


def send_requested_refunds(database: Database, *, settings: Settings, order_id: int | None = None) -> int:
    """Send the refunds still `requested` (of one order, or all), after the commit that wrote
    them; returns how many the provider accepted. A remote provider is called outside any
    transaction, and an unreachable one leaves them `requested` for the next attempt (the same
    return request again, or `seamline commerce send-refunds`); a local provider gives the money
    back in one transaction with the payment ledger's refund."""
    with database.read() as session:
        query = (
            select(CommerceRefund, CommercePayment)
            .join(CommercePayment, CommercePayment.id == CommerceRefund.payment_id)
            .where(CommerceRefund.status == "requested")
            .order_by(CommerceRefund.id)
        )
        if order_id is not None:
            query = query.where(CommercePayment.order_id == order_id)
        waiting = session.execute(query).all()
        requests = [(r.id, p.provider, dict(payment_reference=p.provider_reference or "", refund_id=r.id, amount=r.amount,
                                             currency=r.currency, idempotency_key=r.idempotency_key))
                    for r, p in waiting]
    sent = 0
    for refund_id, name, request in requests:
        if name not in PROVIDERS:  # registered by a module this process did not load: left for one that did
            continue
        local = local_provider(settings, name)
        if local is not None:
            sent += database.run_write(lambda s, rid=refund_id, chosen=local: _give_back_locally(s, refund_id=rid,
                                                                                                chosen=chosen))
            continue
        try:
            result = provider(settings, name).refund(**request)
        except ProviderUnavailable:
            continue
        database.run_write(lambda s, rid=refund_id, res=result: _record_refund_answer(s, refund_id=rid, result=res))
        sent += 1
    return sent


# --- webhooks ------------------------------------------------------------------------------------


def parse_webhook(settings: Settings, *, provider_name: str, body: bytes, headers: Mapping[str, str],
                  now: float | None = None) -> PaymentEvent:
    """Verify and normalize a webhook; touches no database."""
    if len(body) > MAX_WEBHOOK_BYTES:
        raise Unprocessable("The webhook body is too large", code="invalid_webhook")
    return provider(settings, provider_name).parse_webhook(body, headers, now=time.time() if now is None else now)


def _our_id(event: PaymentEvent, key: str) -> int | None:
    """Our id of the payment or refund, as we put it in the provider's `metadata` (a 64-bit int)."""
    value = event.metadata.get(key, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _find_payment(session: Session, provider_name: str, event: PaymentEvent) -> CommercePayment | None:
    if event.payment_reference:
        found = session.scalar(select(CommercePayment).where(CommercePayment.provider == provider_name,
                                                             CommercePayment.provider_reference == event.payment_reference))
        if found is not None:
            return found
    if (ours := _our_id(event, "payment_id")) is not None:
        found = session.get(CommercePayment, ours)
        if found is not None and found.provider == provider_name and found.provider_reference in (None, event.payment_reference):
            return found
    return None


def _find_refund(session: Session, payment: CommercePayment, event: PaymentEvent) -> CommerceRefund | None:
    found = session.scalar(select(CommerceRefund).where(CommerceRefund.payment_id == payment.id,
                                                        CommerceRefund.provider_reference == event.refund_reference))
    if found is not None:
        return found
    if (ours := _our_id(event, "refund_id")) is not None:
        found = session.get(CommerceRefund, ours)
        if found is not None and found.payment_id == payment.id and found.provider_reference in (None, event.refund_reference):
            return found
    return None


def apply_webhook(session: Session, *, provider_name: str, event: PaymentEvent) -> str:
    """Apply a verified event once: "applied", "ignored" (nothing to change) or "duplicate"."""
    if session.scalar(select(CommercePaymentEvent.id).where(CommercePaymentEvent.provider == provider_name,
                                                            CommercePaymentEvent.event_id == event.event_id)):
        return "duplicate"
    stored = CommercePaymentEvent(provider=provider_name, event_id=event.event_id, kind=event.kind[:32],
                                  payload=event.payload, outcome="ignored")
    session.add(stored)
    try:
        session.flush()  # claims the event id: a concurrent delivery waits, then finds it
    except IntegrityError:
        raise TransactionConflict() from None
    if not event.kind.startswith(("payment.", "refund.")):
        return stored.outcome
    payment = _find_payment(session, provider_name, event)
    if payment is None:
        raise NotFound("No payment matches this event", code="unknown_payment",
                       details={"payment_reference": event.payment_reference})
    order = orders.get_order(session, payment.order_id, lock=True)
    payment = _lock(session, CommercePayment, payment.id)
    key = f"{provider_name}:{event.event_id}"
    if event.kind.startswith("payment."):
        if (event.amount, event.currency) != (payment.amount, payment.currency):
            raise Unprocessable(
                "The event's amount differs from the payment's", code="amount_mismatch",
                details={"expected": {"amount": payment.amount, "currency": payment.currency},
                         "received": {"amount": event.amount, "currency": event.currency}},
            )
        if payment.provider_reference is None:
            payment.provider_reference = event.payment_reference
        status = event.kind.split(".", 1)[1]
        applied = _apply_payment_status(session, order, payment, status, key=key, reference=event.payment_reference or "")
    else:
        if payment.status != "succeeded":
            raise Conflict("The payment's capture has not been recorded yet; send this event again later",
                           code="payment_not_captured")
        if event.amount is None or event.currency != payment.currency:
            raise Unprocessable("The refund's amount or currency differs from the payment's", code="amount_mismatch")
        refund = _find_refund(session, payment, event)
        if refund is None and event.kind == "refund.succeeded":
            if event.amount > _refundable(session, payment):
                raise Unprocessable("The refund is larger than what is left of the payment", code="amount_mismatch")
            refund = CommerceRefund(payment_id=payment.id, amount=event.amount, currency=payment.currency, status="pending",
                                    provider_reference=event.refund_reference, idempotency_key=f"{provider_name}:{event.refund_reference}")
            session.add(refund)
            session.flush()
        if refund is None:
            applied = False
        else:
            if refund.amount != event.amount:
                raise Unprocessable("The event's amount differs from the refund's", code="amount_mismatch",
                                    details={"expected": refund.amount, "received": event.amount})
            if refund.provider_reference is None:
                refund.provider_reference = event.refund_reference
            applied = _apply_refund_status(session, payment, refund, event.kind.split(".", 1)[1], key=key,
                                           reference=event.refund_reference or "")
    stored.outcome = "applied" if applied else "ignored"
    return stored.outcome


# --- views ---------------------------------------------------------------------------------------


#: The payment summary of an order with no payments yet.
NO_PAYMENTS: dict[str, Any] = {"status": "unpaid", "captured": 0, "refunded": 0, "paid": 0, "payments": []}


def payment_summary(session: Session, order: CommerceOrder) -> dict[str, Any]:
    """What the order has paid, from the ledger, and its payments (for the order view)."""
    return payment_summaries(session, [order.id])[order.id]


def payment_summaries(session: Session, order_ids: list[int]) -> dict[int, dict[str, Any]]:
    """`payment_summary` of several orders in two queries (a page of the order list)."""
    found: dict[int, list[CommercePayment]] = {order_id: [] for order_id in order_ids}
    if order_ids:
        for payment in session.scalars(select(CommercePayment).where(CommercePayment.order_id.in_(order_ids))
                                       .order_by(CommercePayment.id)):
            found[payment.order_id].append(payment)
    sums = _sums(session, [p.id for payments in found.values() for p in payments])
    return {order_id: _summary(payments, sums) for order_id, payments in found.items()}


def _summary(payments: list[CommercePayment], all_sums: dict[tuple[int, str], int]) -> dict[str, Any]:
    ids = {p.id for p in payments}
    sums = {key: value for key, value in all_sums.items() if key[0] in ids}
    captured = sum(v for (_, kind), v in sums.items() if kind == "capture")
    refunded = sum(v for (_, kind), v in sums.items() if kind == "refund")
    if captured == 0:
        status = "pending" if any(p.status in OPEN_PAYMENT for p in payments) else "unpaid"
    else:
        status = "paid" if refunded == 0 else "refunded" if refunded >= captured else "partially_refunded"
    return {
        "status": status, "captured": captured, "refunded": refunded, "paid": captured - refunded,
        "payments": [{"id": p.id, "provider": p.provider, "provider_reference": p.provider_reference, "amount": p.amount,
                      "currency": p.currency, "status": p.status, "confirmation_url": p.confirmation_url,
                      "created_at": p.created_at}
                     for p in payments],
    }


def payments_view(session: Session, order: CommerceOrder) -> dict[str, Any]:
    """`GET /orders/{id}/payments`: the summary, each payment's ledger and refunds."""
    summary = payment_summary(session, order)
    ids = [p["id"] for p in summary["payments"]]
    transactions = list(session.scalars(select(CommercePaymentTransaction).where(CommercePaymentTransaction.payment_id.in_(ids))
                                        .order_by(CommercePaymentTransaction.id))) if ids else []
    refunds = list(session.scalars(select(CommerceRefund).where(CommerceRefund.payment_id.in_(ids))
                                   .order_by(CommerceRefund.id))) if ids else []
    for payment in summary["payments"]:
        payment["transactions"] = [
            {"kind": t.kind, "amount": t.amount, "currency": t.currency, "provider_reference": t.provider_reference,
             "refund_id": t.refund_id, "at": t.created_at}
            for t in transactions if t.payment_id == payment["id"]
        ]
        payment["refunds"] = [
            {"id": r.id, "return_id": r.return_id, "amount": r.amount, "currency": r.currency, "status": r.status,
             "provider_reference": r.provider_reference, "created_at": r.created_at}
            for r in refunds if r.payment_id == payment["id"]
        ]
    return {"order_id": order.id, "currency": order.currency, "total": order.total, **summary}


def _capture_at_handover(session: Session, event: events.OrderHandedOver) -> None:
    record_payment_at_handover(session, order=event.order, channel=event.channel)


def _refund_on_cancel(session: Session, event: events.OrderCancelled) -> None:
    """A cancelled order gives back everything captured for it (staff cancel, or a paid
    click & collect order never collected): refunds `requested` in the cancelling transaction,
    sent after its commit (`send_requested_refunds`: the cancel endpoint at once, the refunds
    job otherwise)."""
    order = session.get(CommerceOrder, event.order_id)
    paid = list(session.scalars(select(CommercePayment).where(CommercePayment.order_id == event.order_id,
                                                             CommercePayment.status == "succeeded")))
    amount = sum(_refundable(session, payment) for payment in paid)
    if order is not None and amount > 0:
        request_refunds(session, settings=None, order=order, amount=amount, return_id=None)


def subscribe() -> None:
    """Capture a pay-on-pickup order at handover; refund a paid order that is cancelled (called
    once by `seamline.runtime.wire`)."""
    events.on_order_handed_over(_capture_at_handover)
    events.on_order_cancelled(_refund_on_cancel)
