"""Web push's API: the VAPID public key for the browser, and subscriptions registered by a
trusted party (a server's API key with the `write` scope; the demo storefront does it for its
logged-in customer). The browser's public write key never attaches a subscription to anyone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from seamline.channels.webpush import adapter, service
from seamline.channels.webpush.schemas import (
    VapidPublicKeyRead,
    WebPushSubscriptionCreate,
    WebPushSubscriptionList,
    WebPushSubscriptionRead,
)
from seamline.core.deps import AppSettings, ReadKey, ReadSession, WriteKey, WriteSession
from seamline.core.errors import Conflict
from seamline.core.openapi import errors, replayed
from seamline.core.schemas import PathId, query_id

router = APIRouter(prefix="/v1/channels/webpush", tags=["inbox"])


@router.get("/vapid-public-key", response_model=VapidPublicKeyRead,
            responses=errors(409, notes={409: "`channel_not_configured` (no `inbox_webpush_vapid_private_key`)"}))
async def vapid_public_key(settings: AppSettings) -> dict[str, Any]:
    """The key a browser subscribes with (`pushManager.subscribe({userVisibleOnly: true,
    applicationServerKey})`). Public: it is what every visitor's browser is given."""
    key = adapter.public_key(settings) if adapter.ADAPTER.configured(settings) else None
    if key is None:
        raise Conflict("Web push is not configured", code="channel_not_configured", details={"channel": adapter.CHANNEL})
    return {"public_key": key}


@router.post("/subscriptions", status_code=201, response_model=WebPushSubscriptionRead, responses={
    **replayed(WebPushSubscriptionRead),
    **errors(422, notes={422: "`endpoint_not_allowed` (not a push service of `inbox_webpush_endpoint_hosts`), "
                              "`invalid_subscription_keys`"})})
def register_subscription(body: WebPushSubscriptionCreate, session: WriteSession, settings: AppSettings, response: Response,
                          _: WriteKey) -> dict[str, Any]:
    """Attach a browser's subscription (`PushSubscription.toJSON()`) to a customer: a server's
    call, with a `write` key, for the customer its own login vouches for. The same endpoint again
    keeps one row (200), moved to this customer if it was another's: the newest registration
    wins."""
    sub = body.subscription
    row, new = service.register(session, settings=settings, customer_id=body.customer_id, endpoint=sub.endpoint,
                                p256dh=sub.keys.p256dh, auth=sub.keys.auth, user_agent=body.user_agent)
    if not new:
        response.status_code = 200
    session.flush()
    return service.view(row)


@router.get("/subscriptions", response_model=WebPushSubscriptionList)
def list_subscriptions(customer_id: Annotated[int, query_id()], session: ReadSession, _: ReadKey) -> dict[str, Any]:
    """The customer's subscriptions (across merged profiles), revoked ones too, newest first (at most 100)."""
    return {"items": [service.view(row) for row in service.of_customer(session, customer_id)]}


@router.delete("/subscriptions/{subscription_id}", status_code=204, response_class=Response,
               responses=errors(404, notes={404: "`subscription_not_found`"}))
def remove_subscription(subscription_id: PathId, session: WriteSession, _: WriteKey) -> Response:
    """Stop sending to a browser (the customer turned notifications off): the subscription is
    revoked; registering its endpoint again brings it back."""
    service.remove(session, subscription_id)
    return Response(status_code=204)
