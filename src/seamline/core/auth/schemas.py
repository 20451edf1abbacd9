from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from seamline.core.schemas import RequestModel


class Scope(StrEnum):
    admin = "admin"
    write = "write"
    read = "read"
    #: A tracking source's write key: may only send events to the collection API.
    track = "track"
    #: Staff who may change loyalty points by hand (each change is audited in the ledger).
    loyalty_adjust = "loyalty_adjust"
    #: A support agent's console: the inbox (conversations, replies, the customer's single window).
    agent = "agent"
    #: Marketing automation: segments, journeys, campaigns, templates (it messages customers in bulk,
    #: so neither write nor read grants it).
    marketing = "marketing"


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    scopes: list[Annotated[Scope, Strict(False)]] = Field(min_length=1)  # an enum: its values as text


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    prefix: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret key. Shown only in this response; store it now.")
