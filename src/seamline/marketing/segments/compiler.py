"""A segment rule as SQL: one statement, evaluated in the database, never row by row in Python.

`condition(rule, scope)` is a boolean SQL expression over `customer_profile.id` in which each
condition is `id IN (<the people it holds for>)`: a subquery that PostgreSQL computes once and
hashes, so a segment of a million people costs one pass over each table it reads. The same
expression serves two scopes:

- everyone (`Scope.everyone`): a full evaluation, a size estimate;
- a few people (`Scope.of`): the incremental evaluation after something happened to them; every
  subquery is then limited to their identities and records, so it reads a few index ranges.

Traits and consents are read from marketing's profile facts (segments/facts.py: each person's
chosen trait and latest consent, indexed by value), which the reactor refreshes for the people
it evaluates.

Whose is a record: events and identifiers hang off identities, which always
belong to a live profile; orders, carts, accounts and conversations keep the profile id they
were made with, which may since have been merged into another (`merged_into_id`, possibly over
several merges). Everyone's scope maps such ids to their live profile with a recursive query
over merged profiles only; a few people's scope knows the ids of their merged profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, literal, not_, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from seamline.commerce.models import (CommerceCart, CommerceCartLine, CommerceCategory, CommerceLocation, CommerceOrder,
                                      CommerceOrderLine, CommerceProduct, CommerceVariant)
from seamline.core.jsonsql import json_kind, json_number, json_text
from seamline.customers.models import CustomerIdentity, CustomerProfile
from seamline.events.models import EventRecord
from seamline.inbox.models import InboxConversation, InboxSurvey
from seamline.loyalty.models import LoyaltyAccount
from seamline.marketing.segments import facts
from seamline.marketing.segments import rules as r
from seamline.marketing.segments.models import MarketingProfileFact, MarketingSegmentMember

P = CustomerProfile.__table__
COUNTED_ORDER = facts.COUNTED_ORDER
#: Conversations that are still the business's or the customer's to answer.
OPEN_CONVERSATION = ("open", "pending", "snoozed")


@dataclass
class Scope:
    """Whom a rule is evaluated for, at what time."""

    now: datetime
    #: None: everyone. Else these live profiles ...
    people: list[int] | None = None
    #: ... and {profile id a record may carry: the live profile it belongs to} for them and every
    #: profile merged into them.
    owners: dict[int, int] = field(default_factory=dict)
    #: The merged profiles' roots, built once: one statement may use them in several conditions.
    _roots: Any = None

    @classmethod
    def everyone(cls, now: datetime) -> Scope:
        return cls(now=now)

    @classmethod
    def of(cls, now: datetime, families: dict[int, list[int]]) -> Scope:
        """`families`: {live profile id: it and the ids merged into it}."""
        return cls(now=now, people=list(families), owners={m: p for p, ids in families.items() for m in ids})


def condition(rule: r.Rule, scope: Scope) -> ColumnElement[bool]:
    """The rule as a boolean expression over `customer_profile.id` (select from `customer_profile`)."""
    if isinstance(rule, r.AndRule):
        return and_(*(condition(inner, scope) for inner in rule.rules))
    if isinstance(rule, r.OrRule):
        return or_(*(condition(inner, scope) for inner in rule.rules))
    if isinstance(rule, r.NotRule):
        return not_(condition(rule.rule, scope))
    return _CONDITIONS[type(rule)](rule, scope)


def members(rule: r.Rule, scope: Scope) -> Any:
    """SELECT id FROM customer_profile: the live profiles of the scope the rule holds for."""
    query = select(P.c.id).where(P.c.status == "active", condition(rule, scope))
    if scope.people is not None:
        query = query.where(P.c.id.in_(scope.people))
    return query


# --- whose is a record ---------------------------------------------------------------------


def _owner(column: Any, scope: Scope) -> tuple[Any, list[Any], list[Any]]:
    """The live profile a record's profile id belongs to: (expression, joins, filters)."""
    if scope.people is not None:
        expression = case(scope.owners, value=column, else_=column) if len(scope.owners) > len(scope.people) else column
        return expression, [], [column.in_(list(scope.owners))]
    if scope._roots is None:
        scope._roots = facts.merged_roots()
    roots = scope._roots
    return func.coalesce(roots.c.root, column), [(roots, roots.c.id == column)], []


def _held(query: Any) -> ColumnElement[bool]:
    return P.c.id.in_(query)


def _by_record(table: Any, column: Any, scope: Scope, where: list[Any], *, group: Any = None) -> tuple[Any, Any]:
    """(SELECT ... FROM table [JOIN roots] WHERE where, owner expression) for records keyed by a profile id."""
    owner, joins, filters = _owner(column, scope)
    source = table
    for joined, on in joins:
        source = source.outerjoin(joined, on)
    return select(owner.label("profile_id")).select_from(source).where(*filters, *where), owner


