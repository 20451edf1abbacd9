"""The customers API contract."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from seamline.core.schemas import AwareDateTime, Id, RequestModel, check_json_value

MAX_TRAITS_BYTES = 32 * 1024

Token = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _check_traits(traits: dict[str, Any]) -> dict[str, Any]:
    for key in traits:
        if not key or len(key) > 128 or any(ord(c) < 32 for c in key):
            raise ValueError(f"trait name {key[:40]!r} must be 1-128 printable characters")
    check_json_value(traits)
    if len(json.dumps(traits, ensure_ascii=False).encode()) > MAX_TRAITS_BYTES:
        raise ValueError(f"traits are larger than {MAX_TRAITS_BYTES} bytes")
    return traits


Traits = Annotated[dict[str, Any], AfterValidator(_check_traits)]


class IdentifierIn(RequestModel):
    type: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(examples=["phone"])
    value: Annotated[str, StringConstraints(min_length=1, max_length=320)] = Field(examples=["8 (916) 123-45-67"])


class IdentifierRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    value: str
    source: str
    created_at: datetime


class ConsentIn(RequestModel):
    channel: Token = Field(examples=["email"])
    purpose: Token = Field(examples=["marketing"])
    granted: bool


class ConsentCreate(ConsentIn):
    source: Token = "api"


class ConsentRead(BaseModel):
    channel: str
    purpose: str
    granted: bool
    source: str
    recorded_at: datetime


class CustomerUpsert(RequestModel):
    """Identify a person by any identifiers, with what is known about them."""

    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=50)
    traits: Traits = Field(default_factory=dict, examples=[{"first_name": "Анна", "city": "Москва"}])
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)
    source: Token = Field(default="api", description="Where this came from (a channel or system), kept with each trait")
    timestamp: AwareDateTime | None = Field(
        default=None, description="When this was observed; later observations win. Defaults to now."
    )


class TraitRead(BaseModel):
    value: Any
    source: str
    observed_at: datetime


class ProfileSection(BaseModel):
    traits: dict[str, TraitRead]


class CustomerRead(BaseModel):
    """The customer 360: sections registered by every module (profile, identities, consents, ...)."""

    id: int
    status: Literal["active", "erased"]
    created_at: datetime
    updated_at: datetime
    sections: dict[str, Any]


class CustomerUpsertResult(BaseModel):
    customer: CustomerRead = Field(description="The profile as the upsert left it: its profile, identities and consents "
                                   "sections (the whole 360 is GET /v1/customers/{id})")
    created: bool
    merged_customer_ids: list[int]
    conflict_ids: list[int]
    ignored_identifiers: list[dict[str, str]] = Field(description="Blocked values that link nobody")


class CustomerSummary(BaseModel):
    id: int
    status: str
    identifiers: list[IdentifierRead]
    traits: dict[str, Any]
    updated_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerSummary]
    next_cursor: str | None


class MergeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: int
    absorbed_id: int
    link_id: int | None
    reason: str
    source: str
    survivor_identity_ids: list[int]
    absorbed_identity_ids: list[int]
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None


class MergeCreate(RequestModel):
    customer_id: Id = Field(description="The profile to merge into this one")
    force: bool = Field(default=False, description="Merge even if a merge rule (identifier limit) forbids it")


class UnmergeRead(BaseModel):
    merge: MergeRead
    customer_ids: list[int]
    revoked_link_ids: list[int]


class ConflictRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    link_id: int
    profile_a_id: int
    profile_b_id: int
    violations: dict[str, Any]
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


class ConflictPage(BaseModel):
    items: list[ConflictRead]
    next_cursor: str | None


class ConflictResolve(RequestModel):
    action: Literal["merge", "dismiss"]


class ErasureCreate(RequestModel):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00]*$")] = Field(
        examples=["Data-subject request #1234 (152-FZ art. 21)"]
    )


class ErasureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    profile_id: int
    requested_by: str
    reason: str
    removed_counts: dict[str, int]
    erased_at: datetime


class TimelineItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description="Which module the item comes from: event (later: order, message, call, ...)")
    id: int
    occurred_at: datetime
    channel: str
    type: str = Field(description='e.g. "event.track", "event.page"')
    title: str = Field(description="In English; a message's text or an event's name as they are")
    data: dict[str, Any]
    title_key: str | None = Field(
        default=None, description='The title\'s template (e.g. "order.completed": "Order %(order_id)s: completed"), '
        "for showing it in another language; null when the title is someone's own words")
    params: dict[str, Any] = Field(default_factory=dict, description="What the title's template is filled with",
                                   examples=[{"order_id": 72}])


class TimelinePage(BaseModel):
    items: list[TimelineItemRead]
    next_cursor: str | None


# --- one-time login codes (customers/login_codes.py) ---------------------------------------------


class LoginIdentifierIn(RequestModel):
    type: Literal["phone", "email"] = Field(examples=["phone"])
    value: Annotated[str, StringConstraints(min_length=1, max_length=320)] = Field(examples=["8 (916) 123-45-67"])


class LoginCodeRequest(RequestModel):
    """Send a one-time login code to a phone (SMS) or an email address."""

    identifier: LoginIdentifierIn


class LoginCodeSent(BaseModel):
    id: int
    channel: Literal["sms", "email"] = Field(description="Where the code was sent")
    expires_at: datetime
    code: str | None = Field(
        default=None, description="Only with SEAMLINE_LOGIN_CODES_REVEAL (demo): the code itself, to show on screen"
    )


class LoginCodeVerify(RequestModel):
    identifier: LoginIdentifierIn
    code: Annotated[str, StringConstraints(min_length=1, max_length=16, strip_whitespace=True)] = Field(examples=["123456"])
    anonymous_id: Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f\x7f]+$")] | None = Field(
        default=None, description="The visitor's anonymous id (cookie sl_aid): their anonymous browsing joins the profile"
    )
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")] = Field(
        default="web", examples=["web", "app"], description="Where the person logs in (kept as the source of the identifiers)"
    )


class LoginCodeVerified(BaseModel):
    customer_id: int
    created: bool = Field(description="A new profile was created by this login")


class CustomerImportRead(BaseModel):
    """What a customer import did (docs/import.md)."""

    sha256: str = Field(description="SHA-256 of the file")
    rows: int
    identifiers: int = Field(description="Identifiers in the file after normalization")
    ignored_identifiers: int = Field(description="Blocked values (placeholders) that link nobody")
    people: int = Field(description="People written in bulk (rows of the same person counted once)")
    people_new: int
    people_existing: int = Field(description="People who were already customers")
    rows_resolved_one_by_one: int = Field(description="Rows that merge existing profiles, break a merge rule or vouch for a "
                                                      "claimed identifier: resolved as single upserts")
    profiles_created: int
    identities_created: int
    links_created: int
    traits_set: int
    consents_recorded: int
    balances_credited: int
    balances_already_applied: int
    seconds: dict[str, float]
