"""Request and response models of the inbox API (the contract; docs/inbox.md explains it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints, model_validator

from seamline.core.schemas import AwareDateTime, Id, JsonObject, RequestModel, free_text, line_text
from seamline.customers.schemas import CustomerRead

Skill = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w:.\-]+$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Channel = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
Text = free_text(64_000)
Name = line_text(200)
ShortName = line_text(100)


Extension = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9*#+]+$")]


class AgentCreate(RequestModel):
    name: Name = Field(examples=["Мария"])
    email: EmailStr
    skills: list[Skill] = Field(default_factory=list, max_length=50, examples=[["returns", "loyalty", "lang:ru"]])
    capacity: int = Field(default=10, ge=1, le=1000, description="Maximum load (a chat or email weighs 1 by default)")
    team_ids: list[Id] = Field(default_factory=list, max_length=50)
    create_key: bool = Field(default=False, description="Also create an API key with the `agent` scope that acts as this agent")
    extension: Extension | None = Field(default=None, description="The agent's PBX extension: calls there pop up in their console")


class AgentUpdate(RequestModel):
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


class AgentStatus(RequestModel):
    status: Literal["online", "away", "offline"]


class TeamCreate(RequestModel):
    name: ShortName


class AgentAction(RequestModel):
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
    snoozed_until: AwareDateTime | None = None


class Transfer(AgentAction):
    to_agent_id: Id | None = None
    to_team_id: Id | None = None
    note: Text | None = None


class Typing(AgentAction):
    typing: bool = True


class LabelsChange(RequestModel):
    add: list[Label] = Field(default_factory=list, max_length=50)
    remove: list[Label] = Field(default_factory=list, max_length=50)


class MergeRequest(AgentAction):
    source_id: Id = Field(description="The conversation merged away (its messages move)")


class SplitRequest(AgentAction):
    message_id: Id


class SlaPolicyCreate(RequestModel):
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


class RoutingRuleCreate(RequestModel):
    name: ShortName
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(examples=[r"возврат|вернуть|return"])
    skill: Skill
    position: int = Field(default=0, ge=0, le=10_000)
    enabled: bool = True


class CannedCreate(RequestModel):
    shortcut: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w\-]+$")]
    title: Name
    body: Text = Field(min_length=1, examples=["{{customer.first_name}}, ваш заказ {{order.number}} готов к выдаче."])


class SurveyAnswer(RequestModel):
    score: int = Field(ge=0, le=10)
    comment: Text | None = None


class WebhookCreate(RequestModel):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000)]
    types: list[Annotated[str, StringConstraints(max_length=64)]] = Field(default_factory=list, max_length=20)
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)] | None = None


#: A link a notification opens: an absolute http(s) URL, or a path on the site that subscribed;
#: printable ASCII (non-ASCII percent-encoded), which every regular expression dialect reads alike.
ClickUrl = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^(https?://[!-~]+|/[!-~]*)$")]


class PushOptions(RequestModel):
    """What a push notification shows beyond the text (web push and mobile push; other channels
    ignore it). Kept in the message's `meta.push`."""

    title: line_text(100) | None = Field(default=None, description="Default: the conversation's subject, else `inbox_push_default_title`")
    url: ClickUrl | None = Field(default=None, description="Opened when the notification is clicked", examples=["https://shop.example.com/orders/1042"])
    icon: ClickUrl | None = Field(default=None, description="An image shown with a web notification")
    tag: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")] | None = Field(
        default=None, description="A newer notification with the same tag replaces the older one on the device")
    urgency: Literal["very-low", "low", "normal", "high"] | None = Field(
        default=None, description="Default: `inbox_push_urgency`; `high` also makes FCM and APNs deliver at once")


class OutboundCreate(RequestModel):
    customer_id: Id
    text: free_text(4096) = Field(min_length=1, examples=["Ваш заказ 1042 готов к выдаче в магазине на Тверской."])
    channel: Channel | None = Field(default=None, description="Send on this channel (`push`: their app's push, else their browser's); default: "
                                    "the one the customer last wrote on, else the first of `inbox_outbound_channels` that reaches them")
    purpose: Literal["service", "marketing"] = Field(
        default="service", description="service: needs the channel's service consent not withdrawn; marketing: needs marketing consent granted")
    source: line_text(100) | None = Field(default=None, description="Who sends it, for the history (e.g. orders, loyalty)")
    push: PushOptions | None = Field(default=None, description="Title, click URL, icon, tag of a push notification (webpush, mobilepush)")