def _identities(scope: Scope, *types: str) -> Any:
    """Identities of the scope (of these types)."""
    identity = CustomerIdentity.__table__.alias("ident")
    query = select(identity).where(identity.c.type.in_(types)) if types else select(identity)
    if scope.people is not None:
        query = query.where(identity.c.profile_id.in_(scope.people))
    return identity, query


# --- values --------------------------------------------------------------------------------


def _days_ago(scope: Scope, days: int) -> str:
    return (scope.now - timedelta(days=days)).isoformat()


def value_test(kind: Any, text: Any, number: Any, test: r._ValueTest, scope: Scope) -> Any:
    """A JSON value, as its kind, its text and its number (`core.jsonsql`, or a fact's columns),
    against a test (a missing or null value fails every test but `not_exists`)."""
    present = and_(kind.is_not(None), kind != "null")
    op, wanted = test.op, test.value
    if op == "exists":
        return present
    if op == "not_exists":
        return not_(func.coalesce(present, false()))
    if op in ("eq", "ne"):
        if isinstance(wanted, bool):
            same = and_(kind == "boolean", text == ("true" if wanted else "false"))
        elif isinstance(wanted, (int, float)):
            same = number == wanted
        else:
            same = and_(kind == "string", text == wanted)
        return same if op == "eq" else and_(present, not_(func.coalesce(same, false())))
    if op in ("in", "not_in"):
        texts = [w for w in wanted if isinstance(w, str)]
        numbers = [w for w in wanted if not isinstance(w, str)]
        inside = or_(*([and_(kind == "string", text.in_(texts))] if texts else []),
                     *([number.in_(numbers)] if numbers else []))
        return inside if op == "in" else and_(present, not_(func.coalesce(inside, false())))
    if op == "contains":
        escaped = wanted.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return and_(kind == "string", func.lower(text).like(f"%{escaped}%", escape="\\"))
    if op in ("gt", "gte", "lt", "lte"):
        return {"gt": number > wanted, "gte": number >= wanted, "lt": number < wanted, "lte": number <= wanted}[op]
    # dates as ISO 8601 text: compared as text, which orders them (a date, or a UTC date-time)
    if op == "before":
        return and_(kind == "string", text < wanted)
    if op == "after":
        return and_(kind == "string", text > wanted)
    if op == "within_last_days":
        return and_(kind == "string", text >= _days_ago(scope, wanted)[:10], text <= scope.now.isoformat())
    if op == "more_than_days_ago":
        return and_(kind == "string", text < _days_ago(scope, wanted)[:10])
    raise ValueError(f"unknown operator {op}")


def json_value_test(column: Any, test: r._ValueTest, scope: Scope, *, path: tuple[str, ...] = (), text_column: bool = False) -> Any:
    """`value_test` of the JSON value at `path` of a column."""
    return value_test(json_kind(column, path, text_column=text_column), json_text(column, path, text_column=text_column),
                      json_number(column, path, text_column=text_column), test, scope)


def _compare(expression: Any, compare: r.Compare) -> Any:
    return {"eq": expression == compare.value, "ne": expression != compare.value, "gt": expression > compare.value,
            "gte": expression >= compare.value, "lt": expression < compare.value, "lte": expression <= compare.value}[compare.op]


def _existence(compare: r.Compare) -> bool:
    """Whether a count comparison only asks "at least one" or "none"."""
    return (compare.op, compare.value) in (("gte", 1), ("gt", 0), ("eq", 0), ("lt", 1), ("lte", 0))


def _counted(query: Any, owner: Any, test: Any, zero_holds: bool, *, any_record: bool = False) -> ColumnElement[bool]:
    """People whose records (grouped by owner) pass `test`; when the test holds for none at all,
    everyone but those with records that fail it. `any_record`: the test is "at least one" (or,
    with `zero_holds`, "none"), so no counting is needed: a semi-join (or anti-join) of the records."""
    if any_record:
        having_some = query.with_only_columns(owner.label("profile_id"))
        return P.c.id.notin_(having_some) if zero_holds else P.c.id.in_(having_some)
    grouped = query.with_only_columns(owner.label("profile_id")).group_by(owner)
    if zero_holds:
        return P.c.id.notin_(grouped.having(not_(test)))
    return P.c.id.in_(grouped.having(test))


# --- conditions ------------------------------------------------------------------------------


def _facts(key: str, scope: Scope) -> tuple[Any, Any]:
    """(the facts of this key, the query of their profiles) within the scope."""
    fact = MarketingProfileFact.__table__
    query = select(fact.c.profile_id).where(fact.c.key == key)
    if scope.people is not None:
        query = query.where(fact.c.profile_id.in_(scope.people))
    return fact, query


