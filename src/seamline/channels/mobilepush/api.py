"""Mobile push's API: app install tokens registered by the app's backend (an API key with the
`write` scope), never by the app with a public key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from seamline.channels.mobilepush import service
from seamline.channels.mobilepush.schemas import MobilePushDeviceCreate, MobilePushDeviceList, MobilePushDeviceRead
from seamline.core.deps import ReadKey, ReadSession, WriteKey, WriteSession
from seamline.core.openapi import errors, replayed
from seamline.core.schemas import PathId, query_id

router = APIRouter(prefix="/v1/channels/mobilepush", tags=["inbox"])


@router.post("/devices", status_code=201, response_model=MobilePushDeviceRead, responses=replayed(MobilePushDeviceRead))
def register_device(body: MobilePushDeviceCreate, session: WriteSession, response: Response, _: WriteKey) -> dict[str, Any]:
    """Attach an app install's FCM token to a customer, for the customer the app's login vouches
    for. The same token again keeps one row (200), moved to this customer if it was another's:
    the newest registration wins."""
    row, new = service.register(session, customer_id=body.customer_id, token=body.token, platform=body.platform,
                                app_id=body.app_id)
    if not new:
        response.status_code = 200
    session.flush()
    return service.view(row)


@router.get("/devices", response_model=MobilePushDeviceList)
def list_devices(customer_id: Annotated[int, query_id()], session: ReadSession, _: ReadKey) -> dict[str, Any]:
    """The customer's devices (across merged profiles), revoked ones too, newest first (at most 100)."""
    return {"items": [service.view(row) for row in service.of_customer(session, customer_id)]}


@router.delete("/devices/{device_id}", status_code=204, response_class=Response,
               responses=errors(404, notes={404: "`device_not_found`"}))
def remove_device(device_id: PathId, session: WriteSession, _: WriteKey) -> Response:
    """Stop sending to an app install (the customer logged out of the app): the device is
    revoked; registering its token again brings it back."""
    service.remove(session, device_id)
    return Response(status_code=204)
