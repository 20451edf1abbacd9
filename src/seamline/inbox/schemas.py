"""Request models of the inbox API (the contract; responses are documented in docs/inbox.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, EmailStr, Field, StringConstraints, model_validator

from seamline.core.schemas import JsonObject, free_text, line_text

Id = Annotated[int, Field(ge=1, le=2**62)]
Skill = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w:.\-]+$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Channel = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
Text = free_text(64_000)
Name = line_text(200)
ShortName = line_text(100)


Extension = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9*#+]+$")]


class AgentCreate(BaseModel):
    name: Name = Field(examples=["Мария"])
    email: EmailStr
    skills: list[Skill] = Field(default_factory=list, max_length=50, examples=[["returns", "loyalty", "lang:ru"]])
    capacity: int = Field(default=10, ge=1, le=1000, description="Maximum load (a chat or email weighs 1 by default)")
    team_ids: list[Id] = Field(default_factory=list, max_length=50)
    create_key: bool = Field(default=False, description="Also create an API key with the `agent` scope that acts as this agent")
    extension: Extension | None = Field(default=None, description="The agent's PBX extension: calls there pop up in their console")


class AgentUpdate(BaseModel):
    name: Name | None = None
    skills: list[Skill] | None = Field(default=None, max_length=50)
    capacity: int | None = Field(default=None, ge=1, le=1000)
    team_ids: list[Id] | None = Field(default=None, max_length=50)
    extension: Extension | None = Field(default=None, description="null removes the agent's phone extension")

    @model_validator(mode="before")
    @classmethod
    def _no_null_but_extension(cls, data: object) -> object:
        """Only the extension can be removed; leave a field out to keep it (a null was a 500)."""
        if isinstance(data, dict):
            nulls = sorted(k for k, v in data.items() if v is None and k != "extension")
            if nulls:
                raise ValueError(f"{', '.join(nulls)} cannot be null: leave a field out to keep its value")
        return data


class AgentStatus(BaseModel):
    status: Literal["online", "away", "offline"]


class TeamCreate(BaseModel):
    name: ShortName


class AgentAction(BaseModel):
    agent_id: Id | None = Field(default=None, description="Who acts; defaults to the agent of the API key")


class ReplyCreate(AgentAction):
    text: Text = Field(default="", examples=["Здравствуйте! Да, тюбик можно вернуть в любом магазине."])
    html: free_text(256_000) | None = None
    attachment_ids: list[Id] = Field(default_factory=list, max_length=20)
    channel: Channel | None = Field(default=None, description="Reply on this channel instead of the one the customer last used")
    canned_response_id: Id | None = Field(default=None, description="Send this canned response (its variables filled in) as the text")


class NoteCreate(AgentAction):
    text: Text = Field(min_length=1)


class StatusChange(AgentAction):
    status: Literal["open", "pending", "snoozed", "resolved"]
    snoozed_until: AwareDatetime | None = None


class Transfer(AgentAction):
    to_agent_id: Id | None = None
    to_team_id: Id | None = None
    note: Text | None = None


class Typing(AgentAction):
    typing: bool = True


class LabelsChange(BaseModel):
    add: list[Label] = Field(default_factory=list, max_length=50)
    remove: list[Label] = Field(default_factory=list, max_length=50)


class MergeRequest(AgentAction):
    source_id: Id = Field(description="The conversation merged away (its messages move)")


class SplitRequest(AgentAction):
    message_id: Id


class SlaPolicyCreate(BaseModel):
    name: ShortName
    first_response_minutes: int | None = Field(default=None, ge=1, le=525_600)
    next_response_minutes: int | None = Field(default=None, ge=1, le=525_600)
    resolution_minutes: int | None = Field(default=None, ge=1, le=5_256_000)
    calendar: JsonObject | None = Field(
        default=None,
        examples=[{"timezone": "Europe/Moscow", "hours": {"mon": ["09:00", "18:00"], "tue": ["09:00", "18:00"]},
                   "holidays": ["2027-01-01"]}],
    )
    channels: list[Channel] = Field(default_factory=list, max_length=20)
    min_priority: int = Field(default=0, ge=-1000, le=1000)
    is_default: bool = False


class RoutingRuleCreate(BaseModel):
    name: ShortName
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(examples=[r"возврат|вернуть|return"])
    skill: Skill
    position: int = Field(default=0, ge=0, le=10_000)
    enabled: bool = True


class CannedCreate(BaseModel):
    shortcut: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w\-]+$")]
    title: Name
    body: Text = Field(min_length=1, examples=["{{customer.first_name}}, ваш заказ {{order.number}} готов к выдаче."])


class SurveyAnswer(BaseModel):
    score: int = Field(ge=0, le=10)
    comment: Text | None = None


class WebhookCreate(BaseModel):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000)]
    types: list[Annotated[str, StringConstraints(max_length=64)]] = Field(default_factory=list, max_length=20)
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)] | None = None


class OutboundCreate(BaseModel):
    customer_id: Id
    text: free_text(4096) = Field(min_length=1, examples=["Ваш заказ 1042 готов к выдаче в магазине на Тверской."])
    channel: Channel | None = Field(default=None, description="Send on this channel; default: the one the customer last wrote on, "
                                    "else the first of `inbox_outbound_channels` that reaches them")
    purpose: Literal["service", "marketing"] = Field(
        default="service", description="service: needs the channel's service consent not withdrawn; marketing: needs marketing consent granted")
    source: line_text(100) | None = Field(default=None, description="Who sends it, for the history (e.g. orders, loyalty)")