def _trait(rule: r.TraitRule, scope: Scope) -> ColumnElement[bool]:
    """The trait as the profile shows it (the chosen observation: segments/facts.py)."""
    fact, query = _facts(facts.trait_key(rule.key), scope)
    if rule.op == "not_exists":
        return P.c.id.notin_(query)
    return P.c.id.in_(query.where(value_test(fact.c.kind, fact.c.text_value, fact.c.number_value, rule, scope)))


def _consent(rule: r.ConsentRule, scope: Scope) -> ColumnElement[bool]:
    """The latest consent of this channel and purpose through any of the person's identities."""
    fact, query = _facts(facts.consent_key(rule.channel, rule.purpose), scope)
    granted = query.where(fact.c.text_value == "granted")
    return P.c.id.in_(granted) if rule.granted else P.c.id.notin_(granted)


def _identifier(rule: r.IdentifierRule, scope: Scope) -> ColumnElement[bool]:
    identity, query = _identities(scope, rule.identifier_type)
    if rule.verified_only:
        query = query.where(identity.c.verified_at.is_not(None))
    return P.c.id.in_(query.with_only_columns(identity.c.profile_id))


def _event(rule: r.EventRule, scope: Scope) -> ColumnElement[bool]:
    """Events are filed under a person key (`u:<userId>` or `a:<anonymousId>`, events/models.py),
    held by the identity of that user id or anonymous id."""
    identity, _ = _identities(scope)
    event = EventRecord.__table__
    key = case((identity.c.type == "user_id", literal("u:")), else_=literal("a:")) + identity.c.value
    where = [event.c.type == rule.kind, event.c.name == rule.name]
    if rule.within_days is not None:
        where.append(event.c.timestamp >= scope.now - timedelta(days=rule.within_days))
    if rule.channel is not None:
        where.append(event.c.channel == rule.channel)
    for test in rule.where:
        where.append(json_value_test(event.c.payload, test, scope, path=("properties", *test.property.split(".")), text_column=True))
    if scope.people is not None:  # a few people: their keys first, then their events (the timeline index)
        own = CustomerIdentity.__table__.alias("own")
        own_key = case((own.c.type == "user_id", literal("u:")), else_=literal("a:")) + own.c.value
        where.append(event.c.person.in_(select(own_key).where(own.c.type.in_(("user_id", "anonymous_id")),
                                                              own.c.profile_id.in_(scope.people))))
    query = select(identity.c.profile_id).select_from(event.join(identity, and_(
        identity.c.type.in_(("user_id", "anonymous_id")), key == event.c.person))).where(*where)
    if scope.people is not None:
        query = query.where(identity.c.profile_id.in_(scope.people))
    return _counted(query, identity.c.profile_id, _compare(func.count(), rule.count), rule.count.holds(0),
                    any_record=_existence(rule.count))


def _orders_from_facts(rule: r.OrderRule, scope: Scope) -> ColumnElement[bool] | None:
    """The common order conditions from the person's order facts (count and revenue of all time;
    any or none within a window: the last order's time), or None when the rule needs the orders."""
    if rule.channel or rule.store or rule.category:
        return None
    if rule.within_days is not None:
        if rule.revenue is not None or rule.count is None or not _existence(rule.count):
            return None
        fact, query = _facts("orders:last_at", scope)
        recent = query.where(fact.c.number_value >= (scope.now - timedelta(days=rule.within_days)).timestamp())
        return P.c.id.notin_(recent) if rule.count.holds(0) else P.c.id.in_(recent)
    held = []
    for key, compare in (("orders:count", rule.count), ("orders:revenue", rule.revenue)):
        if compare is not None:  # no fact: none of them, 0
            fact, query = _facts(key, scope)
            if compare.holds(0):
                held.append(P.c.id.notin_(query.where(not_(_compare(fact.c.number_value, compare)))))
            else:
                held.append(P.c.id.in_(query.where(_compare(fact.c.number_value, compare))))
    return and_(*held)


