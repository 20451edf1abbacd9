"""Payments: providers behind one interface, the payment ledger, signed webhooks, refunds.

Providers (`PaymentProvider`), found by name in `PROVIDERS`; an order's `payment_method` names
its provider, and `SEAMLINE_COMMERCE_PAYMENT_METHODS` lists those new orders may choose:
- `on_pickup`: paid at the till when the goods are handed over (click & collect pickup, or a
  delivery completed by the courier); the capture is recorded then. Refunds are paid out at the
  till and recorded at once.
- `test`: every payment and refund succeeds at once (`POST /v1/orders/{id}/pay` or
  `POST /v1/orders/{id}/payments`). For development and tests only.
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

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce import orders
from seamline.commerce.models import (
    CommerceOrder,
    CommerceOrderStatus,
    CommercePayment,
    CommercePaymentEvent,
    CommercePaymentTransaction,
    CommerceRefund,
)
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import (
    AppError,
    Conflict,
    NotFound,
    TransactionConflict,
    Unauthorized,
    Unprocessable,
)

#: Payment statuses: created (written, not yet sent), pending, authorized, succeeded, failed, canceled.
OPEN_PAYMENT = ("created", "pending", "authorized")
#: Refund statuses: requested (written, not yet sent), pending, succeeded, failed.
OPEN_REFUND = ("requested", "pending")
#: Largest webhook body accepted.
MAX_WEBHOOK_BYTES = 256 * 1024

#: ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
                     "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


class ProviderUnavailable(AppError):
    """The provider could not be reached or failed (5xx, timeout): try again later."""

    status_code = 502
    code = "payment_provider_unavailable"


class ProviderRefused(Conflict):
    """The provider answered with a client error: this request will not succeed as it is."""

    code = "payment_provider_refused"


def format_amount(amount: int, currency: str) -> str:
    """Minor units as the decimal string providers use: 199000 RUB -> "1990.00"."""
    exponent = _EXPONENTS.get(currency, 2)
    return str(Decimal(amount).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


def parse_amount(value: Any, currency: str) -> int:
    """The decimal string of a provider as minor units; more decimals than the currency has is an error."""
    exponent = _EXPONENTS.get(currency, 2)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    minor = number.scaleb(exponent)
    if not minor.is_finite() or minor != minor.to_integral_value() or minor < 0:
        raise ValueError(f"not an amount in {currency}: {value!r}")
    return int(minor)


# --- the provider interface ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderPayment:
    reference: str
    #: pending, authorized, succeeded, failed, canceled
    status: str
    confirmation_url: str | None = None


@dataclass(frozen=True)
class ProviderRefund:
    reference: str
    #: pending, succeeded, failed
    status: str


@dataclass(frozen=True)
class PaymentEvent:
    """A verified webhook event in provider-neutral terms."""

    event_id: str
    #: payment.authorized, payment.succeeded, payment.failed, payment.canceled,
    #: refund.succeeded, refund.failed; anything else is acknowledged and ignored.
    kind: str
    payment_reference: str | None
    refund_reference: str | None
    amount: int | None
    currency: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str
    #: True when it calls a service over the network: then never inside a transaction.
    remote: bool

    def start_payment(
        self, *, order_id: int, payment_id: int, amount: int, currency: str, idempotency_key: str, description: str
    ) -> ProviderPayment: ...

    def refund(
        self, *, payment_reference: str, refund_id: int, amount: int, currency: str, idempotency_key: str
    ) -> ProviderRefund: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: float) -> PaymentEvent:
        """Verify the signature (401 if it is bad, missing or stale) and normalize the event."""
        ...


class OnPickupProvider:
    """Paid at the till at handover; refunds paid out at the till."""

    name, remote = "on_pickup", False

    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    def start_payment(self, *, order_id: int, payment_id: int, amount: int, currency: str, idempotency_key: str,
                      description: str) -> ProviderPayment:
        return ProviderPayment(reference=f"till:{idempotency_key}", status="succeeded")

    def refund(self, *, payment_reference: str, refund_id: int, amount: int, currency: str,
               idempotency_key: str) -> ProviderRefund:
        return ProviderRefund(reference=f"till:{idempotency_key}", status="succeeded")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: float) -> PaymentEvent:
        raise NotFound("This payment provider sends no webhooks", code="no_webhooks")


class TestProvider(OnPickupProvider):
    """Succeeds at once; for development and tests."""

    name = "test"

    def start_payment(self, *, order_id: int, payment_id: int, amount: int, currency: str, idempotency_key: str,
                      description: str) -> ProviderPayment:
        return ProviderPayment(reference=f"test:{idempotency_key}", status="succeeded")

    def refund(self, *, payment_reference: str, refund_id: int, amount: int, currency: str,
               idempotency_key: str) -> ProviderRefund:
        return ProviderRefund(reference=f"test:{idempotency_key}", status="succeeded")


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The `Webhook-Signature` header value for a body (what the provider sends; tests use it too)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str | None, body: bytes, *, now: float, tolerance: int) -> None:
    """Stripe's scheme: `t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of "<t>.<body>"; the
    timestamp must be within `tolerance` seconds of now (a captured request cannot be replayed later)."""
    if not secret:
        raise Unauthorized("Webhooks of this provider are not configured", code="webhook_not_configured")
    if not header:
        raise Unauthorized("The webhook signature is missing", code="missing_signature")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise Unauthorized("The webhook signature is malformed", code="invalid_signature")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise Unauthorized("The webhook signature does not match", code="invalid_signature")
    if abs(now - timestamp) > tolerance:
        raise Unauthorized("The webhook signature is too old (or from the future)", code="stale_signature",
                           details={"tolerance_seconds": tolerance})


class WebhookProvider:
    """A payment service over HTTP, YooKassa-shaped requests and notifications, Stripe-style
    signatures (see the module doc)."""

    name, remote = "webhook", True
    signature_header = "Webhook-Signature"
    _payment_statuses = {"pending": "pending", "waiting_for_capture": "authorized", "succeeded": "succeeded",
                         "canceled": "canceled", "failed": "failed"}
    _refund_statuses = {"pending": "pending", "succeeded": "succeeded", "canceled": "failed", "failed": "failed"}
    _events = {"payment.waiting_for_capture": "payment.authorized", "payment.succeeded": "payment.succeeded",
               "payment.canceled": "payment.canceled", "payment.failed": "payment.failed",
               "refund.succeeded": "refund.succeeded", "refund.canceled": "refund.failed", "refund.failed": "refund.failed"}

    def __init__(self, settings: Settings):
        self.settings = settings

    def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        base = self.settings.commerce_psp_url.rstrip("/")
        if not base:
            raise ProviderUnavailable("The payment provider is not configured (SEAMLINE_COMMERCE_PSP_URL)")
        account, key = self.settings.commerce_psp_account, self.settings.commerce_psp_api_key.get_secret_value()
        try:
            with httpx.Client(timeout=self.settings.commerce_psp_timeout_seconds,
                              auth=(account, key) if account else None) as client:
                response = client.post(base + path, json=body, headers={"Idempotence-Key": idempotency_key})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"The payment provider could not be reached: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(f"The payment provider answered {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            raise ProviderRefused(f"The payment provider refused the request ({response.status_code})",
                                  details={"provider_error": data if isinstance(data, dict) else None})
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("status"), str):
            raise ProviderUnavailable("The payment provider's answer has no id or status")
        return data

    def start_payment(self, *, order_id: int, payment_id: int, amount: int, currency: str, idempotency_key: str,
                      description: str) -> ProviderPayment:
        confirmation: dict[str, Any] = {"type": "redirect"}
        if self.settings.commerce_psp_return_url:
            confirmation["return_url"] = self.settings.commerce_psp_return_url
        data = self._post("/payments", {
            "amount": {"value": format_amount(amount, currency), "currency": currency}, "capture": True,
            "confirmation": confirmation, "description": description,
            "metadata": {"order_id": str(order_id), "payment_id": str(payment_id)},
        }, idempotency_key)
        url = (data.get("confirmation") or {}).get("confirmation_url")
        return ProviderPayment(reference=data["id"], status=self._payment_statuses.get(data["status"], "pending"),
                               confirmation_url=url if isinstance(url, str) else None)

    def refund(self, *, payment_reference: str, refund_id: int, amount: int, currency: str,
               idempotency_key: str) -> ProviderRefund:
        data = self._post("/refunds", {
            "payment_id": payment_reference, "amount": {"value": format_amount(amount, currency), "currency": currency},
            "metadata": {"refund_id": str(refund_id)},
        }, idempotency_key)
        return ProviderRefund(reference=data["id"], status=self._refund_statuses.get(data["status"], "pending"))

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: float) -> PaymentEvent:
        verify_signature(self.settings.commerce_psp_webhook_secret.get_secret_value(), headers.get(self.signature_header),
                         body, now=now, tolerance=self.settings.commerce_psp_webhook_tolerance_seconds)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Unprocessable("The webhook body is not JSON", code="invalid_webhook") from None
        obj = payload.get("object") if isinstance(payload, dict) else None
        event = payload.get("event") if isinstance(payload, dict) else None
        if not isinstance(obj, dict) or not isinstance(event, str) or not isinstance(obj.get("id"), str):
            raise Unprocessable("The webhook has no event or object id", code="invalid_webhook")
        kind = self._events.get(event, event)
        # Stripe-like events carry their own id; a YooKassa notification is one status change of
        # one object, so (event, object id) names it.
        event_id = payload.get("id") if isinstance(payload.get("id"), str) else f"{event}:{obj['id']}"
        amount = currency = None
        if isinstance(obj.get("amount"), dict):
            currency = obj["amount"].get("currency")
            if not isinstance(currency, str) or len(currency) != 3:
                raise Unprocessable("The webhook's amount has no currency", code="invalid_webhook")
            try:
                amount = parse_amount(obj["amount"].get("value"), currency)
            except ValueError as exc:
                raise Unprocessable(str(exc), code="invalid_webhook") from None
        metadata = {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()} if isinstance(obj.get("metadata"), dict) else {}
        refund = kind.startswith("refund.")
        payment_reference = obj.get("payment_id") if refund else obj["id"]
        return PaymentEvent(
            event_id=event_id[:200], kind=kind, payment_reference=payment_reference if isinstance(payment_reference, str) else None,
            refund_reference=obj["id"] if refund else None, amount=amount, currency=currency, metadata=metadata,
            payload=payload,
        )


#: Provider factories by name; an adapter registers itself here.
PROVIDERS: dict[str, Callable[[Settings], PaymentProvider]] = {
    "on_pickup": OnPickupProvider,
    "test": TestProvider,
    "webhook": WebhookProvider,
}


def provider(settings: Settings, name: str) -> PaymentProvider:
    """The provider called `name` (also one no longer offered to new orders: its payments may still be refunded)."""
    factory = PROVIDERS.get(name)
    if factory is None:
        raise NotFound(f"Unknown payment provider {name!r}", code="unknown_payment_provider")
    return factory(settings)


def check_method(settings: Settings, name: str) -> None:
    """A new order may use only the providers configured in `commerce_payment_methods`."""
    if name not in settings.commerce_payment_methods or name not in PROVIDERS:
        raise Unprocessable(
            f"Payment method {name!r} is not available", code="payment_method_not_available",
            details={"available": [m for m in settings.commerce_payment_methods if m in PROVIDERS]},
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
    provider answers at once; a remote one is called after the payment row is committed."""
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
    if order.payment_method != "on_pickup" or order.total <= 0:
        return
    if session.scalar(select(CommercePayment.id).where(CommercePayment.order_id == order.id,
                                                       CommercePayment.status == "succeeded")):
        return
    payment = CommercePayment(order_id=order.id, provider="on_pickup", amount=order.total, currency=order.currency,
                              status="created", idempotency_key=f"order-{order.id}-at-handover")
    session.add(payment)
    session.flush()
    result = OnPickupProvider().start_payment(
        order_id=order.id, payment_id=payment.id, amount=payment.amount, currency=payment.currency,
        idempotency_key=payment.idempotency_key, description=f"Order {order.id}",
    )
    payment.provider_reference = result.reference
    _apply_payment_status(session, order, payment, result.status, key=f"payment-{payment.id}-till",
                          reference=result.reference, channel=channel)


