"""What the next-best-channel API answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChannelRankRead(BaseModel):
    channel: str
    #: 1 = the best; None when the channel does not reach the person (`reason` says why)
    rank: int | None
    #: The response rate the model expects (posterior mean), 0..1
    expected_rate: float | None
    #: The person's own evidence, decayed to now: messages sent there, and what they earned
    sends: float
    responses: float
    #: The response rate of people reachable on the same channels (their cohort)
    cohort_rate: float | None
    #: Why the channel does not reach them (no_marketing_consent, channel_not_configured, ...)
    reason: str | None


class HourRead(BaseModel):
    hour: int = Field(ge=0, le=23)
    expected_rate: float
    sends: float


class ChannelRankingRead(BaseModel):
    customer_id: int
    purpose: str
    cohort: str
    timezone: str
    channels: list[ChannelRankRead]
    #: The three local hours the model expects the most of (outside quiet hours)
    best_hours: list[HourRead]
    half_life_days: float
