from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from seamline.core.errors import error_body
from seamline.core.migrations import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    database = request.app.state.database
    try:
        database.ping()
        with database.read_engine.connect() as connection:
            current = current_revision(connection)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return JSONResponse(error_body("database_unavailable", str(exc)[:300]), status_code=503)
    head = head_revision()
    if current != head:
        return JSONResponse(
            error_body("schema_outdated", "Run `seamline db upgrade`", {"current": current, "head": head}),
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": database.dialect, "schema": current})
