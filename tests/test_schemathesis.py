"""Schemathesis against the OpenAPI schema, over every operation and on either database: no 5xx,
and every answer is what the document describes (its status, content type, headers and body);
a request the schema calls valid is accepted or refused by a rule of the domain (never by a
`validation_error`), and one it calls invalid is refused. The expected statuses are in
`schemathesis.toml`, which the CLI reads too (`st run .../openapi.json --checks all`).

The schema is read once from the app's route table; every generated case is then sent to the
test's own app (`case.call(app=...)`), bound to the backend's database, so one pytest test runs
per operation and backend. (`schemathesis.pytest.from_fixture` is avoided on purpose: its lazy
loader breaks on pytest >= 9.2, whose nodes no longer have `_nodeid`.)

Every case is sent with a fresh admin key, so generated data reaches the handlers instead of
stopping at authentication. The database holds a few customers, a merge and a conflict, so
small generated ids hit real rows. Deterministic (derandomized) and offline: the app is called
in-process.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import OperationConfig
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.hypothesis.builder import HypothesisTestMode
from schemathesis.generation.modes import GenerationMode
from schemathesis.generation.overrides import Override
from schemathesis.pytest._test_builder import build_operation_test, enabled_modes
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from seamline.analytics.tasks import sync
from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from tests.conftest import make_key


def _seed(client: TestClient, headers: dict[str, str]) -> None:
    def upsert(*pairs: tuple[str, str], **extra) -> dict:
        response = client.post(
            "/v1/customers", json={"identifiers": [{"type": t, "value": v} for t, v in pairs], **extra}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    upsert(("email", "anna@example.com"), traits={"name": "Анна"}, consents=[
        {"channel": "email", "purpose": "marketing", "granted": True}
    ])
    upsert(("phone", "+79161234567"), ("user_id", "crm-1"))
    merged = upsert(("email", "anna@example.com"), ("phone", "+79161234567"))
    assert merged["merged_customer_ids"]
    conflict = upsert(("user_id", "crm-2"), ("phone", "+79161234567"))
    assert conflict["conflict_ids"]
    upsert(("telegram_id", "5512345"))


class _NoDatabase:
    """Enough of a Database for an app that only renders its OpenAPI document."""

    def dispose(self) -> None:
        pass


# Raw email for the MTA endpoint: well-formed messages, damaged ones, and arbitrary bytes.
_MAIL = st.builds(
    lambda sender, subject, body, tail: (
        f"From: {sender}@example.com\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n".encode()
        + body.encode("koi8-r", "replace") + tail
    ),
    st.from_regex(r"[a-z]{1,10}", fullmatch=True), st.text(max_size=40).filter(lambda t: "\r" not in t and "\n" not in t),
    st.text(max_size=200), st.binary(max_size=50),
)
schemathesis.openapi.media_type("message/rfc822", st.one_of(_MAIL, st.binary(max_size=300)))

schema = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None, log_level="WARNING"), database=_NoDatabase()).openapi()
)


# Random strings are almost never a known identifier type, consent channel or purpose, so
# without help nearly every generated upsert stops at a 422. Every other string in those fields
# (a plain counter: generation is derandomized, so runs stay deterministic) is swapped for a
# known one; the generated values then reach resolution, merges, conflicts and consents, while
# the rest still exercise the unknown-vocabulary errors.
_TYPES = ["user_id", "anonymous_id", "email", "phone", "loyalty_card", "device_id", "telegram_id", "whatsapp"]
_CHANNELS = ["email", "sms", "push", "telegram"]
_PURPOSES = ["service", "marketing"]
_turn = itertools.count()


def _known(value: Any, choices: list[str]) -> Any:
    n = next(_turn)
    if not isinstance(value, str) or n % 2:
        return value
    return choices[(n // 2) % len(choices)]


def _with_known_vocabulary(body: Any) -> Any:
    if isinstance(body, list):
        return [_with_known_vocabulary(item) for item in body]
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if "channel" in body and "purpose" in body:
        body["channel"], body["purpose"] = _known(body["channel"], _CHANNELS), _known(body["purpose"], _PURPOSES)
    if "type" in body and "value" in body:
        body["type"] = _known(body["type"], _TYPES)
    for key in ("identifiers", "consents"):
        if isinstance(body.get(key), list):
            body[key] = _with_known_vocabulary(body[key])
    return body


_VOCABULARY_OPERATIONS = {("POST", "/v1/customers"), ("POST", "/v1/customers/{customer_id}/consents")}

# `--checks all` of the CLI, less those that need a stateful run's history (use_after_free,
# ensure_resource_availability), another user's credentials (object_level_authorization) or a
# request of their own over the network (ignored_auth: every route's key check has its own
# tests, tests/core/test_auth.py).
_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
           response_schema_conformance, negative_data_rejection, positive_data_acceptance, missing_required_header,
           unsupported_method, allow_header_conformance]


#: Problems a schema-valid request may still have: a rule the schema cannot state, written as a
#: model validator (a physical card needs its number, a known time zone, ...), and the NUL guard
#: in front of every route (no schema says "no NUL" of each string).
_RULES_OUTSIDE_THE_SCHEMA = {"value_error", "nul_character"}


def _schema_valid_is_not_a_validation_error(case, response) -> None:
    """What `positive_data_acceptance` cannot tell: a schema-valid request refused for a type, a
    bound, a missing or an unknown field (pydantic's own checks) means the document and the models
    disagree. A domain rule's own code, or a rule above, is a fair answer."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE or response.status_code != 422:
        return
    error = response.json().get("error", {})
    if error.get("code") != "validation_error":
        return
    disagreements = [problem for problem in error["details"]["errors"] if problem["type"] not in _RULES_OUTSIDE_THE_SCHEMA]
    assert not disagreements, f"a schema-valid request was refused: {response.text}"


# --- how many requests the fuzzing phase draws per operation --------------------------------------
# Up to `_EXAMPLES` each. The examples and coverage phases run whole whatever this says: every
# boundary and invalid value of every parameter, unexpected methods, missing headers, ...
# Fewer where one request is costly and the parameters few: an analytics GET computes its metric
# over the mirror on every request (the dashboard all of them, ~0.5 s a request, so 40 fuzzed
# requests were ~20 of its ~45 s). Their parameters are the period and filters (`from`, `to`,
# `channel`, `store`, `trait`, a few enums), which their coverage phase walks value by value anyway
# (17-35 valid and 40-80 invalid requests each; `status` has no parameters); the dashboard's are
# the very ones every metric's own operation is fuzzed with. The analytics GETs not listed answer a
# fuzzed request in 0.03 s or less (journeys, satisfaction; funnel, attribution and people in a few
# milliseconds), so they keep `_EXAMPLES`. Comments: seconds per fuzzed request, measured on SQLite
# (PostgreSQL alike: the metrics read the same mirror).
_EXAMPLES = 40
_FEWER_EXAMPLES = {
    "GET /v1/analytics/dashboard": 8,  # 0.49 s
    "GET /v1/analytics/conversion": 10,  # 0.11 s
    "GET /v1/analytics/cohorts": 10,  # 0.09 s
    "GET /v1/analytics/recommendations": 10,  # 0.07 s
    "GET /v1/analytics/engagement": 10,  # 0.05 s
    "GET /v1/analytics/omnichannel": 10,  # 0.05 s
    "GET /v1/analytics/contact-center": 10,  # 0.04 s
    "GET /v1/analytics/status": 10,  # 0.04 s, and it has no parameters at all
    "GET /v1/analytics/clv": 10,  # 0.04 s
}
# Set in the schema's config rather than in `@settings`: a `max_examples` there would override
# every operation's own (schemathesis gives an explicit `@settings` value the last word).
schema.config.generation.update(max_examples=_EXAMPLES)
schema.config.operations.operations.extend(
    OperationConfig.from_dict({"include-name": label, "generation": {"max-examples": examples}})
    for label, examples in _FEWER_EXAMPLES.items()
)


@pytest.fixture
def seeded_client(app, admin_headers, database):
    with TestClient(app) as client:
        _seed(client, admin_headers)
        sync(database, app.state.settings, full=True)  # the analytics mirror: /v1/analytics answers with the seed
        yield client


@schema.parametrize()
@settings(  # no max_examples here: see `_EXAMPLES`
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_answers_match_the_document(case, app, database, seeded_client):
    _call_and_check(case, app, database)


def _call_and_check(case, app, database) -> None:
    # A fresh admin key per case: a generated DELETE /v1/api-keys/{id} may revoke earlier ones.
    key = make_key(database, Scope.admin, name="schemathesis")
    positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
    if positive and (case.method.upper(), case.operation.path) in _VOCABULARY_OPERATIONS:
        case.body = _with_known_vocabulary(case.body)
    headers = {"Authorization": f"Bearer {key}", "X-API-Key": key}
    # A generated (even schema-violating) key header never reaches the app: the real one replaces
    # it, so it must not count as the invalid part of a negative case.
    case.headers = {name: value for name, value in (case.headers or {}).items() if name.lower() not in {"authorization", "x-api-key"}}
    response = case.call(app=app, headers=headers)
    checks = _CHECKS
    if case.media_type == "multipart/form-data":
        # A multipart part is bytes whatever they spell ("a number where a string belongs" is a
        # file of digits): schemathesis.toml turns this check off there; explicit checks ignore that.
        checks = [check for check in _CHECKS if check is not negative_data_rejection]
    case.validate_response(response, checks=checks, headers=headers)
    _schema_valid_is_not_a_validation_error(case, response)


def test_the_fewer_examples_reach_their_operations():
    """Each entry names an operation, whose pytest test (built as the plugin builds it) draws that
    many, and still runs its coverage phase; any other operation draws `_EXAMPLES`."""
    def built(label: str):
        method, path = label.split(" ", 1)
        operation = schema[path][method]
        test = build_operation_test(config=schema.config, operation=operation, test_func=test_answers_match_the_document,
                                    given_kwargs={}, feedback=FeedbackSources())
        return operation, test._hypothesis_internal_use_settings.max_examples

    for label, examples in _FEWER_EXAMPLES.items():
        operation, drawn = built(label)
        assert drawn == examples, label
        modes = enabled_modes(schema.config.phases_for(operation=operation))
        assert HypothesisTestMode.FUZZING in modes and HypothesisTestMode.COVERAGE in modes, label
    assert built("GET /v1/analytics/funnel")[1] == built("POST /v1/customers")[1] == _EXAMPLES


# --- the coverage phase of rule-bearing bodies, sampled ------------------------------------------
# schemathesis.toml turns the coverage phase off where a body holds the recursive rule and step
# unions (tens of thousands of cases each); this runs an evenly spread sample of exactly those
# cases, the same on every run.

_COVERAGE_SAMPLE = 300
_SAMPLED_OPERATIONS = [
    (method, path) for method, path in (("POST", "/v1/marketing/segments"), ("POST", "/v1/marketing/segments/estimate"),
                                        ("PATCH", "/v1/marketing/segments/{segment_id}"), ("POST", "/v1/marketing/journeys"),
                                        ("PATCH", "/v1/marketing/journeys/{journey_id}"))
]


@functools.cache
def _coverage_sample(method: str, path: str) -> tuple:
    operation = schema[path][method]
    assert "coverage" not in [mode.value for mode in enabled_modes(schema.config.phases_for(operation=operation))], (
        "the coverage phase of this operation runs whole: it needs no sample")
    cases = list(CoverageGenerator(
        operation=operation, generation_modes=list(GenerationMode), auth_storage=None, override=Override(),
        feedback=FeedbackSources(), hooks=None,
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
    ))
    assert len(cases) > _COVERAGE_SAMPLE
    return tuple(cases[:: len(cases) // _COVERAGE_SAMPLE])


@pytest.mark.parametrize(("method", "path"), _SAMPLED_OPERATIONS, ids=[f"{m} {p}" for m, p in _SAMPLED_OPERATIONS])
def test_a_sample_of_the_coverage_of_rule_bodies(method, path, app, database, seeded_client):
    cases = _coverage_sample(method, path)
    assert {case.meta.generation.mode for case in cases} == set(GenerationMode)  # both valid and invalid bodies
    for case in cases:
        _call_and_check(case, app, database)  # (what it changes of a case, it changes alike each time)


# --- the same check along realistic sequences --------------------------------------------------
# Generated bodies rarely hold a usable identifier, so the paths that matter most (merges,
# conflicts, unmerge, erase, all interleaved) get their own generator: identifiers from a small
# pool so they collide, and every staff action aimed at ids that may or may not exist.

_POOL = {  # the first entries are what Hypothesis draws most: merge-friendly ones first
    "email": ["anna@example.com", "boris@example.com", " ANNA@example.com", "c@example.com", "test@test.com"],
    "phone": ["+79161234567", "8 (916) 123-45-67", "+79031112233", "000-000"],
    "device_id": ["d1", "d2"],
    "anonymous_id": ["a1", "a2", "anonymous"],
    "user_id": ["u1", "u2", "u3"],
}
_identifier = st.sampled_from([(t, v) for t, values in _POOL.items() for v in values])
_traits = st.dictionaries(st.sampled_from(["name", "city", "tier"]), st.one_of(st.none(), st.text(max_size=8), st.integers()), max_size=2)
_consent = st.fixed_dictionaries(
    {"channel": st.sampled_from(["email", "sms", "push"]), "purpose": st.sampled_from(["marketing", "service"]), "granted": st.booleans()}
)
_small_id = st.integers(min_value=1, max_value=5)
_upsert = st.tuples(
    st.just("upsert"),
    st.lists(_identifier, min_size=1, max_size=4),
    _traits,
    st.lists(_consent, max_size=2),
    st.sampled_from([None, "2026-01-01T00:00:00Z", "2025-06-01T00:00:00+03:00"]),
)
_action = st.one_of(
    _upsert,
    st.tuples(st.just("merge"), _small_id, _small_id, st.booleans()),
    st.tuples(st.just("undo"), _small_id),
    st.tuples(st.just("resolve"), _small_id, st.sampled_from(["merge", "dismiss"])),
    st.tuples(st.just("erase"), _small_id),
    st.tuples(st.just("consents"), _small_id, st.lists(_consent, min_size=1, max_size=2)),
)


def _send(client: TestClient, headers: dict[str, str], action: tuple) -> Any:
    kind, *args = action
    if kind == "upsert":
        pairs, traits, consents, timestamp = args
        body = {"identifiers": [{"type": t, "value": v} for t, v in pairs], "traits": traits, "consents": consents}
        if timestamp:
            body["timestamp"] = timestamp
        return client.post("/v1/customers", json=body, headers=headers)
    if kind == "merge":
        return client.post(f"/v1/customers/{args[0]}/merge", json={"customer_id": args[1], "force": args[2]}, headers=headers)
    if kind == "undo":
        return client.post(f"/v1/merges/{args[0]}/undo", headers=headers)
    if kind == "resolve":
        return client.post(f"/v1/identity-conflicts/{args[0]}/resolve", json={"action": args[1]}, headers=headers)
    if kind == "erase":
        return client.post(f"/v1/customers/{args[0]}/erase", json={"reason": "test"}, headers=headers)
    return client.post(f"/v1/customers/{args[0]}/consents", json=args[1], headers=headers)


@given(actions=st.tuples(st.lists(_upsert, min_size=2, max_size=8), st.lists(_action, min_size=1, max_size=15)))
@settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_interleaved_staff_and_client_actions_never_fail(client, database, reset_database, actions):
    reset_database()  # ids restart at 1, so the small ids above hit real rows
    headers = {"Authorization": f"Bearer {make_key(database, Scope.admin)}"}
    for action in actions[0] + actions[1]:
        response = _send(client, headers, action)
        assert response.status_code < 500, (action, response.text)
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}, response.text
    # Every stored identifier still leads to exactly one live profile.
    listing = client.get("/v1/customers", params={"limit": 200}, headers=headers)
    assert listing.status_code == 200
    for customer in listing.json()["items"]:
        for identifier in customer["identifiers"]:
            found = client.get("/v1/customers/lookup", params={identifier["type"]: identifier["value"]}, headers=headers)
            assert found.status_code == 200 and found.json()["id"] == customer["id"], (identifier, found.text)
