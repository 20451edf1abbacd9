"""Payment providers behind two interfaces, and the signature of their webhooks.

- A remote provider (`PaymentProvider`, `remote = True`) is a service over the network: it is
  asked for a payment or a refund outside any transaction, and answers (then or by webhook).
- A local provider (`LocalProvider`, `remote = False`) has no service to ask: the money moves
  where Seamline itself keeps it (the till's takings at a handover, the customer's wallet), so its
  `capture_in` / `refund_in` run inside the transaction that writes the payment ledger, move the
  money in the provider's own ledger there, and either both are written or neither. A local
  provider has no `start_payment` that could answer "succeeded" without moving anything.

Knows nothing of orders: `orders` checks a new order's method here, and `payments` (the ledger,
starting payments, refunds, applying webhooks) builds on both. See `payments` for the providers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

import httpx
import orjson
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import (
    AppError,
    Conflict,
    NotFound,
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
    """A remote provider: a payment service reached over the network."""

    name: str
    #: True: it calls a service over the network, so never inside a transaction.
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


class LocalProvider(Protocol):
    """A local provider: the money moves in a ledger of its own, in the caller's transaction.

    `order` and `payment` (and `refund`) are the rows being written (`CommerceOrder`,
    `CommercePayment`, `CommerceRefund`), the order row locked by the caller. Every capture moves
    the money in the provider's ledger before `payments` records it in the payment ledger; when
    the money cannot be taken the provider raises a domain error (4xx) and the whole transaction
    rolls back, so nothing is written anywhere.
    """

    name: str
    remote: Literal[False]

    def capture_in(self, session: Session, *, order: Any, payment: Any, channel: str | None) -> ProviderPayment:
        """Take `payment.amount` in the provider's own ledger; the answer's status is `succeeded`."""
        ...

    def refund_in(self, session: Session, *, order: Any, payment: Any, refund: Any) -> ProviderRefund:
        """Give `refund.amount` back in the provider's own ledger (`succeeded`), or refuse (`failed`)."""
        ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: float) -> PaymentEvent: ...


class OnPickupProvider:
    """The till: paid at the till when the goods are handed over, refunds paid out at the till.

    Its ledger is the till's takings, outside Seamline: the handover (or till sale) that gives the
    goods for the money is the transaction that records the capture, and nothing else may
    (`POST /orders/{id}/payments` refuses these orders: 409 `paid_at_pickup`)."""

    name, remote = "on_pickup", False

    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    def capture_in(self, session: Session, *, order: Any, payment: Any, channel: str | None) -> ProviderPayment:
        return ProviderPayment(reference=f"till:{payment.idempotency_key}", status="succeeded")

    def refund_in(self, session: Session, *, order: Any, payment: Any, refund: Any) -> ProviderRefund:
        return ProviderRefund(reference=f"till:{refund.idempotency_key}", status="succeeded")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: float) -> PaymentEvent:
        raise NotFound("This payment provider sends no webhooks", code="no_webhooks")


class TestProvider(OnPickupProvider):
    """Succeeds at once and moves no money anywhere: for development and tests only (leave it
    out of `commerce_payment_methods` in production)."""

    name = "test"

    def capture_in(self, session: Session, *, order: Any, payment: Any, channel: str | None) -> ProviderPayment:
        return ProviderPayment(reference=f"test:{payment.idempotency_key}", status="succeeded")

    def refund_in(self, session: Session, *, order: Any, payment: Any, refund: Any) -> ProviderRefund:
        return ProviderRefund(reference=f"test:{refund.idempotency_key}", status="succeeded")


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


#: Provider factories by name; another domain adds its own with `register` (the loyalty wallet).
#: A local provider's factory also accepts `None` (its refunds may be given back where no
#: settings are at hand).
PROVIDERS: dict[str, Callable[[Settings], PaymentProvider | LocalProvider]] = {
    "on_pickup": OnPickupProvider,
    "test": TestProvider,
    "webhook": WebhookProvider,
}


def register(name: str, factory: Callable[[Settings], PaymentProvider | LocalProvider]) -> None:
    PROVIDERS[name] = factory


def provider(settings: Settings, name: str) -> PaymentProvider | LocalProvider:
    """The provider called `name` (also one no longer offered to new orders: its payments may still be refunded)."""
    factory = PROVIDERS.get(name)
    if factory is None:
        raise NotFound(f"Unknown payment provider {name!r}", code="unknown_payment_provider")
    return factory(settings)


def local_provider(settings: Settings | None, name: str) -> LocalProvider | None:
    """The provider called `name` when it is local (moves money in its own ledger), else None."""
    factory = PROVIDERS.get(name)
    if factory is None or getattr(factory, "remote", True):
        return None
    return factory(settings)  # type: ignore[arg-type]


def check_method(settings: Settings, name: str) -> None:
    """A new order may use only the providers configured in `commerce_payment_methods`."""
    if name not in settings.commerce_payment_methods or name not in PROVIDERS:
        raise Unprocessable(
            f"Payment method {name!r} is not available", code="payment_method_not_available",
            details={"available": [m for m in settings.commerce_payment_methods if m in PROVIDERS]},
        )
