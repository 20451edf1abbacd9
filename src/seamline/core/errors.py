"""One error shape everywhere: {"error": {"code", "message", "details"}}.

Services raise `AppError` subclasses; the handlers here turn them, FastAPI's validation errors
and Starlette's HTTP errors into that shape with the right status.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unprocessable(AppError):
    status_code = 422
    code = "validation_error"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class TooManyRequests(AppError):
    """429; an int `details["retry_after_seconds"]` is also sent as the `Retry-After` header."""

    status_code = 429
    code = "too_many_requests"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def describe_error(exc: BaseException) -> str:
    """A short text of an error, to keep on a row that people read (a failed inbound message, set-aside
    work). A database error is the driver's first line only: SQLAlchemy's text carries the whole SQL
    statement and its parameters (customers' data), which belong in the log with the traceback."""
    if isinstance(exc, AppError):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, StatementError):
        cause = exc.orig if exc.orig is not None else exc
        first = next((line for line in str(cause).splitlines() if line.strip()), "")
        return f"{type(cause).__name__}: {first}"[:500]
    return f"{type(exc).__name__}: {exc}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if exc.status_code == 429 and isinstance(exc.details.get("retry_after_seconds"), int):
            headers = {"Retry-After": str(exc.details["retry_after_seconds"])}  # every 429 that knows when
        return JSONResponse(
            error_body(exc.code, exc.message, _json_safe(exc.details)), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            problems.append(
                {
                    "location": [str(part) for part in err.get("loc", ())],
                    "message": err.get("msg", ""),
                    "type": err.get("type", ""),
                }
            )
        first = problems[0] if problems else {"location": [], "message": "invalid request"}
        where = ".".join(first["location"])
        return JSONResponse(
            error_body("validation_error", f"{where}: {first['message']}" if where else first["message"], {"errors": problems}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allow = allowed_methods(request, (headers or {}).get("Allow"))
            headers = {**(headers or {}), **({"Allow": allow} if allow else {})}
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request, fallback: str | None) -> str | None:
    """The methods the API documents at this request's path. Starlette's own
    405 names only the first route's, and a path such as /v1/customers has its GET and its POST on
    two routes. Pages outside the API document keep Starlette's answer."""
    paths = request.app.openapi().get("paths", {})
    # A path the document names literally (/v1/stock/imports) is that path, not a value of a
    # template beside it (/v1/stock/{sku}) that Starlette may have chosen.
    # `path_format`: the template without convertors ({id:int} is {id} in the document)
    route = request.scope.get("route")
    template = request.url.path if request.url.path in paths else getattr(route, "path_format", getattr(route, "path", None))
    documented = paths.get(template, {}) if template else {}
    methods = [method.upper() for method in documented if method.upper() in _METHODS]
    return ", ".join(methods) if methods else fallback


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


class TransactionConflict(Exception):
    """What a transaction read changed before it could lock it: roll back and run it again."""


class Gone(AppError):
    status_code = 410
    code = "gone"
