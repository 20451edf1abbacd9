"""API keys through HTTP: required everywhere but health and metrics, scoped, hashed, revocable."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from seamline.core.auth.models import ApiKey
from seamline.core.auth.schemas import Scope
from tests.conftest import make_key

UPSERT = {"identifiers": [{"type": "email", "value": "anna@example.com"}]}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_customer(client, headers) -> int:
    response = client.post("/v1/customers", json=UPSERT, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["customer"]["id"]


# --- who may call at all ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/customers"),
        ("POST", "/v1/customers"),
        ("GET", "/v1/customers/1"),
        ("GET", "/v1/customers/lookup?email=anna@example.com"),
        ("GET", "/v1/identity-conflicts"),
        ("GET", "/v1/api-keys"),
        ("POST", "/v1/api-keys"),
    ],
)
def test_missing_key_is_401_in_the_one_error_shape(client, method, path):
    response = client.request(method, path, json=UPSERT if method == "POST" else None)
    error = assert_error(response, 401, "missing_api_key")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "API key" in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer sl_onlytwo"},
        {"Authorization": "Bearer xx_0123456789ab_secret"},
        {"X-API-Key": "garbage"},
    ],
)
def test_malformed_key_is_401(client, headers):
    assert_error(client.get("/v1/customers", headers=headers), 401, "invalid_api_key")


def test_unknown_key_and_wrong_secret_are_401(client, database, read_headers):
    assert_error(client.get("/v1/customers", headers=bearer("sl_0123456789ab_nosuchsecret")), 401, "invalid_api_key")
    real = read_headers["Authorization"].removeprefix("Bearer ")
    _, prefix, _secret = real.split("_", 2)
    # The right prefix with a wrong secret is refused, not a partial match.
    assert_error(client.get("/v1/customers", headers=bearer(f"sl_{prefix}_wrongsecret")), 401, "invalid_api_key")
    assert client.get("/v1/customers", headers=read_headers).status_code == 200


def test_x_api_key_header_is_accepted(client, database):
    key = make_key(database, Scope.read)
    response = client.get("/v1/customers", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_and_metrics_need_no_key(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.text


# --- scopes ----------------------------------------------------------------------------------


def test_read_key_can_read_but_not_write(client, read_headers):
    assert client.get("/v1/customers", headers=read_headers).status_code == 200
    error = assert_error(client.post("/v1/customers", json=UPSERT, headers=read_headers), 403, "insufficient_scope")
    assert error["details"]["required"] == "write"
    assert error["details"]["granted"] == ["read"]
    # Nothing was created by the refused request.
    assert client.get("/v1/customers", headers=read_headers).json()["items"] == []


def test_write_key_can_upsert_and_read(client, write_headers):
    customer_id = create_customer(client, write_headers)
    response = client.get(f"/v1/customers/{customer_id}", headers=write_headers)
    assert response.status_code == 200
    assert response.json()["id"] == customer_id


def test_track_key_can_neither_read_nor_upsert(client, database):
    headers = bearer(make_key(database, Scope.track))
    assert_error(client.get("/v1/customers", headers=headers), 403, "insufficient_scope")
    assert_error(client.post("/v1/customers", json=UPSERT, headers=headers), 403, "insufficient_scope")


ADMIN_ONLY = [
    ("POST", "/v1/api-keys", {"name": "x", "scopes": ["read"]}),
    ("GET", "/v1/api-keys", None),
    ("DELETE", "/v1/api-keys/{key_id}", None),
    ("POST", "/v1/customers/{a}/merge", {"customer_id": "{b}"}),
    ("POST", "/v1/merges/1/undo", None),
    ("GET", "/v1/customers/{a}/export", None),
    ("POST", "/v1/customers/{a}/erase", {"reason": "request"}),
    ("POST", "/v1/identity-conflicts/1/resolve", {"action": "merge"}),
]


@pytest.mark.parametrize(("method", "template", "body"), ADMIN_ONLY, ids=[f"{m} {p}" for m, p, _ in ADMIN_ONLY])
def test_admin_only_endpoints_refuse_write_keys(client, database, admin_headers, write_headers, method, template, body):
    a = create_customer(client, write_headers)
    b = client.post(
        "/v1/customers", json={"identifiers": [{"type": "email", "value": "boris@example.com"}]}, headers=write_headers
    ).json()["customer"]["id"]
    keys = client.get("/v1/api-keys", headers=admin_headers).json()
    key_id = keys[0]["id"]
    path = template.format(a=a, b=b, key_id=key_id)
    if body and body.get("customer_id") == "{b}":
        body = {"customer_id": b}
    error = assert_error(client.request(method, path, json=body, headers=write_headers), 403, "insufficient_scope")
    assert error["details"]["required"] == "admin"
    # The refused call changed nothing.
    assert client.get(f"/v1/customers/{a}", headers=write_headers).json()["status"] == "active"
    assert client.get(f"/v1/customers/{b}", headers=write_headers).json()["id"] == b
    assert client.get("/v1/api-keys", headers=admin_headers).json() == keys


# --- the life of a key -----------------------------------------------------------------------


def test_created_key_is_shown_once_and_works(client, admin_headers):
    response = client.post("/v1/api-keys", json={"name": "crm sync", "scopes": ["write"]}, headers=admin_headers)
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["key"]
    assert secret.startswith(f"sl_{created['prefix']}_")
    assert created["scopes"] == ["write"] and created["name"] == "crm sync" and created["revoked_at"] is None

    assert create_customer(client, bearer(secret)) >= 1

    listing = client.get("/v1/api-keys", headers=admin_headers)
    assert listing.status_code == 200
    mine = [k for k in listing.json() if k["id"] == created["id"]]
    assert len(mine) == 1
    assert "key" not in mine[0]
    assert mine[0]["prefix"] == created["prefix"]
    secret_part = secret.split("_", 2)[2]
    assert secret_part not in listing.text


def test_key_is_stored_hashed_only(client, database, admin_headers):
    created = client.post("/v1/api-keys", json={"name": "hashed", "scopes": ["read"]}, headers=admin_headers).json()
    secret_part = created["key"].split("_", 2)[2]
    with database.read() as session:
        columns = dict(
            session.execute(select(ApiKey.__table__).where(ApiKey.__table__.c.id == created["id"])).mappings().one()
        )
    assert all(secret_part not in str(value) for value in columns.values()), columns
    assert columns["secret_hash"] == hashlib.sha256(secret_part.encode()).hexdigest()


def test_invalid_key_requests_are_422(client, admin_headers):
    for body in ({"name": "", "scopes": ["read"]}, {"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}):
        assert_error(client.post("/v1/api-keys", json=body, headers=admin_headers), 422, "validation_error")


def test_revoked_key_is_401_and_revoking_twice_is_fine(client, admin_headers):
    created = client.post("/v1/api-keys", json={"name": "temp", "scopes": ["read"]}, headers=admin_headers).json()
    headers = bearer(created["key"])
    assert client.get("/v1/customers", headers=headers).status_code == 200

    first = client.delete(f"/v1/api-keys/{created['id']}", headers=admin_headers)
    assert first.status_code == 200, first.text
    assert first.json()["revoked_at"] is not None
    assert_error(client.get("/v1/customers", headers=headers), 401, "api_key_revoked")

    second = client.delete(f"/v1/api-keys/{created['id']}", headers=admin_headers)
    assert second.status_code == 200
    assert second.json()["revoked_at"] == first.json()["revoked_at"]  # the first revocation stands
    assert_error(client.get("/v1/customers", headers=headers), 401, "api_key_revoked")

    listed = {k["id"]: k for k in client.get("/v1/api-keys", headers=admin_headers).json()}
    assert listed[created["id"]]["revoked_at"] == first.json()["revoked_at"]
    # Other keys keep working.
    assert client.get("/v1/customers", headers=admin_headers).status_code == 200


def test_revoking_an_unknown_key_is_404(client, admin_headers):
    assert_error(client.delete("/v1/api-keys/999999", headers=admin_headers), 404, "api_key_not_found")


def test_created_by_is_recorded(client, database, admin_headers):
    created = client.post("/v1/api-keys", json={"name": "child", "scopes": ["read"]}, headers=admin_headers).json()
    with database.read() as session:
        child = session.get(ApiKey, created["id"])
        parent = session.scalar(select(ApiKey).where(ApiKey.name == "admin"))
    assert child.created_by_key_id == parent.id
