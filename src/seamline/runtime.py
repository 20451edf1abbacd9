"""The composition root: the one place that says what exists in a Seamline process.

Every process (the HTTP app, each CLI command, the demo, the benchmarks) starts with
`build(settings)`. It wires what domains learn from each other without importing each other
(`wire`: the channel adapters, commerce's subscribers, loyalty's redeemer and promotion
condition, the inbox's priority signals and canned-response variables, the login-code sender)
and builds the per-process objects (database, identifier rules, customer-360 sections and
timeline, background jobs). Nothing registers itself by being imported: a command that never
imported the web app has the same wiring as the app (a cron `seamline inbox run-jobs` sends
Telegram replies; `seamline commerce expire` gives spent points back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from seamline import channels
from seamline.channels.mobilepush import service as mobilepush_service
from seamline.channels.webpush import service as webpush_service
from seamline.analytics import tasks as analytics_tasks
from seamline.commerce import orders as commerce_orders
from seamline.commerce import payments as commerce_payments
from seamline.commerce import service as commerce_service
from seamline.commerce import tasks as commerce_tasks
from seamline.core.config import Settings, get_settings
from seamline.core.db import Database
from seamline.core.errors import AppError
from seamline.core.queue import TaskRegistry, Worker
from seamline.customers import login_codes
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.sections import SectionRegistry
from seamline.customers.timeline import TimelineRegistry
from seamline.events import destinations
from seamline.events import service as events_service
from seamline.inbox import adapters as inbox_adapters
from seamline.inbox import canned as inbox_canned
from seamline.inbox import delivery as inbox_delivery
from seamline.inbox import outbound as inbox_outbound
from seamline.inbox import routing as inbox_routing
from seamline.inbox import service as inbox_service
from seamline.inbox import suppression as inbox_suppression
from seamline.inbox import tasks as inbox_tasks
from seamline.inbox import webhooks as inbox_webhooks
from seamline.loyalty import ledger as loyalty_ledger
from seamline.loyalty import service as loyalty_service
from seamline.loyalty import tasks as loyalty_tasks
from seamline.marketing import reactor as marketing_reactor
from seamline.marketing.optichannel import service as optichannel
from seamline.assistant import service as assistant_service
from seamline.assistant import tasks as assistant_tasks
from seamline.recommendations import service as recommendations_service
from seamline.recommendations import tasks as recommendations_tasks


@dataclass
class Runtime:
    """What one process works with, built from its settings."""

    settings: Settings
    database: Database
    identifier_rules: IdentifierRules
    sections: SectionRegistry = field(default_factory=SectionRegistry)
    timeline: TimelineRegistry = field(default_factory=TimelineRegistry)
    tasks: TaskRegistry = field(default_factory=TaskRegistry)
    #: Told about every finished job (the app's Prometheus metrics).
    job_observer: Any = None

    def periodic_tasks(self) -> list:
        """Each domain's periodic work, as its settings ask (run once per period by the queue)."""
        return (commerce_tasks.periodic_tasks(self.database, self.settings)
                + loyalty_tasks.periodic_tasks(self.database, self.settings)
                + inbox_tasks.periodic_tasks(self.database, self.settings, self.identifier_rules)
                + analytics_tasks.periodic_tasks(self.database, self.settings)
                + marketing_reactor.periodic_tasks(self.database, self.settings)
                + recommendations_tasks.periodic_tasks(self.database, self.settings)
                + assistant_tasks.periodic_tasks(self.database, self.settings))

    @property
    def serves_jobs(self) -> bool:
        """Whether `seamline serve` runs a worker inside itself (see `Settings.serve_worker`)."""
        if self.settings.serve_worker is not None:
            return self.settings.serve_worker
        return self.database.is_sqlite or self.settings.demo

    def worker(self, *, queues: dict[str, int] | None = None, periodic: bool = True) -> Worker:
        """A worker for this process's tasks (not started)."""
        return Worker(self.database, self.tasks, queues=queues, concurrency=self.settings.worker_concurrency,
                      poll_seconds=self.settings.worker_poll_seconds, lease_seconds=self.settings.job_lease_seconds,
                      periodic=periodic, observer=self.job_observer)

    def close(self) -> None:
        self.database.dispose()


