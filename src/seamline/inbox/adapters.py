"""The channel adapter interface, and the registry channels fill at import.

An adapter turns a provider's inbound request into normalized messages and sends replies:

- `verify(headers, body, settings=...)` authenticates the provider (secret token, HMAC, shared secret) and
  raises `Unauthorized` with no side effect;
- `split(body)` cuts one request into its messages' raw parts, each with the provider's id; the
  inbox stores each part unique per (channel, provider id) before anything else, so a repeat
  is ignored and a part that fails later is kept and retried;
- `parse(raw)` turns one stored part into an `InboundMessage` (again on every retry);
- `address(...)` says where a reply to this customer goes on this channel (or raises why not);
- `send(message, settings=...)` delivers a reply (raising `SendError`, temporary or not);
- `parse_statuses(body)` reads delivery reports.

A channel whose addresses live in a table of its own (push subscriptions, device tokens) has
two more hooks, since `send` runs outside any transaction: `prepare(session, message)` reads
the live addresses in the transaction that claims the message, and `settle(session, message,
meta)` records what the attempt learned about them (a subscription the provider says is gone)
in the transaction that records the attempt.

Channels with a live connection (web chat) set `realtime = True`: a reply is delivered by the
real-time hub when its transaction commits, not by the outbound worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from seamline.core.errors import Unprocessable


@dataclass
class NewAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class InboundMessage:
    channel: str
    provider_message_id: str
    #: Who wrote, as identity-graph identifiers: [("email", "anna@example.com")]
    identifiers: list[tuple[str, str]]
    text: str
    #: Those of `identifiers` the provider does not vouch for (a contact card anyone can share):
    #: claims, which never join a profile that exists (docs/customers.md, "Trust")
    claimed: list[tuple[str, str]] = field(default_factory=list)
    sender_name: str | None = None
    html: str | None = None
    subject: str | None = None
    attachments: list[NewAttachment] = field(default_factory=list)
    attachment_ids: list[int] = field(default_factory=list)
    #: Provider ids of earlier messages this one answers (email In-Reply-To and References)
    thread_refs: list[str] = field(default_factory=list)
    #: The customer profile, when the channel already knows it (a web chat session)
    customer_id: int | None = None
    #: When set, only these conversations may be continued (an unverified web chat browser must
    #: not write into, and so read, the person's other conversations); otherwise a new one starts
    continue_within: list[int] | None = None
    sent_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: message; call (a phone call's log line: agents see it, the customer's web chat does not)
    kind: str = "message"


@dataclass
class OutboundMessage:
    message_id: int
    conversation_id: int
    address: dict[str, Any]
    text: str
    html: str | None
    subject: str | None
    attachments: list[NewAttachment]
    #: The conversation's per-channel state (e.g. the email thread's Message-IDs)
    thread: dict[str, Any]
    #: A marketing message's own facts ({"unsubscribe_url": ...}): email sends it as a message of
    #: its own (no "Re:"), with List-Unsubscribe headers (RFC 8058); None for everything else
    marketing: dict[str, Any] | None = None
    #: What the sender added for push channels (`InboxMessage.meta["push"]`: `title`, `url`,
    #: `icon`, `tag`, `urgency`); other channels ignore it
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendResult:
    provider_message_id: str | None
    status: str = "sent"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeliveryStatus:
    provider_message_id: str
    status: str  # sent, delivered, read, failed
    error: str | None = None
    at: datetime | None = None
    #: Addresses the report says are gone for good (an email's hard bounce): suppressed
    gone: tuple[str, ...] = ()


class SendError(Exception):
    """A send that failed. Temporary (network, 5xx, rate limited, not configured): the message is
    retried and the channel paused, for `retry_after` seconds when the provider said so;
    permanent: the message fails and goes to the dead-letter list."""

    def __init__(self, message: str, *, temporary: bool, retry_after: float | None = None,
                 meta: dict[str, Any] | None = None):
        super().__init__(message)
        self.temporary = temporary
        self.retry_after = retry_after
        #: What the attempt learned (kept in the message's meta, passed to `settle`)
        self.meta = meta or {}


class ChannelAdapter:
    """Base class: override what the channel supports."""

    name: ClassVar[str]
    #: The consent channel (customers' vocabulary) a reply on this channel needs not withdrawn
    consent_channel: ClassVar[str | None] = None
    realtime: ClassVar[bool] = False
    #: Whether Seamline sends on this channel at all (the phone channel only logs calls): only
    #: such channels without a live connection get a send queue (`outbound.<channel>`)
    sends: ClassVar[bool] = True
    #: Load a conversation puts on an agent (a call: the agent's whole capacity)
    weight: ClassVar[int] = 1

    def configured(self, settings: Any) -> bool:
        """Whether the settings let this channel send (a token, a gateway): outbound picks only these."""
        return True

    def verify(self, headers: Mapping[str, str], body: bytes, *, settings: Any) -> None:  # noqa: B027 - optional
        """Raise `Unauthorized` unless the request comes from the provider."""

    def split(self, body: bytes) -> list[tuple[str, bytes]]:
        raise NotImplementedError

    def parse(self, raw: bytes) -> InboundMessage:
        raise NotImplementedError

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        raise Unprocessable(f"Channel {self.name} cannot reach customers", code="channel_cannot_send")

    def send(self, message: OutboundMessage, *, settings: Any) -> SendResult:
        raise SendError(f"Channel {self.name} cannot send", temporary=False)

    def prepare(self, session: Session, message: OutboundMessage) -> OutboundMessage:
        """The message as `send` gets it, read in the transaction that claims it (e.g. the
        customer's live push subscriptions now, not when it was queued)."""
        return message

    def settle(self, session: Session, message: OutboundMessage, meta: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Record what an attempt learned (`SendResult.meta` or `SendError.meta`), in the
        transaction that records the attempt: e.g. revoke a subscription the provider says is gone."""

    def parse_statuses(self, body: bytes) -> list[DeliveryStatus]:
        return []

    def jobs(self, database: Any, settings: Any, rules: Any) -> list[Any]:
        """Background jobs of the channel (e.g. polling a mailbox), run by `seamline serve`."""
        return []


ADAPTERS: dict[str, ChannelAdapter] = {}


def register(adapter: ChannelAdapter) -> ChannelAdapter:
    ADAPTERS[adapter.name] = adapter
    return adapter


def adapter_for(channel: str) -> ChannelAdapter:
    adapter = ADAPTERS.get(channel)
    if adapter is None:
        raise Unprocessable(
            f"Unknown channel {channel!r}", code="unknown_channel", details={"channel": channel, "known": sorted(ADAPTERS)}
        )
    return adapter
