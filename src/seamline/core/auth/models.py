from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ApiKey(Base):
    """An API key. Only the SHA-256 of the secret is stored; the key is shown once, at creation."""

    __tablename__ = "core_api_key"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    #: For write keys of a tracking source (the events issue); null for staff/server keys.
    source_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by_key_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("core_api_key.id"), nullable=True)
