"""Properties of identity resolution, checked on generated request sequences (both databases).

- The same links applied in any order give the same profiles (when no merge rule is at stake;
  with rules at stake the first link wins, as documented).
- Whatever the order, every profile respects the merge rules, and the batch rebuild finds
  nothing to change: per-request resolution and the rebuild agree.
- Merge then unmerge gives back the original profiles, traits and consents.
- Blocked values never join two profiles.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from seamline.customers import resolution, service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import CustomerIdentity
from seamline.customers.rebuild import rebuild_profiles
from seamline.customers.schemas import ConsentIn, CustomerUpsert, IdentifierIn

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

identifier = st.one_of(
    st.tuples(st.just("anonymous_id"), st.sampled_from([f"anon-{i}" for i in range(8)])),
    st.tuples(st.just("email"), st.sampled_from([f"person{i}@example.com" for i in range(6)])),
    st.tuples(st.just("phone"), st.sampled_from([f"+7916000000{i}" for i in range(6)])),
)
with_user_ids = st.one_of(identifier, st.tuples(st.just("user_id"), st.sampled_from(["u1", "u2", "u3"])))
requests = st.lists(st.lists(identifier, min_size=1, max_size=3), min_size=1, max_size=12)
requests_with_rules = st.lists(st.lists(with_user_ids, min_size=1, max_size=3), min_size=1, max_size=12)


def _apply(database, rules, request, *, traits=None, consents=None):
    body = CustomerUpsert(
        identifiers=[IdentifierIn(type=t, value=v) for t, v in request],
        traits=traits or {},
        consents=consents or [],
    )
    return database.run_write(lambda session: service.upsert_customer(session, rules=rules, data=body))


def _partition(database) -> set[frozenset[tuple[str, str]]]:
    with database.read() as session:
        rows = session.execute(select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.profile_id))
        groups: dict[int, set] = {}
        for type_name, value, profile_id in rows:
            groups.setdefault(profile_id, set()).add((type_name, value))
    return {frozenset(g) for g in groups.values()}


@PROPERTY_SETTINGS
@given(batch=requests, data=st.data())
def test_any_order_gives_the_same_profiles(session_database, reset_database, settings_for, batch, data):
    rules = IdentifierRules(settings_for(session_database.url))
    reset_database()
    for request in batch:
        _apply(session_database, rules, request)
    first = _partition(session_database)

    shuffled = data.draw(st.permutations(batch))
    reordered = [data.draw(st.permutations(r)) for r in shuffled]
    reset_database()
    for request in reordered:
        _apply(session_database, rules, request)
    assert _partition(session_database) == first


@PROPERTY_SETTINGS
@given(batch=requests_with_rules)
def test_rules_hold_and_rebuild_agrees(session_database, reset_database, settings_for, batch):
    rules = IdentifierRules(settings_for(session_database.url))
    reset_database()
    for request in batch:
        _apply(session_database, rules, request)
    partition = _partition(session_database)
    for profile in partition:
        counts = Counter(t for t, _ in profile)
        assert all(count <= rules.limit(t) for t, count in counts.items()), profile
    report = rebuild_profiles(session_database, rules=rules)
    assert not report.changed, report.as_dict()
    assert _partition(session_database) == partition


def _profile_state(database, rules, identifier):
    with database.read() as session:
        profile = service.lookup(session, rules=rules, type_name=identifier[0], value=identifier[1])
        context = service.context_of(session, profile)
        return (
            frozenset((i.type, i.value) for i in context.identities),
            {k: v["value"] for k, v in service.traits_of(session, context.identity_ids).items()},
            {(c["channel"], c["purpose"], c["granted"]) for c in service.current_consents(session, context.identity_ids)},
        )


@PROPERTY_SETTINGS
@given(
    left=st.lists(identifier, min_size=1, max_size=3, unique=True),
    right=st.lists(identifier, min_size=1, max_size=3, unique=True),
    later=st.booleans(),
)
def test_merge_then_unmerge_restores_both_profiles(session_database, reset_database, settings_for, left, right, later):
    if set(left) & set(right):
        return  # the two sides must start as two different people
    rules = IdentifierRules(settings_for(session_database.url))
    reset_database()
    _apply(session_database, rules, left, traits={"name": "Left", "side": "left"},
           consents=[ConsentIn(channel="email", purpose="marketing", granted=True)])
    _apply(session_database, rules, right, traits={"name": "Right"},
           consents=[ConsentIn(channel="sms", purpose="marketing", granted=False)])
    before = (_profile_state(session_database, rules, left[0]), _profile_state(session_database, rules, right[0]))
    if before[0][0] & before[1][0] or before[0][0] == before[1][0]:
        return  # a value normalized equal on both sides: not two people
    merged = _apply(session_database, rules, [left[0], right[0]])
    assert merged.resolution.merges, "linking the two sides must merge them"
    merge_id = merged.resolution.merges[0].id
    session_database.run_write(
        lambda session: resolution.unmerge(session, rules=rules, merge_id=merge_id, actor="test")
    )
    after = (_profile_state(session_database, rules, left[0]), _profile_state(session_database, rules, right[0]))
    assert after == before
    # The rebuild agrees with the unmerge (the link that joined them is revoked).
    assert not rebuild_profiles(session_database, rules=rules).changed


blocked_value = st.sampled_from(["anonymous", "null", "0000000", "-1", "undefined"])


@PROPERTY_SETTINGS
@given(batch=requests, blocked=st.lists(blocked_value, min_size=1, max_size=3), data=st.data())
def test_blocked_values_never_join_profiles(session_database, reset_database, settings_for, batch, blocked, data):
    rules = IdentifierRules(settings_for(session_database.url))
    reset_database()
    for request in batch:
        _apply(session_database, rules, request)
    expected = _partition(session_database)
    reset_database()
    for request in batch:
        polluted = list(request) + [("anonymous_id", data.draw(st.sampled_from(blocked)))]
        _apply(session_database, rules, polluted)
    assert _partition(session_database) == expected
    with session_database.read() as session:
        stored = set(session.scalars(select(CustomerIdentity.value)))
    assert not stored & set(blocked)
