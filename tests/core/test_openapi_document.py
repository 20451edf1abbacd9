"""The OpenAPI document describes every answer: each error in the one error shape, and the
statuses that stand in front of every route (key check, body limits, rate limits, erased
customers) on the operations they apply to; a 405 names the methods the document lists."""

from __future__ import annotations

import json

from seamline.app import create_app
from seamline.core.config import Settings


class _NoDatabase:
    def dispose(self) -> None:
        pass


def _document() -> dict:
    return create_app(Settings(_env_file=None, log_level="WARNING"), database=_NoDatabase()).openapi()


def test_every_error_has_the_one_error_shape():
    document = _document()
    assert "HTTPValidationError" not in json.dumps(document)  # FastAPI's 422 shape is never sent
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorRead"}, (method, path, status)


def test_the_statuses_in_front_of_every_route_are_documented():
    paths = _document()["paths"]
    lookup = paths["/v1/customers/{customer_id}"]["get"]["responses"]
    assert {"401", "403", "404", "410", "422"} <= set(lookup)  # a key, a customer that may not exist or be erased
    assert {"400", "413"} <= set(paths["/v1/customers"]["post"]["responses"])  # a body
    assert "429" in paths["/v1/track"]["post"]["responses"]  # rate-limited
    assert "429" not in paths["/v1/customers"]["post"]["responses"]
    assert "410" in paths["/v1/carts/current"]["get"]["responses"]  # a cart's owner


def test_the_collection_schema_says_what_an_event_needs():
    body = _document()["paths"]["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "event" in body["required"]
    assert body["anyOf"] == [{"required": ["userId"]}, {"required": ["anonymousId"]}]
    batch = _document()["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["required"] == ["batch"]


def test_405_names_every_documented_method(client):
    customers = client.request("OPTIONS", "/v1/customers")
    assert customers.status_code == 405 and customers.json()["error"]["code"] == "method_not_allowed"
    assert set(customers.headers["allow"].split(", ")) == {"GET", "POST"}  # two routes, one path
    # A literal path beside a template (/v1/stock/{sku}) is that path.
    assert client.request("OPTIONS", "/v1/stock/imports").headers["allow"] == "POST"
