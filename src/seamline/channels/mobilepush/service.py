"""App install tokens: registered by the app's backend, revoked on FCM's word."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from seamline.channels import push
from seamline.channels.mobilepush.models import MobilePushDevice
from seamline.core.errors import NotFound


def register(session: Session, *, customer_id: int, token: str, platform: str,
             app_id: str | None = None) -> tuple[MobilePushDevice, bool]:
    """Attach a token to a customer; (row, created). The same token again keeps its one row,
    moved to this customer if it was another's (the device changed hands)."""
    return push.register(session, MobilePushDevice, key="token", value=token, customer_id=customer_id,
                         fields={"platform": platform, "app_id": app_id})


def remove(session: Session, device_id: int) -> MobilePushDevice:
    row = push.remove(session, MobilePushDevice, device_id)
    if row is None:
        raise NotFound(f"Mobile push device {device_id} not found", code="device_not_found")
    return row


def of_customer(session: Session, customer_id: int) -> list[MobilePushDevice]:
    return push.of_customer(session, MobilePushDevice, customer_id)


def view(row: MobilePushDevice) -> dict[str, Any]:
    """What the API shows: never the token itself (it addresses the device)."""
    return {"id": row.id, "customer_id": row.customer_id, "platform": row.platform, "app_id": row.app_id,
            "created_at": row.created_at, "updated_at": row.updated_at, "revoked_at": row.revoked_at,
            "revoked_reason": row.revoked_reason}


def _export_view(row: MobilePushDevice) -> dict[str, Any]:
    return {**view(row), "token": row.token}


#: The privacy export's and the erasure's section (registered by the composition root).
export = push.exporter(MobilePushDevice, _export_view)
erase = push.eraser(MobilePushDevice)
