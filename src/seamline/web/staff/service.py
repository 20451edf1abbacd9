"""Staff accounts, sign-in with lockout, browser sessions and what each role may do.

Permissions are checked on the server for every console request (web/console/deps.py), never
only hidden in the page. A wrong password and an unknown email take the same time and give the
same answer, so the login form does not tell which emails are staff.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.inbox import agents
from seamline.web.staff.models import StaffSession, StaffUser

LOCALES = ("ru", "en")

#: What each role may do. The console's menu and every route use these names.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({
        "dashboard", "inbox", "customers.view", "customers.edit", "customers.privacy", "orders.view", "orders.manage",
        "stock.view", "store", "loyalty.view", "loyalty.adjust", "settings",
    }),
    "agent": frozenset({"dashboard", "inbox", "customers.view", "customers.edit", "orders.view", "loyalty.view", "stock.view"}),
    "clerk": frozenset({"store", "customers.view", "orders.view", "orders.manage", "stock.view", "loyalty.view"}),
    "marketer": frozenset({"dashboard", "customers.view", "orders.view", "stock.view", "loyalty.view", "loyalty.rules"}),
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
                     agent_id=agent_id, store=store, failed_logins=0)
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
    """Sign-in refused; `locked_until` is set when the account is (or just became) locked."""

    def __init__(self, locked_until: datetime | None = None):
        super().__init__("login refused")
        self.locked_until = locked_until


@dataclass
class NewSession:
    user: StaffUser
    token: str  # goes into the cookie; never stored
    csrf: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login(session: Session, *, settings: Settings, email: str, password: str, ip: str | None = None) -> NewSession:
    """Check the password and open a session. `console_lockout_attempts` failures in a row lock
    the account for `console_lockout_minutes`; while locked even the right password is refused."""
    now = utcnow()
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()).with_for_update())
    if user is None or user.disabled_at is not None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        raise LoginRefused()
    if user.locked_until is not None and user.locked_until > now:
        raise LoginRefused(user.locked_until)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= settings.console_lockout_attempts:
            user.locked_until = now + timedelta(minutes=settings.console_lockout_minutes)
            user.failed_logins = 0
        session.flush()
        raise LoginRefused(user.locked_until if user.locked_until and user.locked_until > now else None) from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
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
    user.password_hash, user.failed_logins, user.locked_until = _hasher.hash(password), 0, None
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    session.flush()
    return user
