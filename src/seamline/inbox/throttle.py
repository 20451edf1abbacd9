"""Each sending channel's rate limit and outage pause, shared by every worker.

Each channel's messages are jobs of a queue of their own (`outbound.<channel>`), and this is
that queue's `Limiter`: a worker claims a channel's jobs only as far as its limit lets them go,
in the claiming transaction, so all workers together stay under the provider's limit and the
waiting messages stay in the queue in priority order (an agent's reply queued behind a
campaign of a million goes next). The state is one row per channel (`InboxChannelThrottle`):

- a token bucket refilled at `inbox_rate_limits[channel]` messages per second, holding at most
  one second's worth (a burst no larger than the limit);
- a pause after a temporary failure (network error, 5xx, 429, not configured): the channel's
  jobs are not claimed for the provider's Retry-After or an interval doubling with each failure
  in a row (capped at `inbox_outage_pause_max_seconds`), so an outage keeps messages queued
  without spending their attempts; the first success afterwards clears it. A job claimed just
  before the pause began gives its token back and waits for the pause's end (`paused`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.time import utcnow
from seamline.inbox.models import InboxChannelThrottle

#: Messages per second when `inbox_rate_limits` does not name the channel
DEFAULT_RATE = 10.0


def rate_of(channel: str, settings: Settings) -> float:
    return float(settings.inbox_rate_limits.get(channel, DEFAULT_RATE))


def _locked(session: Session, channel: str, *, rate: float, now: datetime) -> InboxChannelThrottle:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(InboxChannelThrottle).values(channel=channel, tokens=rate, refilled_at=now, failures=0)
                    .on_conflict_do_nothing(index_elements=["channel"]))
    return session.get(InboxChannelThrottle, channel, with_for_update=True, populate_existing=True)


def take(session: Session, channel: str, wanted: int, *, settings: Settings, now: datetime | None = None) -> int:
    """How many messages of `channel` may be sent now (at most `wanted`), taken from the
    bucket; none while the channel is paused."""
    now = now or utcnow()
    rate = rate_of(channel, settings)
    row = _locked(session, channel, rate=rate, now=now)
    if row.paused_until is not None and row.paused_until > now:
        return 0
    elapsed = max((now - row.refilled_at).total_seconds(), 0.0)
    row.tokens, row.refilled_at = min(rate, row.tokens + elapsed * rate), now
    granted = min(wanted, int(row.tokens))
    row.tokens -= granted
    return granted


def give_back(session: Session, channel: str, unused: int, *, settings: Settings) -> None:
    """Tokens taken for messages that were not there, or not sent after all."""
    if unused > 0:
        row = session.get(InboxChannelThrottle, channel, with_for_update=True, populate_existing=True)
        row.tokens = min(rate_of(channel, settings), row.tokens + unused)


@dataclass(frozen=True)
class Health:
    #: Until when the channel is paused (None: it is not)
    paused_until: datetime | None
    #: Outage failures in a row (0: healthy)
    failures: int


def health(session: Session, channel: str, *, settings: Settings, now: datetime | None = None) -> Health:
    """The channel's state for a message about to be sent (read without a lock: sends do not
    queue on the channel's row); when it is paused (the message's job was claimed just before
    the pause began), the message's token goes back."""
    now = now or utcnow()
    row = session.get(InboxChannelThrottle, channel)
    if row is None:
        return Health(None, 0)
    if row.paused_until is not None and row.paused_until > now:
        give_back(session, channel, 1, settings=settings)
        return Health(row.paused_until, row.failures)
    return Health(None, row.failures)


@dataclass(frozen=True)
class ChannelLimiter:
    """The `Limiter` of a channel's send queue."""

    channel: str
    settings: Settings

    def take(self, session: Session, wanted: int, now: datetime) -> int:
        return take(session, self.channel, wanted, settings=self.settings, now=now)

    def give_back(self, session: Session, unused: int) -> None:
        give_back(session, self.channel, unused, settings=self.settings)


def outage(session: Session, channel: str, *, error: str, settings: Settings, retry_after: float | None = None) -> datetime:
    """Pause the channel after a temporary failure; returns until when."""
    now = utcnow()
    row = _locked(session, channel, rate=rate_of(channel, settings), now=now)
    row.failures += 1
    pause = retry_after if retry_after is not None else settings.delivery_backoff_seconds * 2 ** (row.failures - 1)
    row.paused_until = now + timedelta(seconds=min(pause, settings.inbox_outage_pause_max_seconds))
    row.last_error = error[:2000]
    return row.paused_until


def recovered(session: Session, channel: str) -> None:
    row = session.get(InboxChannelThrottle, channel, with_for_update=True)
    if row is not None:
        row.failures, row.paused_until, row.last_success_at = 0, None, utcnow()


def states(session: Session) -> dict[str, InboxChannelThrottle]:
    return {row.channel: row for row in session.scalars(select(InboxChannelThrottle))}
