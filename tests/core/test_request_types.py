"""Requests are as strict as their OpenAPI schema says, through HTTP: no bool from 0, no integer
from false or "5", no date-time from a number, no unknown field, no id above 2**53 - 1
(core/schemas.py: `RequestModel`, `DateTime`, `MAX_ID`). Segment collection and providers'
webhooks stay lenient."""

from __future__ import annotations

import pytest

from seamline.core.schemas import MAX_ID
from tests.core.test_auth import assert_error


def problem_locations(error: dict) -> list[list[str]]:
    return [p["location"] for p in error["details"]["errors"]]


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_a_boolean_is_true_or_false(client, admin_headers, value):
    body = {"name": "Website", "channel": "web", "server_side": value}
    error = assert_error(client.post("/v1/sources", json=body, headers=admin_headers), 422, "validation_error")
    assert ["body", "server_side"] in problem_locations(error)
    assert client.post("/v1/sources", json={**body, "server_side": False}, headers=admin_headers).status_code == 201


@pytest.mark.parametrize("value", [False, True, "5", 5.5])
def test_an_integer_is_an_integer(client, admin_headers, value):
    error = assert_error(client.patch("/v1/loyalty/program", json={"welcome_points": value}, headers=admin_headers),
                         422, "validation_error")
    assert problem_locations(error) == [["body", "welcome_points"]]
    # 5.0 is an integer to JSON Schema and to JavaScript (found by schemathesis): it is 5.
    for whole in (5, 5.0):
        response = client.patch("/v1/loyalty/program", json={"welcome_points": whole}, headers=admin_headers)
        assert response.status_code == 200, response.text
        assert response.json()["welcome_points"] == 5


def test_a_query_parameter_that_takes_one_value_is_given_one(client, admin_headers):
    error = assert_error(client.get("/v1/customers", params=[("limit", "5"), ("limit", "500")], headers=admin_headers),
                         422, "validation_error")
    assert problem_locations(error) == [["query", "limit"]]
    assert client.get("/v1/customers", params={"limit": "5"}, headers=admin_headers).status_code == 200


@pytest.mark.parametrize("value", [0, 1700000000, 1.5, "1700000000", "0.5", True])
def test_a_date_time_is_iso_text_not_a_number(client, admin_headers, value):
    body = {"name_ru": "Скидка", "name_en": "Discount", "kind": "fixed", "value": 100, "starts_at": value}
    error = assert_error(client.put("/v1/promotions/SALE", json=body, headers=admin_headers), 422, "validation_error")
    assert problem_locations(error) == [["body", "starts_at"]]
    response = client.put("/v1/promotions/SALE", json={**body, "starts_at": "2026-05-01T09:30:00Z"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["starts_at"].startswith("2026-05-01T09:30:00")


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1"])
def test_a_date_time_in_the_query_is_iso_text(client, admin_headers, value):
    error = assert_error(client.get("/v1/orders", params={"placed_to": value}, headers=admin_headers), 422, "validation_error")
    assert problem_locations(error) == [["query", "placed_to"]]
    for fine in ("2026-05-01T09:30:00Z", "2026-05-01T09:30:00", "2026-05-01"):
        response = client.get("/v1/orders", params={"placed_to": fine}, headers=admin_headers)
        assert response.status_code == 200, (fine, response.text)


def test_a_boolean_in_the_query_is_true_or_false(client, admin_headers):
    headers = {**admin_headers}
    for fine in ("true", "false"):
        assert client.get("/v1/inbox/conversations", params={"unassigned": fine}, headers=headers).status_code == 200
    error = assert_error(client.get("/v1/inbox/conversations", params={"unassigned": "0"}, headers=headers),
                         422, "validation_error")
    assert problem_locations(error) == [["query", "unassigned"]]


def test_an_unknown_field_is_refused_naming_it(client, admin_headers):
    body = {"name": "Reporting", "scopes": ["read"]}
    error = assert_error(client.post("/v1/api-keys", json={**body, "scope": "admin"}, headers=admin_headers),
                         422, "validation_error")
    assert problem_locations(error) == [["body", "scope"]]
    assert error["details"]["errors"][0]["type"] == "extra_forbidden"
    assert "scope" in error["message"]
    # in a nested object too
    error = assert_error(client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": "+79161234567", "x": 1}]},
                                     headers=admin_headers), 422, "validation_error")
    assert problem_locations(error) == [["body", "identifiers", "0", "x"]]
    assert client.post("/v1/api-keys", json=body, headers=admin_headers).status_code == 201


def test_ids_are_at_most_2_to_the_53_minus_1(client, admin_headers):
    assert MAX_ID == 2**53 - 1 == 9007199254740991
    error = assert_error(client.get(f"/v1/customers/{MAX_ID + 1}", headers=admin_headers), 422, "validation_error")
    assert problem_locations(error) == [["path", "customer_id"]]
    assert client.get(f"/v1/customers/{MAX_ID}", headers=admin_headers).status_code == 404
    # 4611686018427387999 is 2**62 as a float: a client cannot tell it from 2**62, so it is no id
    assert client.get("/v1/customers/4611686018427387999", headers=admin_headers).status_code == 422
    error = assert_error(client.post("/v1/loyalty/accounts", json={"customer_id": MAX_ID + 1}, headers=admin_headers),
                         422, "validation_error")
    assert problem_locations(error) == [["body", "customer_id"]]
    error = assert_error(client.get("/v1/orders", params={"customer_id": MAX_ID + 1}, headers=admin_headers),
                         422, "validation_error")
    assert problem_locations(error) == [["query", "customer_id"]]


def test_an_undeclared_method_on_agents_me_is_405(client, admin_headers):
    response = client.patch("/v1/inbox/agents/me", json={}, headers=admin_headers)
    assert response.status_code == 405, response.text
    assert "GET" in response.headers["allow"]
    assert client.patch("/v1/inbox/agents/12345", json={}, headers=admin_headers).status_code == 404


def test_the_document_says_so(client):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "4611686018427387904" not in str(document)
    assert "/v1/inbox/agents/{agent_id}" in document["paths"]
    assert not any(":int" in path for path in document["paths"])
    lenient = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            if not content or "$ref" not in content["schema"]:
                lenient.append(f"{method.upper()} {path}")
                continue
            name = content["schema"]["$ref"].rsplit("/", 1)[1]
            assert schemas[name].get("additionalProperties") is False, f"{method.upper()} {path}: {name}"
    # Segment's collection API and the providers' webhooks keep what other systems send.
    assert "POST /v1/track" in lenient and "POST /v1/batch" in lenient
    hours = schemas["LocationPut"]["properties"]["opening_hours"]["additionalProperties"]
    assert hours["type"] == "array" and hours["minItems"] == hours["maxItems"] == 2 and isinstance(hours["items"], dict)
    snoozed = schemas["StatusChange"]["properties"]["snoozed_until"]["anyOf"][0]
    assert snoozed == {"type": "string", "format": "date-time"}
