"""A person's channel ranking as the console and the API show it: what the outbound can reach
(inbox), their time zone (messages) and the model's view (optichannel.service), put together."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.customers import service as customers_service
from seamline.inbox import outbound
from seamline.marketing.messages import service as messages
from seamline.marketing.optichannel import service


def of_person(session: Session, settings: Settings, *, customer_id: int, purpose: str = "marketing") -> dict[str, Any]:
    person = customers_service.get_profile(session, customer_id)  # a merged id leads to the live profile
    reachable = outbound.reachability(session, settings=settings, customer_id=person.id, purpose=purpose)
    zone = messages.person_of(session, settings, person.id)["timezone"]
    return {**service.explain(session, settings, customer_id=person.id, reachable=reachable, zone=zone), "purpose": purpose}
