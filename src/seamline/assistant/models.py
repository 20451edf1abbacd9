"""Tables of the bot: what the business changed (answers, phrases, topics), each conversation's
dialogue state, every turn (for containment and the phrases it did not understand), and
"back in stock" alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class AssistantAnswer(Base):
    """An answer the business rewrote (`intents.ANSWERS` holds the defaults)."""

    __tablename__ = "assistant_answer"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    lang: Mapped[str] = mapped_column(String(2), primary_key=True)
    template: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssistantTopic(Base):
    """How the business treats an intent: human-only (handed over at once) and the skill routing
    requires when the bot hands it over."""

    __tablename__ = "assistant_topic"

    intent: Mapped[str] = mapped_column(String(64), primary_key=True)
    human_only: Mapped[bool] = mapped_column(Boolean, default=False)
    skill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssistantPhrase(Base):
    """An example phrase the business added to an intent (the shipped ones are in
    `phrases/train.json`); the model is trained again when these change."""

    __tablename__ = "assistant_phrase"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    intent: Mapped[str] = mapped_column(String(64), index=True)
    lang: Mapped[str] = mapped_column(String(2))
    text: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssistantState(Base):
    """The bot's side of one conversation."""

    __tablename__ = "assistant_state"

    conversation_id: Mapped[int] = mapped_column(BigId, ForeignKey("inbox_conversation.id"), primary_key=True)
    lang: Mapped[str] = mapped_column(String(2), default="ru")
    #: Messages in a row it did not understand (two hand over).
    misunderstood: Mapped[int] = mapped_column(Integer, default=0)
    #: What it waits for: {"step": "identifier" | "code" | "confirm" | "product", "intent": ...}
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: The person confirmed with a one-time code in this conversation (their profile id then).
    verified_profile_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: One-time codes it had sent from this conversation (at most `service.MAX_CODES`).
    codes_requested: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The topics it answered, in order.
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: What it found or did, for the summary an agent reads at handover ("Order 12: ready_for_pickup.").
    facts: Mapped[list[str]] = mapped_column(JSON, default=list)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    #: open; resolved (the customer left after the bot's answer), abandoned (left after "I did not
    #: understand" or a question of the bot's), handed_over.
    outcome: Mapped[str] = mapped_column(String(16), default="open")
    handover_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_turn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_assistant_state_started", "started_at"), Index("ix_assistant_state_open", "outcome", "last_turn_at"))


class AssistantTurn(Base):
    """One customer message the bot read and what it made of it."""

    __tablename__ = "assistant_turn"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(BigId, index=True)
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    customer_id: Mapped[int] = mapped_column(BigId, index=True)
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    lang: Mapped[str] = mapped_column(String(2))
    #: answered, asked (it needs something more), acted, not_understood, handover
    outcome: Mapped[str] = mapped_column(String(16))
    #: Kept for the "not understood" list only; blanked at the person's erasure.
    text: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    #: How long the bot took, from reading the message to queuing its reply.
    millis: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_assistant_turn_created", "created_at"),)


class AssistantStockWatch(Base):
    """"Tell me when it is back": a person, a product, the store (None: any), the conversation
    to write into; `notified_at` once told."""

    __tablename__ = "assistant_stock_watch"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, index=True)
    conversation_id: Mapped[int] = mapped_column(BigId)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_product.id"))
    location_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_location.id"), nullable=True)
    lang: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_assistant_stock_watch_waiting", "notified_at", "product_id"),)
