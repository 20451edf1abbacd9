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

from pydantic import BaseModel, Field


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
