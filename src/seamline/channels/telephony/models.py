"""Telephony's table: the calls reported by the PBX, and callback tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class Call(Base):
    """A phone call reported by the PBX or cloud telephony (CTI), and a callback task: a missed
    call or a website "call me back" request waits in the inbox queue as a conversation on the
    `phone` channel until an agent calls back and resolves it."""

    __tablename__ = "telephony_call"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The PBX's call id (callback requests: "callback:<id>")
    provider_call_id: Mapped[str] = mapped_column(String(255), unique=True)
    #: in, out, callback (a request from the website)
    direction: Mapped[str] = mapped_column(String(8))
    #: The customer's number (E.164) and the business number or line they called
    customer_phone: Mapped[str] = mapped_column(String(32), index=True)
    line: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: ringing, answered, ended, missed, requested (callback), done
    status: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True, index=True)
    agent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_agent.id"), nullable=True)
    extension: Mapped[str | None] = mapped_column(String(32), nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_conversation.id"), nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_message.id"), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recording_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    #: Callback requests: the time the customer asked for, their comment, the page
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
