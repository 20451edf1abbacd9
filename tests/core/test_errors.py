"""Every error is {"error": {"code", "message", "details"}} with the right 4xx, and a failed
request writes nothing."""

from __future__ import annotations

import pytest

from tests.core.test_auth import assert_error


def ident(type_name: str, value: str) -> dict[str, str]:
    return {"type": type_name, "value": value}


def customer_count(client, headers) -> int:
    response = client.get("/v1/customers", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


# --- identifiers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("12345", "not a valid number"),
        ("call me maybe", "not a phone number"),
        ("+999 123 456", "unknown country code"),
    ],
)
def test_invalid_phone_names_the_value_and_why(client, write_headers, value, reason):
    response = client.post("/v1/customers", json={"identifiers": [ident("phone", value)]}, headers=write_headers)
    error = assert_error(response, 422, "invalid_phone")
    assert error["details"]["value"] == value
    assert error["details"]["type"] == "phone"
    assert error["details"]["reason"] == reason
    assert value in error["message"]


def test_invalid_email_names_the_value_and_why(client, write_headers):
    response = client.post(
        "/v1/customers", json={"identifiers": [ident("email", "anna.example.com")]}, headers=write_headers
    )
    error = assert_error(response, 422, "invalid_email")
    assert error["details"]["value"] == "anna.example.com"
    assert "@" in error["details"]["reason"]
    assert "anna.example.com" in error["message"]


def test_invalid_whatsapp_is_checked_as_a_phone(client, write_headers):
    response = client.post("/v1/customers", json={"identifiers": [ident("whatsapp", "123")]}, headers=write_headers)
    error = assert_error(response, 422, "invalid_phone")
    assert error["details"] == {**error["details"], "type": "whatsapp", "value": "123"}


def test_unknown_identifier_type(client, write_headers):
    response = client.post("/v1/customers", json={"identifiers": [ident("passport", "4509 123456")]}, headers=write_headers)
    error = assert_error(response, 422, "unknown_identifier_type")
    assert error["details"]["type"] == "passport"
    assert "email" in error["details"]["known_types"]


def test_control_characters_in_a_value_are_refused(client, write_headers):
    response = client.post("/v1/customers", json={"identifiers": [ident("user_id", "u\x011")]}, headers=write_headers)
    assert_error(response, 422, "invalid_identifier")
    # NUL, which PostgreSQL cannot store, is refused in any request before a route sees it (core/limits.NoNul).
    response = client.post("/v1/customers", json={"identifiers": [ident("user_id", "u\x001")]}, headers=write_headers)
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["errors"][0]["location"] == ["body", "identifiers", "0", "value"]
    assert error["details"]["errors"][0]["type"] == "nul_character"


# --- routing and validation ------------------------------------------------------------------


def test_unknown_route_is_404_in_the_same_shape(client, read_headers):
    assert_error(client.get("/v1/no-such-thing", headers=read_headers), 404, "not_found")
    assert_error(client.get("/no-such-thing"), 404, "not_found")


def test_wrong_method_is_405_in_the_same_shape(client, read_headers):
    response = client.delete("/v1/customers", headers=read_headers)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"]  # Starlette names the methods of the first matching route
    assert_error(client.put("/healthz"), 405, "method_not_allowed")


def test_body_validation_error_shape(client, write_headers):
    response = client.post("/v1/customers", json={"identifiers": []}, headers=write_headers)
    error = assert_error(response, 422, "validation_error")
    problems = error["details"]["errors"]
    assert problems and problems[0]["location"] == ["body", "identifiers"]
    assert problems[0]["type"] == "too_short"
    assert error["message"].startswith("body.identifiers:")


def test_missing_fields_are_each_reported(client, write_headers):
    response = client.post("/v1/customers", json={"identifiers": [{"type": "email"}], "source": "Bad Source"}, headers=write_headers)
    error = assert_error(response, 422, "validation_error")
    locations = {tuple(p["location"]) for p in error["details"]["errors"]}
    assert ("body", "identifiers", "0", "value") in locations
    assert ("body", "source") in locations


def test_malformed_json_is_422(client, write_headers):
    response = client.post(
        "/v1/customers", content=b"{not json", headers={**write_headers, "Content-Type": "application/json"}
    )
    assert_error(response, 422, "validation_error")


def test_path_and_query_validation(client, read_headers):
    error = assert_error(client.get("/v1/customers/abc", headers=read_headers), 422, "validation_error")
    assert error["details"]["errors"][0]["location"] == ["path", "customer_id"]
    assert_error(client.get("/v1/customers/0", headers=read_headers), 422, "validation_error")
    assert_error(client.get(f"/v1/customers/{2**63}", headers=read_headers), 422, "validation_error")
    assert_error(client.get("/v1/customers", params={"limit": 0}, headers=read_headers), 422, "validation_error")
    assert_error(client.get("/v1/customers", params={"limit": 201}, headers=read_headers), 422, "validation_error")
    assert_error(client.get("/v1/customers", params={"cursor": "!!!"}, headers=read_headers), 422, "invalid_cursor")
    assert_error(client.get("/v1/identity-conflicts", params={"status": "weird"}, headers=read_headers), 422, "validation_error")


