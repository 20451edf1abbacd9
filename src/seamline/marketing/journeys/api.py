"""HTTP routes of journeys (`marketing` scope): define (or start from a ready-made one), start,
pause, archive, enroll by API, and see where each person is and why they left."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from seamline.core.deps import AppSettings, IdempotencyKey, MarketingKey, ReadSession, WriteSession
from seamline.core.openapi import errors, replayed
from seamline.core.schemas import PathId, QueryId
from seamline.marketing.journeys import library, results, service
from seamline.marketing.journeys.models import MarketingJourney
from seamline.marketing.journeys.schemas import (EnrollIn, EnrollmentRead, EnrollOutcome, JourneyCreate, JourneyFromTemplate,
                                                 JourneyRead, JourneyResults, JourneyUpdate, StepRead)
from seamline.marketing.reactor import ADVANCE

router = APIRouter(prefix="/v1/marketing", tags=["marketing"], responses=errors(401, 403, 422))


def _read(session, journey: MarketingJourney, *, counts: bool = False) -> JourneyRead:  # noqa: ANN001
    read = JourneyRead.model_validate(journey)
    if counts:
        read.counts = service.counts(session, journey.id)
    return read


@router.get("/journey-templates")
def journey_templates(_: MarketingKey) -> list[dict]:
    """The ready-made journeys (`POST /v1/marketing/journeys` with `template` makes one)."""
    return [{"template": name, "name": ready.name, "description": ready.description, "needs_promotion": ready.needs_promotion,
             "messages": sorted(ready.messages)} for name, ready in library.READY.items()]


@router.get("/journeys")
def list_journeys(session: ReadSession, _: MarketingKey, include_archived: bool = False) -> list[JourneyRead]:
    return [_read(session, j) for j in service.list_journeys(session, include_archived=include_archived)]


@router.post("/journeys", status_code=201, responses={**replayed(JourneyRead), **errors(409)})
def create_journey(body: JourneyCreate, session: WriteSession, key: MarketingKey, response: Response,
                   idempotency_key: IdempotencyKey = None) -> JourneyRead:
    """Create a journey as a draft from its definition. A retry with the same Idempotency-Key
    returns it."""
    journey, new = service.create_journey(session, name=body.name, description=body.description, definition=body.definition,
                                          created_by=key.name, idempotency_key=idempotency_key)
    return _created(session, journey, new, response)


@router.post("/journeys/from-template", status_code=201, responses={**replayed(JourneyRead), **errors(409)})
def create_journey_from_template(body: JourneyFromTemplate, session: WriteSession, key: MarketingKey, settings: AppSettings,
                                 response: Response, idempotency_key: IdempotencyKey = None) -> JourneyRead:
    """Create a draft from a ready-made journey (`GET /journey-templates`), with its message
    templates in Russian and English. A retry with the same Idempotency-Key returns it."""
    journey, new = service.create_from_library(session, data=body, created_by=key.name, locale=settings.marketing_locale,
                                               idempotency_key=idempotency_key)
    return _created(session, journey, new, response)


def _created(session, journey, new: bool, response: Response) -> JourneyRead:
    if not new:
        response.status_code = 200
    return _read(session, journey)


@router.get("/journeys/{journey_id:int}", responses=errors(404))
def get_journey(journey_id: PathId, session: ReadSession, _: MarketingKey) -> JourneyRead:
    """The journey, with how many people are at each step and why those who left did."""
    return _read(session, service.get_journey(session, journey_id), counts=True)


@router.get("/journeys/{journey_id:int}/results", responses=errors(404))
def journey_results(journey_id: PathId, session: ReadSession, _: MarketingKey) -> JourneyResults:
    """What the journey achieved: people who entered, are still in it and converted (with the
    orders' revenue); each send step's messages (queued, skipped by reason, delivered, failed,
    opened, clicked, unsubscribed); people past each step; and each A/B arm against the holdout."""
    return JourneyResults.model_validate(results.results(session, journey_id))


@router.patch("/journeys/{journey_id:int}", responses=errors(404, 409))
def update_journey(journey_id: PathId, body: JourneyUpdate, session: WriteSession, _: MarketingKey) -> JourneyRead:
    """A new definition is a new version: people already in the journey finish the version they
    entered with; people entering from now on get the new one."""
    return _read(session, service.update_journey(session, journey_id=journey_id, name=body.name, description=body.description,
                                                 definition=body.definition))


def _status(session, journey_id: int, action: str) -> JourneyRead:  # noqa: ANN001
    journey = service.set_status(session, journey_id=journey_id, action=action)
    if journey.status == "active":
        ADVANCE.enqueue(session, {}, dedupe_key="marketing:advance", coalesce=True)
    return _read(session, journey)


@router.post("/journeys/{journey_id:int}/start", responses=errors(404, 409))
def start(journey_id: PathId, session: WriteSession, _: MarketingKey) -> JourneyRead:
    """People enter (on its trigger) and move; after a pause, waits that ended meanwhile run now.
    Starting a running journey changes nothing."""
    return _status(session, journey_id, "start")


@router.post("/journeys/{journey_id:int}/pause", responses=errors(404, 409))
def pause(journey_id: PathId, session: WriteSession, _: MarketingKey) -> JourneyRead:
    """Nobody enters and nobody moves until it starts again; everyone keeps their place."""
    return _status(session, journey_id, "pause")


@router.post("/journeys/{journey_id:int}/archive", responses=errors(404, 409))
def archive(journey_id: PathId, session: WriteSession, _: MarketingKey) -> JourneyRead:
    """Everyone in it leaves (`archived`); it can no longer be edited or started."""
    return _status(session, journey_id, "archive")


@router.post("/journeys/{journey_id:int}/enroll", responses=errors(404, 409, 410))
def enroll(journey_id: PathId, body: EnrollIn, session: WriteSession, _: MarketingKey) -> EnrollOutcome:
    """Put a customer into an active journey now (its audience and re-entry rules apply). Sending
    it again while they are in it changes nothing (`reason`: already_in)."""
    journey = service.get_journey(session, journey_id)
    enrollment, reason = service.enroll(session, journey=journey, profile_id=body.customer_id, context=body.context)
    if enrollment is not None:
        ADVANCE.enqueue(session, {}, dedupe_key="marketing:advance", coalesce=True)
    return EnrollOutcome(enrolled=enrollment is not None, reason=reason,
                         enrollment=EnrollmentRead.model_validate(enrollment) if enrollment is not None else None)


@router.get("/journeys/{journey_id:int}/enrollments", responses=errors(404))
def enrollments(journey_id: PathId, session: ReadSession, _: MarketingKey, status: Literal["waiting", "done"] | None = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50, before_id: QueryId = None) -> list[EnrollmentRead]:
    """People in (or through) the journey, newest first: their step, until when they wait, why they left."""
    return [EnrollmentRead.model_validate(e) for e in
            service.enrollments_page(session, journey_id=journey_id, status=status, limit=limit, before_id=before_id)]


@router.get("/enrollments/{enrollment_id:int}", responses=errors(404))
def enrollment(enrollment_id: PathId, session: ReadSession, _: MarketingKey) -> EnrollmentRead:
    """One person's way through a journey, each step passed with what came of it."""
    found = EnrollmentRead.model_validate(service.get_enrollment(session, enrollment_id))
    found.steps = [StepRead.model_validate(s) for s in service.steps_of(session, enrollment_id)]
    return found
