"""One-time login codes through HTTP: request, verify, attempts, expiry, the hourly limit, phone
formats, delivery (a registered sender, or a clear 503 with nothing stored), anonymous ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from seamline.app import create_app
from seamline.core.auth.schemas import Scope
from seamline.customers import login_codes
from seamline.customers.models import CustomerLoginCode
from tests.conftest import make_key

PHONE = "+79161234567"


@pytest.fixture
def settings(database, settings_for):
    return settings_for(database.url, login_codes_reveal=True)


@pytest.fixture
def headers(database) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(database, Scope.write, name='shop')}"}


def ident(value: str = PHONE, type_: str = "phone") -> dict[str, str]:
    return {"type": type_, "value": value}


def request_code(client, headers, value: str = PHONE, type_: str = "phone", expect: int = 202) -> dict:
    response = client.post("/v1/auth/login-codes", json={"identifier": ident(value, type_)}, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def verify(client, headers, code: str, value: str = PHONE, type_: str = "phone", expect: int = 200, **extra) -> dict:
    response = client.post("/v1/auth/login-codes/verify", json={"identifier": ident(value, type_), "code": code, **extra},
                           headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def shift(database, **deltas: timedelta) -> None:
    """Move the stored codes' times, as if time had passed."""
    with database.write() as session:
        for row in session.scalars(select(CustomerLoginCode)):
            for column, delta in deltas.items():
                setattr(row, column, getattr(row, column) + delta)


def count_rows(database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(CustomerLoginCode))


def test_happy_path_creates_then_finds_the_customer(client, headers, database):
    sent = request_code(client, headers)
    assert sent["channel"] == "sms" and len(sent["code"]) == 6 and sent["code"].isdigit() and sent["expires_at"]
    first = verify(client, headers, sent["code"])
    assert first["created"] is True
    found = client.get("/v1/customers/lookup", params={"phone": PHONE}, headers=headers).json()
    assert found["id"] == first["customer_id"]
    # A retry of the same verify (a lost response) answers the same, idempotently.
    assert verify(client, headers, sent["code"]) == first
    # The next login of the same person finds the profile.
    again = verify(client, headers, request_code(client, headers)["code"])
    assert again == {"customer_id": first["customer_id"], "created": False}
    # The code is stored only as a salted hash.
    with database.read() as session:
        for row in session.scalars(select(CustomerLoginCode)):
            assert sent["code"] not in (row.code_hash, row.salt) and len(row.code_hash) == 64


def test_email_goes_by_email_normalized(client, headers):
    sent = request_code(client, headers, " Anna@Example.COM ", "email")
    assert sent["channel"] == "email"
    result = verify(client, headers, sent["code"], "anna@example.com", "email")
    found = client.get("/v1/customers/lookup", params={"email": "anna@example.com"}, headers=headers).json()
    assert found["id"] == result["customer_id"]


def test_wrong_code_counts_attempts_then_the_code_is_dead(client, headers):
    sent = request_code(client, headers)
    for left in (4, 3, 2, 1, 0):
        error = verify(client, headers, wrong(sent["code"]), expect=422)["error"]
        assert error["code"] == "invalid_code" and error["details"]["attempts_left"] == left
    # Five wrong attempts: even the right code no longer works.
    error = verify(client, headers, sent["code"], expect=422)["error"]
    assert error["code"] == "code_expired" and error["details"]["reason"] == "too_many_attempts"
    # A new code works.
    assert verify(client, headers, request_code(client, headers)["code"])["created"] is True


def test_expired_code(client, headers, database):
    sent = request_code(client, headers)
    shift(database, expires_at=-timedelta(minutes=10, seconds=1))
    error = verify(client, headers, sent["code"], expect=422)["error"]
    assert error["code"] == "code_expired" and error["details"]["reason"] == "expired"


def test_new_request_replaces_the_previous_code(client, headers):
    old = request_code(client, headers)
    new = request_code(client, headers)
    if old["code"] != new["code"]:
        assert verify(client, headers, old["code"], expect=422)["error"]["code"] == "invalid_code"
    assert verify(client, headers, new["code"])["created"] is True


def test_no_code_requested(client, headers):
    assert verify(client, headers, "123456", expect=422)["error"]["code"] == "code_expired"


def test_rate_limit_per_identifier_per_hour(client, headers, database):
    for _ in range(5):
        request_code(client, headers, "8 (916) 123-45-67")
    error = request_code(client, headers, PHONE, expect=429)["error"]
    assert error["code"] == "too_many_codes" and error["details"]["retry_after_seconds"] > 0
    request_code(client, headers, "+79161234568")  # another phone is not limited
    # An hour later the identifier may ask again.
    shift(database, created_at=-timedelta(hours=1))
    request_code(client, headers, PHONE)


def test_phone_in_another_format_is_the_same_person(client, headers):
    sent = request_code(client, headers, "8 (916) 123-45-67")
    first = verify(client, headers, sent["code"], "+79161234567")
    second = verify(client, headers, request_code(client, headers, "+7 916 123 45 67")["code"], "89161234567")
    assert second == {"customer_id": first["customer_id"], "created": False}


def test_invalid_identifiers(client, headers):
    assert request_code(client, headers, "12", expect=422)["error"]["code"] == "invalid_phone"
    assert request_code(client, headers, "not an email", "email", expect=422)["error"]["code"] == "invalid_email"
    response = client.post("/v1/auth/login-codes", json={"identifier": {"type": "user_id", "value": "u1"}}, headers=headers)
    assert response.status_code == 422
    assert client.post("/v1/auth/login-codes", json={"identifier": ident()}).status_code == 401


def test_anonymous_id_joins_the_profile(client, headers):
    client.post("/v1/customers", json={"identifiers": [{"type": "anonymous_id", "value": "aid-browsing"}],
                                       "traits": {"city": "Москва"}}, headers=headers)
    result = verify(client, headers, request_code(client, headers)["code"], anonymous_id="aid-browsing", channel="app")
    found = client.get("/v1/customers/lookup", params={"anonymous_id": "aid-browsing"}, headers=headers).json()
    assert found["id"] == result["customer_id"]
    assert found["sections"]["profile"]["traits"]["city"]["value"] == "Москва"


def test_reveal_off_without_a_sender_is_a_clear_error_and_stores_nothing(database, settings_for, headers):
    app = create_app(settings_for(database.url), database=database)
    with TestClient(app) as client:
        response = client.post("/v1/auth/login-codes", json={"identifier": ident()}, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "login_code_undeliverable"
        assert count_rows(database) == 0


def test_reveal_off_with_a_sender_sends_the_code_and_hides_it(database, settings_for, headers):
    sent: list[dict] = []

    def sender(session, *, identifier_type, value, text, settings):  # noqa: ANN001
        sent.append({"type": identifier_type, "value": value, "text": text})
        return True

    login_codes.register_sender(sender)
    try:
        app = create_app(settings_for(database.url), database=database)
        with TestClient(app) as client:
            body = request_code(client, headers, "8 916 123-45-67")
            assert "code" not in body and body["channel"] == "sms"
            assert len(sent) == 1 and sent[0]["type"] == "phone" and sent[0]["value"] == PHONE
            code = "".join(c for c in sent[0]["text"] if c.isdigit())[:6]
            assert verify(client, headers, code)["created"] is True
    finally:
        login_codes.unregister_sender(sender)