def test_naive_timestamp_is_refused(client, write_headers):
    response = client.post(
        "/v1/customers",
        json={"identifiers": [ident("email", "a@example.com")], "timestamp": "2026-01-01T10:00:00"},
        headers=write_headers,
    )
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["errors"][0]["location"] == ["body", "timestamp"]


def test_unknown_customer_is_404(client, read_headers):
    error = assert_error(client.get("/v1/customers/424242", headers=read_headers), 404, "customer_not_found")
    assert "424242" in error["message"]


# --- nothing is half-written -----------------------------------------------------------------


def test_one_invalid_identifier_fails_the_whole_request(client, write_headers):
    response = client.post(
        "/v1/customers",
        json={
            "identifiers": [ident("email", "anna@example.com"), ident("phone", "12345")],
            "traits": {"name": "Anna"},
        },
        headers=write_headers,
    )
    assert_error(response, 422, "invalid_phone")
    assert customer_count(client, write_headers) == 0
    assert_error(
        client.get("/v1/customers/lookup", params={"email": "anna@example.com"}, headers=write_headers),
        404,
        "customer_not_found",
    )


def test_unknown_consent_in_upsert_writes_nothing(client, write_headers):
    response = client.post(
        "/v1/customers",
        json={
            "identifiers": [ident("email", "anna@example.com")],
            "consents": [{"channel": "email", "purpose": "marketing", "granted": True}, {"channel": "fax", "purpose": "marketing", "granted": True}],
        },
        headers=write_headers,
    )
    error = assert_error(response, 422, "unknown_consent_channel")
    assert error["details"]["channel"] == "fax"
    assert customer_count(client, write_headers) == 0


def test_failing_consent_batch_writes_none_of_it(client, write_headers):
    created = client.post("/v1/customers", json={"identifiers": [ident("email", "anna@example.com")]}, headers=write_headers)
    customer_id = created.json()["customer"]["id"]
    response = client.post(
        f"/v1/customers/{customer_id}/consents",
        json=[
            {"channel": "email", "purpose": "marketing", "granted": True, "source": "web"},
            {"channel": "fax", "purpose": "marketing", "granted": True, "source": "store"},
        ],
        headers=write_headers,
    )
    assert_error(response, 422, "unknown_consent_channel")
    assert client.get(f"/v1/customers/{customer_id}/consents", headers=write_headers).json() == []


def test_failed_link_does_not_merge(client, write_headers):
    """A request that would merge two profiles but fails validation leaves them apart."""
    a = client.post("/v1/customers", json={"identifiers": [ident("email", "a@example.com")]}, headers=write_headers)
    b = client.post("/v1/customers", json={"identifiers": [ident("email", "b@example.com")]}, headers=write_headers)
    response = client.post(
        "/v1/customers",
        json={"identifiers": [ident("email", "a@example.com"), ident("email", "b@example.com"), ident("phone", "1")]},
        headers=write_headers,
    )
    assert_error(response, 422, "invalid_phone")
    assert customer_count(client, write_headers) == 2
    for created in (a, b):
        cid = created.json()["customer"]["id"]
        assert client.get(f"/v1/customers/{cid}", headers=write_headers).json()["id"] == cid


@pytest.mark.parametrize(
    ("traits_json", "why"),
    [
        (b'{"score": NaN}', "finite"),
        (b'{"score": Infinity}', "finite"),
        (b'{"score": -Infinity}', "finite"),
        (b'{"score": 1e400}', "finite"),  # parses to inf
        (b'{"x": ' + b"[" * 40 + b"]" * 40 + b"}", "deeper"),
        (b'{"x": ' + b"[" * 900 + b"]" * 900 + b"}", "deeper"),  # once stored, then a 500 on every read
        (b'{"x": ' + b'{"y": ' * 40 + b"1" + b"}" * 40 + b"}", "deeper"),
        (b'{"x": "a\\u0000b"}', "NUL"),
        (b'{"x": "\\udc00"}', "surrogates"),
    ],
)
def test_traits_that_cannot_be_stored_or_rendered_are_422(client, write_headers, traits_json, why):
    body = b'{"identifiers": [{"type": "email", "value": "anna@example.com"}], "traits": ' + traits_json + b"}"
    response = client.post("/v1/customers", content=body, headers={**write_headers, "Content-Type": "application/json"})
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["errors"][0]["location"][:2] == ["body", "traits"]  # a NUL: the exact place, ["body", "traits", "x"]
    assert why in error["message"]
    assert customer_count(client, write_headers) == 0


def test_nested_traits_within_the_limit_round_trip(client, write_headers):
    nested = {"a": [[{"b": [1, 2.5, True, None, "x"]}]]}
    for _ in range(5):
        nested = {"n": nested}
    response = client.post(
        "/v1/customers",
        json={"identifiers": [ident("email", "anna@example.com")], "traits": {"prefs": nested}},
        headers=write_headers,
    )
    assert response.status_code == 200, response.text
    cid = response.json()["customer"]["id"]
    fetched = client.get(f"/v1/customers/{cid}", headers=write_headers).json()
    assert fetched["sections"]["profile"]["traits"]["prefs"]["value"] == nested
