"""Staff accounts, sign-in with throttling, browser sessions and what each role may do.

Permissions are checked on the server for every console request (web/console/deps.py), never
only hidden in the page. A wrong password and an unknown email take the same time and give the
same answer, so the login form does not tell which emails are staff; failed sign-ins slow down
the address they come from (per email and overall), never the account everywhere, so nobody can
lock a person out (`login`, docs/console.md).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.commerce.models import CommerceLocation
from seamline.inbox import agents
from seamline.inbox.models import InboxAgent
from seamline.web.staff.models import StaffLoginThrottle, StaffSession, StaffUser

log = structlog.get_logger("seamline.staff")

LOCALES = ("ru", "en")

#: What each role may do. The console's menu and every route use these names.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({
        "dashboard", "inbox", "customers.view", "customers.edit", "customers.privacy", "orders.view", "orders.manage",
        "stock.view", "store", "loyalty.view", "loyalty.adjust", "settings", "analytics", "marketing", "assistant",
    }),
    "agent": frozenset({"dashboard", "inbox", "customers.view", "customers.edit", "orders.view", "loyalty.view", "stock.view"}),
    "clerk": frozenset({"store", "customers.view", "orders.view", "orders.manage", "stock.view", "loyalty.view"}),
    "marketer": frozenset({"dashboard", "customers.view", "orders.view", "stock.view", "loyalty.view", "loyalty.rules",
                           "analytics", "marketing", "assistant"}),
}
ROLES = tuple(PERMISSIONS)

_hasher = PasswordHasher()  # argon2id with the library's current defaults (RFC 9106 low-memory)
#: Verified against when the email is unknown, so both answers cost one argon2 verification.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def can(user: StaffUser, permission: str) -> bool:
    return permission in PERMISSIONS.get(user.role, frozenset())


def check_permission(user: StaffUser, permission: str) -> None:
    if not can(user, permission):
        raise Forbidden(f"The {user.role} role may not do this", code="forbidden", details={"required": permission})


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise Unprocessable("A password needs at least 8 characters", code="weak_password")


def create_staff_user(session: Session, *, email: str, name: str, password: str, role: str, locale: str = "ru",
                      store: str | None = None, skills: list[str] | None = None, capacity: int = 10) -> StaffUser:
    """A staff account. An agent gets an inbox agent of the same name and email, linked to it."""
    email = email.strip().lower()
    if role not in PERMISSIONS:
        raise Unprocessable(f"Unknown role {role!r}", code="invalid_role", details={"known": list(ROLES)})
    if locale not in LOCALES:
        raise Unprocessable(f"Unknown locale {locale!r}", code="invalid_locale", details={"known": list(LOCALES)})
    if role == "clerk" and not store:
        raise Unprocessable("A store clerk needs a store", code="store_required")
    _check_password(password)
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise Conflict(f"A staff account with email {email} exists", code="staff_exists")
    agent_id = None
    if role == "agent":
        agent_id = agents.create_agent(session, name=name, email=email, skills=skills or [], capacity=capacity,
                                       team_ids=[]).id
    user = StaffUser(email=email, name=name, password_hash=_hasher.hash(password), role=role, locale=locale,
                     agent_id=agent_id, store=store)
    session.add(user)
    session.flush()
    return user


def find_staff_user(session: Session, email: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def list_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.id)))


def get_staff_user(session: Session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise NotFound(f"No staff account {user_id}", code="staff_not_found")
    return user


class LoginRefused(Exception):
    """Wrong email or password: one answer for both, after the same work."""

    def __init__(self) -> None:
        super().__init__("login refused")


class LoginThrottled(Exception):
    """Too many failed sign-ins from this address (for this email, or overall): try again in
    `retry_after` seconds. The password was not checked."""

    def __init__(self, retry_after: int):
        super().__init__(f"login throttled for {retry_after} s")
        self.retry_after = retry_after


@dataclass
class NewSession:
    user: StaffUser
    token: str  # goes into the cookie; never stored
    csrf: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: The wait once an address has used its free attempts; it doubles with each further failure,
#: up to `console_login_max_delay_minutes`.
FIRST_DELAY_SECONDS = 10.0
#: Failures are forgotten after this long without another one (and a successful sign-in forgives
#: the signing-in person's own).
FORGET_AFTER = timedelta(hours=24)


def _throttle_keys(email: str, address: str) -> tuple[str, str]:
    """The (email, address) key and the address's key. Unknown emails are counted like known
    ones, so the throttling does not tell which emails exist either."""
    return f"e:{hashlib.sha256(email.encode()).hexdigest()[:40]}:{address}"[:128], f"ip:{address}"[:128]


def _forget_after(settings: Settings) -> timedelta:
    return max(FORGET_AFTER, timedelta(minutes=2 * settings.console_login_max_delay_minutes))


def _throttle_row(session: Session, key: str, *, settings: Settings, now: datetime) -> StaffLoginThrottle:
    """The key's row, created if need be and locked: a concurrent attempt from the same address
    waits for this one's outcome, so parallel guesses cannot all pass the check before any
    failure is counted. (A throttled attempt rolls back, so it leaves no row behind.)"""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(StaffLoginThrottle).values(key=key, failures=0, last_failure_at=None)
                    .on_conflict_do_nothing(index_elements=["key"]))
    row = session.get(StaffLoginThrottle, key, with_for_update=True, populate_existing=True)
    if row.last_failure_at is not None and now - row.last_failure_at >= _forget_after(settings):
        row.failures, row.last_failure_at = 0, None
    return row


def _wait(row: StaffLoginThrottle, free: int, *, settings: Settings, now: datetime) -> float:
    """Seconds the key must still wait before its next attempt (0: none)."""
    if row.failures < free or row.last_failure_at is None:
        return 0.0
    delay = min(FIRST_DELAY_SECONDS * 2 ** min(row.failures - free, 30), settings.console_login_max_delay_minutes * 60.0)
    return max(0.0, delay - (now - row.last_failure_at).total_seconds())


def _forget_old_failures(session: Session, *, settings: Settings, now: datetime) -> None:
    """Drop a few rows whose failures are forgotten (rows another attempt holds are skipped)."""
    stale = (select(StaffLoginThrottle.key).where(StaffLoginThrottle.last_failure_at < now - _forget_after(settings))
             .limit(100).with_for_update(skip_locked=True))
    session.execute(delete(StaffLoginThrottle).where(StaffLoginThrottle.key.in_(stale.scalar_subquery())))


def login(session: Session, *, settings: Settings, email: str, password: str, ip: str | None = None,
          address: str | None = None) -> NewSession:
    """Check the password and open a session.

    Failures are counted per (email, client address) and per client address (`address`, by
    default `ip`; the console passes an IPv6 client's /64, core/limits.py). Once the pair has
    failed `console_login_free_attempts` times (or the address `console_login_ip_free_attempts`
    times, whatever the emails), each further attempt from that address must wait 10 s after the
    last failure, doubling with each failure up to `console_login_max_delay_minutes`; meanwhile
    `LoginThrottled` is raised without checking the password (the caller answers 429). The same
    email from another address is not slowed down: a failed guess never locks the account.
    A wrong password, an unknown email and a disabled account all raise `LoginRefused` after
    one argon2 verification. The caller must commit after `LoginRefused` (the failure counts) and
    roll back after `LoginThrottled` (nothing to keep).
    """
    now = utcnow()
    email = email.strip().lower()
    address = address or ip or "unknown"
    pair_key, ip_key = _throttle_keys(email, address)
    # Locked in one fixed order (by key), so two attempts never wait for each other crosswise.
    rows = {key: _throttle_row(session, key, settings=settings, now=now) for key in sorted((pair_key, ip_key))}
    pair, per_ip = rows[pair_key], rows[ip_key]
    wait = max(_wait(pair, settings.console_login_free_attempts, settings=settings, now=now),
               _wait(per_ip, settings.console_login_ip_free_attempts, settings=settings, now=now))
    if wait > 0:
        raise LoginThrottled(max(1, math.ceil(wait)))
    _forget_old_failures(session, settings=settings, now=now)
    user = session.scalar(select(StaffUser).where(StaffUser.email == email))
    try:
        if user is None or user.disabled_at is not None:
            _hasher.verify(_DUMMY_HASH, password)  # the same work as for a real account
            raise VerificationError("unknown or disabled account")
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        for row in (pair, per_ip):
            row.failures, row.last_failure_at = row.failures + 1, now
        session.flush()
        raise LoginRefused() from None
    # The person's own mistakes from here are forgiven; other emails' failures from the address stay.
    per_ip.failures = max(0, per_ip.failures - pair.failures)
    session.delete(pair)
    if per_ip.failures == 0:
        session.delete(per_ip)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires_at = now + timedelta(hours=settings.console_session_hours)
    session.add(StaffSession(token_hash=_token_hash(token), user_id=user.id, csrf=csrf, created_at=now,
                             expires_at=expires_at, ip=ip))
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id, StaffSession.expires_at < now))
    session.flush()
    return NewSession(user=user, token=token, csrf=csrf, expires_at=expires_at)


def session_of(session: Session, token: str) -> tuple[StaffUser, StaffSession] | None:
    """The signed-in user of a cookie's token, if the session is live and the account usable."""
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == _token_hash(token)))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(StaffUser, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user, row


def logout(session: Session, token: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == _token_hash(token)))


