"""The API contract of segments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from seamline.core.schemas import RequestModel, free_text, line_text
from seamline.marketing.segments.rules import Rule


class SegmentCreate(RequestModel):
    name: line_text(200)
    description: free_text(2000) = ""
    rules: Rule = Field(description="The segment's rule: a condition or an and/or/not group (docs/marketing.md)")


class SegmentUpdate(RequestModel):
    name: line_text(200) | None = None
    description: free_text(2000) | None = None
    rules: Rule | None = None


class SegmentEstimate(RequestModel):
    rules: Rule


class SegmentRead(BaseModel):
    id: int
    name: str
    description: str
    rules: dict[str, Any]
    status: str
    version: int
    member_count: int
    evaluated_at: datetime | None
    evaluated_version: int | None
    evaluation_ms: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    model_config = {"from_attributes": True}


class EvaluationRead(BaseModel):
    segment_id: int
    members: int
    entered: int
    exited: int
    milliseconds: int


class EstimateRead(BaseModel):
    count: int
    of: int = Field(description="Active profiles in all")
    sample_ids: list[int]
    milliseconds: int


class MemberRead(BaseModel):
    profile_id: int
    entered_at: datetime

    model_config = {"from_attributes": True}


class MemberPage(BaseModel):
    items: list[MemberRead]
    next_after_id: int | None
