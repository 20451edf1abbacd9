"""One-time login codes: a person proves they hold a phone or an email address, and is logged in
as the profile of that identifier (created if new).

Flow (`POST /v1/auth/login-codes`, then `POST /v1/auth/login-codes/verify`):

- `request_code` normalizes the identifier (phones to E.164, so `8 (916) 123-45-67` and
  `+79161234567` are one person), refuses a sixth request per identifier within an hour (429
  `too_many_codes`), supersedes the identifier's previous unused code, stores a new 6-digit code
  (from `secrets`) valid for 10 minutes, and hands the text to the registered senders.
- `verify_code` checks the identifier's newest code: a wrong one counts an attempt (422
  `invalid_code` with `attempts_left`); after five wrong attempts, past its expiry, superseded or
  already used it is dead (422 `code_expired`). The right one marks it used and upserts the
  profile with the identifier and the visitor's anonymous id, so their anonymous browsing (events,
  cart, web chat) joins the person.

Storage: the code is never stored. A row keeps a random salt and `sha256(salt + code)`, so codes
do not show up in database dumps, logs or backups. This is not a defence against someone who can
read the table (a million codes are hashed in well under a second); that protection comes from
the code's short life (10 minutes) and the attempt limit, which are enforced here. Rows older than
a day are deleted by the next request, so the identifiers they hold do not linger.

Idempotency: repeating a successful verify with the same (right) code while the code is still
within its 10 minutes answers the same `customer_id` and `created` again and changes nothing (a
client retrying after a lost response is not locked out); the anonymous id of a repeat is not
linked again.

Delivery: the customers domain knows no SMS or email provider. `register_sender(fn)` adds a
sender, called as `fn(session, *, identifier_type, value, text, settings)` and returning True
when it has sent (or queued) the text; the app wires one that uses the inbox's outbound `send`
(`seamline/app.py`). Senders are tried in order until one delivers. When none does and
`login_codes_reveal` is off, the request is a 422 `login_code_undeliverable` and nothing is
stored. With `login_codes_reveal` (demo only) the code is also returned in the response.

Functions take a session and never commit: the caller's transaction does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import (
    AppError,
    TooManyRequests,
    Unprocessable,
)
from seamline.core.time import utcnow
from seamline.customers import service
from seamline.customers.identifiers import Identifier, IdentifierRules
from seamline.customers.models import CustomerLoginCode
from seamline.customers.schemas import CustomerUpsert, IdentifierIn

log = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAX_REQUESTS_PER_HOUR = 5
RATE_WINDOW = timedelta(hours=1)
KEEP_ROWS = timedelta(days=1)
CHANNELS = {"phone": "sms", "email": "email"}


class Sender(Protocol):
    def __call__(self, session: Session, *, identifier_type: str, value: str, text: str, settings: Settings) -> bool: ...


_SENDERS: list[Callable[..., bool]] = []


def register_sender(fn: Sender) -> Sender:
    """Add a way to deliver codes (tried in registration order); registering twice is a no-op."""
    if fn not in _SENDERS:
        _SENDERS.append(fn)
    return fn


def unregister_sender(fn: Sender) -> None:
    if fn in _SENDERS:
        _SENDERS.remove(fn)


@dataclass
class IssuedCode:
    row: CustomerLoginCode
    code: str
    delivered: bool


@dataclass
class Verification:
    """What a verify came to. A failed check still commits (the attempt is counted), so the
    error is returned, for the caller to raise after the transaction, not raised here."""

    customer_id: int | None = None
    created: bool = False
    error: AppError | None = None


def _hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}{code}".encode()).hexdigest()


def _identifier(rules: IdentifierRules, type_name: str, value: str) -> Identifier:
    if type_name not in CHANNELS:
        raise Unprocessable(
            f"A login code goes to a phone or an email, not {type_name!r}", code="unsupported_identifier",
            details={"type": type_name, "supported": sorted(CHANNELS)},
        )
    identifier = rules.normalize(type_name, value)
    if rules.is_blocked(identifier):
        raise Unprocessable(
            f"{identifier.value!r} cannot be used to log in", code="invalid_identifier",
            details={"type": identifier.type, "value": identifier.value, "reason": "blocked"},
        )
    return identifier


def _message(settings: Settings, code: str) -> str:
    if settings.inbox_language == "en":
        return f"Your login code: {code}. It is valid for 10 minutes. Do not share it with anyone."
    return f"Код для входа: {code}. Действует 10 минут. Никому его не сообщайте."


def request_code(session: Session, *, settings: Settings, rules: IdentifierRules, identifier_type: str, value: str,
                 now: datetime | None = None) -> IssuedCode:
    """Issue a new code for the identifier and send it (see the module's docstring)."""
    now = now or utcnow()
    identifier = _identifier(rules, identifier_type, value)
    session.execute(delete(CustomerLoginCode).where(CustomerLoginCode.created_at < now - KEEP_ROWS))
    of_identifier = (CustomerLoginCode.identifier_type == identifier.type,
                     CustomerLoginCode.identifier_value == identifier.value)
    recent = session.execute(
        select(func.count(), func.min(CustomerLoginCode.created_at))
        .where(*of_identifier, CustomerLoginCode.created_at > now - RATE_WINDOW)
    ).one()
    if recent[0] >= MAX_REQUESTS_PER_HOUR:
        retry_after = max(1, int((recent[1] + RATE_WINDOW - now).total_seconds()) + 1)
        raise TooManyRequests(
            f"At most {MAX_REQUESTS_PER_HOUR} codes an hour for one {identifier.type}: try again in {retry_after // 60 + 1} min",
            code="too_many_codes", details={"retry_after_seconds": retry_after, "limit": MAX_REQUESTS_PER_HOUR},
        )
    for earlier in session.scalars(
        select(CustomerLoginCode).where(*of_identifier, CustomerLoginCode.used_at.is_(None),
                                        CustomerLoginCode.superseded_at.is_(None))
    ):
        earlier.superseded_at = now
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    row = CustomerLoginCode(
        identifier_type=identifier.type, identifier_value=identifier.value, channel=CHANNELS[identifier.type],
        salt=salt, code_hash=_hash(salt, code), attempts=0, created_at=now, expires_at=now + CODE_TTL,
    )
    session.add(row)
    session.flush()
    delivered = _deliver(session, settings=settings, identifier=identifier, text=_message(settings, code))
    if not delivered and not settings.login_codes_reveal:
        raise Unprocessable(
            f"No way to send a code to this {identifier.type} is available now; try another way to log in",
            code="login_code_undeliverable", details={"type": identifier.type, "channel": row.channel},
        )
    return IssuedCode(row, code, delivered)


def _deliver(session: Session, *, settings: Settings, identifier: Identifier, text: str) -> bool:
    for sender in list(_SENDERS):
        try:
            if sender(session, identifier_type=identifier.type, value=identifier.value, text=text, settings=settings):
                return True
        except AppError as exc:
            log.info("login code sender %s could not deliver: %s", getattr(sender, "__name__", sender), exc.code)
    return False


def verify_code(session: Session, *, rules: IdentifierRules, identifier_type: str, value: str, code: str,
                anonymous_id: str | None = None, link: list[tuple[str, str]] = (), channel: str = "web",
                now: datetime | None = None) -> Verification:
    """Check a code; on success log the person in (see the module's docstring). `link`: more
    identifiers the caller vouches for that join the person with it (the chat bot's messenger
    account of the person who proved the code)."""
    now = now or utcnow()
    identifier = _identifier(rules, identifier_type, value)
    row = session.scalar(
        select(CustomerLoginCode)
        .where(CustomerLoginCode.identifier_type == identifier.type, CustomerLoginCode.identifier_value == identifier.value)
        .order_by(CustomerLoginCode.id.desc()).limit(1).with_for_update()
    )
    code = "".join(code.split())
    expired = Unprocessable(
        "This code is no longer valid: request a new one", code="code_expired",
        details={"reason": "no_code"},
    )
    if row is None:
        return Verification(error=expired)
    matches = hmac.compare_digest(row.code_hash, _hash(row.salt, code))
    if row.used_at is not None:
        if matches and now < row.expires_at and row.customer_id is not None:
            profile = service.get_profile(session, row.customer_id)
            return Verification(customer_id=profile.id, created=row.created_customer)
        expired.details["reason"] = "used"
        return Verification(error=expired)
    reason = ("superseded" if row.superseded_at is not None else "expired" if now >= row.expires_at
              else "too_many_attempts" if row.attempts >= MAX_ATTEMPTS else None)
    if reason:
        expired.details["reason"] = reason
        return Verification(error=expired)
    if not matches:
        row.attempts += 1
        left = MAX_ATTEMPTS - row.attempts
        message = f"Wrong code: {left} attempt{'s' if left != 1 else ''} left" if left else "Wrong code: no attempts left, request a new one"
        return Verification(error=Unprocessable(message, code="invalid_code", details={"attempts_left": left}))
    identifiers = [IdentifierIn(type=identifier.type, value=identifier.value)]
    if anonymous_id:
        identifiers.append(IdentifierIn(type="anonymous_id", value=anonymous_id))
    identifiers += [IdentifierIn(type=t, value=v) for t, v in link if (t, v) != (identifier.type, identifier.value)]
    outcome = service.upsert_customer(
        session, rules=rules, data=CustomerUpsert(identifiers=identifiers, source=f"login:{channel}"[:64])
    )
    row.used_at = now
    row.customer_id = outcome.resolution.profile_id
    row.created_customer = outcome.resolution.created_profile
    return Verification(customer_id=outcome.resolution.profile_id, created=outcome.resolution.created_profile)


def view(issued: IssuedCode, *, settings: Settings) -> dict[str, Any]:
    body: dict[str, Any] = {"id": issued.row.id, "channel": issued.row.channel, "expires_at": issued.row.expires_at}
    if settings.login_codes_reveal:
        body["code"] = issued.code
    return body
