"""Marketing's JSON in the reader's words: a segment's rule as a sentence per condition ("Trait
city = Moscow", "Ordered ≥ 2 times in the last 90 days", "Consented to marketing: Email"), a
journey's trigger, goal and each step ("Wait 1 h", "If something is in the cart → 3, else →
the end", "Give a personal coupon of promotion COMEBACK10 for 3 days", A/B arms with their
percents), what came of a step a person passed, and a rule that does not validate explained.

The rules and definitions are the ones marketing keeps (segments/rules.py,
journeys/definition.py), parsed with its own models, so defaults read as marketing applies them
(an event condition without `count` is "at least once"). Every sentence is a gettext msgid
(`t(msgid)`, plurals `n(singular, plural, count)`), Russian in marketing.po; codes (statuses, exit
and skip reasons, channels) are named by web/console/labels.py's vocabularies.
tests/web/test_translations.py reads this file for its msgids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from seamline.marketing.journeys import definition as d
from seamline.marketing.segments import rules as r
from seamline.web import i18n
from seamline.web.console.labels import Labels

#: The `type` tags of rule conditions and groups (pydantic's error paths name them).
RULE_TAGS = {"and", "or", "not", "trait", "consent", "identifier", "event", "orders", "loyalty", "inbox", "cart", "segment"}
#: Comparisons written as signs (the same in every language).
SIGNS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


@dataclass
class Line:
    """A sentence, and the sentences under it (a group's conditions)."""

    text: str
    children: list[Line] = field(default_factory=list)


@dataclass
class Transition:
    """Where a step leads: `label` (None for plain "then"), the step id it goes to (None: the end)."""

    label: str | None
    target: str | None


@dataclass
class StepLine:
    number: int
    id: str
    kind: str
    text: str
    transitions: list[Transition]


def lower_first(text: str) -> str:
    """"Trait city = Moscow" -> "trait city = Moscow" (for "If ..."); "NPS ..." stays."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


class Words:
    """The sentences of one reader (their language, their formats)."""

    def __init__(self, labels: Labels, fmt: i18n.Formats, *, currency: str = "RUB", segments: dict[int, str] | None = None,
                 templates: dict[int, str] | None = None):
        self.label = labels
        self.fmt = fmt
        self.currency = currency
        self.segments = segments or {}
        self.templates = templates or {}
        self._translations = i18n.translations(labels.locale)

    # --- gettext -------------------------------------------------------------------------------

    def t(self, message: str, **values: Any) -> str:
        text = self._translations.gettext(message)
        return text % values if values else text

    def n(self, singular: str, plural: str, count: int, **values: Any) -> str:
        return self._translations.ngettext(singular, plural, count) % {"n": self.fmt.number(count), **values}

    # --- small pieces --------------------------------------------------------------------------

    def value(self, value: Any) -> str:
        if isinstance(value, bool):
            return self.t("yes") if value else self.t("no")
        if isinstance(value, list):
            return ", ".join(self.value(v) for v in value)
        if isinstance(value, (int, float)):
            return self.fmt.number(value)
        return str(value)

    def duration(self, minutes: int) -> str:
        """1440 -> "1 d", 90 -> "1 h 30 min"."""
        days, rest = divmod(int(minutes), 24 * 60)
        hours, mins = divmod(rest, 60)
        parts = [self.t("%(n)s d", n=days) if days else "", self.t("%(n)s h", n=hours) if hours else "",
                 self.t("%(n)s min", n=mins) if mins else ""]
        return " ".join(p for p in parts if p) or self.t("%(n)s min", n=0)

    def within(self, days: int | None) -> str:
        return "" if days is None else " " + self.n("in the last %(n)s day", "in the last %(n)s days", days)

    def compare(self, compare: r.Compare, money: bool = False) -> str:
        value = self.fmt.money(int(compare.value), self.currency) if money else self.fmt.number(compare.value)
        return f"{SIGNS[compare.op]} {value}"

    def event(self, name: str) -> str:
        return self.label.event_name(name)

    def channel(self, code: str | None) -> str:
        return self.label.channel(code)

    def test(self, subject: str, test: Any) -> str:
        """A value test of a trait or an event property (`_ValueTest`)."""
        op, value = test.op, test.value
        if op in SIGNS:
            return f"{subject} {SIGNS[op]} {self.value(value)}"
        if op == "in":
            return self.t("%(subject)s is one of: %(values)s", subject=subject, values=self.value(value))
        if op == "not_in":
            return self.t("%(subject)s is none of: %(values)s", subject=subject, values=self.value(value))
        if op == "contains":
            return self.t("%(subject)s contains “%(value)s”", subject=subject, value=value)
        if op == "exists":
            return self.t("%(subject)s has a value", subject=subject)
        if op == "not_exists":
            return self.t("%(subject)s has no value", subject=subject)
        if op == "before":
            return self.t("%(subject)s is before %(value)s", subject=subject, value=value)
        if op == "after":
            return self.t("%(subject)s is after %(value)s", subject=subject, value=value)
        if op == "within_last_days":
            return self.n("%(subject)s is within the last %(n)s day", "%(subject)s is within the last %(n)s days", value,
                          subject=subject)
        return self.n("%(subject)s is more than %(n)s day ago", "%(subject)s is more than %(n)s days ago", value, subject=subject)

    def where(self, filters: list[Any]) -> str:
        if not filters:
            return ""
        tests = self.t(" and ").join(self.test(self.t("property %(name)s", name=f.property), f) for f in filters)
        return self.t(", where %(tests)s", tests=tests)

    # --- segment rules -------------------------------------------------------------------------

    def parse_rule(self, rule: Any) -> Any:
        from seamline.marketing.segments.service import RULE

        return rule if not isinstance(rule, dict) else RULE.validate_python(rule)

    def rule(self, rule: Any) -> Line:
        """A rule as a tree of sentences: a group's line ("All of:") with its conditions under it."""
        rule = self.parse_rule(rule)
        if isinstance(rule, r.AndRule):
            return Line(self.t("All of:"), [self.rule(inner) for inner in rule.rules])
        if isinstance(rule, r.OrRule):
            return Line(self.t("Any of:"), [self.rule(inner) for inner in rule.rules])
        if isinstance(rule, r.NotRule):
            return Line(self.t("None of:"), [self.rule(rule.rule)])
        return Line(self.condition(rule))

    def inline(self, rule: Any, nested: bool = False) -> str:
        """A rule in one line (a branch's condition, a journey's audience)."""
        rule = self.parse_rule(rule)
        if isinstance(rule, (r.AndRule, r.OrRule)):
            joined = (self.t(" and ") if isinstance(rule, r.AndRule) else self.t(" or ")).join(
                lower_first(self.inline(inner, True)) for inner in rule.rules)
            return f"({joined})" if nested and len(rule.rules) > 1 else joined
        if isinstance(rule, r.NotRule):
            if isinstance(rule.rule, r.CartRule) and not rule.rule.idle_minutes:
                return self.t("Nothing is in the cart")
            return self.t("not (%(rule)s)", rule=lower_first(self.inline(rule.rule)))
        return self.condition(rule)

    def condition(self, c: Any) -> str:
        if isinstance(c, r.TraitRule):
            return self.test(self.t("Trait %(key)s", key=c.key), c)
        if isinstance(c, r.ConsentRule):
            channel = self.channel(c.channel)
            if c.purpose == "marketing":
                return (self.t("Consented to marketing: %(channel)s", channel=channel) if c.granted
                        else self.t("No consent to marketing: %(channel)s (withdrawn or never given)", channel=channel))
            purpose = self.label.consent_purpose(c.purpose)
            return (self.t("Consented to “%(purpose)s”: %(channel)s", purpose=purpose, channel=channel) if c.granted
                    else self.t("No consent to “%(purpose)s”: %(channel)s", purpose=purpose, channel=channel))
        if isinstance(c, r.IdentifierRule):
            kind = self.label.identifier_type(c.identifier_type)
            return (self.t("Has a verified identifier: %(type)s", type=kind) if c.verified_only
                    else self.t("Has an identifier: %(type)s", type=kind))
        if isinstance(c, r.EventRule):
            name = self.event(c.name)
            if c.count == r.AT_LEAST_ONE:
                text = self.t("Did “%(event)s”", event=name)
            else:
                text = self.t("Did “%(event)s” %(count)s times", event=name, count=self.compare(c.count))
            if c.kind != "track":
                text += " " + (self.t("(a page)") if c.kind == "page" else self.t("(a screen)"))
            text += self.within(c.within_days)
            if c.channel:
                text += self.t(", channel %(channel)s", channel=self.channel(c.channel))
            return text + self.where(c.where)
        if isinstance(c, r.OrderRule):
            count = c.count if c.count is not None and c.count != r.AT_LEAST_ONE else None
            if count is not None and c.revenue is not None:
                text = self.t("Ordered %(count)s times for %(revenue)s in all", count=self.compare(count),
                              revenue=self.compare(c.revenue, money=True))
            elif c.revenue is not None:
                text = self.t("Ordered for %(revenue)s in all", revenue=self.compare(c.revenue, money=True))
            elif count is not None:
                text = self.t("Ordered %(count)s times", count=self.compare(count))
            else:
                text = self.t("Made an order")
            text += self.within(c.within_days)
            if c.channel:
                text += self.t(", channel %(channel)s", channel=self.channel(c.channel))
            if c.store:
                text += self.t(", picked up at %(store)s", store=self.label.place(c.store))
            if c.category:
                text += self.t(", with a product of category %(category)s", category=c.category)
            return text
        if isinstance(c, r.LoyaltyRule):
            parts = []
            if c.tier:
                parts.append(self.t("Loyalty tier: %(tiers)s", tiers=", ".join(c.tier)))
            if c.points is not None:
                parts.append(self.t("Spendable points %(compare)s", compare=self.compare(c.points)))
            return "; ".join(parts)
        if isinstance(c, r.InboxRule):
            parts = []
            if c.open_conversation is not None:
                parts.append(self.t("Has an open conversation") if c.open_conversation else self.t("Has no open conversation"))
            if c.last_nps is not None:
                parts.append(self.t("Last NPS answer %(compare)s", compare=self.compare(c.last_nps)))
            return "; ".join(parts)
        if isinstance(c, r.CartRule):
            if c.idle_minutes:
                return self.t("Something is in the cart, untouched for %(duration)s", duration=self.duration(c.idle_minutes))
            return self.t("Something is in the cart")
        if isinstance(c, r.SegmentRule):
            return self.t("Is in segment “%(name)s”", name=self.segments.get(c.segment_id, f"#{c.segment_id}"))
        return json.dumps(c.model_dump(mode="json", exclude_none=True), ensure_ascii=False)

    # --- journeys ------------------------------------------------------------------------------

    def trigger(self, trigger: Any) -> str:
        if isinstance(trigger, d.EventTrigger):
            return self.t("When the person does “%(event)s”", event=self.event(trigger.name)) + self.where(trigger.where)
        if isinstance(trigger, d.SegmentTrigger):
            return self.t("When the person enters segment “%(name)s”",
                          name=self.segments.get(trigger.segment_id, f"#{trigger.segment_id}"))
        if isinstance(trigger, d.DateTrigger):
            if trigger.annual:
                return self.t("Every year on the day of trait %(trait)s, at %(clock)s the person's time", trait=trigger.trait,
                              clock=trigger.at)
            if trigger.trait == "last_order":
                return self.n("%(n)s day after the last order, at %(clock)s the person's time",
                              "%(n)s days after the last order, at %(clock)s the person's time", trigger.days_after,
                              clock=trigger.at)
            return self.n("%(n)s day after the date of trait %(trait)s, at %(clock)s the person's time",
                          "%(n)s days after the date of trait %(trait)s, at %(clock)s the person's time", trigger.days_after,
                          trait=trigger.trait, clock=trigger.at)
        return self.t("When the person is enrolled through the API")

    def goal(self, goal: Any) -> str:
        if goal is None:
            return self.t("No goal")
        if isinstance(goal, d.OrderGoal):
            return self.t("An order in any channel")
        return self.t("“%(event)s”", event=self.event(goal.name)) + self.where(goal.where)

    def reentry(self, reentry: d.Reentry) -> str:
        if reentry.policy == "never":
            return self.t("Each person goes through once")
        if reentry.policy == "after_exit":
            return self.t("Again once they left")
        return self.n("Again %(n)s day after they last entered", "Again %(n)s days after they last entered", reentry.days or 0)

    def cap(self, cap: d.FrequencyCap | None) -> str | None:
        if cap is None:
            return None
        return self.n("At most %(messages)s messages of this journey in %(n)s day",
                      "At most %(messages)s messages of this journey in %(n)s days", cap.days, messages=cap.messages)

    def template(self, template_id: int) -> str:
        return self.templates.get(template_id, f"#{template_id}")

    def step(self, step: Any) -> tuple[str, list[Transition]]:
        """A step's sentence and where it leads."""
        then = [Transition(None, getattr(step, "next", None))]
        if isinstance(step, d.WaitStep):
            if step.for_event is not None:
                text = self.t("Wait for “%(event)s”, at most %(duration)s", event=self.event(step.for_event.name),
                              duration=self.duration(step.timeout_minutes or 0)) + self.where(step.for_event.where)
                return text, [Transition(self.t("if it happens"), step.next),
                              Transition(self.t("if not"), step.timeout_next)]
            if step.until == "best":
                return self.t("Wait until the person's best hour"), then
            if step.until is not None:
                return self.t("Wait until %(clock)s, the person's time", clock=step.until), then
            return self.t("Wait %(duration)s", duration=self.duration(step.minutes or 0)), then
        if isinstance(step, d.BranchStep):
            if step.rule is not None:
                text = self.t("If %(condition)s", condition=lower_first(self.inline(step.rule)))
            else:
                text = {"delivered": self.t("If the last message was delivered"),
                        "opened": self.t("If the last message was opened"),
                        "clicked": self.t("If a link of the last message was clicked"),
                        "replied": self.t("If the person replied to the last message")}[step.engaged]
            return text, [Transition(None, step.next), Transition(self.t("else"), step.else_next)]
        if isinstance(step, d.SplitStep):
            arms = []
            for arm in step.arms:
                name = f"{arm.name} · {self.fmt.number(arm.percent)} %"
                if arm.holdout:
                    name += " · " + self.t("holdout: gets nothing, followed for the goal")
                arms.append(Transition(name, None if arm.holdout else arm.next))
            return self.t("Split people at random (each for good) into arms"), arms
        if isinstance(step, d.SendStep):
            name = self.template(step.template_id)
            if step.channel:
                return self.t("Send template “%(template)s”, channel: %(channel)s", template=name,
                              channel=self.channel(step.channel)), then
            return self.t("Send template “%(template)s” on the person's best channel", template=name), then
        if isinstance(step, d.UpdateTraitStep):
            if step.value is None:
                return self.t("Clear trait %(key)s", key=step.key), then
            return self.t("Set trait %(key)s = %(value)s", key=step.key, value=self.value(step.value)), then
        if isinstance(step, d.GivePointsStep):
            return self.n("Give %(n)s point (“%(comment)s”)", "Give %(n)s points (“%(comment)s”)", step.points,
                          comment=step.comment), then
        if isinstance(step, d.GiveCouponStep):
            text = self.n("Give a personal coupon of promotion %(code)s for %(n)s day",
                          "Give a personal coupon of promotion %(code)s for %(n)s days", step.valid_days, code=step.promotion)
            if step.store_from_context:
                text += self.t(", for the store of the visit")
            return text, then
        if isinstance(step, d.NotifyAgentStep):
            return self.t("Task for the support team: “%(text)s”", text=step.text), then
        return str(step), then

    def steps(self, definition: d.Definition) -> list[StepLine]:
        found = []
        for number, step in enumerate(definition.steps, start=1):
            text, transitions = self.step(step)
            found.append(StepLine(number, step.id, step.type, text, transitions))
        return found

    def outcome(self, outcome: dict[str, Any]) -> str:
        """What came of a step a person passed (marketing_enrollment_step.outcome)."""
        if "status" in outcome:
            status, reason = outcome.get("status"), outcome.get("reason")
            if status in ("queued", "test"):
                return self.t("Message queued")
            if reason:
                return self.t("Message skipped: %(reason)s", reason=self.label.send_reason(reason))
            return self.label.message_status(status)
        if "branch" in outcome:
            return self.t("The condition held") if outcome["branch"] == "yes" else self.t("The condition did not hold")
        if "arm" in outcome:
            return self.t("Arm %(arm)s", arm=outcome["arm"])
        if "until" in outcome:
            return self.t("Waits until %(time)s", time=self.fmt.datetime(datetime.fromisoformat(outcome["until"])))
        if "waiting_for" in outcome:
            return self.t("Waits for “%(event)s”", event=self.event(outcome["waiting_for"]))
        if "coupon" in outcome:
            return self.t("Coupon %(code)s", code=outcome["coupon"])
        if "points" in outcome:
            return self.t("Points given: %(n)s", n=self.fmt.number(outcome["points"]))
        if "key" in outcome:
            return self.t("Trait %(key)s written", key=outcome["key"])
        return self.t("Done")

    # --- a rule or a definition that does not validate ---------------------------------------

    def invalid(self, exc: ValidationError) -> str:
        """The first problem of a segment rule that does not validate, in words, with where it
        is as a path in the JSON (`rules.0.op`)."""
        error = exc.errors(include_url=False)[0]
        # the union's tags (`and`, `trait`) are in pydantic's path but not in the JSON
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in RULE_TAGS) or self.t("the rule")
        kind, context = error.get("type", ""), error.get("ctx") or {}
        if kind == "missing":
            return self.t("Missing field: %(field)s", field=where)
        if kind == "extra_forbidden":
            return self.t("Unknown field: %(field)s", field=where)
        if kind == "union_tag_invalid":
            return self.t("Unknown condition type “%(tag)s” (%(field)s); known: %(expected)s", tag=context.get("tag", ""),
                          field=where, expected=str(context.get("expected_tags", "")).replace("'", ""))
        if kind == "union_tag_not_found":
            return self.t("A condition needs its “type” (%(field)s)", field=where)
        if kind == "literal_error":
            return self.t("%(field)s must be one of: %(expected)s", field=where,
                          expected=str(context.get("expected", "")).replace("'", ""))
        if kind in ("int_type", "int_parsing", "float_type", "float_parsing", "int_from_float"):
            return self.t("%(field)s must be a number", field=where)
        if kind in ("string_type", "string_too_short", "string_too_long", "string_pattern_mismatch"):
            return self.t("%(field)s: this text does not fit here", field=where)
        if kind in ("bool_type", "bool_parsing"):
            return self.t("%(field)s must be true or false", field=where)
        if kind in ("list_type", "too_short", "too_long", "model_type", "dict_type", "model_attributes_type"):
            return self.t("%(field)s has the wrong shape", field=where)
        if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            return self.t("%(field)s is out of range", field=where)
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if found := re.fullmatch(r"the operator (\w+) takes (.+)", message):
            wanted = {"a string, number or boolean": self.t("a string, number or boolean"),
                      "a list of 1-100 strings or numbers": self.t("a list of 1-100 strings or numbers"),
                      "a string": self.t("a string"), "a number": self.t("a number"), "no value": self.t("no value"),
                      "an ISO 8601 date (YYYY-MM-DD...)": self.t("an ISO 8601 date (YYYY-MM-DD...)"),
                      "a whole number of days": self.t("a whole number of days")}.get(found.group(2), found.group(2))
            return self.t("%(field)s: the operator %(op)s takes %(wanted)s", field=where, op=found.group(1), wanted=wanted)
        known = {"a loyalty condition needs tier or points": self.t("a loyalty condition needs tier or points"),
                 "an inbox condition needs open_conversation or last_nps": self.t("an inbox condition needs open_conversation or last_nps"),
                 "a value is at most 500 characters, without NUL": self.t("a value is at most 500 characters, without NUL")}
        return self.t("%(field)s: %(problem)s", field=where, problem=known.get(message, message))
