"""Tables of the customers domain.

The identity graph: every identifier a person uses is a node (`customer_identity`), every time a
request says "these identifiers are the same person" adds edges (`customer_link`). A profile is
a connected component of that graph, cut where the merge rules forbid a join. Traits and consents
hang off the identity that carried them, not the profile, so merging and unmerging profiles
moves nothing but `customer_identity.profile_id`, and an unmerge can give each side back
exactly what was said through its identifiers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class CustomerProfile(Base):
    __tablename__ = "customer_profile"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: active | merged (its identities now live in `merged_into_id`) | erased (tombstone, no PII)
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'merged', 'erased')", name="status"),
        # the change stamp the analytics mirror reads by (a merge, unmerge or erasure moves it)
        Index("ix_customer_profile_updated_at", "updated_at"),
    )


class CustomerIdentity(Base):
    __tablename__ = "customer_identity"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(320))
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When a trusted party first vouched for this identifier (a login code, a server-side
    #: source, a clerk, a signed provider webhook); null while only claimed (docs/customers.md,
    #: "Trust"). Device identifiers (anonymous ids) are held, never verified.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The source that verified it.
    verified_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (UniqueConstraint("type", "value"),)


class CustomerLink(Base):
    """An edge of the identity graph: one request said these two identifiers are one person.

    Stored with `identity_a_id < identity_b_id`; the id orders edges, and resolution applies them
    in that order (first come, first served when a merge rule is at stake). A pair is stored again
    only by a staff decision (a forced link after a revoked one); requests never repeat a pair.
    """

    __tablename__ = "customer_link"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    identity_a_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_identity.id", ondelete="CASCADE"))
    identity_b_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer_identity.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(64))
    #: A forced link (staff decision) joins even when a merge rule would forbid it.
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A revoked link (unmerge, dismissed conflict, a claim superseded by a verification) no
    #: longer joins anything.
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: False when one end was only claimed (a browser said so): such a link was stored only
    #: because the claimed end was new, and a later verification of that end revokes it.
    trusted: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_customer_link_pair", "identity_a_id", "identity_b_id"),
        CheckConstraint("identity_a_id < identity_b_id", name="ordered_pair"),
    )


class CustomerTrait(Base):
    """Latest value of a trait as said through one identity; a profile shows the latest across them."""

    __tablename__ = "customer_trait"

    identity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer_identity.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    source: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Said by a trusted source: an unverified observation never replaces it, and the profile
    #: shows the latest verified value before any unverified one.
    verified: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class CustomerConsent(Base):
    """Append-only log of consents given and withdrawn; the latest per channel and purpose counts."""

    __tablename__ = "customer_consent"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    identity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer_identity.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerMerge(Base):
    """A merge of two profiles, with each side's identities at that moment, so it can be undone."""

    __tablename__ = "customer_merge"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survivor_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), index=True)
    absorbed_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), index=True)
    link_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customer_link.id", ondelete="SET NULL"), nullable=True
    )
    #: link (a request linked identifiers) | manual (staff) | conflict_resolution | rebuild
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    survivor_identity_ids: Mapped[list[int]] = mapped_column(JSON)
    absorbed_identity_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    undone_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CustomerConflict(Base):
    """A link that would break a merge rule: kept for staff review instead of merging."""

    __tablename__ = "customer_conflict"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    link_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer_link.id", ondelete="CASCADE"), unique=True
    )
    profile_a_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"))
    profile_b_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"))
    #: {"identifier_type": {"limit": 1, "would_have": 2}, ...}
    violations: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: open | merged | dismissed
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CustomerErasure(Base):
    """Audit of an erasure. Holds no personal data: only which profile, when, by whom, how much."""

    __tablename__ = "customer_erasure"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), unique=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    #: {"email": 2, "phone": 1, "traits": 5, "consents": 3}
    removed_counts: Mapped[dict[str, int]] = mapped_column(JSON)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)



class CustomerLoginCode(Base):
    """A one-time login code sent to a phone or email (`customers/login_codes.py`).

    The code itself is never stored: only `code_hash`, the hex SHA-256 of `salt` + code. A row is
    superseded by the identifier's next request, used once, and dead after `expires_at` or
    five wrong tries. Rows older than a day are deleted by later requests.
    """

    __tablename__ = "customer_login_code"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    identifier_type: Mapped[str] = mapped_column(String(32))
    identifier_value: Mapped[str] = mapped_column(String(320))
    #: sms | email: where the code was (or would have been) sent
    channel: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when a newer code was requested for the same identifier.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The profile the successful verification logged in (answered again to a retry).
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True)
    created_customer: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_customer_login_code_identifier", "identifier_type", "identifier_value", "created_at"),)
