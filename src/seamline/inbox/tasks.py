"""The inbox's scheduled work, run once per period for the whole cluster by the job queue's
workers (see `core.queue`; and by `seamline inbox run-jobs` for cron):

- every `inbox_job_interval_seconds`: flag SLA breaches, wake snoozed conversations, retry
  inbound messages that failed to process;
- each channel's own jobs (the IMAP poll of the email channel).

Outbound messages and inbox webhooks are jobs of their own, one per message or delivery
(`service.SEND`, `webhooks.OUTBOX`), enqueued with the write that causes them.

Every step claims or locks what it changes, so several processes may run them at once.
"""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic
from seamline.core.time import utcnow
from seamline.customers.identifiers import IdentifierRules
from seamline.inbox import delivery, realtime, service, sla, webhooks
from seamline.inbox.adapters import ADAPTERS
from seamline.inbox.models import InboxConversation

BATCH = 200


def flag_breaches(session: Session, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """Mark clocks past due, once each: a system event, a webhook, a notice to the agent."""
    now = now or utcnow()
    due = session.scalars(
        select(InboxConversation).where(InboxConversation.sla_next_due_at <= now).order_by(InboxConversation.sla_next_due_at)
        .limit(limit).with_for_update(skip_locked=True)
    ).all()
    for conversation in due:
        clocks = sla.breached_clocks(conversation, now)
        if clocks:
            conversation.sla_breaches = [*(conversation.sla_breaches or []), *clocks]
            service.system_event(session, conversation, key="conversation.sla_breached", params={"clocks": list(clocks)},
                                 data={"sla_breached": clocks})
            webhooks.emit(session, "conversation.sla_breached", {**service.summary_view(conversation), "clocks": clocks})
            realtime.notify(session, ["inbox"] + ([f"agent:{conversation.assignee_id}"] if conversation.assignee_id else []),
                            {"type": "sla_breached", "conversation_id": conversation.id, "clocks": clocks})
        sla.refresh_next_due(conversation)
    return len(due)


def run_due(database: Database, *, settings: Settings, rules: IdentifierRules, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    done = {"sla_breaches": 0, "woken": 0}
    while (n := database.run_write(lambda s: flag_breaches(s, now=now))) > 0:
        done["sla_breaches"] += n
        if n < BATCH:
            break
    while (n := database.run_write(lambda s: service.wake_snoozed(s, settings=settings, now=now, limit=BATCH))) > 0:
        done["woken"] += n
        if n < BATCH:
            break
    done["inbound_retried"] = delivery.retry_inbound(database, rules=rules, settings=settings)
    return done


def send_due(database: Database, *, settings: Settings, client: httpx.Client) -> dict[str, int]:
    """The due send and webhook jobs, here and now (for cron: the workers run them otherwise)."""
    return {
        "sent": delivery.send_due(database, settings=settings),
        "webhooks": webhooks.deliver_due(database, settings=settings, client=client),
    }


def periodic_tasks(database: Database, settings: Settings, rules: IdentifierRules) -> list[Periodic]:
    jobs = []
    if settings.inbox_job_interval_seconds:
        jobs.append(Periodic("inbox", settings.inbox_job_interval_seconds,
                             lambda: run_due(database, settings=settings, rules=rules)))
    for adapter in ADAPTERS.values():
        jobs.extend(adapter.jobs(database, settings, rules))
    return jobs
