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
