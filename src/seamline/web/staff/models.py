from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class StaffUser(Base):
    """A person who signs in to the console. The password is kept only as an argon2 hash."""

    __tablename__ = "web_staff_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    #: admin, agent, clerk, marketer (web/staff/service.py PERMISSIONS)
    role: Mapped[str] = mapped_column(String(16))
    #: ru or en: the console's language, dates, numbers and money for this person
    locale: Mapped[str] = mapped_column(String(8), default="ru")
    #: The inbox agent this person answers as (agents only)
    agent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_agent.id"), nullable=True, unique=True)
    #: The store (location code) a clerk works in
    store: Mapped[str | None] = mapped_column(String(64), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffSession(Base):
    """A signed-in browser. The cookie holds the token; only its SHA-256 is stored, so a copy
    of the database signs nobody in. `csrf` is the token every form and HTMX request echoes."""

    __tablename__ = "web_staff_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("web_staff_user.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class StaffLoginThrottle(Base):
    """Failed console sign-ins counted per (email, client address) and per client address
    (web/staff/service.py `login`): past a few, the next attempt from that address waits. Never
    per account alone, so nobody can lock a person out from their own address. `key` is
    `e:<SHA-256 of the email>:<address>` or `ip:<address>` (the email is not kept in clear)."""

    __tablename__ = "web_staff_login_throttle"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
