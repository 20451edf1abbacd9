"""HTTP routes of marketing templates (`marketing` scope): write them, preview them with a real
profile, send a test."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from seamline.core.deps import AppSettings, IdempotencyKey, MarketingKey, ReadSession, WriteSession
from seamline.core.openapi import errors, replayed
from seamline.core.schemas import PathId
from seamline.customers import service as customers_service
from seamline.marketing.messages import service
from seamline.marketing.messages.schemas import (PreviewIn, PreviewRead, TemplateCreate, TemplateRead, TemplateUpdate, TestSendIn,
                                                 TestSendRead)

router = APIRouter(prefix="/v1/marketing/templates", tags=["marketing"], responses=errors(401, 403, 422))


@router.get("")
def list_templates(session: ReadSession, _: MarketingKey) -> list[TemplateRead]:
    return [TemplateRead.model_validate(t) for t in service.list_templates(session)]


@router.post("", status_code=201, responses=replayed(TemplateRead))
def create_template(body: TemplateCreate, session: WriteSession, key: MarketingKey, response: Response,
                    idempotency_key: IdempotencyKey = None) -> TemplateRead:
    """A message in Russian and/or English; each part a Jinja2 template (docs/marketing.md,
    "Templates"), checked when saved. A retry with the same Idempotency-Key returns it."""
    template, new = service.create_template(session, name=body.name, content=body.content, created_by=key.name,
                                            idempotency_key=idempotency_key)
    if not new:
        response.status_code = 200
    return TemplateRead.model_validate(template)


@router.get("/{template_id:int}", responses=errors(404))
def get_template(template_id: PathId, session: ReadSession, _: MarketingKey) -> TemplateRead:
    return TemplateRead.model_validate(service.get_template(session, template_id))


@router.patch("/{template_id:int}", responses=errors(404))
def update_template(template_id: PathId, body: TemplateUpdate, session: WriteSession, _: MarketingKey) -> TemplateRead:
    return TemplateRead.model_validate(service.update_template(session, template_id=template_id, name=body.name, content=body.content))


@router.post("/{template_id:int}/preview", responses=errors(404, 410))
def preview(template_id: PathId, body: PreviewIn, session: ReadSession, _: MarketingKey, settings: AppSettings) -> PreviewRead:
    """The message as this customer would get it now (their name, cart, points), and the names
    the template used that had no value. Nothing is sent."""
    profile = customers_service.get_profile(session, body.customer_id)
    rendered = service.preview(session, settings=settings, template=service.get_template(session, template_id),
                               profile_id=profile.id, locale=body.locale, context=body.context)
    return PreviewRead(**rendered.__dict__)


@router.post("/{template_id:int}/test-send", responses=errors(404, 410))
def test_send(template_id: PathId, body: TestSendIn, session: WriteSession, _: MarketingKey, settings: AppSettings,
              idempotency_key: IdempotencyKey = None) -> TestSendRead:
    """Send the message to one customer (the marketer's own profile) now: no quiet hours, no
    caps, but their marketing consent for the channel is still needed."""
    profile = customers_service.get_profile(session, body.customer_id)
    key = f"test:{idempotency_key}" if idempotency_key else f"test:{uuid.uuid4().hex}"
    outcome = service.deliver(session, settings=settings, profile_id=profile.id, template=service.get_template(session, template_id),
                              channel=body.channel, key=key, test=True)
    return TestSendRead(status=outcome.status, reason=outcome.reason, message_id=outcome.inbox_message_id, channel=outcome.channel)
