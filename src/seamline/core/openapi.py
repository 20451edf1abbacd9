"""How routes document their errors in the OpenAPI document.

Every error has the shape of `core/errors.py`: `{"error": {"code", "message", "details"}}`.
A router lists the statuses each route can answer besides success with `errors(...)`, so the
document describes every response a client may get, not FastAPI's default 422 shape (which
Seamline never sends):

    router = APIRouter(responses=errors(401, 403, 422))          # what every route may answer
    @router.post("/things/{id}/archive", responses=errors(404, 409, notes={409: "`already_archived`"}))
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `conversation_not_found`")
    message: str = Field(description="For people; may change")
    details: dict[str, Any] = Field(description="What the code says more precisely; for `validation_error`, `errors` "
                                                "lists each problem with its `location`, `message` and `type`")


class ErrorRead(BaseModel):
    """Every 4xx (and 502) of the API."""

    error: ErrorBody


#: What each status means, unless a route says more.
MEANINGS = {
    400: "Bad request (a body that is not valid JSON, ...)",
    401: "No API key, or one that is unknown or revoked (`missing_api_key`, `invalid_api_key`, `api_key_revoked`)",
    403: "The key lacks the scope this route needs (`insufficient_scope`)",
    404: "Not found",
    409: "Conflicts with the current state",
    410: "Gone: the customer was erased (`customer_erased`)",
    413: "The body is larger than the route accepts (`payload_too_large`)",
    415: "Unsupported content type",
    422: "Invalid input: `validation_error` (every problem in `details.errors`, a NUL character included) "
         "or a rule of the domain",
    429: "Too many requests; `Retry-After` says when to come back",
    502: "A provider behind the route could not be reached",
}


def errors(*statuses: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these error statuses, each in the error shape; `notes` adds, per status,
    the codes this route answers with it."""
    notes = notes or {}
    return {
        status: {"model": ErrorRead,
                 "description": MEANINGS.get(status, "Error") + (f": {notes[status]}" if status in notes else "")}
        for status in statuses
    }


def replayed(model: type[BaseModel] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a create that may be sent again: the 200 of a replay (the same
    `Idempotency-Key`, or the same natural key), answered with the first result."""
    response: dict[str, Any] = {"description": "Sent before (the same `Idempotency-Key`): the first answer again; "
                                               "nothing is done twice"}
    return {200: {**response, "model": model} if model else response}


#: What a provider's webhook answers a caller that is not the provider.
PROVIDER_ERRORS = errors(401, 403, notes={
    401: "the provider's signature or secret is missing or wrong (`invalid_signature`)",
    403: "a subscription check with the wrong verification token (`invalid_verify_token`)"})
#: What the browser's own routes (collection, web chat) answer a wrong key or chat token.
BROWSER_ERRORS = errors(401, 403, notes={
    401: "no write key or chat token, or an unknown one (`missing_api_key`, `invalid_api_key`, `invalid_chat_token`)",
    403: "a key that is not a source's write key (`not_a_write_key`)"})

# --- what every operation may answer, added to the document in one place -----------------------
# Some answers do not depend on the route but on what stands in front of every route: the key
# check, the NUL and body-size guards, the rate limits, the JSON parser. Routes need not repeat
# them; `complete_document` adds each to the operations it applies to.

_BODY_METHODS = frozenset({"post", "put", "patch", "delete"})


def _error_response(status: int) -> dict[str, Any]:
    return {"description": MEANINGS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}}}


def _names_a_customer(path: str, operation: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether the request names a customer (path, query or body `customer_id`; a cart's owner)."""
    if "{customer_id}" in path or path.startswith("/v1/carts/"):
        return True
    if any(parameter.get("name") == "customer_id" for parameter in operation.get("parameters", [])):
        return True
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in body:
        body = schemas.get(body["$ref"].rsplit("/", 1)[-1], {})
    return "customer_id" in body.get("properties", {})


def common_errors(method: str, path: str, operation: dict[str, Any], schemas: dict[str, Any] | None = None) -> list[int]:
    """The statuses `operation` may answer whatever its route does."""
    from seamline.core.limits import group_of  # the limiter's own rule, not a copy of it

    statuses = [422]  # a NUL character or a malformed value anywhere in the request
    if operation.get("security"):
        statuses += [401, 403]
    if "{" in path:
        statuses.append(404)  # what the path names may not exist
    if method in _BODY_METHODS and "requestBody" in operation:
        statuses += [400, 413]  # a body that does not parse; a body over the limit
    if group_of(method.upper(), path):
        statuses.append(429)
    if _names_a_customer(path, operation, schemas or {}):
        statuses += [404, 410]  # the customer may not exist, or was erased
    return statuses


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """Every error in the one error shape (FastAPI's `HTTPValidationError` is never sent), and the
    statuses of `common_errors` on each operation that lacks them."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    _, definitions = models_json_schema([(ErrorRead, "serialization")], ref_template="#/components/schemas/{model}")
    for name, schema in definitions["$defs"].items():
        schemas.setdefault(name, schema)
    for schema in schemas.values():
        _closed_pattern_properties(schema)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, response in list(responses.items()):
                schemas_of = [content.get("schema", {}).get("$ref", "") for content in response.get("content", {}).values()]
                if any(ref.endswith("/HTTPValidationError") for ref in schemas_of):
                    responses[status] = _error_response(int(status))
                elif any(ref.endswith("/ErrorRead") for ref in schemas_of):
                    # Errors are JSON even where the route's success is not (a webhook's plain text).
                    responses[status] = {**_error_response(int(status)), "description": response["description"]}
            for status in common_errors(method, path, operation, schemas):
                responses.setdefault(str(status), _error_response(status))
    return document


def _closed_pattern_properties(schema: Any) -> None:
    """A dict whose keys have a pattern (`dict[CategoryCode, float]`) refuses other keys; pydantic
    writes `patternProperties` but leaves `additionalProperties` open, which says the opposite."""
    if isinstance(schema, dict):
        if "patternProperties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _closed_pattern_properties(value)
    elif isinstance(schema, list):
        for item in schema:
            _closed_pattern_properties(item)


def install_complete_document(app: Any) -> None:
    """`app.openapi()` answers the completed document (built once, like FastAPI's own)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = complete_document(build())
        return app.openapi_schema

    app.openapi = openapi


def _takes_many(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_takes_many(option) for option in schema.get("anyOf", []))


def one_value_per_query_parameter(request: HTTPConnection) -> None:
    """An app-wide dependency: a query parameter the document gives one value (`?status=open`)
    given twice (`?status=open&status=closed`) is a 422 naming it, not silently the last one.
    Routes outside the document (console pages) are left alone."""
    keys = [key for key, _ in request.query_params.multi_items()]
    if request.scope["type"] != "http" or len(keys) == len(set(keys)):
        return
    route = request.scope.get("route")
    operation = request.app.openapi().get("paths", {}).get(getattr(route, "path", None), {}).get(request.scope["method"].lower())
    if not operation:
        return
    single = {parameter["name"] for parameter in operation.get("parameters", [])
              if parameter.get("in") == "query" and not _takes_many(parameter.get("schema", {}))}
    repeated = sorted({key for key in keys if keys.count(key) > 1} & single)
    if repeated:
        raise RequestValidationError([
            {"loc": ("query", name), "msg": "given more than once; this parameter takes one value", "type": "repeated_parameter"}
            for name in repeated
        ])
