"""The FastAPI application: one factory over the process's runtime (`seamline.runtime`), every
domain's router."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from seamline import __version__
from seamline.channels.email.api import router as email_router
from seamline.channels.mobilepush.api import router as mobilepush_router
from seamline.channels.sms.api import router as sms_router
from seamline.channels.telegram.api import router as telegram_router
from seamline.channels.telephony.api import router as telephony_router
from seamline.channels.viber.api import router as viber_router
from seamline.channels.vk.api import router as vk_router
from seamline.channels.webchat.api import router as webchat_router
from seamline.channels.webpush.api import router as webpush_router
from seamline.channels.whatsapp.api import router as whatsapp_router
from seamline.analytics.api import router as analytics_router
from seamline.assistant.api import router as assistant_router
from seamline.marketing.campaigns.api import router as campaigns_router
from seamline.marketing.journeys.api import router as journeys_router
from seamline.marketing.messages.api import router as templates_router
from seamline.marketing.messages.tracking_api import router as tracking_router
from seamline.marketing.optichannel.api import router as optichannel_router
from seamline.marketing.segments.api import people_router as marketing_people_router
from seamline.marketing.segments.api import router as segments_router
from seamline.recommendations.api import router as recommendations_router
from seamline.commerce.api import router as commerce_router
from seamline.core import heap
from seamline.core.auth.api import router as api_keys_router
from seamline.core.config import Settings, get_settings
from seamline.core.db import Database
from seamline.core.deps import API_KEY_CACHE_SECONDS
from seamline.core.docs import install_api_docs
from seamline.core.errors import install_error_handlers
from seamline.core.openapi import install_complete_document, one_value_per_query_parameter
from seamline.core.health import router as health_router
from seamline.core.limits import install_limits
from seamline.core.logging import configure_logging, wants_json
from seamline.core.observability import Metrics, install_observability
from seamline.core.queue.metrics import JobMetrics, QueueCollector
from seamline.core.trust_cache import TrustCache
from seamline.customers.api import router as customers_router
from seamline.events.api import COLLECTION_PATHS, SOURCE_CACHE_SECONDS
from seamline.events.api import router as events_router
from seamline.events.writer import BatchWriter
from seamline.inbox import realtime as inbox_realtime
from seamline.inbox.api import router as inbox_router
from seamline.loyalty.api import router as loyalty_router
from seamline.assistant import service as assistant_service
from seamline.web import demo_sink
from seamline.web.storefront.api import router as storefront_router
from seamline.runtime import build
from seamline.web import console


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=wants_json(settings.log_json, demo=settings.demo))
    runtime = build(settings, database=database)
    database = runtime.database

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        listener = None
        if inbox_realtime.HUB.use_postgres and not database.is_sqlite:
            listener = inbox_realtime.PostgresListener(database.url).start()
        # The embedded default runs its jobs here; on PostgreSQL `seamline worker` processes do.
        jobs = runtime.worker().start() if runtime.serves_jobs else None
        app.state.event_writer.start()  # applies identity work a previous run left
        # The demo's mail sink (web/demo_sink.py): where the demo's email replies really go.
        mail_sink = demo_sink.MailSink(settings.inbox_smtp_port).start() if settings.demo and \
            settings.inbox_smtp_host in ("127.0.0.1", "localhost") else None
        assistant_service.warm(database, settings)  # the bot's intent model, before the first message
        # Everything loaded so far lives as long as the process: out of the collector's scans
        # (parsing a batch of 100 events otherwise cost more in collections than in JSON).
        heap.settle()
        yield
        if jobs:
            jobs.stop()
        if mail_sink:
            mail_sink.stop()
        if listener:
            listener.stop()
        app.state.event_writer.close()
        database.dispose()

    app = FastAPI(
        title="Seamline",
        version=__version__,
        description="Omnichannel customer platform: one profile, timeline, cart, orders, loyalty and inbox "
        "for every channel. Authenticate with an API key: `Authorization: Bearer sl_...` or `X-API-Key`.",
        lifespan=lifespan,
        docs_url=None,  # served by install_api_docs, with no CDN
        redoc_url=None,
        dependencies=[Depends(one_value_per_query_parameter)],
    )
    app.state.settings = settings
    app.state.database = database
    app.state.runtime = runtime
    app.state.identifier_rules = runtime.identifier_rules
    app.state.event_writer = BatchWriter(database, app.state.identifier_rules)
    app.state.event_sources = TrustCache(SOURCE_CACHE_SECONDS)  # write key -> source; see events/api.py
    app.state.api_keys = TrustCache(API_KEY_CACHE_SECONDS)  # API key -> ApiKey; see core/deps.py
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(QueueCollector(database, runtime.tasks.queues))
    runtime.job_observer = JobMetrics(app.state.metrics.registry).observe

    inbox_realtime.HUB.use_postgres = settings.inbox_realtime_backend != "local" and not settings.is_sqlite
    app.state.customer_sections = runtime.sections
    app.state.customer_timeline = runtime.timeline

    install_error_handlers(app)
    install_limits(app, settings)  # rate limits and body sizes; inside the request log
    install_observability(app, app.state.metrics)
    install_api_docs(app)
    install_complete_document(app)
    for router in ROUTERS:
        app.include_router(router)
    # The reference lists the domains in the order a reader meets them, not in ROUTERS' order.
    app.openapi_tags = [{"name": tag} for tag in DOCUMENT_TAGS]
    if settings.demo:  # the demo's channels send to this local sink, never in a real install
        app.include_router(demo_sink.router)
    console.install(app)
    # Websites and web views post events and chat from their own origin; only the collection and
    # web chat paths are open to other origins (write keys and chat tokens are the visitor's own).
    app.add_middleware(PathCORS, paths=COLLECTION_PATHS, prefixes=("/v1/webchat/", "/v1/channels/telephony/callback-requests"))
    return app


#: FastAPI matches a request against every route of each router in turn, about 5 µs a route,
#: twice for the router that answers (bench/README.md, "Route matching"). So the routers of the
#: hot paths come first (event collection, the providers' webhooks, profile upserts, balance
#: reads, orders) and the routers with many routes (the inbox, the shop) last. No request can
#: match routes of two routers (tests/test_app.py proves it), so this order changes no answer.
ROUTERS = (
    health_router,
    events_router,
    telegram_router,
    whatsapp_router,
    vk_router,
    viber_router,
    sms_router,
    email_router,
    telephony_router,
    webpush_router,
    mobilepush_router,
    customers_router,
    loyalty_router,
    commerce_router,
    webchat_router,
    api_keys_router,
    inbox_router,
    storefront_router,
    analytics_router,
    segments_router,
    marketing_people_router,
    optichannel_router,
    journeys_router,
    templates_router,
    campaigns_router,
    tracking_router,
    recommendations_router,
    assistant_router,
)

DOCUMENT_TAGS = ("health", "api keys", "customers", "auth", "events", "commerce", "promotions", "pos", "carts",
                 "payments", "returns", "stock sync", "loyalty", "store", "inbox", "webchat", "assistant", "analytics", "marketing",
                 "recommendations")


class PathCORS:
    """Starlette's CORS middleware on some paths only."""

    def __init__(self, app, paths: set[str], prefixes: tuple[str, ...] = ()):  # noqa: ANN001
        self.app, self.paths, self.prefixes = app, paths, prefixes
        self.cors = CORSMiddleware(
            app, allow_origins=["*"], allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"], max_age=86400,
        )

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] == "http" and (scope["path"] in self.paths or scope["path"].startswith(self.prefixes)):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