# --- responses ------------------------------------------------------------------------------------
# What each route answers (the OpenAPI document's response schemas; docs/inbox.md says more).

#: `next_cursor` of every paged list (docs/architecture.md "Lists").
NextCursor = Annotated[str | None, Field(description="Pass as `cursor` for the next page; null: this is the last")]


class AgentRead(BaseModel):
    id: int
    name: str
    email: str
    skills: list[str]
    status: str = Field(description="online, away or offline")
    capacity: int
    load: int = Field(description="The weights of the agent's open conversations")
    api_key_id: int | None = Field(description="The key that acts as this agent, if any")
    extension: str | None = Field(description="The agent's PBX extension")
    team_ids: list[int]
    status_changed_at: datetime | None
    last_assigned_at: datetime | None


class AgentCreated(AgentRead):
    api_key: str | None = Field(default=None, description="With `create_key`: the agent's API key, shown this once")


class AgentList(BaseModel):
    items: list[AgentRead]


class TeamRead(BaseModel):
    id: int
    name: str


class TeamList(BaseModel):
    items: list[TeamRead]


class DashboardAgent(BaseModel):
    id: int
    name: str
    status: str
    capacity: int
    load: int
    open: int = Field(description="Open and pending conversations assigned")
    awaiting_reply: int
    sla_at_risk: int


class DashboardQueue(BaseModel):
    team_id: int | None
    team: str | None
    waiting: int
    longest_wait_seconds: int


class DashboardRead(BaseModel):
    at: datetime
    agents: list[DashboardAgent]
    queues: list[DashboardQueue]
    waiting_total: int
    sla_at_risk_total: int
    online_agents: int


class ConversationSummaryRead(BaseModel):
    id: int
    customer_id: int
    channel: str = Field(description="Where the customer last wrote from")
    status: str = Field(description="open, pending, snoozed or resolved")
    subject: str | None
    assignee_id: int | None
    priority: int
    labels: list[str]
    last_message_at: datetime | None
    created_at: datetime
    queued_at: datetime | None
    awaiting_reply_since: datetime | None
    sla_breaches: list[str]
    handled_by_bot: bool = Field(False, description="The bot is answering: not in the queue until it hands over or an agent replies")


class ConversationPage(BaseModel):
    items: list[ConversationSummaryRead] = Field(description="Newest first")
    next_cursor: NextCursor
    next_before_id: int | None = Field(deprecated=True, description="Deprecated: use `next_cursor`. The `before_id` of the next page")


class QueuedConversationRead(ConversationSummaryRead):
    required_skill: str | None
    position: int = Field(description="1 is served next")


class QueueRead(BaseModel):
    items: list[QueuedConversationRead] = Field(description="In queue order")


class ClockRead(BaseModel):
    due_at: datetime | None
    state: str | None = Field(description="running, at_risk, met, breached or stopped; null without a target")


class SlaRead(BaseModel):
    policy_id: int | None
    breaches: list[str]
    first_response: ClockRead
    next_response: ClockRead
    resolution: ClockRead
    at_risk: bool


class AuthorRead(BaseModel):
    agent_id: int
    name: str | None


