"""A journey's definition: what starts it, its steps, its goal, as JSON (docs/marketing.md).

    {"trigger": {"type": "event", "name": "Cart Abandoned"},
     "goal": {"type": "order"},
     "reentry": {"policy": "after_days", "days": 7},
     "steps": [
        {"id": "wait", "type": "wait", "minutes": 60, "next": "remind"},
        {"id": "remind", "type": "send", "template_id": 3, "next": "wait_order"},
        {"id": "wait_order", "type": "wait", "minutes": 1440, "next": "coupon"},
        {"id": "coupon", "type": "give_coupon", "promotion": "COMEBACK10", "valid_days": 3, "next": "send_coupon"},
        {"id": "send_coupon", "type": "send", "template_id": 4}]}

Steps form a graph without cycles; the first one is `first` (default: the first listed). A step
without `next` ends the journey (reason `completed`). `check_graph` refuses dangling references,
repeated ids, cycles and unreachable steps.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, StrictBool, model_validator

from seamline.core.schemas import Id, JsonObject, RequestModel
from seamline.marketing.segments.rules import Code, Key, Name, PropertyFilter, Rule, Scalar

StepId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_\-]+$")]
Minutes = Annotated[int, Field(ge=1, le=60 * 24 * 365)]
Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, the person's local time")]
MAX_STEPS = 50


# --- triggers --------------------------------------------------------------------------------


class EventTrigger(RequestModel):
    """A person does something: a track event (or a page or screen) named `name` whose
    properties pass every test of `where`. Its properties go into the journey's context."""

    type: Literal["event"]
    name: Name
    kind: Literal["track", "page", "screen"] = "track"
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)


class SegmentTrigger(RequestModel):
    """A person enters a segment (not the people already in it when the journey starts)."""

    type: Literal["segment_entered"]
    segment_id: Id


class DateTrigger(RequestModel):
    """A date of the person comes round: every year on a date trait's day (`birthday`), or
    `days_after` a date trait or the last order (`trait: "last_order"`). Checked every day at
    `at`, the person's local time."""

    type: Literal["date"]
    trait: Key = Field(description="A date trait (YYYY-MM-DD...), or last_order")
    annual: StrictBool = False
    days_after: Annotated[int, Field(ge=0, le=3650)] = 0
    at: Clock = "10:00"


class ApiTrigger(RequestModel):
    """`POST /v1/marketing/journeys/{id}/enroll` (a backend, a staff action)."""

    type: Literal["api"]


Trigger = Annotated[Union[EventTrigger, SegmentTrigger, DateTrigger, ApiTrigger], Field(discriminator="type")]


# --- goal, re-entry, pressure ----------------------------------------------------------------


class OrderGoal(RequestModel):
    """The person places an order (any channel): they leave the journey as converted."""

    type: Literal["order"]


class EventGoal(RequestModel):
    type: Literal["event"]
    name: Name
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)


Goal = Annotated[Union[OrderGoal, EventGoal], Field(discriminator="type")]


class Reentry(RequestModel):
    """never: a person goes through once; after_exit: again once they left; after_days: again
    `days` after they entered the last time (and left)."""

    policy: Literal["never", "after_exit", "after_days"] = "after_exit"
    days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @model_validator(mode="after")
    def _days(self):  # noqa: ANN202
        if (self.policy == "after_days") != (self.days is not None):
            raise ValueError("after_days needs days (and only it)")
        return self


class FrequencyCap(RequestModel):
    """At most `messages` marketing messages of this journey per person per `days`."""

    messages: Annotated[int, Field(ge=1, le=100)]
    days: Annotated[int, Field(ge=1, le=365)]


# --- steps -----------------------------------------------------------------------------------


class _Step(RequestModel):
    id: StepId
    next: StepId | None = None


class WaitStep(_Step):
    """Wait `minutes`; or until `until` (HH:MM, the person's time zone; the next such moment;
    "best": the start of the local hour the next-best-channel model draws for them, within a day);
    or until the person does `for_event` (then `next`), at most `timeout_minutes` (then
    `timeout_next`, or the end)."""

    type: Literal["wait"]
    minutes: Minutes | None = None
    until: Clock | Literal["best"] | None = None
    for_event: EventGoal | None = None
    timeout_minutes: Minutes | None = None
    timeout_next: StepId | None = None

    @model_validator(mode="after")
    def _one_kind(self):  # noqa: ANN202
        kinds = [self.minutes is not None, self.until is not None, self.for_event is not None]
        if sum(kinds) != 1:
            raise ValueError("a wait is minutes, until, or for_event (with timeout_minutes)")
        if (self.for_event is not None) != (self.timeout_minutes is not None):
            raise ValueError("a wait for an event needs timeout_minutes (and only it does)")
        if self.timeout_next is not None and self.for_event is None:
            raise ValueError("timeout_next goes with for_event")
        return self


