"""The events API contract (the collection endpoints speak the Segment spec, see api.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from seamline.core.schemas import RequestModel


class SourceCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["Website"])
    channel: str = Field(
        examples=["web"], description="web, app, store, call_center, email, messenger, sms, server or other"
    )
    server_side: bool = Field(
        default=False,
        description="True when the write key is kept on a server (a backend, POS, ETL): its identifiers and traits are "
        "then vouched for. A website's or app's key is public, so what it says is a claim (docs/customers.md, Trust).",
    )


class SourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    channel: str
    server_side: bool
    created_at: datetime
    disabled_at: datetime | None


class SourceCreated(SourceRead):
    write_key: str = Field(description="Shown once. Send it as the HTTP Basic user name, or as writeKey in the body.")


class EventRead(BaseModel):
    id: int
    message_id: str
    source_id: int
    channel: str
    type: str
    event: str | None
    name: str | None
    anonymous_id: str | None
    user_id: str | None
    timestamp: datetime = Field(description="When it happened, corrected for clock skew when sentAt was given")
    original_timestamp: str | None
    sent_at: str | None
    received_at: datetime
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    integrations: dict[str, Any]
    message: dict[str, Any] = Field(description="The message as received")


class EventPage(BaseModel):
    items: list[EventRead]
    next_cursor: str | None


class TrackResult(BaseModel):
    success: bool = True


class DestinationCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["Warehouse loader"])
    url: str = Field(min_length=8, max_length=2000, examples=["https://hooks.example.com/seamline"])
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="HMAC signing secret; generated when not given"
    )
    types: list[str] | None = Field(default=None, description="Only these event types (default: all)")


class DestinationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    url: str
    types: list[str] | None
    enabled: bool
    created_at: datetime


class DestinationCreated(DestinationRead):
    secret: str = Field(description="Shown once: verify X-Seamline-Signature with it")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    destination_id: int
    source_id: int
    message_ids: list[str]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryRead] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: this is the last")
