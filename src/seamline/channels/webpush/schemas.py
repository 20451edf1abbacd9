"""Requests and answers of web push's API: a browser's subscription, registered by a trusted party."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from seamline.core.schemas import Id, RequestModel, line_text

Base64Url = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+=*$")]
Endpoint = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://[!-~]+$")]  # printable ASCII


class SubscriptionKeys(RequestModel):
    p256dh: Base64Url = Field(description="The browser's P-256 public key (base64url)")
    auth: Base64Url = Field(description="The browser's 16-byte auth secret (base64url)")


class PushSubscriptionJSON(RequestModel):
    """What the browser's `PushSubscription.toJSON()` gives, as it gives it."""

    endpoint: Endpoint = Field(description="The push service URL of this browser (HTTPS, a host of `inbox_webpush_endpoint_hosts`)",
                               examples=["https://fcm.googleapis.com/fcm/send/dY8w...:APA91b..."])
    expirationTime: int | None = Field(default=None, ge=0, description="When the browser will drop it (ms since the epoch), usually null")  # noqa: N815 - the Push API's name
    keys: SubscriptionKeys


class WebPushSubscriptionCreate(RequestModel):
    """A browser's subscription attached to a customer. Only a server may say whose it is (an API
    key with the `write` scope): the browser's write key is public, and a subscription attached
    by a claimed user id would carry someone else's notifications to whoever claimed it."""

    customer_id: Id
    subscription: PushSubscriptionJSON
    user_agent: line_text(500) | None = Field(default=None, description="The browser's User-Agent, to tell devices apart")


class WebPushSubscriptionRead(BaseModel):
    id: int
    customer_id: int
    endpoint: str
    user_agent: str | None
    created_at: datetime
    updated_at: datetime = Field(description="The latest registration (which may have moved it to this customer)")
    revoked_at: datetime | None = Field(description="Set when the push service said the browser unsubscribed, or it was removed")
    revoked_reason: str | None


class WebPushSubscriptionList(BaseModel):
    items: list[WebPushSubscriptionRead]


class VapidPublicKeyRead(BaseModel):
    public_key: str = Field(description="The VAPID public key: `applicationServerKey` of `pushManager.subscribe()` (base64url)")
