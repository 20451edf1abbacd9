"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from seamline.app import create_app
from seamline.core.db import Database
from seamline.core.migrations import head_revision
from tests.conftest import make_database_url
from tests.core.test_auth import assert_error


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_schema(client, database):
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if database.is_sqlite else "postgresql")
    assert body["schema"] == head_revision() is not None


def test_readyz_is_503_on_an_unmigrated_database(database, settings_for, postgres_server, tmp_path_factory):
    backend = "sqlite" if database.is_sqlite else "postgresql"
    url = make_database_url(backend, postgres_server, tmp_path_factory, f"seamline_unmigrated_{backend}")
    fresh = Database(settings_for(url))
    try:
        with TestClient(create_app(settings_for(url), database=fresh)) as client:
            error = assert_error(client.get("/readyz"), 503, "schema_outdated")
            assert error["details"] == {"current": None, "head": head_revision()}
            assert client.get("/healthz").status_code == 200  # alive, just not ready
    finally:
        fresh.dispose()


def test_readyz_is_503_when_the_database_is_unreachable(settings_for):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2"
    with TestClient(create_app(settings_for(url))) as client:
        assert_error(client.get("/readyz"), 503, "database_unavailable")
        assert client.get("/healthz").status_code == 200


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        head, value = line.rsplit(" ", 1)
        found = dict(part.split("=", 1) for part in head[len(name) + 1 : -1].split(","))
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(value)
    return None


def test_metrics_count_requests_by_route_template(client, write_headers):
    created = client.post(
        "/v1/customers", json={"identifiers": [{"type": "email", "value": "anna@example.com"}]}, headers=write_headers
    )
    customer_id = created.json()["customer"]["id"]
    for _ in range(3):
        assert client.get(f"/v1/customers/{customer_id}", headers=write_headers).status_code == 200
    client.get("/v1/customers/999999", headers=write_headers)

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/v1/customers/{customer_id}"
    assert _sample(text, "seamline_http_requests_total", method="GET", route=route, status="200") == 3
    assert _sample(text, "seamline_http_requests_total", method="GET", route=route, status="404") == 1
    assert _sample(text, "seamline_http_requests_total", method="POST", route="/v1/customers", status="200") == 1
    # Ids never become label values, so the metric stays low-cardinality.
    assert f"/v1/customers/{customer_id}\"" not in text
    assert _sample(text, "seamline_http_request_duration_seconds_count", method="GET", route=route) == 4


def test_metrics_count_merges(client, write_headers, admin_headers):
    def upsert(*emails):
        return client.post(
            "/v1/customers",
            json={"identifiers": [{"type": "email", "value": e} for e in emails]},
            headers=write_headers,
        ).json()

    upsert("a@example.com")
    upsert("b@example.com")
    merged = upsert("a@example.com", "b@example.com")
    assert len(merged["merged_customer_ids"]) == 1
    c = upsert("c@example.com")["customer"]["id"]
    response = client.post(
        f"/v1/customers/{merged['customer']['id']}/merge", json={"customer_id": c}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    text = client.get("/metrics").text
    assert _sample(text, "seamline_profile_merges_total", reason="link") == 1
    assert _sample(text, "seamline_profile_merges_total", reason="manual") == 1


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]


def test_openapi_and_docs_are_served(client):
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/v1/customers" in paths and "/v1/customers/lookup" in paths
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_ignore_bad_credentials(client, path):
    """A probe with a stray, invalid Authorization header is still answered."""
    assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 200
