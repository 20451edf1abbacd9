"""The API contract of marketing templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from seamline.core.schemas import Id, RequestModel, free_text, line_text


class TemplateParts(RequestModel):
    """One language's parts: `text` (every channel), `subject` (email's subject, a push
    notification's title), `html` (email), `url` (where a push notification opens)."""

    subject: line_text(300) | None = None
    text: free_text(10_000)
    html: free_text(200_000) | None = None
    url: line_text(2000) | None = None


class TemplateContent(RequestModel):
    ru: TemplateParts | None = None
    en: TemplateParts | None = None

    @model_validator(mode="after")
    def _one(self):  # noqa: ANN202
        if self.ru is None and self.en is None:
            raise ValueError("a template needs Russian or English (or both)")
        return self

    def items(self):  # noqa: ANN201 - (locale, parts) of the languages given
        return [(locale, parts) for locale, parts in (("ru", self.ru), ("en", self.en)) if parts is not None]


class TemplateCreate(RequestModel):
    name: line_text(200)
    content: TemplateContent


class TemplateUpdate(RequestModel):
    name: line_text(200) | None = None
    content: TemplateContent | None = None


class TemplateRead(BaseModel):
    id: int
    name: str
    content: dict[str, Any]
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    model_config = {"from_attributes": True}


class PreviewIn(RequestModel):
    customer_id: Id
    locale: str | None = Field(default=None, pattern=r"^(ru|en)$")
    context: dict[str, Any] = Field(default_factory=dict)


class PreviewRead(BaseModel):
    locale: str
    subject: str | None
    text: str
    html: str | None
    missing: list[str]


class TestSendIn(RequestModel):
    customer_id: Id
    channel: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[a-z_]+$")


class TestSendRead(BaseModel):
    status: str
    reason: str | None
    message_id: int | None
    channel: str | None
