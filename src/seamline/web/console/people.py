"""Who a customer is, for the people at the console: their name (`customers.service.display_name`),
else the contact staff would read out (a phone, an email, a loyalty card), else "Anonymous
visitor" for a profile known only by a browser's or an app's id. A device's anonymous id (a
UUID) is never what a person is called. The template side is `_person.html` (`label`), which
formats the phone and translates the words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.errors import AppError
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import DEVICE_TYPES
from seamline.customers.models import CustomerIdentity

#: Identifier type -> how it is shown, best first: the one a person is recognised by.
CONTACT_TYPES = {"phone": "phone", "email": "email", "whatsapp": "phone", "loyalty_card": "card"}


def contact_of(identifiers: Iterable[Any]) -> dict[str, str] | None:
    """The best contact among identifiers (objects or dicts with `type` and `value`): verified
    ones first, then by CONTACT_TYPES' order, then the oldest."""
    order = list(CONTACT_TYPES)
    best: tuple[tuple[int, int, int], dict[str, str]] | None = None
    for position, identifier in enumerate(identifiers):
        get = identifier.get if isinstance(identifier, dict) else (lambda key, i=identifier: getattr(i, key, None))
        kind = CONTACT_TYPES.get(get("type"))
        if kind is None or not get("value"):
            continue
        rank = (0 if get("verified_at") else 1, order.index(get("type")), position)
        if best is None or rank < best[0]:
            best = (rank, {"kind": kind, "type": get("type"), "value": get("value")})
    return best[1] if best else None


def is_anonymous(identifiers: Iterable[Any]) -> bool:
    """Known only by device ids (or by nothing): an anonymous visitor."""
    return all((i.get("type") if isinstance(i, dict) else i.type) in DEVICE_TYPES for i in identifiers)


def brief(profile_id: int, *, traits: dict[str, Any], identifiers: list[Any]) -> dict[str, Any]:
    """{id, name, contact, anonymous, erased} for `_person.html`."""
    return {"id": profile_id, "name": customers_service.display_name(traits), "contact": contact_of(identifiers),
            "anonymous": is_anonymous(identifiers), "erased": False}


def briefs(session: Session, profile_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Briefs of the profiles behind ids (orders keep the id they were placed under: a merged id
    is shown as the profile it lives in now, an erased one as erased), read in bulk."""
    wanted = {pid for pid in profile_ids if pid}
    owner: dict[int, int] = {}
    out: dict[int, dict[str, Any]] = {}
    for pid in wanted:
        try:
            profile = resolution.canonical_profile(session, pid)
        except AppError:
            out[pid] = {"id": pid, "name": None, "contact": None, "anonymous": False, "erased": True}
            continue
        if profile.status == "erased":
            out[pid] = {"id": profile.id, "name": None, "contact": None, "anonymous": False, "erased": True}
        else:
            owner[pid] = profile.id
    live = set(owner.values())
    identities: dict[int, list[CustomerIdentity]] = {pid: [] for pid in live}
    if live:
        for row in session.scalars(select(CustomerIdentity).where(CustomerIdentity.profile_id.in_(live))
                                   .order_by(CustomerIdentity.id)):
            identities[row.profile_id].append(row)
    traits = customers_service.traits_by_profile(session, {pid: [i.id for i in rows] for pid, rows in identities.items()})
    made = {pid: brief(pid, traits={k: v["value"] for k, v in traits[pid].items()}, identifiers=identities[pid])
            for pid in live}
    out.update({pid: made[canonical] for pid, canonical in owner.items()})
    return out
