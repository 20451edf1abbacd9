"""The rule language of segments: what a marketer can ask about a person, as JSON.

A rule is a condition (`trait`, `consent`, `identifier`, `event`, `orders`, `loyalty`, `inbox`,
`cart`, `segment`) or a group (`and`, `or`, `not`) of rules:

    {"type": "and", "rules": [
        {"type": "trait", "key": "city", "op": "eq", "value": "Moscow"},
        {"type": "consent", "channel": "email"},
        {"type": "event", "name": "Product Viewed", "where": [{"property": "category", "op": "eq", "value": "creams"}],
         "count": {"op": "gte", "value": 3}, "within_days": 30},
        {"type": "not", "rule": {"type": "orders", "within_days": 30}}]}

docs/marketing.md defines each condition. Counted conditions (events, orders) hold for people
with none when the comparison holds for zero ("fewer than 2 orders" includes people with no
orders). A rule is bounded (`MAX_CONDITIONS`, `MAX_DEPTH`) so that its SQL stays reasonable.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from seamline.core.schemas import Id, RequestModel

MAX_CONDITIONS = 40
MAX_DEPTH = 6

Key = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-$ ]+$")]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Scalar = Union[StrictStr, StrictInt, StrictFloat, StrictBool]
Days = Annotated[int, Field(ge=1, le=3650)]


class Compare(RequestModel):
    """A comparison of a number: `{"op": "gte", "value": 3}`."""

    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"]
    value: float = Field(ge=-1e15, le=1e15)

    def holds(self, number: float) -> bool:
        return {"eq": number == self.value, "ne": number != self.value, "gt": number > self.value,
                "gte": number >= self.value, "lt": number < self.value, "lte": number <= self.value}[self.op]


AT_LEAST_ONE = Compare(op="gte", value=1)

ValueOp = Literal["eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "exists", "not_exists",
                  "before", "after", "within_last_days", "more_than_days_ago"]
#: Operators and the value each takes.
VALUE_KINDS: dict[str, str] = {
    "eq": "scalar", "ne": "scalar", "in": "list", "not_in": "list", "contains": "text", "gt": "number", "gte": "number",
    "lt": "number", "lte": "number", "exists": "none", "not_exists": "none", "before": "date", "after": "date",
    "within_last_days": "days", "more_than_days_ago": "days",
}


class _ValueTest(RequestModel):
    """A test of a JSON value (a trait, an event property)."""

    op: ValueOp
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self):  # noqa: ANN202
        kind, value = VALUE_KINDS[self.op], self.value
        ok = {
            "scalar": isinstance(value, (str, int, float, bool)),
            "list": isinstance(value, list) and 1 <= len(value) <= 100 and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value),
            "text": isinstance(value, str) and 1 <= len(value) <= 200,
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "none": value is None,
            "date": isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4] == "-",
            "days": isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 36500,
        }[kind]
        if not ok:
            wanted = {"scalar": "a string, number or boolean", "list": "a list of 1-100 strings or numbers",
                      "text": "a string", "number": "a number", "none": "no value", "date": "an ISO 8601 date (YYYY-MM-DD...)",
                      "days": "a whole number of days"}[kind]
            raise ValueError(f"the operator {self.op} takes {wanted}")
        if isinstance(value, str) and (len(value) > 500 or "\x00" in value):
            raise ValueError("a value is at most 500 characters, without NUL")
        return self


class TraitRule(_ValueTest):
    """The person's trait as their profile shows it (the latest verified value, else the latest)."""

    type: Literal["trait"]
    key: Key


class PropertyFilter(_ValueTest):
    """A test of an event's property (`a.b` for a nested one)."""

    property: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-$ ]+(\.[A-Za-z0-9_\-$ ]+){0,4}$")]


class ConsentRule(RequestModel):
    """The person's latest consent for this channel and purpose is `granted` (true: given; false:
    withdrawn, or never given)."""

    type: Literal["consent"]
    channel: Code
    purpose: Code = "marketing"
    granted: StrictBool = True


class IdentifierRule(RequestModel):
    """The person has an identifier of this type (an email, a phone, a loyalty card...)."""

    type: Literal["identifier"]
    identifier_type: Code
    verified_only: StrictBool = False


class EventRule(RequestModel):
    """How many times the person did something (a track event, or a page or screen by its name)."""

    type: Literal["event"]
    name: Name
    kind: Literal["track", "page", "screen"] = "track"
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)
    count: Compare = AT_LEAST_ONE
    within_days: Days | None = None
    channel: Code | None = None


class OrderRule(RequestModel):
    """The person's orders (not cancelled), optionally of a channel, picked up in a store, with a
    product of a category, placed within the last days: their count and revenue (minor units)."""

    type: Literal["orders"]
    count: Compare | None = None
    revenue: Compare | None = None
    within_days: Days | None = None
    channel: Code | None = None
    store: Code | None = Field(default=None, description="A location's code")
    category: Code | None = Field(default=None, description="A category's code (its subcategories too)")

    @model_validator(mode="after")
    def _default_count(self):  # noqa: ANN202
        if self.count is None and self.revenue is None:
            self.count = AT_LEAST_ONE
        return self


