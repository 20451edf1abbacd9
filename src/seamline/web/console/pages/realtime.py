"""The console's WebSocket: the inbox's live notices for the signed-in person (by cookie)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from seamline.inbox.api import serve_agent_socket
from seamline.web.console.deps import COOKIE
from seamline.web.staff import service as staff_service

router = APIRouter()


def _staff_topics(app, token: str | None) -> tuple[list[str], int | None] | None:  # noqa: ANN001
    if not token:
        return None
    with app.state.database.read() as session:
        found = staff_service.session_of(session, token)
    if found is None:
        return None
    user = found[0]
    if not staff_service.can(user, "inbox"):
        return None
    return ["inbox"] + ([f"agent:{user.agent_id}"] if user.agent_id else []), user.agent_id


@router.websocket("/console/ws")
async def console_socket(websocket: WebSocket) -> None:
    # Browsers send cookies on WebSocket handshakes; a page from another origin could open one
    # with them, so the Origin must be this console's own.
    origin, host = websocket.headers.get("origin"), websocket.headers.get("host")
    if origin is not None and origin.split("://", 1)[-1] != host:
        await websocket.close(code=4401)  # the handshake is refused
        return
    allowed = await run_in_threadpool(_staff_topics, websocket.app, websocket.cookies.get(COOKIE))
    if allowed is None:
        # Signed out, or a role without the inbox: accepted only to say so with a close code
        # (a refused handshake reaches the page as 1006, "try again"); console.js stops on 4401.
        await websocket.accept()
        await websocket.close(code=4401, reason="not signed in or no inbox")
        return
    await serve_agent_socket(websocket, *allowed)
