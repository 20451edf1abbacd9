"""Running a console action: the service's work in one write transaction; a domain error (an
AppError: out of stock, not found, already picked up...) becomes a message for the page instead
of a JSON error, and nothing of the action is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from seamline.core.errors import AppError
from seamline.web.console.deps import database

T = TypeVar("T")


def attempt(request: Request, work: Callable[[Session], T]) -> tuple[T | None, str | None]:
    """(result, None) after a commit, or (None, the error's message) after a rollback."""
    try:
        return database(request).run_write(work), None
    except AppError as exc:
        return None, exc.message


def read(request: Request, work: Callable[[Session], T]) -> T:
    with database(request).read() as session:
        return work(session)


def app_state(request: Request) -> Any:  # noqa: ANN401 - the FastAPI app's state (settings, rules, sections...)
    return request.app.state
