"""Requests and answers of mobile push's API: an app install's FCM token, registered by the app's backend."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from seamline.core.schemas import Id, RequestModel

Token = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[A-Za-z0-9_:.\-]+$")]
AppId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")]


class MobilePushDeviceCreate(RequestModel):
    """An app install's FCM registration token attached to a customer. Only the app's backend may
    say whose it is (an API key with the `write` scope), for the customer its login vouches for."""

    customer_id: Id
    token: Token = Field(description="The FCM registration token the app got from the Firebase SDK",
                         examples=["fP3xQ0aVRAm6nX3kz1sYpA:APA91bH..."])
    platform: Literal["android", "ios"]
    app_id: AppId | None = Field(default=None, description="The app's package name or bundle id", examples=["com.example.shop"])


class MobilePushDeviceRead(BaseModel):
    id: int
    customer_id: int
    platform: str
    app_id: str | None
    created_at: datetime
    updated_at: datetime = Field(description="The latest registration (which may have moved it to this customer)")
    revoked_at: datetime | None = Field(description="Set when FCM said the token is gone or invalid, or it was removed")
    revoked_reason: str | None


class MobilePushDeviceList(BaseModel):
    items: list[MobilePushDeviceRead]