def build(settings: Settings | None = None, *, database: Database | None = None) -> Runtime:
    """The runtime for `settings` (the environment's when None), wired."""
    wire()
    settings = settings or get_settings()
    runtime = Runtime(settings=settings, database=database or Database(settings), identifier_rules=IdentifierRules(settings))
    customers_service.register_sections(runtime.sections, timeline=runtime.timeline)
    events_service.register(runtime.sections, runtime.timeline)
    commerce_service.register(runtime.sections, runtime.timeline, settings=settings)
    loyalty_service.register(runtime.sections, runtime.timeline)
    inbox_service.register(runtime.sections, runtime.timeline)
    # Push subscriptions and device tokens: in the privacy export, deleted at erasure.
    runtime.sections.register("webpush_subscriptions", None, export=webpush_service.export, erase=webpush_service.erase)
    runtime.sections.register("mobilepush_devices", None, export=mobilepush_service.export, erase=mobilepush_service.erase)
    runtime.sections.register("suppressed_addresses", None, export=inbox_suppression.of_person, erase=inbox_suppression.erase)
    runtime.sections.register("channel_evidence", None, export=optichannel.exporter(settings), erase=optichannel.erase)
    # What to offer the person (the agent's panel, the customer page); their precomputed list is
    # in the export and deleted at erasure.
    runtime.sections.register("recommendations", recommendations_service.section(settings), export=recommendations_service.export,
                              erase=recommendations_service.erase)
    # The bot's "back in stock" alerts; erasure also blanks the phrases it kept as not understood.
    runtime.sections.register("assistant", None, export=assistant_service.export, erase=assistant_service.erase)
    destinations.register_tasks(runtime.tasks, runtime.database, settings)
    inbox_webhooks.register_tasks(runtime.tasks, runtime.database, settings)
    inbox_delivery.register_tasks(runtime.tasks, runtime.database, settings, runtime.identifier_rules)
    marketing_reactor.register_tasks(runtime.tasks, runtime.database, settings)
    assistant_tasks.register_tasks(runtime.tasks, runtime.database, settings)
    for periodic in runtime.periodic_tasks():
        runtime.tasks.every(periodic)
    return runtime


def wire() -> None:
    """Register what domains learn from each other. Every registry ignores a second registration
    of the same thing, so calling this again changes nothing."""
    for adapter in channels.adapters():
        inbox_adapters.register(adapter)
    commerce_payments.subscribe()
    loyalty_service.subscribe()
    inbox_routing.register_priority_signal(_tier_priority)
    inbox_routing.register_priority_signal(_vip_priority)
    inbox_canned.register_variables(_order_variables)
    login_codes.register_sender(_send_login_code)
    marketing_reactor.subscribe()
    inbox_outbound.register_ranker(optichannel.Ranker())
    inbox_service.register_responder(assistant_service.respond)


# --- what the inbox and login codes learn from sibling domains ---------------------------------


def _tier_priority(session: Session, customer_id: int, settings: Settings) -> int:
    """Queue priority of the customer's loyalty tier (`inbox_tier_priority`)."""
    if not settings.inbox_tier_priority:
        return 0
    account = loyalty_ledger.find_account(session, customer_id)
    return settings.inbox_tier_priority.get(account.tier, 0) if account is not None and account.tier else 0


def _vip_priority(session: Session, customer_id: int, settings: Settings) -> int:
    traits = customers_service.traits_of(session, customers_service.identity_ids_of(session, customer_id))
    vip = traits.get("vip")
    return settings.inbox_vip_priority if (vip.get("value") if isinstance(vip, dict) else vip) is True else 0


def _order_variables(session: Session, profile_ids: list[int]) -> dict[str, object]:
    """{{order.number}} and {{order.status}} of canned responses: the customer's latest order."""
    order = next(iter(commerce_orders.orders_of_customer(session, profile_ids, limit=1)), None)
    return {"order.number": order.id, "order.status": order.status} if order is not None else {}


def _send_login_code(session: Session, *, identifier_type: str, value: str, text: str, settings: Settings) -> bool:
    """Login codes go out through the inbox's outbound `send`, to exactly the phone or email they
    were asked for (never another identifier of that profile: SMS for a phone, email for an
    email), when a customer is known by it; anyone else cannot be reached yet."""
    try:
        profile = customers_service.lookup(session, rules=IdentifierRules(settings), type_name=identifier_type, value=value)
        inbox_outbound.send(session, settings=settings, customer_id=profile.id, text=text, to=value,
                            channel="sms" if identifier_type == "phone" else "email", purpose="service", source="login_code")
    except AppError:
        return False
    return True
