"""A segment rule as SQL: one statement, evaluated in the database, never row by row in Python.

`condition(rule, scope)` is a boolean SQL expression over `customer_profile.id` in which each
condition is `id IN (<the people it holds for>)`: a subquery that PostgreSQL computes once and
hashes, so a segment of a million people costs one pass over each table it reads. The same
expression serves two scopes:

- everyone (`Scope.everyone`): a full evaluation, a size estimate;
- a few people (`Scope.of`): the incremental evaluation after something happened to them; every
  subquery is then limited to their identities and records, so it reads a few index ranges.

Whose is a record: events, traits, consents and identifiers hang off identities, which always
belong to a live profile; orders, carts, accounts and conversations keep the profile id they
were made with, which may since have been merged into another (`merged_into_id`, possibly over
several merges). Everyone's scope maps such ids to their live profile with a recursive query
over merged profiles only; a few people's scope knows the ids of their merged profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, literal, not_, or_, select, true, union_all
from sqlalchemy.sql.elements import ColumnElement

from seamline.commerce.models import (CommerceCart, CommerceCartLine, CommerceCategory, CommerceLocation, CommerceOrder,
                                      CommerceOrderLine, CommerceProduct, CommerceVariant)
from seamline.core.jsonsql import json_kind, json_number, json_text
from seamline.customers.models import CustomerConsent, CustomerIdentity, CustomerProfile, CustomerTrait
from seamline.events.models import EventRecord
from seamline.inbox.models import InboxConversation, InboxSurvey
from seamline.loyalty.models import LoyaltyAccount
from seamline.marketing.segments import rules as r
from seamline.marketing.segments.models import MarketingSegmentMember

P = CustomerProfile.__table__
#: Orders that count: placed and not cancelled (a returned order still happened).
COUNTED_ORDER = CommerceOrder.status.notin_(("cancelled", "pending_payment"))
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


def _merged_roots() -> Any:
    """(id, root) of every merged profile: the live profile it now belongs to."""
    merged = CustomerProfile.__table__.alias("merged")
    base = select(merged.c.id, merged.c.merged_into_id.label("root")).where(merged.c.status == "merged")
    walk = base.cte("merged_walk", recursive=True)
    up = CustomerProfile.__table__.alias("up")
    walk = walk.union_all(select(walk.c.id, up.c.merged_into_id).join(up, up.c.id == walk.c.root).where(up.c.status == "merged"))
    final = CustomerProfile.__table__.alias("final")
    return select(walk.c.id, walk.c.root).join(final, final.c.id == walk.c.root).where(final.c.status != "merged").subquery()


def _owner(column: Any, scope: Scope) -> tuple[Any, list[Any], list[Any]]:
    """The live profile a record's profile id belongs to: (expression, joins, filters)."""
    if scope.people is not None:
        expression = case(scope.owners, value=column, else_=column) if len(scope.owners) > len(scope.people) else column
        return expression, [], [column.in_(list(scope.owners))]
    if scope._roots is None:
        scope._roots = _merged_roots()
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


def value_test(value: Any, test: r._ValueTest, scope: Scope, *, path: tuple[str, ...] = (), text_column: bool = False) -> Any:
    """A trait's or a property's JSON value against a test (a missing or null value fails every
    test but `not_exists`)."""
    kind, text = json_kind(value, path, text_column=text_column), json_text(value, path, text_column=text_column)
    number = json_number(value, path, text_column=text_column)
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


def _compare(expression: Any, compare: r.Compare) -> Any:
    return {"eq": expression == compare.value, "ne": expression != compare.value, "gt": expression > compare.value,
            "gte": expression >= compare.value, "lt": expression < compare.value, "lte": expression <= compare.value}[compare.op]


def _counted(query: Any, owner: Any, test: Any, zero_holds: bool) -> ColumnElement[bool]:
    """People whose records (grouped by owner) pass `test`; when the test holds for none at all,
    everyone but those with records that fail it."""
    grouped = query.with_only_columns(owner.label("profile_id")).group_by(owner)
    if zero_holds:
        return P.c.id.notin_(grouped.having(not_(test)))
    return P.c.id.in_(grouped.having(test))


# --- conditions ------------------------------------------------------------------------------


def _trait(rule: r.TraitRule, scope: Scope) -> ColumnElement[bool]:
    """The chosen observation (`customers.service.traits_of`): no other observation of the key on
    the person's identities is better (verified first, then latest, then the higher identity)."""
    identity, _ = _identities(scope)
    trait, other, other_identity = CustomerTrait.__table__, CustomerTrait.__table__.alias("better"), CustomerIdentity.__table__.alias("better_ident")
    better = select(literal(1)).select_from(other.join(other_identity, other_identity.c.id == other.c.identity_id)).where(
        other_identity.c.profile_id == identity.c.profile_id, other.c.key == trait.c.key, other.c.identity_id != trait.c.identity_id,
        or_(and_(other.c.verified == true(), trait.c.verified == false()),
            and_(other.c.verified == trait.c.verified,
                 or_(other.c.observed_at > trait.c.observed_at,
                     and_(other.c.observed_at == trait.c.observed_at, other.c.identity_id > trait.c.identity_id)))))
    chosen = select(identity.c.profile_id).select_from(trait.join(identity, identity.c.id == trait.c.identity_id)).where(
        trait.c.key == rule.key, ~better.exists())
    if scope.people is not None:
        chosen = chosen.where(identity.c.profile_id.in_(scope.people))
    if rule.op == "not_exists":  # no chosen value, or a null one
        kind = json_kind(trait.c.value)
        return P.c.id.notin_(chosen.where(kind.is_not(None), kind != "null"))
    return P.c.id.in_(chosen.where(value_test(trait.c.value, rule, scope)))


def _consent(rule: r.ConsentRule, scope: Scope) -> ColumnElement[bool]:
    """The latest consent of this channel and purpose through any of the person's identities."""
    identity, _ = _identities(scope)
    consent = CustomerConsent.__table__
    ranked = select(identity.c.profile_id, consent.c.granted, func.row_number().over(
        partition_by=identity.c.profile_id, order_by=(consent.c.recorded_at.desc(), consent.c.id.desc())).label("rank")
    ).select_from(consent.join(identity, identity.c.id == consent.c.identity_id)).where(
        consent.c.channel == rule.channel, consent.c.purpose == rule.purpose)
    if scope.people is not None:
        ranked = ranked.where(identity.c.profile_id.in_(scope.people))
    latest = ranked.subquery()
    granted = select(latest.c.profile_id).where(latest.c.rank == 1, latest.c.granted == true())
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
        where.append(value_test(event.c.payload, test, scope, path=("properties", *test.property.split(".")), text_column=True))
    if scope.people is not None:  # a few people: their keys first, then their events (the timeline index)
        own = CustomerIdentity.__table__.alias("own")
        own_key = case((own.c.type == "user_id", literal("u:")), else_=literal("a:")) + own.c.value
        where.append(event.c.person.in_(select(own_key).where(own.c.type.in_(("user_id", "anonymous_id")),
                                                              own.c.profile_id.in_(scope.people))))
    query = select(identity.c.profile_id).select_from(event.join(identity, and_(
        identity.c.type.in_(("user_id", "anonymous_id")), key == event.c.person))).where(*where)
    if scope.people is not None:
        query = query.where(identity.c.profile_id.in_(scope.people))
    return _counted(query, identity.c.profile_id, _compare(func.count(), rule.count), rule.count.holds(0))


def _orders(rule: r.OrderRule, scope: Scope) -> ColumnElement[bool]:
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

