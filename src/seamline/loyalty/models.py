"""Tables of the loyalty domain: the program, accounts, the points and wallet ledgers, cards.

Points and wallet money are append-only ledgers (`loyalty_entry`, `loyalty_wallet_entry`):
every change is a row with its reason and reference, never updated or deleted. An account's
running totals (`points_available`, `points_pending`, `wallet_balance`) are updated in the same
transaction as each entry; they are what a redemption locks and what `ledger.check` proves
against the ledger. `loyalty_lot` is working state derived from the ledger: what each credit
has left, for the hold (pending until `available_at`) and first-in-first-out expiry; `seamline
loyalty rebuild` recomputes lots and totals from the entries alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class LoyaltyProgram(Base):
    """The one program of the installation (id 1): its rules as `schemas.ProgramPut` stores them."""

    __tablename__ = "loyalty_program"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltyAccount(Base):
    __tablename__ = "loyalty_account"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    profile_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), unique=True, nullable=True)
    #: Spendable points; negative when a reversal took back points already spent (a debt that
    #: the next credits pay off first).
    points_available: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Earned, inside the hold (the return window): not spendable yet.
    points_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Stored value, in minor units of the shop's currency.
    wallet_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: Spend (minor units) over the tier window at the last evaluation.
    tier_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    tier_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    enrolled_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltyEntry(Base):
    """One change of an account's points, never updated or deleted."""

    __tablename__ = "loyalty_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_account.id"))
    #: earn, release, redeem, reverse (earned points taken back), restore (spent points given
    #: back), expire, welcome, birthday, campaign, adjust, transfer
    kind: Mapped[str] = mapped_column(String(16))
    available_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Money (minor units) this entry adds to the customer's spend for tiers: the paid amount an
    #: earning was computed on, negative for a return's reversal.
    spend_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    order_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    #: The credit (its entry) a release, an expiry or a reversal takes from first.
    source_entry_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: A credit's terms: an earning is pending until `available_at`; spendable points expire at
    #: `expires_at` (None: never). With the entries' order, they let a rebuild recompute every lot.
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: What caused it: "order:12", "return:3", "campaign:spring".
    reference: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: Manual adjustments: who did it, with which API key, and why.
    staff: Mapped[str | None] = mapped_column(String(100), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    #: Each effect has one key ("earn:order:12", "restore:return:3", a client's Idempotency-Key):
    #: the same key is applied once, however often the event or request arrives.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_loyalty_entry_account", "account_id", "id"),)


class LoyaltyLot(Base):
    """What is left of one credit: pending until `available_at`, then spent and expired first
    in, first out."""

    __tablename__ = "loyalty_lot"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_account.id"))
    #: The credit this lot is what is left of.
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_entry.id"), unique=True)
    #: pending or available
    state: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_loyalty_lot_account", "account_id", "state", "expires_at", "id"),
        Index("ix_loyalty_lot_due", "state", "available_at"),
        Index("ix_loyalty_lot_expiry", "state", "expires_at"),
    )


class LoyaltyCard(Base):
    __tablename__ = "loyalty_card"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_account.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    #: physical (printed, scanned at the till) or virtual (in the app)
    kind: Mapped[str] = mapped_column(String(16))
    #: active or blocked
    status: Mapped[str] = mapped_column(String(16), default="active")
    block_reason: Mapped[str] = mapped_column(String(200), default="")
    replaced_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("loyalty_card.id"), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoyaltyWalletEntry(Base):
    """One change of an account's stored value, never updated or deleted."""

    __tablename__ = "loyalty_wallet_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_account.id"))
    #: topup, payment, refund, adjust
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    order_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    reference: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    staff: Mapped[str | None] = mapped_column(String(100), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_loyalty_wallet_entry_account", "account_id", "id"),)


class LoyaltyTierChange(Base):
    """Each time an account's tier changed, and on what spend."""

    __tablename__ = "loyalty_tier_change"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_account.id"), index=True)
    from_tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    spend: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