class BranchStep(_Step):
    """Go to `next` when the person matches `rule` (any segment rule), or when they `engaged`
    with this journey's last message (delivered, opened, clicked or replied); else `else_next`."""

    type: Literal["branch"]
    rule: Rule | None = None
    engaged: Literal["delivered", "opened", "clicked", "replied"] | None = None
    else_next: StepId | None = None

    @model_validator(mode="after")
    def _one_kind(self):  # noqa: ANN202
        if (self.rule is None) == (self.engaged is None):
            raise ValueError("a branch tests a rule or engagement with the last message")
        return self


class Arm(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\- ]+$")]
    percent: Annotated[int, Field(ge=0, le=100)]
    next: StepId | None = None
    #: A holdout arm gets nothing from here on: it is what the other arms are measured against.
    holdout: StrictBool = False


class SplitStep(RequestModel):
    """An A/B split: each person to one arm, at random but for good (by person and journey)."""

    id: StepId
    type: Literal["split"]
    arms: list[Arm] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _hundred(self):  # noqa: ANN202
        if sum(a.percent for a in self.arms) != 100:
            raise ValueError("the arms' percents add up to 100")
        if len({a.name for a in self.arms}) != len(self.arms):
            raise ValueError("arm names are unique")
        return self


class SendStep(_Step):
    """Send a template's message. `channel`: one channel (`push`: the person's app push, else
    their browser's), or none for the person's best one (the one they last wrote on, else the
    configured order). Marketing consent is required."""

    type: Literal["send"]
    template_id: Id
    channel: Code | None = None


class UpdateTraitStep(_Step):
    type: Literal["update_trait"]
    key: Key
    value: Scalar | None = None


class GivePointsStep(_Step):
    """Credit loyalty points (the loyalty ledger, once per person and step)."""

    type: Literal["give_points"]
    points: Annotated[int, Field(ge=1, le=1_000_000)]
    comment: Annotated[str, Field(min_length=1, max_length=200)] = "Marketing bonus"


class GiveCouponStep(_Step):
    """A personal coupon of a promotion that requires one: usable once, by this person only,
    for `valid_days`; `store_from_context`: only in the store the trigger named (a store visit)."""

    type: Literal["give_coupon"]
    promotion: Code
    valid_days: Annotated[int, Field(ge=1, le=365)] = 7
    store_from_context: StrictBool = False


class NotifyAgentStep(_Step):
    """A task for the support team: a note in the person's conversation, queued for an agent."""

    type: Literal["notify_agent"]
    text: Annotated[str, Field(min_length=1, max_length=2000)]


Step = Annotated[Union[WaitStep, BranchStep, SplitStep, SendStep, UpdateTraitStep, GivePointsStep, GiveCouponStep,
                       NotifyAgentStep], Field(discriminator="type")]


class Definition(RequestModel):
    trigger: Trigger
    #: Only people matching this rule when the trigger fires enter.
    audience: Rule | None = None
    goal: Goal | None = None
    reentry: Reentry = Field(default_factory=Reentry)
    #: For a segment trigger: leave when leaving the segment.
    exit_on_segment_exit: StrictBool = False
    frequency_cap: FrequencyCap | None = None
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    first: StepId | None = None
    #: Free notes for the people editing it.
    notes: JsonObject | None = None

    @model_validator(mode="after")
    def _graph(self):  # noqa: ANN202
        check_graph(self)
        return self

    def step(self, step_id: str) -> Any:
        return next(s for s in self.steps if s.id == step_id)

    @property
    def start(self) -> str:
        return self.first or self.steps[0].id


def successors(step: Any) -> list[str]:
    if isinstance(step, SplitStep):
        return [a.next for a in step.arms if a.next]
    found = [step.next] if step.next else []
    for extra in ("else_next", "timeout_next"):
        if getattr(step, extra, None):
            found.append(getattr(step, extra))
    return found


def check_graph(definition: Definition) -> None:
    ids = [s.id for s in definition.steps]
    if len(set(ids)) != len(ids):
        raise ValueError("step ids are unique")
    known = set(ids)
    if definition.first is not None and definition.first not in known:
        raise ValueError(f"first names no step: {definition.first}")
    for step in definition.steps:
        for target in successors(step):
            if target not in known:
                raise ValueError(f"step {step.id} goes to {target}, which is not a step")
    graph = {s.id: successors(s) for s in definition.steps}
    state: dict[str, int] = {}

    def visit(node: str) -> None:  # iterative enough: at most MAX_STEPS deep
        state[node] = 1
        for target in graph[node]:
            if state.get(target) == 1:
                raise ValueError(f"the steps loop back at {target}: a journey goes forward only")
            if target not in state:
                visit(target)
        state[node] = 2

    visit(definition.start)
    unreachable = sorted(known - set(state))
    if unreachable:
        raise ValueError(f"steps no path reaches: {', '.join(unreachable)}")
