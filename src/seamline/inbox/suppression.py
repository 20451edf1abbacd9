"""Suppressed addresses: where a channel said a message can never arrive (an email's hard bounce:
no such mailbox). Sending there again only harms the sender's reputation with the mail
providers, so routing skips a suppressed address (a person with another address gets it there;
without one, the send is refused `address_bounced`) until the suppression is lifted: the person
writes to us from that address (it works again), or staff lift it (`DELETE
/v1/inbox/suppressions/{id}`). docs/inbox.md, "Bounces".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from seamline.core.errors import NotFound
from seamline.core.time import utcnow
from seamline.customers.sections import CustomerContext
from seamline.inbox.models import InboxSuppression


def normalized(address: str) -> str:
    """An address as suppressions compare it (email addresses ignore case in practice)."""
    return address.strip().lower()


def suppress(session: Session, *, channel: str, address: str, reason: str, message_id: int | None = None,
             now: datetime | None = None) -> None:
    """Suppress the address (again: nothing changes)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(InboxSuppression).values(channel=channel, address=normalized(address)[:320], reason=reason[:500],
                                                    message_id=message_id, created_at=now or utcnow())
                    .on_conflict_do_nothing(index_elements=["channel", "address"]))


def suppressed(session: Session, channel: str, addresses: Iterable[str]) -> set[str]:
    """Which of these addresses are suppressed on the channel (normalized). A bulk send's
    prefetch (`outbound.send_many`) knows them already."""
    wanted = {normalized(a) for a in addresses if a}
    if not wanted:
        return set()
    prefetch = session.info.get("inbox_prefetch")
    if prefetch is not None and "suppressed" in prefetch:  # a bulk send read them all (none on this channel: an empty set)
        return wanted & prefetch["suppressed"].get(channel, set())
    return set(session.scalars(select(InboxSuppression.address).where(InboxSuppression.channel == channel,
                                                                      InboxSuppression.address.in_(wanted))))


def suppressed_many(session: Session, addresses: Iterable[str]) -> dict[str, set[str]]:
    """{channel: suppressed addresses} among these addresses, every channel (for a prefetch)."""
    wanted = list({normalized(a) for a in addresses if a})
    found: dict[str, set[str]] = {}
    for start in range(0, len(wanted), 1000):
        for channel, address in session.execute(select(InboxSuppression.channel, InboxSuppression.address)
                                                .where(InboxSuppression.address.in_(wanted[start:start + 1000]))):
            found.setdefault(channel, set()).add(address)
    return found


def lift(session: Session, *, channel: str, address: str) -> bool:
    """The address works again (the person wrote from it): whether it was suppressed."""
    return bool(session.execute(delete(InboxSuppression).where(
        InboxSuppression.channel == channel, InboxSuppression.address == normalized(address))).rowcount)


def lift_by_id(session: Session, suppression_id: int) -> InboxSuppression:
    row = session.get(InboxSuppression, suppression_id)
    if row is None:
        raise NotFound(f"Suppression {suppression_id} not found", code="suppression_not_found")
    session.delete(row)
    session.flush()
    return row


def listing(session: Session, *, channel: str | None, address: str | None, limit: int,
            before_id: int | None) -> list[InboxSuppression]:
    """Newest first."""
    query = select(InboxSuppression).order_by(InboxSuppression.id.desc()).limit(limit)
    if channel:
        query = query.where(InboxSuppression.channel == channel)
    if address:
        query = query.where(InboxSuppression.address == normalized(address))
    if before_id is not None:
        query = query.where(InboxSuppression.id < before_id)
    return list(session.scalars(query))


def of_person(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    """The person's suppressed addresses (their privacy export)."""
    values = {normalized(i.value) for i in context.identities}
    if not values:
        return []
    rows = session.scalars(select(InboxSuppression).where(InboxSuppression.address.in_(values)).order_by(InboxSuppression.id))
    return [{"channel": row.channel, "address": row.address, "reason": row.reason, "created_at": row.created_at} for row in rows]


def erase(session: Session, context: CustomerContext) -> int:
    """At erasure the addresses go with the person (their identifiers are deleted too, so nothing
    is sent there anyway)."""
    values = {normalized(i.value) for i in context.identities}
    if not values:
        return 0
    return session.execute(delete(InboxSuppression).where(InboxSuppression.address.in_(values))).rowcount
