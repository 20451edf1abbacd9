"""HTTP routes of segments (`marketing` scope): define, estimate, evaluate, list members.

Creating or editing a segment evaluates it in the same request, so the answer carries its size;
after that it is kept current incrementally and refreshed periodically (docs/marketing.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from seamline.core.deps import IdempotencyKey, MarketingKey, ReadSession, WriteSession
from seamline.core.openapi import errors, replayed
from seamline.core.schemas import PathId, QueryId
from seamline.customers import service as customers_service
from seamline.marketing.segments import service
from seamline.marketing.segments.schemas import (EstimateRead, EvaluationRead, MemberPage, MemberRead, SegmentCreate,
                                                 SegmentEstimate, SegmentRead, SegmentUpdate)

router = APIRouter(prefix="/v1/marketing/segments", tags=["marketing"], responses=errors(401, 403, 422))


def _read(segment) -> SegmentRead:  # noqa: ANN001
    return SegmentRead.model_validate(segment)


@router.get("")
def list_segments(session: ReadSession, _: MarketingKey, include_archived: bool = False) -> list[SegmentRead]:
    return [_read(s) for s in service.list_segments(session, include_archived=include_archived)]


@router.post("", status_code=201, responses={**replayed(SegmentRead), **errors(409)})
def create_segment(body: SegmentCreate, session: WriteSession, key: MarketingKey, response: Response,
                   idempotency_key: IdempotencyKey = None) -> SegmentRead:
    """Create a segment and fill it (a full evaluation); a retry with the same Idempotency-Key returns it."""
    segment, new = service.create_segment(session, data=body, created_by=key.name, idempotency_key=idempotency_key)
    if new:
        service.evaluate(session, segment_id=segment.id, cause="created")
    else:
        response.status_code = 200
    return _read(segment)


@router.post("/estimate")
def estimate(body: SegmentEstimate, session: WriteSession, _: MarketingKey) -> EstimateRead:
    """How many people a rule holds for now, and a few of their ids (while a rule is edited).
    Nothing of the segments is written (the first estimate ever builds marketing's profile facts)."""
    return EstimateRead(**service.estimate(session, rule=body.rules))


@router.get("/{segment_id:int}", responses=errors(404))
def get_segment(segment_id: PathId, session: ReadSession, _: MarketingKey) -> SegmentRead:
    return _read(service.get_segment(session, segment_id))


@router.patch("/{segment_id:int}", responses=errors(404, 409))
def update_segment(segment_id: PathId, body: SegmentUpdate, session: WriteSession, _: MarketingKey) -> SegmentRead:
    """Rename, describe, or change the rule (then evaluated again at once: people who no longer
    fit exit, newcomers enter). Sending the same change again changes nothing."""
    segment = service.update_segment(session, segment_id=segment_id, data=body)
    if segment.evaluated_version != segment.version:
        service.evaluate(session, segment_id=segment.id, cause="edited")
    return _read(segment)


@router.post("/{segment_id:int}/evaluate", responses=errors(404, 409))
def evaluate(segment_id: PathId, session: WriteSession, _: MarketingKey) -> EvaluationRead:
    """Evaluate the segment over everyone now (it is also done periodically)."""
    outcome = service.evaluate(session, segment_id=segment_id, cause="refresh")
    return EvaluationRead(**outcome.__dict__)


@router.post("/{segment_id:int}/archive", responses=errors(404, 409))
def archive(segment_id: PathId, session: WriteSession, _: MarketingKey) -> SegmentRead:
    """Stop evaluating the segment and empty it; its history stays. Archiving again changes nothing."""
    segment = service.get_segment(session, segment_id)
    if segment.status != "archived":
        segment = service.archive_segment(session, segment_id=segment_id)
    return _read(segment)


@router.get("/{segment_id:int}/members", responses=errors(404))
def members(segment_id: PathId, session: ReadSession, _: MarketingKey,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100, after_id: QueryId = None) -> MemberPage:
    """Members in profile id order; pass `next_after_id` as `after_id` for the next page."""
    rows = service.members_page(session, segment_id=segment_id, limit=limit, after_id=after_id)
    return MemberPage(items=[MemberRead.model_validate(m) for m in rows],
                      next_after_id=rows[-1].profile_id if len(rows) == limit else None)


people_router = APIRouter(prefix="/v1/marketing/customers", tags=["marketing"], responses=errors(401, 403, 404, 410))


@people_router.get("/{customer_id:int}/segments")
def segments_of_customer(customer_id: PathId, session: ReadSession, _: MarketingKey) -> dict:
    """The segments a customer is in now, and their latest entries and exits."""
    profile = customers_service.get_profile(session, customer_id)
    ids = customers_service.merged_profile_ids(session, profile.id)
    return {
        "customer_id": profile.id,
        "segments": [{"id": s.id, "name": s.name, "entered_at": at} for s, at in service.segments_of(session, ids)],
        "changes": [{"segment_id": c.segment_id, "segment": name, "change": c.change, "cause": c.cause, "at": c.at}
                    for c, name in service.changes_of(session, ids, limit=50)],
    }
