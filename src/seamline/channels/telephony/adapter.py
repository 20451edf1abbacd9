"""The `phone` channel of the inbox: call logs and callback tasks live in conversations on it.

Calls are made from the agent's phone, not sent by Seamline: a written reply in a phone
conversation must choose a written channel (SMS, a messenger, email)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from seamline.core.errors import Unprocessable
from seamline.inbox.adapters import ChannelAdapter

CHANNEL = "phone"


class PhoneAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "phone_call"
    sends = False

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        raise Unprocessable("Calls are made from the agent's phone; reply in writing on another channel (channel: sms, ...)",
                            code="channel_cannot_send", details={"channel": CHANNEL})


ADAPTER = PhoneAdapter()
