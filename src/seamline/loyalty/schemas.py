"""The loyalty API contract, and the program's rules as they are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from seamline.commerce.schemas import Amount, Channel, Code, Currency, Name
from seamline.core.schemas import Id, RequestModel, free_text, line_text

Points = Annotated[int, Field(ge=1, le=10**12)]
TierCode = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
CardNumber = Annotated[str, StringConstraints(min_length=4, max_length=32, pattern=r"^[0-9]+$")]
Staff = line_text(100)
Comment = free_text(1000)


class ChannelBonus(RequestModel):
    """Extra points for an order in a channel, e.g. 500 for the first order in the app."""

    channel: Channel
    points: int = Field(default=0, ge=0, le=10**9, description="Added to the order's points")
    multiplier: float = Field(default=1.0, ge=0, le=100, description="Multiplies the order's percent points")
    first_order_only: bool = Field(default=False, description="Only the customer's first order in this channel")


class Tier(RequestModel):
    code: TierCode
    name_ru: Name
    name_en: Name
    min_spend: Amount = Field(description="Spend over the tier window (minor units) that reaches this tier")
    earn_multiplier: float = Field(default=1.0, ge=0, le=100)


class ProgramPut(RequestModel):
    """The program's rules. Every field has a default, so `{}` is a working program."""

    name_ru: Name = "Бонусная программа"
    name_en: Name = "Rewards"
    points_name_ru: Name = "баллы"
    points_name_en: Name = "points"
    currency: Currency = Field(default="RUB", description="Of the wallet and of what points are worth: the shop's currency")
    point_value: int = Field(default=100, ge=1, le=10**6,
                             description="What one point is worth when spent, in minor units (100 = one rouble)")
    earn_percent: float = Field(default=5.0, ge=0, le=100, description="Percent of the paid amount earned as points' value")
    category_multipliers: dict[Code, float] = Field(
        default_factory=dict, description="Per category code: multiplies the percent of lines in it (0 = earns nothing)")
    channel_bonuses: list[ChannelBonus] = Field(default_factory=list, max_length=50)
    welcome_points: int = Field(default=0, ge=0, le=10**9, description="Given once, when the account opens")
    birthday_points: int = Field(default=0, ge=0, le=10**9,
                                 description="Given once a year on the birthday (the profile's `birthday` trait)")
    hold_days: int = Field(default=14, ge=0, le=3650, description="Earned points are pending this long (the return window)")
    expiry_days: int | None = Field(default=365, ge=1, le=36500,
                                    description="Points expire this long after they became spendable; null: never")
    max_redeem_percent: int = Field(default=30, ge=0, le=100, description="Points pay at most this share of an order")
    tier_window_days: int = Field(default=365, ge=1, le=3650, description="Spend counted for tiers: this many days back")
    tiers: list[Tier] = Field(default_factory=list, max_length=20)
    card_check_digit: Literal["luhn", "ean13", "none"] = Field(
        default="luhn", description="How printed card numbers are validated (and virtual ones generated)")
    card_prefix: Annotated[str, StringConstraints(pattern=r"^[0-9]{0,8}$")] = Field(
        default="7700", description="Virtual card numbers start with this")
    auto_enroll: bool = Field(default=True, description="Open an account at a known customer's first purchase")

    @model_validator(mode="after")
    def _tiers_distinct(self) -> ProgramPut:
        codes = [t.code for t in self.tiers]
        if len(set(codes)) != len(codes):
            raise ValueError("tier codes must be distinct")
        return self


class ProgramPatch(RequestModel):
    """Some of the program's fields (PATCH /v1/loyalty/program): those given change, the others
    stay. The result is checked as a whole program."""

    name_ru: Name | None = None
    name_en: Name | None = None
    points_name_ru: Name | None = None
    points_name_en: Name | None = None
    currency: Currency | None = None
    point_value: int | None = Field(default=None, ge=1, le=10**6)
    earn_percent: float | None = Field(default=None, ge=0, le=100)
    category_multipliers: dict[Code, float] | None = None
    channel_bonuses: list[ChannelBonus] | None = Field(default=None, max_length=50)
    welcome_points: int | None = Field(default=None, ge=0, le=10**9)
    birthday_points: int | None = Field(default=None, ge=0, le=10**9)
    hold_days: int | None = Field(default=None, ge=0, le=3650)
    expiry_days: int | None = Field(default=None, ge=1, le=36500, description="null: points never expire")
    max_redeem_percent: int | None = Field(default=None, ge=0, le=100)
    tier_window_days: int | None = Field(default=None, ge=1, le=3650)
    tiers: list[Tier] | None = Field(default=None, max_length=20)
    card_check_digit: Literal["luhn", "ean13", "none"] | None = None
    card_prefix: Annotated[str, StringConstraints(pattern=r"^[0-9]{0,8}$")] | None = None
    auto_enroll: bool | None = None


