"""Tables of the events domain: tracking sources and the events they send.

An event is stored as received (`payload`, the message's JSON text) with the columns the
timeline, deduplication and retention need pulled out beside it. Events are keyed to people by
an identifier value, not by profile id (`person`: `u:<userId>` when the event has a userId,
else `a:<anonymousId>`): the profile an event belongs to is whichever profile holds that
identifier now, so an anonymous visitor's browsing joins the profile the moment that anonymous
id is identified, and merges never rewrite events. One key per event (the userId wins, as in
Segment) keeps ingestion to one timeline index; an event carrying both ids links them in the
identity graph, so it is found from either.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class EventSource(Base):
    """A tracking source (a website, an app, a store's POS, the call center) with its channel."""

    __tablename__ = "event_source"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    #: The key is kept on a server (a backend, a POS, an ETL), so what it says about who is who is
    #: vouched for. False for websites and apps, whose write key is public: their identifiers
    #: and traits are claims (docs/customers.md, "Trust").
    server_side: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EventRecord(Base):
    __tablename__ = "event_record"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(BigId, ForeignKey("event_source.id"))
    message_id: Mapped[str] = mapped_column(String(200))
    #: identify, track, page, screen, group, alias
    type: Mapped[str] = mapped_column(String(16))
    #: The track event's name, or the page/screen name.
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(320), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(320), nullable=True)
    #: Whose event this is: "u:" + userId, else "a:" + anonymousId (see the module doc).
    person: Mapped[str] = mapped_column(String(330))
    channel: Mapped[str] = mapped_column(String(32))
    #: When it happened, corrected for the sender's clock skew when `sentAt` was given.
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The message as received (minus `writeKey`), JSON text.
    payload: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("source_id", "message_id"),
        Index("ix_event_record_person_timeline", "person", "timestamp", "id"),
    )


class EventDestination(Base):
    """A webhook that receives collected events, signed with HMAC-SHA256 of its secret."""

    __tablename__ = "event_destination"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    #: The signing secret, encrypted (`enc1:...`, core/crypto.py; decrypted only to sign); shown
    #: in clear once, in the answer that creates the destination.
    secret: Mapped[str] = mapped_column(String(512))
    #: Only these event types (null: all).
    types: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventDelivery(Base):
    """The outbox: one row per stored batch and destination, written in the batch's transaction,
    so a committed event is never missed; the delivery worker sends it, with retries, and gives
    up into the dead-letter list after the last attempt."""

    __tablename__ = "event_delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    destination_id: Mapped[int] = mapped_column(BigId, ForeignKey("event_destination.id"))
    source_id: Mapped[int] = mapped_column(BigId, ForeignKey("event_source.id"))
    message_ids: Mapped[list[str]] = mapped_column(JSON)
    #: pending, delivered, dead
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_event_delivery_due", "status", "next_attempt_at"),)


class EventIdentityFeed(Base):
    """Identity-graph work waiting to be applied, one row per stored batch (written in the
    batch's transaction, so none is lost): what its identify, alias and logged-in events say
    about who is who. Collection answers once the events are committed; the event writer
    applies these rows right after, in order, and deletes them (see events/service.py)."""

    __tablename__ = "event_identity_feed"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: "events:<channel>", recorded as the source of the identities and links it creates.
    origin: Mapped[str] = mapped_column(String(64))
    #: [{"type", "userId", "anonymousId", "previousId", "traits", "at"}], in event order.
    items: Mapped[list[dict]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when the row could not be applied (kept for staff to look at; later rows go on).
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