class LoyaltyRule(RequestModel):
    """The person's loyalty account: its tier, its spendable points (no account: no tier, 0 points)."""

    type: Literal["loyalty"]
    tier: list[Code] | None = Field(default=None, min_length=1, max_length=20)
    points: Compare | None = None

    @model_validator(mode="after")
    def _something(self):  # noqa: ANN202
        if self.tier is None and self.points is None:
            raise ValueError("a loyalty condition needs tier or points")
        return self


class InboxRule(RequestModel):
    """The person's support history: a conversation still open, their last NPS answer (0-10)."""

    type: Literal["inbox"]
    open_conversation: StrictBool | None = None
    last_nps: Compare | None = None

    @model_validator(mode="after")
    def _something(self):  # noqa: ANN202
        if self.open_conversation is None and self.last_nps is None:
            raise ValueError("an inbox condition needs open_conversation or last_nps")
        return self


class CartRule(RequestModel):
    """The person has an active cart with something in it, untouched for at least `idle_minutes`."""

    type: Literal["cart"]
    idle_minutes: Annotated[int, Field(ge=0, le=60 * 24 * 90)] = 0


class SegmentRule(RequestModel):
    """The person is a member of another segment."""

    type: Literal["segment"]
    segment_id: Id


class AndRule(RequestModel):
    type: Literal["and"]
    rules: list[Rule] = Field(min_length=1, max_length=MAX_CONDITIONS)


class OrRule(RequestModel):
    type: Literal["or"]
    rules: list[Rule] = Field(min_length=1, max_length=MAX_CONDITIONS)


class NotRule(RequestModel):
    type: Literal["not"]
    rule: Rule


Condition = Union[TraitRule, ConsentRule, IdentifierRule, EventRule, OrderRule, LoyaltyRule, InboxRule, CartRule, SegmentRule]
Rule = Annotated[Union[AndRule, OrRule, NotRule, TraitRule, ConsentRule, IdentifierRule, EventRule, OrderRule, LoyaltyRule,
                       InboxRule, CartRule, SegmentRule], Field(discriminator="type")]
for _group in (AndRule, OrRule, NotRule):
    _group.model_rebuild()


def walk(rule: Rule, depth: int = 1):  # noqa: ANN201 - a generator of (condition, depth)
    """Every condition of a rule, with its depth."""
    if isinstance(rule, (AndRule, OrRule)):
        for inner in rule.rules:
            yield from walk(inner, depth + 1)
    elif isinstance(rule, NotRule):
        yield from walk(rule.rule, depth + 1)
    else:
        yield rule, depth


def check_size(rule: Rule) -> None:
    """Refuse a rule too big or too deep to evaluate quickly (a ValueError naming the limit)."""
    conditions = list(walk(rule))
    if len(conditions) > MAX_CONDITIONS:
        raise ValueError(f"a segment rule has at most {MAX_CONDITIONS} conditions (this one has {len(conditions)})")
    if max(depth for _, depth in conditions) > MAX_DEPTH:
        raise ValueError(f"a segment rule nests at most {MAX_DEPTH} levels")


def referenced_segments(rule: Rule) -> set[int]:
    return {c.segment_id for c, _ in walk(rule) if isinstance(c, SegmentRule)}


def _kind(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "other"


def passes(test: _ValueTest, value: object, *, now_iso: str) -> bool:
    """`test` on a JSON value in Python, as the SQL of `compiler.value_test` decides it (an event
    that starts a journey is matched here, not in the database)."""
    kind, wanted, op = _kind(value), test.value, test.op
    number = float(value) if kind == "number" else None
    text = ("true" if value else "false") if kind == "boolean" else value if kind == "string" else None
    if op == "exists":
        return kind is not None
    if op == "not_exists":
        return kind is None
    if op in ("eq", "ne"):
        if isinstance(wanted, bool):
            same = kind == "boolean" and text == ("true" if wanted else "false")
        elif isinstance(wanted, (int, float)):
            same = number is not None and number == wanted
        else:
            same = kind == "string" and text == wanted
        return same if op == "eq" else (kind is not None and not same)
    if op in ("in", "not_in"):
        inside = (kind == "string" and text in [w for w in wanted if isinstance(w, str)]) or (
            number is not None and number in [w for w in wanted if not isinstance(w, str)])
        return inside if op == "in" else (kind is not None and not inside)
    if op == "contains":
        return kind == "string" and wanted.lower() in text.lower()
    if op in ("gt", "gte", "lt", "lte"):
        if number is None:
            return False
        return {"gt": number > wanted, "gte": number >= wanted, "lt": number < wanted, "lte": number <= wanted}[op]
    if kind != "string":
        return False
    if op == "before":
        return text < wanted
    if op == "after":
        return text > wanted
    from datetime import datetime, timedelta

    cutoff = (datetime.fromisoformat(now_iso) - timedelta(days=wanted)).isoformat()[:10]
    if op == "within_last_days":
        return cutoff <= text <= now_iso
    return text < cutoff  # more_than_days_ago


def properties_pass(filters: list[PropertyFilter], properties: dict, *, now_iso: str) -> bool:
    """Every filter holds for the event's properties (a nested property by its dotted path)."""
    for test in filters:
        value: object = properties
        for part in test.property.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not passes(test, value, now_iso=now_iso):
            return False
    return True
