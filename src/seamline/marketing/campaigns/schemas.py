"""The API contract of campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from seamline.core.schemas import AwareDateTime, Id, RequestModel, line_text


class Variant(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\- ]+$")]
    template_id: Id
    percent: Annotated[int, Field(ge=0, le=100)] = 100


class AbTest(RequestModel):
    """Try the variants on `test_percent` of the audience; after `after_hours`, the variant with
    the best `metric` goes to the rest."""

    test_percent: Annotated[int, Field(ge=1, le=90)] = 20
    metric: Literal["converted", "delivered"] = "converted"
    after_hours: Annotated[int, Field(ge=1, le=24 * 14)] = 4


class CampaignCreate(RequestModel):
    name: line_text(200)
    segment_id: Id
    variants: list[Variant] = Field(min_length=1, max_length=5)
    holdout_percent: Annotated[int, Field(ge=0, le=50)] = 0
    channel: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")] | None = None
    send_at: AwareDateTime | None = None
    #: HH:MM in each person's zone, or "best": each person's best hour (the next-best-channel model)
    local_time: Annotated[str, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|best)$")] | None = None
    per_minute: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    ab_test: AbTest | None = None

    @model_validator(mode="after")
    def _variants(self):  # noqa: ANN202
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names are unique")
        if len(self.variants) > 1 and sum(v.percent for v in self.variants) != 100:
            raise ValueError("the variants' percents add up to 100")
        if self.ab_test is not None and len(self.variants) < 2:
            raise ValueError("an A/B test needs two variants or more")
        return self


class CampaignRead(BaseModel):
    id: int
    name: str
    segment_id: int
    status: str
    variants: list[dict[str, Any]]
    holdout_percent: int
    channel: str | None
    send_at: datetime | None
    local_time: str | None
    per_minute: int | None
    ab_test: dict[str, Any] | None
    winner: str | None
    journey_id: int | None
    audience: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    test_ends_at: datetime | None
    finished_at: datetime | None
    results: dict[str, Any] | None = None

    model_config = {"from_attributes": True}