# --- refunds -------------------------------------------------------------------------------------


def request_refunds(session: Session, *, settings: Settings, order: CommerceOrder, amount: int,
                    return_id: int | None) -> list[CommerceRefund]:
    """Refund `amount` of an order's captured payments (oldest first, never more than each has
    left). Local providers refund at once; remote refunds stay `requested` until
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
        left -= take
        chosen = provider(settings, payment.provider)
        if not chosen.remote:
            result = chosen.refund(payment_reference=payment.provider_reference or "", refund_id=refund.id, amount=take,
                                   currency=payment.currency, idempotency_key=refund.idempotency_key)
            refund.provider_reference = result.reference
            _apply_refund_status(session, payment, refund, result.status, key=f"refund-{refund.id}-answer",
                                 reference=result.reference)
        if left == 0:
            break
    return refunds


def _record_refund_answer(session: Session, *, refund_id: int, result: ProviderRefund) -> None:
    refund = _lock(session, CommerceRefund, refund_id)
    payment = session.get(CommercePayment, refund.payment_id)
    if refund.provider_reference is None:
        refund.provider_reference = result.reference
    _apply_refund_status(session, payment, refund, result.status, key=f"refund-{refund.id}-answer", reference=result.reference)


def send_requested_refunds(database: Database, *, settings: Settings, order_id: int | None = None) -> int:
    """Send the refunds still `requested` (of one order, or all) to their remote provider, after
    the commit that wrote them; returns how many the provider accepted. An unreachable provider
    leaves them `requested` for the next attempt (the same return request again, or
    `seamline commerce send-refunds`)."""
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


def _find_payment(session: Session, provider_name: str, event: PaymentEvent) -> CommercePayment | None:
    if event.payment_reference:
        found = session.scalar(select(CommercePayment).where(CommercePayment.provider == provider_name,
                                                             CommercePayment.provider_reference == event.payment_reference))
        if found is not None:
            return found
    ours = event.metadata.get("payment_id", "")
    if ours.isdigit() and len(ours) < 19:
        found = session.get(CommercePayment, int(ours))
        if found is not None and found.provider == provider_name and found.provider_reference in (None, event.payment_reference):
            return found
    return None


def _find_refund(session: Session, payment: CommercePayment, event: PaymentEvent) -> CommerceRefund | None:
    found = session.scalar(select(CommerceRefund).where(CommerceRefund.payment_id == payment.id,
                                                        CommerceRefund.provider_reference == event.refund_reference))
    if found is not None:
        return found
    ours = event.metadata.get("refund_id", "")
    if ours.isdigit() and len(ours) < 19:
        found = session.get(CommerceRefund, int(ours))
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


def payment_summary(session: Session, order: CommerceOrder) -> dict[str, Any]:
    """What the order has paid, from the ledger, and its payments (for the order view)."""
    payments = list(session.scalars(select(CommercePayment).where(CommercePayment.order_id == order.id).order_by(CommercePayment.id)))
    sums = _sums(session, [p.id for p in payments])
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
