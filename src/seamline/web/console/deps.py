"""Who is signed in, what they may do, and the CSRF check: dependencies of every console route.

A console request is authenticated by the `sl_console` cookie (HttpOnly, SameSite=Lax). Every
request that changes something must echo the session's CSRF token, as the `X-CSRF-Token` header
(HTMX sends it for the whole page, see layout.html) or a `csrf` form field; SameSite alone does
not cover same-site subdomains or old browsers.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from seamline.core.db import Database
from seamline.core.schemas import MAX_ID
from seamline.web.staff import service as staff_service
from seamline.web.staff.models import StaffUser

COOKIE = "sl_console"

#: A row id in a console URL: out of the database's integer range is a 422, not a driver error.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


@dataclass
class Staff:
    """The signed-in person of a request (detached copies: safe outside the session)."""

    user: StaffUser
    csrf: str
    token: str

    def can(self, permission: str) -> bool:
        return staff_service.can(self.user, permission)


class LoginRequired(Exception):
    """Raised by `current_staff`; answered with a redirect to the login page (HX-Redirect for HTMX)."""


class PermissionDenied(Exception):
    """Answered with the 403 page: a role without the permission, checked on the server."""


def database(request: Request) -> Database:
    return request.app.state.database


def current_staff(request: Request) -> Staff:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    with database(request).read() as session:
        found = staff_service.session_of(session, token)
        if found is None:
            raise LoginRequired()
        user, row = found
        session.expunge(user)
        staff = Staff(user=user, csrf=row.csrf, token=token)
    request.state.staff = staff
    return staff


def require(permission: str):
    def check(staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
        if not staff.can(permission):
            raise PermissionDenied(permission)
        return staff

    return check


async def csrf_protect(request: Request, staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return staff
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, staff.csrf):
        raise HTTPException(403, "CSRF token missing or wrong")
    return staff


def signed_in():
    """Any signed-in person (with the CSRF token echoed for writes)."""
    return Depends(csrf_protect)


def permitted(permission: str):
    """A route's dependency: signed in, allowed `permission`, and (for writes) the CSRF token echoed."""

    allowed = require(permission)

    async def check(request: Request, staff: Staff = Depends(allowed)) -> Staff:  # noqa: B008 - a closure: no Annotated string
        return await csrf_protect(request, staff)

    return Depends(check)
