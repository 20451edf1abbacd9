"""HTTP route of the next best channel (`marketing` scope): a person's channels ranked, and why."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from seamline.core.deps import AppSettings, MarketingKey, ReadSession
from seamline.core.openapi import errors
from seamline.core.schemas import PathId
from seamline.marketing.optichannel import ranking
from seamline.marketing.optichannel.schemas import ChannelRankingRead

router = APIRouter(prefix="/v1/marketing/people", tags=["marketing"], responses=errors(401, 403, 422))


@router.get("/{customer_id:int}/channels", responses=errors(404, 410))
def channels(customer_id: PathId, session: ReadSession, _: MarketingKey, settings: AppSettings,
             purpose: Literal["marketing", "service"] = "marketing") -> ChannelRankingRead:
    """The person's channels best first for a `purpose` message, as the model expects them to
    respond (docs/marketing.md, "Next best channel"): each with their own decayed evidence and
    their cohort's rate, or why it cannot reach them; and their best local hours."""
    return ChannelRankingRead(**ranking.of_person(session, settings, customer_id=customer_id, purpose=purpose))
