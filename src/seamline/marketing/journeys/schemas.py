"""The API contract of journeys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from seamline.core.schemas import Id, JsonObject, RequestModel, free_text, line_text
from seamline.marketing.journeys.definition import Definition


class JourneyCreate(RequestModel):
    name: line_text(200)
    description: free_text(2000) = ""
    definition: Definition


class JourneyFromTemplate(RequestModel):
    """A ready-made journey (docs/marketing.md, "Ready-made journeys"), created as a draft with
    its message templates in Russian and English, to review and start."""

    template: Literal["abandoned_cart", "browse_abandonment", "back_in_stock", "post_purchase_nps", "first_purchase_welcome",
                      "win_back", "birthday", "store_visit"]
    name: line_text(200) | None = None
    #: The promotion (requiring a coupon) whose personal coupons the journey gives, when it gives one.
    promotion: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    #: Channel of its messages (none: each person's best one).
    channel: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[a-z_]+$")


class JourneyUpdate(RequestModel):
    name: line_text(200) | None = None
    description: free_text(2000) | None = None
    definition: Definition | None = None


class EnrollIn(RequestModel):
    customer_id: Id
    context: JsonObject = Field(default_factory=dict)


class JourneyRead(BaseModel):
    id: int
    name: str
    description: str
    status: str
    version: int
    definition: dict[str, Any]
    template: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    counts: dict[str, Any] | None = None

    model_config = {"from_attributes": True}


class StepRead(BaseModel):
    step_id: str
    at: datetime
    outcome: dict[str, Any]

    model_config = {"from_attributes": True}


class EnrollmentRead(BaseModel):
    id: int
    journey_id: int
    version: int
    customer_id: int = Field(validation_alias="profile_id")
    status: str
    step_id: str | None
    waiting_step: str | None
    wake_at: datetime | None
    arm: str | None
    context: dict[str, Any]
    entered_at: datetime
    finished_at: datetime | None
    exit_reason: str | None
    converted_at: datetime | None
    conversion_order_id: int | None
    conversion_revenue: int | None
    error: str | None
    steps: list[StepRead] | None = None

    model_config = {"from_attributes": True, "populate_by_name": True}


class EnrollOutcome(BaseModel):
    enrolled: bool
    reason: str | None
    enrollment: EnrollmentRead | None


class SummaryRead(BaseModel):
    entered: int
    in_journey: int = Field(description="Still in it: waiting for a step, a time or an event, or followed as a holdout")
    converted: int = Field(description="Reached the goal")
    revenue: int = Field(description="The converting orders' totals, minor units of the shop's currency")
    rate: float | None = Field(description="Converted of entered, percent (none before anyone entered)")

    model_config = {"from_attributes": True}


class SendResultRead(BaseModel):
    step_id: str
    queued: int = Field(description="Messages handed to the inbox's outbound send")
    skipped: dict[str, int] = Field(description="Messages not sent, by reason (no_marketing_consent, capped, customer_unreachable, ...)")
    sent: int = Field(description="Accepted by the channel's provider (an SMTP server, a push service, a messenger's API)")
    delivered: int = Field(description="Reported delivered (or read) by channels that report receipts")
    failed: int = Field(description="Bounced or given up on by the channel")
    opened: int
    clicked: int
    unsubscribed: int

    model_config = {"from_attributes": True}


class ArmRead(BaseModel):
    arm: str | None = Field(description="The A/B arm; none: people with no arm (no split, or not reached)")
    holdout: bool
    entered: int
    converted: int
    revenue: int
    messages: int
    rate: float | None
    lift: float | None = Field(description="The arm's conversion rate over the holdout's, percent")

    model_config = {"from_attributes": True}


class JourneyResults(BaseModel):
    summary: SummaryRead
    passed: dict[str, int] = Field(description="People who passed each step, by step id")
    sends: list[SendResultRead]
    arms: list[ArmRead]

    model_config = {"from_attributes": True}