def set_locale(session: Session, *, user_id: int, locale: str) -> StaffUser:
    if locale not in LOCALES:
        raise Unprocessable(f"Unknown locale {locale!r}", code="invalid_locale", details={"known": list(LOCALES)})
    user = get_staff_user(session, user_id)
    user.locale = locale
    session.flush()
    return user


def set_password(session: Session, *, user_id: int, password: str) -> StaffUser:
    """A new password; every session of the account ends."""
    _check_password(password)
    user = get_staff_user(session, user_id)
    user.password_hash = _hasher.hash(password)
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    session.flush()
    return user


# --- role and deactivation (admins, web/console/pages/settings.py) --------------------------------


def _active_admins(session: Session) -> list[int]:
    """Ids of the active admins, their rows locked (PostgreSQL), so two admins demoting each other
    at once cannot both pass the "an admin is left" check: the second waits and counts again."""
    return list(session.scalars(select(StaffUser.id).where(StaffUser.role == "admin", StaffUser.disabled_at.is_(None))
                                .order_by(StaffUser.id).with_for_update()))


def _keep_an_admin(session: Session, user: StaffUser) -> None:
    """Refuse a change that would leave no active admin (nobody could manage the console)."""
    if user.role == "admin" and user.disabled_at is None and _active_admins(session) == [user.id]:
        raise Conflict("This is the only active admin: make another admin first", code="last_admin",
                       details={"user_id": user.id})