class AccountCreate(RequestModel):
    customer_id: Id
    channel: Channel | None = None


class AdjustmentCreate(RequestModel):
    points: int = Field(ge=-(10**12), le=10**12, description="Points to add (positive) or take (negative); not 0",
                        json_schema_extra={"not": {"const": 0}})
    reason: Literal["adjust", "campaign"] = "adjust"
    staff: Staff = Field(description="Who made the adjustment (the staff member's login or name)")
    comment: Comment = Field(min_length=1, description="Why: required, kept in the ledger")
    campaign: Code | None = Field(default=None, description="With reason campaign: the campaign's code")

    @model_validator(mode="after")
    def _not_zero(self) -> AdjustmentCreate:
        if self.points == 0:
            raise ValueError("points must not be 0")
        if self.reason == "campaign" and not self.campaign:
            raise ValueError("a campaign credit names its campaign")
        return self


class _CardKind(RequestModel):
    """A physical card comes with its printed number; a virtual one gets a generated number."""

    @model_validator(mode="after")
    def _number(self) -> _CardKind:
        if self.kind == "physical" and not self.number:
            raise ValueError("a physical card needs its printed number")
        if self.kind == "virtual" and self.number:
            raise ValueError("a virtual card's number is generated")
        return self


class CardCreate(_CardKind):
    kind: Literal["physical", "virtual"]
    number: CardNumber | None = Field(default=None, description="A printed card's number; virtual cards get one generated")
    channel: Channel | None = None


class CardBlock(RequestModel):
    reason: line_text(200) = "lost"


class CardReissue(_CardKind):
    kind: Literal["physical", "virtual"] = "physical"
    number: CardNumber | None = None
    reason: line_text(200) = "lost"


class WalletTopUp(RequestModel):
    amount: Amount = Field(gt=0)
    channel: Channel
    reference: line_text(200, min_length=0) = Field(default="", description="The payment that brought the money in")


class WalletPayment(RequestModel):
    order_id: Id
    channel: Channel | None = None


class PosRedemption(RequestModel):
    points: Points


class EntryRead(BaseModel):
    id: int
    kind: str
    points: int = Field(description="Change of available points")
    pending: int = Field(description="Change of pending points")
    order_id: int | None
    reference: str
    channel: str | None
    staff: str | None
    comment: str
    created_at: datetime


class WalletEntryRead(BaseModel):
    id: int
    kind: str
    amount: int
    currency: str
    order_id: int | None
    reference: str
    channel: str | None
    created_at: datetime


class EntryPage(BaseModel):
    items: list[EntryRead] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: this is the last")


class WalletEntryPage(BaseModel):
    items: list[WalletEntryRead] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: this is the last")


class CardRead(BaseModel):
    number: str
    kind: str
    status: str
    block_reason: str
    replaced_by: str | None
    issued_at: datetime
    blocked_at: datetime | None


class ExpiryRead(BaseModel):
    expires_at: datetime
    points: int


class PendingRead(BaseModel):
    available_at: datetime
    points: int
    order_id: int | None


class BalanceRead(BaseModel):
    account_id: int
    customer_id: int | None
    points: int = Field(description="Spendable now")
    pending: int = Field(description="Earned, spendable after the hold")
    points_value: int = Field(description="What the spendable points are worth, minor units")
    currency: str
    wallet: int = Field(description="Stored value, minor units")
    tier: str | None
    tier_spend: int


class AccountRead(BalanceRead):
    program: dict[str, str]
    cards: list[CardRead]
    pending_lots: list[PendingRead]
    expiring: list[ExpiryRead]
    next_tier: dict | None
    entries: list[EntryRead]