def _orders(rule: r.OrderRule, scope: Scope) -> ColumnElement[bool]:
    from_facts = _orders_from_facts(rule, scope)
    if from_facts is not None:
        return from_facts
    order = CommerceOrder.__table__
    where: list[Any] = [COUNTED_ORDER, order.c.profile_id.is_not(None)]
    if rule.within_days is not None:
        where.append(order.c.created_at >= scope.now - timedelta(days=rule.within_days))
    if rule.channel is not None:
        where.append(order.c.channel == rule.channel)
    if rule.store is not None:
        where.append(order.c.pickup_location_id.in_(select(CommerceLocation.id).where(CommerceLocation.code == rule.store)))
    if rule.category is not None:
        parent = CommerceCategory.__table__.alias("parent")
        categories = select(CommerceCategory.id).outerjoin(parent, parent.c.id == CommerceCategory.parent_id).where(
            or_(CommerceCategory.code == rule.category, parent.c.code == rule.category))
        where.append(order.c.id.in_(select(CommerceOrderLine.order_id)
                                    .join(CommerceVariant, CommerceVariant.id == CommerceOrderLine.variant_id)
                                    .join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id)
                                    .where(CommerceProduct.category_id.in_(categories))))
    query, owner = _by_record(order, order.c.profile_id, scope, where)
    if rule.revenue is None and rule.count is not None and _existence(rule.count):
        return _counted(query, owner, None, rule.count.holds(0), any_record=True)
    tests, zero = [], True
    if rule.count is not None:
        tests.append(_compare(func.count(), rule.count))
        zero = zero and rule.count.holds(0)
    if rule.revenue is not None:
        tests.append(_compare(func.coalesce(func.sum(order.c.total), 0), rule.revenue))
        zero = zero and rule.revenue.holds(0)
    return _counted(query, owner, and_(*tests), zero)


def _loyalty(rule: r.LoyaltyRule, scope: Scope) -> ColumnElement[bool]:
    account = LoyaltyAccount.__table__
    held: list[ColumnElement[bool]] = []
    if rule.tier is not None:
        query, owner = _by_record(account, account.c.profile_id, scope, [account.c.tier.in_(rule.tier)])
        held.append(_held(query))
    if rule.points is not None:
        query, owner = _by_record(account, account.c.profile_id, scope, [account.c.profile_id.is_not(None)])
        held.append(_counted(query, owner, _compare(func.sum(account.c.points_available), rule.points), rule.points.holds(0)))
    return and_(*held)


def _inbox(rule: r.InboxRule, scope: Scope) -> ColumnElement[bool]:
    held: list[ColumnElement[bool]] = []
    if rule.open_conversation is not None:
        conversation = InboxConversation.__table__
        query, owner = _by_record(conversation, conversation.c.customer_id, scope, [conversation.c.status.in_(OPEN_CONVERSATION)])
        held.append(_held(query) if rule.open_conversation else not_(_held(query)))
    if rule.last_nps is not None:
        survey = InboxSurvey.__table__
        query, owner = _by_record(survey, survey.c.customer_id, scope,
                                  [survey.c.kind == "nps", survey.c.score.is_not(None), survey.c.answered_at.is_not(None)])
        ranked = query.add_columns(survey.c.score, func.row_number().over(
            partition_by=owner, order_by=(survey.c.answered_at.desc(), survey.c.id.desc())).label("rank")).subquery()
        held.append(P.c.id.in_(select(ranked.c.profile_id).where(ranked.c.rank == 1, _compare(ranked.c.score, rule.last_nps))))
    return and_(*held)


def _cart(rule: r.CartRule, scope: Scope) -> ColumnElement[bool]:
    """An active cart of the person's profile, or of an anonymous id of theirs, with a line."""
    cart = CommerceCart.__table__
    where = [cart.c.status == "active", cart.c.id.in_(select(CommerceCartLine.cart_id).where(CommerceCartLine.quantity > 0))]
    if rule.idle_minutes:
        where.append(cart.c.updated_at <= scope.now - timedelta(minutes=rule.idle_minutes))
    by_profile, owner = _by_record(cart, cart.c.profile_id, scope, [*where, cart.c.profile_id.is_not(None)])
    identity, _ = _identities(scope, "anonymous_id")
    by_device = select(identity.c.profile_id).select_from(cart.join(identity, and_(
        identity.c.type == "anonymous_id", identity.c.value == cart.c.anonymous_id))).where(*where, cart.c.profile_id.is_(None))
    if scope.people is not None:
        by_device = by_device.where(identity.c.profile_id.in_(scope.people))
    return P.c.id.in_(union_all(by_profile, by_device))


def _segment(rule: r.SegmentRule, scope: Scope) -> ColumnElement[bool]:
    query = select(MarketingSegmentMember.profile_id).where(MarketingSegmentMember.segment_id == rule.segment_id)
    if scope.people is not None:
        query = query.where(MarketingSegmentMember.profile_id.in_(scope.people))
    return P.c.id.in_(query)


_CONDITIONS = {
    r.TraitRule: _trait, r.ConsentRule: _consent, r.IdentifierRule: _identifier, r.EventRule: _event, r.OrderRule: _orders,
    r.LoyaltyRule: _loyalty, r.InboxRule: _inbox, r.CartRule: _cart, r.SegmentRule: _segment,
}

