"""The API contract of the bot's admin surface (`/v1/assistant`): intents and their settings,
answers, example phrases, trying a text and the figures of a period. Codes (intents, handover
reasons, outcomes) are stable English; each intent also carries its names in both languages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from seamline.assistant.editing import MAX_TEMPLATE
from seamline.assistant.intents import INTENTS
from seamline.core.schemas import RequestModel, free_text, line_text
from seamline.inbox.schemas import Skill

Lang = Literal["ru", "en"]
#: An intent's name (`intents.INTENTS`).
IntentName = Literal[tuple(INTENTS)]  # type: ignore[valid-type]


class Names(BaseModel):
    ru: str
    en: str


class ByLanguage(BaseModel):
    ru: int
    en: int


class PhraseCounts(BaseModel):
    shipped: ByLanguage = Field(description="Example phrases that ship with Seamline")
    business: ByLanguage = Field(description="Example phrases the business added")


class AnswerText(BaseModel):
    default: str = Field(description="The shipped template")
    custom: str | None = Field(description="The business's template; null: the default is used")
    template: str = Field(description="The template in use")
    updated_by: str | None
    updated_at: datetime | None
    unknown_variables: list[str] = Field(description="Names the business's template reads that this answer is not given "
                                                     "(they print nothing)")


class AnswerTexts(BaseModel):
    ru: AnswerText
    en: AnswerText


class AnswerRead(BaseModel):
    key: str = Field(description="An intent's answer (`order_status`), one of its cases (`order_status.none`) or a step of "
                                 "the conversation (`identify`, `handover`, `not_understood`)")
    intent: str | None = Field(description="The intent it belongs to; null for a step of the conversation")
    variables: list[str] = Field(description="What the template is given (`order.number`; `stores[].name`: each item of a list)")
    languages: AnswerTexts


class AnswerList(BaseModel):
    items: list[AnswerRead]


class IntentRead(BaseModel):
    name: str
    names: Names
    personal: bool = Field(description="It reads the person's own data: answered only once they are identified")
    configurable: bool = Field(description="False for `human` and `out_of_scope`, which have no settings: the bot always "
                                           "hands `human` over and never answers `out_of_scope`")
    human_only: bool = Field(description="In effect: handed over at once, never answered by the bot")
    human_only_default: bool
    skill: str | None = Field(description="The skill routing requires when the bot hands this topic over")
    updated_at: datetime | None = Field(description="When the business last changed the settings (null: never)")
    phrases: PhraseCounts
    answers: list[AnswerRead]


class IntentList(BaseModel):
    items: list[IntentRead]


class TopicPut(RequestModel):
    human_only: bool
    skill: Skill | None = Field(default=None, description="Required of the agent a handover of this topic goes to; null: any")


class AnswerPut(RequestModel):
    template: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE, pattern=r"^[^\x00]*$")] = Field(
        description="A Jinja2 template (sandboxed) over the answer's variables; the default's own text is the default")

    @field_validator("template")
    @classmethod
    def _words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a template needs text; DELETE goes back to the default")
        return value


class PhraseCreate(RequestModel):
    intent: IntentName
    text: line_text(500)
    lang: Lang | None = Field(default=None, description="The phrase's language; null: found from the text")


class PhraseRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    intent: str
    lang: str
    text: str
    created_by: str
    created_at: datetime


class PhrasePage(BaseModel):
    items: list[PhraseRead]
    next_cursor: str | None


class ClassifyIn(RequestModel):
    text: free_text(1000) = Field(min_length=1)


class Alternative(BaseModel):
    intent: str
    confidence: float


class Thresholds(BaseModel):
    confident: float = Field(description="At or above: the bot answers (`SEAMLINE_ASSISTANT_CONFIDENCE`)")
    unsure: float = Field(description="Below: not understood; between the two: handed over as `low_confidence`")


class ClassifyRead(BaseModel):
    intent: str
    confidence: float
    lang: Lang
    alternatives: list[Alternative] = Field(description="The next best intents, best first")
    would: Literal["answer", "identify", "not_understood", "hand_over"] = Field(
        description="What the bot would do with it as a first message (`identify`: a personal topic, it asks who they are first)")
    reason: str | None = Field(description="The handover reason when `would` is `hand_over`")
    asks_llm: bool = Field(description="The model is unsure and an LLM is set up (`SEAMLINE_ASSISTANT_LLM_URL`): the bot first "
                                       "asks it which intent this is; `would` is what it does when the LLM names none")
    thresholds: Thresholds


class NotUnderstood(BaseModel):
    text: str
    at: datetime
    conversation_id: int
    confidence: float


class StatsRead(BaseModel):
    since: datetime
    until: datetime
    conversations: int = Field(description="Conversations the bot started in the period")
    resolved: int = Field(description="Ended by the bot (the customer had what they needed)")
    handed_over: int
    abandoned: int = Field(description="Left after the bot said it did not understand, or while it waited for an answer of theirs")
    open: int
    containment: float | None = Field(description="resolved / (resolved + handed_over + abandoned); null when none ended")
    handover_reasons: dict[str, int]
    intents: dict[str, int] = Field(description="Messages by intent, most first")
    turns: int = Field(description="Messages the bot read")
    p50_ms: float | None = Field(description="Median time from reading a message to queuing the answer")
    p99_ms: float | None
    not_understood: list[NotUnderstood] = Field(description="The newest messages it did not understand (at most 50)")