class MessageAttachmentRead(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int


class MessageRead(BaseModel):
    id: int
    conversation_id: int
    direction: str = Field(description="in (the customer), out (to the customer) or internal (notes and events)")
    kind: str = Field(description="message, note, event or call")
    channel: str
    author: AuthorRead | None
    text: str
    html: str | None
    attachments: list[MessageAttachmentRead]
    delivery_status: str | None = Field(description="Outbound: queued, sent, delivered, read or failed")
    error: str | None
    meta: dict[str, Any]
    created_at: datetime


class MessageList(BaseModel):
    items: list[MessageRead]
    next_cursor: NextCursor


class ConversationRead(BaseModel):
    id: int
    customer_id: int = Field(description="The profile it is read through (after a customer merge, the survivor)")
    channel: str
    reply_channel: str
    status: str
    snoozed_until: datetime | None
    subject: str | None
    assignee_id: int | None
    team_id: int | None
    required_skill: str | None
    priority: int
    labels: list[str]
    queue_position: int | None
    queued_at: datetime | None
    awaiting_reply_since: datetime | None
    first_response_at: datetime | None
    last_message_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None
    handled_by_bot: bool = Field(False, description="The bot is answering: not in the queue until it hands over or an agent replies")
    sla: SlaRead


class ConversationDetailRead(ConversationRead):
    messages: list[MessageRead] = Field(description="The latest 100, in the order they were written")


class WindowRead(BaseModel):
    conversation: ConversationDetailRead
    customer: CustomerRead
    other_conversations: list[ConversationSummaryRead]
    reachable_channels: list[str]


class AttachmentRead(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int


class SlaPolicyRead(BaseModel):
    id: int
    name: str
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    calendar: dict[str, Any] | None
    channels: list[str]
    min_priority: int
    is_default: bool


class SlaPolicyList(BaseModel):
    items: list[SlaPolicyRead]


class RoutingRuleRead(BaseModel):
    id: int
    name: str
    pattern: str
    skill: str
    position: int
    enabled: bool


class RoutingRuleList(BaseModel):
    items: list[RoutingRuleRead]


class CannedRead(BaseModel):
    id: int
    shortcut: str
    title: str
    body: str


class CannedList(BaseModel):
    items: list[CannedRead]


class CannedRendered(BaseModel):
    text: str


class WebhookCreated(BaseModel):
    id: int
    url: str
    types: list[str]
    secret: str = Field(description="The signing secret, shown this once")


class WebhookRead(BaseModel):
    id: int
    url: str
    types: list[str]
    active: bool


class WebhookList(BaseModel):
    items: list[WebhookRead]


class WebhookDeadLetterRead(BaseModel):
    id: int
    event_type: str
    attempts: int
    last_error: str | None
    created_at: datetime


class WebhookDeadLetterPage(BaseModel):
    items: list[WebhookDeadLetterRead] = Field(description="Newest first")
    next_cursor: NextCursor


class WebhookDeliveryRetried(BaseModel):
    id: int
    status: str


class SurveyRead(BaseModel):
    id: int
    conversation_id: int
    customer_id: int
    kind: str = Field(description="csat (1-5) or nps (0-10)")
    channel: str
    agent_id: int | None
    score: int | None
    comment: str | None
    sent_at: datetime
    answered_at: datetime | None


class SurveyPage(BaseModel):
    items: list[SurveyRead] = Field(description="Newest first")
    next_cursor: NextCursor


class InboundRead(BaseModel):
    id: int
    channel: str
    provider_message_id: str
    status: str = Field(description="received, processed or failed")
    attempts: int
    error: str | None
    message_id: int | None
    received_at: datetime
    size: int = Field(description="Bytes of the raw payload")


class InboundPage(BaseModel):
    items: list[InboundRead] = Field(description="Newest first")
    next_cursor: NextCursor


class InboundRetried(BaseModel):
    id: int
    message_id: int | None = Field(description="The message it became, when processed")
    error: str | None = Field(description="Why it failed again (kept on the row)")


class OutboundRead(BaseModel):
    id: int
    conversation_id: int
    customer_id: int | None
    channel: str
    text: str
    purpose: str | None
    source: str | None
    delivery_status: str | None
    provider_message_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    error: str | None
    created_at: datetime


class OutboundPage(BaseModel):
    items: list[OutboundRead] = Field(description="Newest first")
    next_cursor: NextCursor


class ChannelStateRead(BaseModel):
    channel: str
    rate_per_second: float | None
    live: bool = Field(description="Delivered at once over a live connection (the web chat), not by the send worker")
    paused_until: datetime | None
    failures: int
    last_error: str | None
    last_success_at: datetime | None
    queued: int
    failed: int


class ChannelStateList(BaseModel):
    items: list[ChannelStateRead]


class SuppressionRead(BaseModel):
    id: int
    channel: str
    address: str = Field(description="As compared (an email address in lower case)")
    reason: str = Field(description="What the channel said, e.g. `bounced (5.1.1) anna@example.com: ... User unknown`")
    message_id: int | None = Field(description="The message whose bounce it was")
    created_at: datetime

    model_config = {"from_attributes": True}


class SuppressionPage(BaseModel):
    items: list[SuppressionRead] = Field(description="Newest first")
    next_cursor: NextCursor
