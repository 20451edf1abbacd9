"""Requests of the telephony channel: the PBX's call events and the website's callback form."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
)

from seamline.core.schemas import RequestModel, free_text, line_text

Number = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Extension = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9*#+]+$")]


class CallEvent(BaseModel):
    """One moment of a call, as the PBX reports it (the generic format; see docs/inbox.md)."""

    model_config = ConfigDict(populate_by_name=True)

    event: Literal["ringing", "answered", "ended"]
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(description="The PBX's id of the call, the same in all its events")
    direction: Literal["in", "out"] = Field(default="in", description="in: a customer calls; out: an agent calls a customer")
    from_: Number = Field(alias="from", description="Who calls: the customer's number (in) or the agent's extension or line (out)")
    to: Number = Field(description="Who is called: the business line (in) or the customer's number (out)")
    extension: Extension | None = Field(default=None, description="The agent's extension that rings, answered or called")
    at: AwareDatetime | None = Field(default=None, description="When it happened (default: when received)")
    duration: int | None = Field(default=None, ge=0, le=7 * 24 * 3600, description="ended: seconds of conversation (0: nobody answered)")
    recording_url: HttpUrl | None = Field(default=None, description="ended: the recording, where the PBX keeps it")


class CallbackRequest(RequestModel):
    """The website's "call me back" form, sent with the site's public write key."""

    writeKey: Annotated[str, StringConstraints(min_length=1, max_length=200)]  # noqa: N815 - the site's JSON
    phone: Number
    name: line_text(200) | None = None
    comment: free_text(1000) | None = None
    preferredTime: line_text(100) | None = Field(default=None, description='Free text, e.g. "после 18:00"')  # noqa: N815
    anonymousId: line_text(200) | None = None  # noqa: N815
    page: line_text(2000) | None = None
    requestId: line_text(100) | None = Field(default=None, description="The form's own id: a resubmission creates nothing twice")  # noqa: N815
