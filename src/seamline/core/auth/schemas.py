from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    scopes: list[Scope] = Field(min_length=1)


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
