"""Segment rules over the hand-made world (tests/marketing/world.py): each condition, in full
and incremental evaluation, which must agree."""

from __future__ import annotations

import pytest

from seamline.marketing.segments import compiler, facts, service
from tests.marketing import world
from tests.marketing.world import NOW

EVERYONE = {1, 2, 3}

#: (rule, who it holds for)
CASES = [
    ({"type": "trait", "key": "tier", "op": "eq", "value": "gold"}, {1}),  # Anna's claimed silver does not count
    ({"type": "trait", "key": "tier", "op": "eq", "value": "silver"}, {2}),
    ({"type": "trait", "key": "tier", "op": "ne", "value": "gold"}, {2}),
    ({"type": "trait", "key": "tier", "op": "in", "value": ["gold", "silver"]}, {1, 2}),
    ({"type": "trait", "key": "tier", "op": "not_in", "value": ["gold"]}, {2}),
    ({"type": "trait", "key": "city", "op": "contains", "value": "mosc"}, {1}),
    ({"type": "trait", "key": "age", "op": "gte", "value": 30}, {3}),
    ({"type": "trait", "key": "age", "op": "eq", "value": 30}, {3}),
    ({"type": "trait", "key": "age", "op": "lt", "value": 30}, set()),
    ({"type": "trait", "key": "city", "op": "gt", "value": 1}, set()),  # a word is never a number
    ({"type": "trait", "key": "tier", "op": "exists"}, {1, 2}),
    ({"type": "trait", "key": "tier", "op": "not_exists"}, {3}),
    ({"type": "trait", "key": "vip", "op": "exists"}, set()),  # a null value is no value
    ({"type": "trait", "key": "vip", "op": "not_exists"}, EVERYONE),
    ({"type": "trait", "key": "birthday", "op": "before", "value": "1995-01-01"}, {1}),
    ({"type": "trait", "key": "birthday", "op": "after", "value": "1995-01-01"}, set()),
    ({"type": "trait", "key": "birthday", "op": "more_than_days_ago", "value": 365}, {1}),
    ({"type": "consent", "channel": "email"}, {1}),  # Boris withdrew through his phone identity
    ({"type": "consent", "channel": "email", "granted": False}, {2, 3}),
    ({"type": "consent", "channel": "sms"}, set()),
    ({"type": "identifier", "identifier_type": "email"}, {1}),
    ({"type": "identifier", "identifier_type": "phone"}, {2}),
    ({"type": "identifier", "identifier_type": "phone", "verified_only": True}, set()),
    ({"type": "event", "name": "Product Viewed"}, {1, 2}),
    ({"type": "event", "name": "Product Viewed", "within_days": 30}, {1, 2}),
    ({"type": "event", "name": "Product Viewed", "within_days": 30,
      "where": [{"property": "category", "op": "eq", "value": "creams"}]}, {1}),
    ({"type": "event", "name": "Product Viewed", "count": {"op": "gte", "value": 3}}, {1}),
    ({"type": "event", "name": "Product Viewed", "where": [{"property": "price", "op": "gt", "value": 250}]}, {1, 2}),
    ({"type": "event", "name": "Product Viewed", "where": [{"property": "price", "op": "gt", "value": 250},
                                                           {"property": "category", "op": "eq", "value": "creams"}]}, {1}),
    ({"type": "event", "name": "Product Viewed", "count": {"op": "lt", "value": 3}}, {2, 3}),  # none counts as fewer
    ({"type": "event", "name": "Product Viewed", "count": {"op": "eq", "value": 0}}, {3}),
    ({"type": "event", "name": "Product Viewed", "channel": "app"}, set()),
    ({"type": "orders"}, {1}),  # Boris's only order was cancelled; the erased person is nobody
    ({"type": "orders", "count": {"op": "gte", "value": 3}}, {1}),  # with the order of her merged profile
    ({"type": "orders", "revenue": {"op": "gte", "value": 13_000}}, {1}),
    ({"type": "orders", "revenue": {"op": "gt", "value": 13_000}}, set()),
    ({"type": "orders", "within_days": 30}, {1}),
    ({"type": "orders", "channel": "web"}, {1}),
    ({"type": "orders", "store": "MSK-1"}, {1}),
    ({"type": "orders", "category": "care"}, {1}),  # creams are a subcategory of care
    ({"type": "orders", "category": "shoes"}, set()),
    ({"type": "orders", "count": {"op": "eq", "value": 0}}, {2, 3}),
    ({"type": "orders", "within_days": 30, "revenue": {"op": "lt", "value": 1000}}, {2, 3}),
    ({"type": "loyalty", "tier": ["gold"]}, {1}),
    ({"type": "loyalty", "points": {"op": "gte", "value": 100}}, {1}),
    ({"type": "loyalty", "points": {"op": "lt", "value": 100}}, {2, 3}),  # no account: 0 points
    ({"type": "inbox", "open_conversation": True}, {2}),
    ({"type": "inbox", "open_conversation": False}, {1, 3}),
    ({"type": "inbox", "last_nps": {"op": "lte", "value": 6}}, {3}),  # Anna's last answer was 9
    ({"type": "inbox", "last_nps": {"op": "gte", "value": 9}}, {1}),
    ({"type": "cart"}, {2}),  # Vera's cart is empty
    ({"type": "cart", "idle_minutes": 60}, {2}),
    ({"type": "cart", "idle_minutes": 180}, set()),
    ({"type": "and", "rules": [{"type": "trait", "key": "tier", "op": "exists"}, {"type": "orders"}]}, {1}),
    ({"type": "or", "rules": [{"type": "trait", "key": "age", "op": "exists"}, {"type": "cart"}]}, {2, 3}),
    ({"type": "not", "rule": {"type": "orders"}}, {2, 3}),
    ({"type": "and", "rules": [{"type": "not", "rule": {"type": "consent", "channel": "email"}},
                               {"type": "or", "rules": [{"type": "inbox", "open_conversation": True},
                                                        {"type": "inbox", "last_nps": {"op": "lte", "value": 6}}]}]}, {2, 3}),
]


