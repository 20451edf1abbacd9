"""What every provider webhook endpoint does the same way: read the body within a size limit,
and accept a request that may carry both messages and delivery statuses."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from seamline.core.deps import get_database
from seamline.core.errors import PayloadTooLarge
from seamline.inbox import delivery
from seamline.inbox.adapters import ChannelAdapter


async def provider_body(request: Request, max_bytes: int) -> bytes:
    """The raw body (signatures cover its exact bytes); 413 when it is larger than `max_bytes`."""
    body = await request.body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"A request may be at most {max_bytes // 1024} KB", code="payload_too_large",
                              details={"max_bytes": max_bytes})
    return body


def stored_view(accepted: list[delivery.Accepted]) -> list[dict[str, Any]]:
    return [{"duplicate": a.duplicate, "status": a.status, "message_id": a.message_id, "error": a.error} for a in accepted]


async def accept_messages(request: Request, adapter: ChannelAdapter, body: bytes) -> list[delivery.Accepted]:
    """Verify the provider and store its message parts for processing (in a worker thread)."""
    return await run_in_threadpool(delivery.accept, get_database(request), settings=request.app.state.settings,
                                   adapter=adapter, headers=dict(request.headers), body=body)


async def accept_messages_and_statuses(request: Request, adapter: ChannelAdapter, body: bytes) -> dict[str, Any]:
    """Messages as `accept_messages`, then the delivery statuses in the same body (forward only)."""
    accepted = await accept_messages(request, adapter, body)
    statuses = adapter.parse_statuses(body)
    changed = await run_in_threadpool(delivery.apply_statuses, get_database(request), channel=adapter.name,
                                      statuses=statuses) if statuses else 0
    return {"messages": stored_view(accepted), "statuses": len(statuses), "statuses_applied": changed}