def _check_store(session: Session, store: str | None) -> None:
    if store is None:
        return
    kind = session.scalar(select(CommerceLocation.kind).where(CommerceLocation.code == store,
                                                              CommerceLocation.active.is_(True)))
    if kind != "store":
        raise Unprocessable(f"{store} is not an active store", code="not_a_store", details={"store": store})


def _agent_offline(session: Session, settings: Settings | None, user: StaffUser) -> None:
    """An account that no longer answers customers: its inbox agent goes offline (their open
    conversations go back to the queue) and is kept, linked, for the history and a way back."""
    if user.agent_id is not None and settings is not None:
        agents.set_status(session, settings=settings, agent_id=user.agent_id, status="offline")


def _audit(action: str, *, actor: StaffUser | None, user: StaffUser, **changes: object) -> None:
    log.info("staff.account_changed", action=action, actor_id=actor.id if actor else None,
             actor=actor.email if actor else None, user_id=user.id, user=user.email, **changes)


def change_role(session: Session, *, user_id: int, role: str, store: str | None = None, actor: StaffUser | None = None,
                settings: Settings | None = None) -> StaffUser:
    """A new role (and store: a clerk needs one, an active store). Leaving the agent role puts
    the inbox agent offline; becoming an agent links (or creates) the inbox agent of the same
    email. The last active admin cannot stop being one. Takes effect at the person's next
    request (their sessions read the account each time)."""
    if role not in PERMISSIONS:
        raise Unprocessable(f"Unknown role {role!r}", code="invalid_role", details={"known": list(ROLES)})
    store = (store or "").strip() or None
    if role == "clerk" and not store:
        raise Unprocessable("A store clerk needs a store", code="store_required")
    _check_store(session, store)
    user = session.get(StaffUser, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"No staff account {user_id}", code="staff_not_found")
    before = {"role": user.role, "store": user.store}
    if role != "admin":
        _keep_an_admin(session, user)
    if role == "agent" and user.agent_id is None:
        existing = session.scalar(select(InboxAgent).where(InboxAgent.email == user.email))
        taken = existing is not None and session.scalar(select(StaffUser.id).where(StaffUser.agent_id == existing.id))
        if existing is not None and not taken:
            user.agent_id = existing.id
        else:
            user.agent_id = agents.create_agent(session, name=user.name, email=user.email, skills=[], capacity=10,
                                                team_ids=[]).id
    elif role != "agent" and before["role"] == "agent":
        _agent_offline(session, settings, user)
    user.role, user.store = role, store
    session.flush()
    if before != {"role": user.role, "store": user.store}:
        _audit("role", actor=actor, user=user, role_from=before["role"], role_to=role, store_from=before["store"],
               store_to=store)
    return user


def set_active(session: Session, *, user_id: int, active: bool, actor: StaffUser | None = None,
               settings: Settings | None = None) -> StaffUser:
    """Deactivate (the account cannot sign in, every session ends at once, an agent goes offline)
    or reactivate an account. The last active admin cannot be deactivated."""
    user = session.get(StaffUser, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"No staff account {user_id}", code="staff_not_found")
    if active == (user.disabled_at is None):
        return user
    if not active:
        _keep_an_admin(session, user)
        user.disabled_at = utcnow()
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        if user.role == "agent":
            _agent_offline(session, settings, user)
    else:
        user.disabled_at = None
    session.flush()
    _audit("deactivate" if not active else "reactivate", actor=actor, user=user)
    return user