@pytest.fixture
def built(database):
    world.build(database)
    with database.write() as session:
        facts.rebuild(session)
    return database


def _full(database, rule) -> set[int]:
    parsed = service.RULE.validate_python(rule)
    with database.read() as s:
        return set(s.scalars(compiler.members(parsed, compiler.Scope.everyone(NOW))))


def _each(database, rule) -> set[int]:
    parsed = service.RULE.validate_python(rule)
    held = set()
    with database.read() as s:
        for person, family in {1: [1, 4], 2: [2], 3: [3]}.items():
            held |= set(s.scalars(compiler.members(parsed, compiler.Scope.of(NOW, {person: family}))))
    return held


@pytest.mark.parametrize("rule, expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_condition(built, rule, expected):
    assert _full(built, rule) == expected
    assert _each(built, rule) == expected


def test_rebuilt_facts_equal_refreshed_ones(built):
    """The rebuild (SQL) and the reactor's refresh (Python) write the same facts."""
    from sqlalchemy import select

    from seamline.marketing.segments.models import MarketingProfileFact

    def snapshot():
        with built.read() as s:
            return {(f.key, f.profile_id): (f.kind, f.text_value, None if f.number_value is None else round(f.number_value, 3))
                    for f in s.scalars(select(MarketingProfileFact))}

    rebuilt = snapshot()
    assert rebuilt[("trait:tier", 1)] == ("string", "gold", None)
    assert rebuilt[("trait:age", 3)] == ("number", "30", 30.0)
    assert rebuilt[("consent:email:marketing", 2)][1] == "withdrawn"
    assert rebuilt[("orders:count", 1)] == ("number", "3", 3.0)  # with her merged profile's order
    assert rebuilt[("orders:revenue", 1)] == ("number", "13000", 13000.0)
    assert ("orders:count", 5) not in rebuilt and ("trait:vip", 3) not in rebuilt  # erased; null
    with built.write() as s:
        facts.refresh(s, {1: [1, 4], 2: [2], 3: [3]}, {5})
    assert snapshot() == rebuilt
