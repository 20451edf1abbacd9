"""HTTP routes of campaigns (`marketing` scope): draft, schedule, cancel, results."""

from __future__ import annotations

from fastapi import APIRouter, Response

from seamline.core.deps import IdempotencyKey, MarketingKey, ReadSession, WriteSession
from seamline.core.openapi import errors, replayed
from seamline.core.schemas import PathId
from seamline.marketing.campaigns import service
from seamline.marketing.campaigns.models import MarketingCampaign
from seamline.marketing.campaigns.schemas import CampaignCreate, CampaignRead
from seamline.marketing.reactor import CAMPAIGNS

router = APIRouter(prefix="/v1/marketing/campaigns", tags=["marketing"], responses=errors(401, 403, 422))


def _read(session, campaign: MarketingCampaign, *, results: bool = False) -> CampaignRead:  # noqa: ANN001
    read = CampaignRead.model_validate(campaign)
    if results:
        read.results = service.results(session, campaign)
    return read


@router.get("")
def list_campaigns(session: ReadSession, _: MarketingKey) -> list[CampaignRead]:
    return [_read(session, c) for c in service.list_campaigns(session)]


@router.post("", status_code=201, responses=replayed(CampaignRead))
def create_campaign(body: CampaignCreate, session: WriteSession, key: MarketingKey, response: Response,
                    idempotency_key: IdempotencyKey = None) -> CampaignRead:
    """A draft campaign: a message (or A/B variants) to a segment's members, with an optional
    holdout, a start time, a local time of day, a pace. A retry with the same Idempotency-Key returns it."""
    campaign, new = service.create_campaign(session, data=body, created_by=key.name, idempotency_key=idempotency_key)
    if not new:
        response.status_code = 200
    return _read(session, campaign)


@router.get("/{campaign_id:int}", responses=errors(404))
def get_campaign(campaign_id: PathId, session: ReadSession, _: MarketingKey) -> CampaignRead:
    """The campaign and its results per variant and holdout: people, messages queued, sent,
    delivered, failed, opened, clicked, skipped by reason, converted, revenue, the lift over the holdout."""
    return _read(session, service.get_campaign(session, campaign_id), results=True)


@router.post("/{campaign_id:int}/schedule", responses=errors(404, 409))
def schedule(campaign_id: PathId, session: WriteSession, _: MarketingKey) -> CampaignRead:
    """Send it at `send_at` (now when it has none). Scheduling again changes nothing."""
    campaign = service.schedule(session, campaign_id=campaign_id)
    CAMPAIGNS.enqueue(session, {}, dedupe_key="marketing:campaigns", coalesce=True)
    return _read(session, campaign)


@router.post("/{campaign_id:int}/cancel", responses=errors(404, 409))
def cancel(campaign_id: PathId, session: WriteSession, _: MarketingKey) -> CampaignRead:
    """Nobody else gets it (those already sent to stay sent). Cancelling again changes nothing."""
    return _read(session, service.cancel(session, campaign_id=campaign_id))
