"""Tables of the inbox: conversations and messages of every channel, agents and teams, the
routing queue, SLA policies, canned responses, surveys, raw inbound payloads and the webhook
outbox.

A conversation belongs to one customer profile; a person's history is every conversation of
their profile (and of profiles merged into it), whatever the channel. The waiting queue is the
open, unassigned conversations ordered by `queue_rank_at`: the time it entered the queue moved
earlier by its priority, so priority and waiting time make one order that ages fairly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, validates

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class InboxTeam(Base):
    __tablename__ = "inbox_team"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxAgent(Base):
    """A person answering customers. `load` is the sum of the channel weights of the open
    conversations assigned to them, kept in the assigning transaction: routing compares it with
    `capacity` without counting conversations."""

    __tablename__ = "inbox_agent"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    #: Skills and languages, e.g. ["orders", "returns", "lang:ru"]
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: online, away, offline
    status: Mapped[str] = mapped_column(String(16), default="offline")
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    load: Mapped[int] = mapped_column(Integer, default=0)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("core_api_key.id"), nullable=True, unique=True)
    #: The agent's phone extension on the PBX: calls ringing or answered there pop up in their console
    extension: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxTeamMember(Base):
    __tablename__ = "inbox_team_member"

    team_id: Mapped[int] = mapped_column(BigId, ForeignKey("inbox_team.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[int] = mapped_column(BigId, ForeignKey("inbox_agent.id", ondelete="CASCADE"), primary_key=True)


class InboxSlaPolicy(Base):
    """Targets in minutes, counted in the business hours of `calendar` when one is given
    (`{"timezone": "Europe/Moscow", "hours": {"mon": ["09:00", "18:00"], ...}, "holidays": [...]}`)."""

    __tablename__ = "inbox_sla_policy"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    first_response_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_response_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    calendar: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Applies to these channels (empty: every channel) and these priorities and up
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_priority: Mapped[int] = mapped_column(Integer, default=0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxConversation(Base):
    __tablename__ = "inbox_conversation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), index=True)
    #: The channel the customer last wrote from
    channel: Mapped[str] = mapped_column(String(32))
    #: Where replies go (the last customer channel unless an agent or the customer chose another)
    reply_channel: Mapped[str] = mapped_column(String(32))
    #: open, pending (waiting on the customer), snoozed, resolved
    status: Mapped[str] = mapped_column(String(16), default="open")
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    subject: Mapped[str | None] = mapped_column(String(500), nullable=True)
    assignee_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_agent.id"), nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_team.id"), nullable=True)
    required_skill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    #: The load this conversation puts on its agent (the channel's weight), fixed at assignment
    weight: Mapped[int] = mapped_column(Integer, default=1)
    #: Set while waiting for an agent: queued time minus priority; the queue's order
    queue_rank_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The bot (a registered `service.Responder`) is answering: not in the queue, no SLA clock
    #: running, until it hands over (`service.hand_over`) or an agent replies.
    handled_by_bot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Per-channel addressing: {"email": {"address", "subject", "message_ids": [...]}, "webchat": {...}}
    channel_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sla_policy_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_sla_policy.id"), nullable=True)
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The earliest due time not yet met or flagged, for the breach job's index
    sla_next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sla_breaches: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The oldest customer message not answered yet
    awaiting_reply_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_conversation.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Moves with every change (the analytics mirror re-reads changed conversations by it).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_inbox_conversation_updated_at", "updated_at"),
        Index("ix_inbox_conversation_queue", "status", "assignee_id", "queue_rank_at"),
        Index("ix_inbox_conversation_sla_due", "sla_next_due_at"),
        Index("ix_inbox_conversation_snoozed", "status", "snoozed_until"),
    )


class InboxMessage(Base):
    __tablename__ = "inbox_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(BigId, ForeignKey("inbox_conversation.id"), index=True)
    #: in (from the customer), out (to the customer), internal (notes and system events)
    direction: Mapped[str] = mapped_column(String(8))
    #: message, note, event
    kind: Mapped[str] = mapped_column(String(8), default="message")
    channel: Mapped[str] = mapped_column(String(32))
    author_agent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_agent.id"), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    #: The text case-folded in Python, for search that ignores case in every alphabet (SQLite's
    #: LIKE and lower() fold ASCII only)
    search_text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The provider's id of an inbound message, or the id a sent message got
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: outbound: queued, sent, delivered, read, failed; inbound: received
    delivery_status: Mapped[str] = mapped_column(String(16), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Channel details (email headers, the client's message id, event data)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: An outbound message's client Idempotency-Key (scoped, see `outbound.scoped_key`): a retry
    #: returns the message already queued instead of sending twice
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @validates("text")
    def _fold(self, _key: str, value: str) -> str:
        self.search_text = (value or "").casefold()
        return value

    __table_args__ = (
        Index("ix_inbox_message_outbound_due", "delivery_status", "next_attempt_at"),
        Index("ix_inbox_message_provider_id", "channel", "provider_message_id"),
    )


class InboxAttachment(Base):
    """A file sent by the customer or the agent; uploaded first, then bound to its message."""

    __tablename__ = "inbox_attachment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_message.id"), nullable=True, index=True)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxInbound(Base):
    """Every inbound payload as it came, stored before it is processed: a repeat of the same
    (channel, provider id) is ignored, and a payload that fails to process stays visible and is
    retried, so no message is lost."""

    __tablename__ = "inbox_inbound"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(255))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    #: received, processed, failed
    status: Mapped[str] = mapped_column(String(16), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_message.id"), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The sender's lane (`delivery.lane_of`): a lane is processed in order, lanes side by side
    lane: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")

    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_inbox_inbound_status", "status", "received_at"),
        Index("ix_inbox_inbound_waiting", "lane", "id", postgresql_where=text("status = 'received'"),
              sqlite_where=text("status = 'received'")),
    )


class InboxRoutingRule(Base):
    """Topic detection: the first enabled rule (by position) whose regular expression matches
    the customer's first message sets the conversation's required skill."""

    __tablename__ = "inbox_routing_rule"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    pattern: Mapped[str] = mapped_column(String(1000))
    skill: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class InboxCannedResponse(Base):
    __tablename__ = "inbox_canned_response"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shortcut: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    #: Text with {{variables}}: customer.name, customer.first_name, order.number, agent.name
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxSurvey(Base):
    """A CSAT (1-5) or NPS (0-10) question sent after resolution, and its answer."""

    __tablename__ = "inbox_survey"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(BigId, ForeignKey("inbox_conversation.id"), index=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_agent.id"), nullable=True)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class InboxChatSession(Base):
    """A web chat visitor's session: the secret token the widget holds (stored as its SHA-256)
    and the anonymous id it shares with the event tracker."""

    __tablename__ = "inbox_chat_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source_id: Mapped[int] = mapped_column(BigId, ForeignKey("event_source.id"))
    anonymous_id: Mapped[str] = mapped_column(String(200), index=True)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: The site's backend vouched for `user_id` (a valid `userHash`): the session may read the
    #: person's whole history; otherwise only the conversations this browser took part in.
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxWebhook(Base):
    __tablename__ = "inbox_webhook"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: The signing secret, encrypted (`enc1:...`, core/crypto.py; decrypted only to sign)
    secret: Mapped[str] = mapped_column(String(512))
    #: Event types to send (empty: all)
    types: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxWebhookDelivery(Base):
    """The webhook outbox: one row per event and webhook, written in the event's transaction."""

    __tablename__ = "inbox_webhook_delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(BigId, ForeignKey("inbox_webhook.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending, delivered, dead
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_inbox_webhook_delivery_due", "status", "next_attempt_at"),)


class InboxChannelThrottle(Base):
    """Each sending channel's shared state, locked by the outbound worker that claims messages:
    a token bucket for the provider's rate limit (so every server process together stays under
    it), and the pause after a provider outage (queued messages wait, spending no attempts)."""

    __tablename__ = "inbox_channel_throttle"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    refilled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Outage failures in a row (the pause doubles with each); a success resets it
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class InboxSuppression(Base):
    """An address its channel said is gone for good (an email's hard bounce: no such mailbox):
    nothing is sent there until it is lifted (the person writes from it, verifies it again, or
    staff lift it). docs/inbox.md, "Bounces"."""

    __tablename__ = "inbox_suppression"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    #: As the channel compares it (an email address in lower case)
    address: Mapped[str] = mapped_column(String(320))
    #: What the channel said (`bounced (5.1.1) anna@example.com: ... User unknown`)
    reason: Mapped[str] = mapped_column(String(500))
    #: The message whose bounce it was
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_message.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("channel", "address"),)
