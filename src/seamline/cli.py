"""The `seamline` command."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings, get_settings

if TYPE_CHECKING:
    from seamline.core.db import Database
    from seamline.runtime import Runtime

app = typer.Typer(help="Seamline: one customer platform for every channel.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
identity_app = typer.Typer(help="The identity graph.", no_args_is_help=True)
customers_app = typer.Typer(help="Customer profiles: bulk import.", no_args_is_help=True)
events_app = typer.Typer(help="Collected events.", no_args_is_help=True)
commerce_app = typer.Typer(help="Catalog, stock and orders.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(identity_app, name="identity")
app.add_typer(customers_app, name="customers")
app.add_typer(events_app, name="events")
app.add_typer(commerce_app, name="commerce")
stock_app = typer.Typer(help="Stock and price sync from the accounting system (CSV, 1C CommerceML).", no_args_is_help=True)
app.add_typer(stock_app, name="stock")
loyalty_app = typer.Typer(help="Loyalty points, cards and wallets.", no_args_is_help=True)
app.add_typer(loyalty_app, name="loyalty")
inbox_app = typer.Typer(help="The unified inbox: scheduled work and the email mailbox.", no_args_is_help=True)
app.add_typer(inbox_app, name="inbox")
jobs_app = typer.Typer(help="The job queue: what waits, what died.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
analytics_app = typer.Typer(help="Analytics: the mirror and reports.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")
marketing_app = typer.Typer(help="Marketing: segments, journeys and campaigns (what the job queue runs, for cron).",
                            no_args_is_help=True)
app.add_typer(marketing_app, name="marketing")
recommendations_app = typer.Typer(help="Product recommendations: train the model.", no_args_is_help=True)
app.add_typer(recommendations_app, name="recommendations")
assistant_app = typer.Typer(help="The chat bot: its periodic work, for cron.", no_args_is_help=True)
app.add_typer(assistant_app, name="assistant")
staff_app = typer.Typer(help="Staff accounts of the console.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")


def _settings(database_url: str | None) -> Settings:
    from seamline.demo import apply_environment

    settings = get_settings()
    # A demo's database brings the settings it was served with (the storefront's keys...).
    if apply_environment(database_url or settings.database_url):
        get_settings.cache_clear()
        settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def _runtime(settings: Settings) -> Runtime:
    """What a command works with, wired as the app is (`seamline.runtime`: every channel, every
    subscriber), once the database's schema is known to be there and current: otherwise one line
    saying what to run (`seamline db upgrade`, `seamline demo`) and exit 1, no traceback."""
    from seamline.core.migrations import schema_problem
    from seamline.runtime import build

    problem = schema_problem(settings.database_url)
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    return build(settings)


def _database(settings: Settings) -> Database:
    """The database of a command's runtime (`_runtime`)."""
    return _runtime(settings).database


DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="Overrides SEAMLINE_DATABASE_URL for this command")
]


@db_app.command("upgrade")
def db_upgrade(revision: str = "head", database_url: DatabaseUrl = None) -> None:
    """Migrate the database schema (creates it when empty)."""
    from seamline.core import migrations

    settings = _settings(database_url)
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str, database_url: DatabaseUrl = None) -> None:
    """Step the schema back to a revision ("base" empties it)."""
    from seamline.core import migrations

    migrations.downgrade(_settings(database_url).database_url, revision)
    typer.echo(f"database at {revision}")


@apikey_app.command("create")
def apikey_create(
    scope: Annotated[list[Scope], typer.Option("--scope", help="admin, write, read, track, loyalty_adjust or agent; repeatable")],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key and print it. It is shown only this once."""
    from seamline.core.auth import service

    database = _database(_settings(database_url))
    with database.write() as session:
        key, secret = service.create_api_key(session, name=name, scopes=scope)
        key_id = key.id
    database.dispose()
    typer.echo(secret)
    typer.echo(f"(key id {key_id}, scopes {', '.join(s.value for s in scope)}; store it now, it is not shown again)", err=True)


@apikey_app.command("revoke")
def apikey_revoke(key_id: int, database_url: DatabaseUrl = None) -> None:
    """Revoke an API key by id."""
    from seamline.core.auth import service

    database = _database(_settings(database_url))
    with database.write() as session:
        service.revoke_api_key(session, key_id=key_id)
    database.dispose()
    typer.echo(f"revoked key {key_id}")


@identity_app.command("rebuild")
def identity_rebuild(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change, change nothing")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute every profile from the identifier graph and report what changed."""
    from seamline.customers.identifiers import IdentifierRules
    from seamline.customers.rebuild import rebuild_profiles

    settings = _settings(database_url)
    database = _database(settings)
    report = rebuild_profiles(database, rules=IdentifierRules(settings), dry_run=dry_run)
    database.dispose()
    typer.echo(json.dumps(report.as_dict(), indent=2))


@customers_app.command("import")
def customers_import(
    file: Annotated[Path, typer.Argument(help="A CSV or JSONL file (docs/import.md)", exists=True, dir_okay=False)],
    format: Annotated[str | None, typer.Option("--format", help="csv or jsonl; default: by the file's extension")] = None,
    source: Annotated[str, typer.Option(help="The source kept with every identifier, trait and consent")] = "import",
    database_url: DatabaseUrl = None,
) -> None:
    """Import customers: the whole file is validated first (every bad row listed, exit 1, nothing
    written), then resolved against the identity graph and written; re-running it changes nothing."""
    import time

    from seamline.customers import imports

    settings = _settings(database_url)
    runtime = _runtime(settings)
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        of = f"/{total:,}" if total else ""
        typer.echo(f"[{time.perf_counter() - started:7.1f}s] {stage}: {done:,}{of}", err=True)

    try:
        report = imports.import_customers(
            runtime.database, rules=runtime.identifier_rules, data=file.read_bytes(),
            format=format or imports.detect_format(file.name), source=source, progress=progress,
        )
    except imports.ImportInvalid as exc:
        for error in exc.errors:
            typer.echo(f"row {error.row}{f', column {error.column}' if error.column else ''}: {error.reason}", err=True)
        typer.echo(f"error: {len(exc.errors)} problem(s) in {file.name}; nothing was imported", err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(json.dumps(report.as_dict(), indent=2))


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date or date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@events_app.command("export")
def events_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write")],
    since: Annotated[str | None, typer.Option(help="From this date/time (ISO 8601, UTC if no offset)")] = None,
    until: Annotated[str | None, typer.Option(help="Up to (excluding) this date/time")] = None,
    format: Annotated[str, typer.Option("--format", help="parquet")] = "parquet",
    database_url: DatabaseUrl = None,
) -> None:
    """Write events (by event time) to a Parquet file for a warehouse."""
    from seamline.events.export import export_parquet

    if format != "parquet":
        raise typer.BadParameter("the only format is parquet", param_hint="--format")
    database = _database(_settings(database_url))
    report = export_parquet(database, path=output, since=_when(since), until=_when(until))
    database.dispose()
    typer.echo(json.dumps(report.__dict__))


@events_app.command("prune")
def events_prune(
    export_to: Annotated[Path | None, typer.Option(help="Export what is pruned to this Parquet file first")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete raw events older than SEAMLINE_EVENT_RETENTION_DAYS allows, per event type."""
    from seamline.core.time import utcnow
    from seamline.events.export import prune

    settings = _settings(database_url)
    database = _database(settings)
    result = prune(database, retention_days=settings.event_retention_days, now=utcnow(), export_to=export_to, dry_run=dry_run)
    database.dispose()
    typer.echo(json.dumps(result))


@analytics_app.command("sync")
def analytics_sync(
    full: Annotated[bool, typer.Option("--full", help="Start the mirror afresh and copy everything (a backfill)")] = False,
    parquet: Annotated[bool, typer.Option("--parquet", help="Also write the Parquet copy the Spark backend reads")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Copy what changed since the last sync into the analytics mirror (the job queue does it every
    analytics_sync_seconds); prints the rows copied per table."""
    from seamline.analytics import tasks

    settings = _settings(database_url)
    database = _database(settings)
    report = tasks.sync(database, settings, full=full, parquet=parquet or None)
    database.dispose()
    typer.echo(json.dumps({"rows": report.rows, "erased_people": report.erased_people, "seconds": report.seconds}))


@marketing_app.command("run")
def marketing_run(
    refresh: Annotated[bool, typer.Option("--refresh/--no-refresh", help="Also evaluate every segment again over everyone")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Start due campaigns, enroll people whose date came, run due journey steps and credit
    replies to marketing messages (what the job queue does every few seconds), and with --refresh
    evaluate every segment in full and sum each cohort's channel evidence (the next best
    channel's priors); prints what moved."""
    from seamline.marketing import reactor
    from seamline.marketing.optichannel import service as optichannel

    built = _runtime(_settings(database_url))  # wired: sends need the channel adapters
    from seamline.core import heap

    heap.settle()  # thousands of messages in batches: core/heap.py
    database, settings = built.database, built.settings
    out = {"campaigns": reactor.campaigns(database, settings), "dates": reactor.dates(database, settings),
           "steps": reactor.advance(database, settings),
           "replies": database.run_write(lambda session: optichannel.credit_replies(session, settings))}
    if refresh:
        out["segments"] = reactor.refresh_all(database)
        out["cohorts"] = database.run_write(lambda session: optichannel.refresh_cohorts(session, settings))
    built.close()
    typer.echo(json.dumps(out))


@marketing_app.command("rebuild-facts")
def marketing_rebuild_facts(database_url: DatabaseUrl = None) -> None:
    """Rebuild the profile facts segments read (each person's traits, consents and order totals)
    from their sources: after restoring a backup, or if they are suspected stale."""
    from seamline.marketing.segments import facts

    settings = _settings(database_url)
    database = _database(settings)
    count = database.run_write(facts.rebuild)
    database.dispose()
    typer.echo(json.dumps({"facts": count}))


@recommendations_app.command("train")
def recommendations_train(database_url: DatabaseUrl = None) -> None:
    """Train the recommendation model once from orders, carts and product views, make it the
    active one (what the job queue does every recommendations_retrain_minutes); prints the
    version and its counts."""
    from seamline.recommendations import training

    settings = _settings(database_url)
    database = _database(settings)
    result = training.train(database, settings)
    database.dispose()
    typer.echo(json.dumps(result, default=str))


@assistant_app.command("run")
def assistant_run(database_url: DatabaseUrl = None) -> None:
    """The chat bot's periodic work once, for cron where no worker runs: conversations only the
    bot answered that went quiet are resolved by it, and people waiting for a product that is
    back are told; prints how many of each."""
    from seamline.assistant import tasks as assistant_tasks

    settings = _settings(database_url)
    database = _database(settings)
    result = assistant_tasks.run(database, settings)
    database.dispose()
    typer.echo(json.dumps(result))


@analytics_app.command("report")
def analytics_report(
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write")],
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 29 days before --to)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default: today)")] = None,
    language: Annotated[str, typer.Option("--language", help="ru or en")] = "ru",
    sync_first: Annotated[bool, typer.Option("--sync/--no-sync", help="Sync the mirror first")] = True,
    database_url: DatabaseUrl = None,
) -> None:
    """A self-contained HTML report of every metric with its charts, for sending to management."""
    from datetime import date

    from seamline.analytics import service, tasks
    from seamline.web.reports import report

    if language not in ("ru", "en"):
        raise typer.BadParameter("ru or en", param_hint="--language")
    try:
        first, last = (date.fromisoformat(v) if v else None for v in (start, end))
    except ValueError as exc:
        raise typer.BadParameter("dates are YYYY-MM-DD") from exc
    settings = _settings(database_url)
    database = _database(settings)
    if sync_first and settings.analytics_backend != "postgres":
        tasks.sync(database, settings)
    data = service.dashboard(settings, database, service.filters(start=first, end=last))
    database.dispose()
    output.write_text(report.render(data, language=language, currency=settings.commerce_currency,
                                    timezone_name=settings.console_timezone), encoding="utf-8")
    typer.echo(json.dumps({"written": str(output), "seconds": data["seconds"]["total"]}))


@commerce_app.command("expire")
def commerce_expire(database_url: DatabaseUrl = None) -> None:
    """Cancel open orders whose hold ran out (unpaid, or ready and never collected) and put
    their stock back on sale. the job queue does it every commerce_expire_interval_seconds;
    this is the same pass for cron when that is off."""
    from seamline.commerce.tasks import expire_due_orders

    database = _database(_settings(database_url))
    cancelled = expire_due_orders(database)
    database.dispose()
    typer.echo(json.dumps({"cancelled": len(cancelled), "order_ids": cancelled[:100]}))


@commerce_app.command("send-refunds")
def commerce_send_refunds(database_url: DatabaseUrl = None) -> None:
    """Send refunds a payment provider could not be reached for (still `requested`) again, under
    their original idempotency keys. Run it every few minutes beside `expire`."""
    from seamline.commerce import payments

    settings = _settings(database_url)
    database = _database(settings)
    sent = payments.send_requested_refunds(database, settings=settings)
    database.dispose()
    typer.echo(json.dumps({"sent": sent}))


@commerce_app.command("check-stock")
def commerce_check_stock(database_url: DatabaseUrl = None) -> None:
    """Prove the stock totals against the ledger; exits 1 and lists the differences if any."""
    from seamline.commerce import stock

    database = _database(_settings(database_url))
    with database.read() as session:
        wrong = stock.check_stock(session)
    database.dispose()
    typer.echo(json.dumps({"differences": wrong}))
    if wrong:
        raise typer.Exit(1)


@loyalty_app.command("rebuild")
def loyalty_rebuild(database_url: DatabaseUrl = None) -> None:
    """Recompute every account's balances, lots and tier from the points ledger, and report how
    many accounts differed (0 on a healthy database)."""
    from seamline.loyalty.rebuild import rebuild_accounts

    database = _database(_settings(database_url))
    report = rebuild_accounts(database)
    database.dispose()
    typer.echo(json.dumps(report.as_dict(), indent=2))


@loyalty_app.command("check")
def loyalty_check(database_url: DatabaseUrl = None) -> None:
    """Prove every account's balances and lots against its ledgers; exits 1 and lists the
    differences if any."""
    from seamline.loyalty import ledger

    database = _database(_settings(database_url))
    with database.read() as session:
        problems = ledger.check(session)
    database.dispose()
    typer.echo(json.dumps({"differences": problems[:100], "count": len(problems)}, default=str))
    if problems:
        raise typer.Exit(1)


@loyalty_app.command("run-jobs")
def loyalty_run_jobs(database_url: DatabaseUrl = None) -> None:
    """Release held points, expire old ones, give birthday bonuses, re-evaluate tiers: what
    the job queue does every loyalty_job_interval_seconds, for cron when that is off."""
    from seamline.loyalty import tasks

    database = _database(_settings(database_url))
    done = tasks.run_due(database)
    database.dispose()
    typer.echo(json.dumps(done))


@inbox_app.command("run-jobs")
def inbox_run_jobs(database_url: DatabaseUrl = None) -> None:
    """Process the provider messages webhooks stored, flag SLA breaches, wake snoozed
    conversations, retry failed inbound messages, send queued replies and webhooks, poll the
    IMAP mailbox once, remove old chat sessions: what the job queue's workers do, for cron."""
    import httpx

    from seamline.channels.email import adapter as email_adapter
    from seamline.channels.webchat import adapter as webchat_adapter
    from seamline.customers.identifiers import IdentifierRules
    from seamline.inbox import delivery, tasks

    settings = _settings(database_url)
    database, rules = _database(settings), IdentifierRules(settings)
    inbound = delivery.process_inbound_due(database, rules=rules, settings=settings)  # before anything answers them
    done = tasks.run_due(database, settings=settings, rules=rules) | {"inbound_processed": inbound}
    with httpx.Client() as client:
        done.update(tasks.send_due(database, settings=settings, client=client))
    if settings.inbox_imap_host:
        done["emails_fetched"] = email_adapter.poll_mailbox(database, settings=settings, rules=rules)
    with database.write() as session:
        done["chat_sessions_removed"] = webchat_adapter.prune_sessions(session, settings=settings)
    database.dispose()
    typer.echo(json.dumps(done))


@events_app.command("deliver")
def events_deliver(database_url: DatabaseUrl = None) -> None:
    """Run a worker for the webhook deliveries only (the `webhooks` queue) until SIGTERM or
    SIGINT: `seamline worker --queue webhooks --no-periodic` by its older name."""
    from seamline.core.logging import configure_logging, wants_json
    from seamline.events.destinations import DELIVER

    settings = _settings(database_url)
    runtime = _runtime(settings)
    configure_logging(settings.log_level, json=wants_json(settings.log_json, demo=settings.demo))
    try:
        runtime.worker(queues={DELIVER.queue: settings.worker_concurrency}, periodic=False).run_until_signalled()
    finally:
        runtime.close()


def _queue_limits(values: list[str]) -> dict[str, int] | None:
    limits = {}
    for value in values:
        name, _, count = value.partition("=")
        if not name or (count and not count.isdigit()) or (count and int(count) < 1):
            raise typer.BadParameter(f"not NAME or NAME=CONCURRENCY: {value!r}")
        limits[name] = int(count) if count else 0
    return limits or None


@app.command()
def worker(
    queue: Annotated[list[str], typer.Option(
        "--queue", help="A queue to run, as NAME or NAME=CONCURRENCY; repeatable. Default: every queue, "
        "SEAMLINE_WORKER_CONCURRENCY jobs at once in each")] = [],  # noqa: B006 - typer reads the default
    no_periodic: Annotated[bool, typer.Option("--no-periodic", help="Do not start periodic tasks from this worker")] = False,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics of this worker on this port")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run background jobs until SIGTERM or SIGINT (then finish what is running and stop).

    Run as many as you like, on any machine that reaches the database: each job runs once at a
    time, and periodic tasks start once per period for the whole cluster."""
    settings = _settings(database_url)
    runtime = _runtime(settings)
    limits = _queue_limits(queue)
    if limits:
        unknown = sorted(set(limits) - set(runtime.tasks.queues))
        if unknown:
            typer.echo(f"error: no such queue: {', '.join(unknown)} (queues: {', '.join(runtime.tasks.queues)})", err=True)
            raise typer.Exit(2)
        limits = {name: count or settings.worker_concurrency for name, count in limits.items()}
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry, start_http_server

        from seamline.core.queue.metrics import JobMetrics, QueueCollector

        registry = CollectorRegistry()
        registry.register(QueueCollector(runtime.database, runtime.tasks.queues))
        runtime.job_observer = JobMetrics(registry).observe
        start_http_server(metrics_port, addr=settings.host, registry=registry)
    from seamline.core.logging import configure_logging, wants_json

    configure_logging(settings.log_level, json=wants_json(settings.log_json, demo=settings.demo))
    from seamline.core import heap

    from seamline.assistant import service as assistant_service

    assistant_service.warm(runtime.database, settings)  # the bot's intent model, before the first message
    heap.settle()  # a worker lives long and works in batches: core/heap.py
    try:
        runtime.worker(queues=limits, periodic=not no_periodic).run_until_signalled()
    finally:
        runtime.close()


@jobs_app.command("status")
def jobs_status(database_url: DatabaseUrl = None) -> None:
    """Each queue: jobs waiting, due, running, dead, and the oldest due job (JSON lines)."""
    from seamline.core.queue import service as queue_service

    runtime = _runtime(_settings(database_url))
    with runtime.database.read() as session:
        rows = queue_service.stats(session, runtime.tasks.queues)
    for row in rows:
        typer.echo(json.dumps({**row.__dict__, "oldest_due_at": row.oldest_due_at.isoformat() if row.oldest_due_at else None,
                               "counted_up_to": queue_service.COUNT_CAP}))


@jobs_app.command("retry")
def jobs_retry(job_id: int, database_url: DatabaseUrl = None) -> None:
    """Put a dead job back in its queue with all its attempts again."""
    from seamline.core.errors import NotFound
    from seamline.core.queue import service as queue_service

    runtime = _runtime(_settings(database_url))
    try:
        with runtime.database.write() as session:
            queue_service.retry_dead(session, job_id)
    except NotFound as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"job {job_id} queued again")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Defaults to SEAMLINE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Defaults to SEAMLINE_PORT")] = None,
    workers: int = 1,
    migrate: Annotated[bool, typer.Option(help="Upgrade the schema before serving")] = True,
) -> None:
    """Run the HTTP API (OpenAPI at /docs). With `--workers N`, N processes share the port
    evenly (`core/serving.py`)."""
    from seamline.core import migrations, serving
    from seamline.demo import environment_file

    settings = _settings(None)  # on a demo's database, with the demo's storefront
    if migrate:
        migrations.upgrade(settings.database_url)
    else:
        _database(settings).dispose()
    demo_settings = environment_file(settings.database_url)
    if demo_settings is not None and demo_settings.is_file():
        typer.echo(f"a demo's database: its storefront and on-screen login codes from {demo_settings}", err=True)
    serving.run(
        "seamline.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
    )


def _port_problem(host: str, port: int) -> str | None:
    """Why the demo could not serve on host:port (taken, or not an address here), checked before
    the fill; binding as uvicorn does (SO_REUSEADDR: a closed connection's TIME_WAIT is no owner)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        return (f"cannot serve the demo on {host}:{port} ({exc.strerror or exc}): another `seamline demo` or server is "
                "there? Stop it, or choose another port with --port (or --no-serve to only fill the database)")
    return None


@app.command()
def demo(
    database: Annotated[Path | None, typer.Option(
        help="A SQLite file for the demo; default: the database every command uses (SEAMLINE_DATABASE_URL, else "
        "seamline.db in this folder)")] = None,
    customers: Annotated[int, typer.Option(help="How many demo customers")] = 200,
    host: str = "127.0.0.1",
    port: int = 8000,
    serve_it: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the demo after filling it")] = True,
) -> None:
    """Fill a database with demo data (RU and EN customers with several identifiers each; a
    retailer's catalog, stores, stock, loyalty program and orders in every state; a busy inbox;
    staff logins for the console; the demo storefront's keys) and serve it. The database is the
    one every other command uses, so `seamline apikey create` etc. work on it; the demo fills only
    an empty database or replaces an earlier demo's, never other data."""
    import os
    import time

    if serve_it and (problem := _port_problem(host, port)):
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)

    import uvicorn

    from seamline import demo as demo_data
    from seamline.core import migrations

    started = time.monotonic()
    usual_url = get_settings().database_url  # what every other command opens
    url = f"sqlite:///{database.resolve()}" if database is not None else usual_url
    if problem := demo_data.clear_database(url):
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    os.environ["SEAMLINE_DATABASE_URL"] = url
    environment = demo_data.demo_environment()
    # A store's shared phone, typed at the till when a customer gives none, must link nobody.
    os.environ.setdefault("SEAMLINE_BLOCKED_EXTRA_VALUES", environment["SEAMLINE_BLOCKED_EXTRA_VALUES"])
    os.environ.setdefault("SEAMLINE_INBOX_WEBPUSH_VAPID_PRIVATE_KEY", environment["SEAMLINE_INBOX_WEBPUSH_VAPID_PRIVATE_KEY"])
    get_settings.cache_clear()
    migrations.upgrade(url)
    demo_data.write_environment(url, environment)  # before the fill: an interrupted demo is still the demo's
    typer.echo(f"filling the demo database {migrations.describe(url)} with {customers} customers and a retailer...")
    summary = demo_data.fill_demo(get_settings(), customers=customers)
    # The demo storefront (/shop/, /app/) talks to the API with these; login codes show on screen.
    keys = {"SEAMLINE_STOREFRONT_API_KEY": summary["storefront_api_key"],
            "SEAMLINE_STOREFRONT_WRITE_KEY": summary["storefront_write_key"],
            "SEAMLINE_STOREFRONT_APP_WRITE_KEY": summary.get("storefront_app_write_key") or ""}
    os.environ["SEAMLINE_LOGIN_CODES_REVEAL"] = "true"
    os.environ["SEAMLINE_DEMO"] = "true"  # the logins on the page at /, readable logs (unless SEAMLINE_LOG_JSON)
    os.environ.setdefault("SEAMLINE_ASSISTANT_ENABLED", environment["SEAMLINE_ASSISTANT_ENABLED"])
    os.environ.setdefault("SEAMLINE_STOREFRONT_PRODUCTS", environment["SEAMLINE_STOREFRONT_PRODUCTS"])
    # Telegram, WhatsApp, VK and email send for real, to the local sink (web/demo_sink.py), so an
    # agent's reply is sent rather than queued for a provider that does not exist.
    from seamline.web import demo_sink

    sink_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    keys |= demo_sink.channel_settings(f"http://{sink_host}:{port}", _free_port(sink_host))
    os.environ.update(keys)
    kept = demo_data.write_environment(url, environment | keys)
    get_settings.cache_clear()
    # The analytics mirror at once, so the console's Analytics area has the demo's data from the
    # first page (the worker keeps it fresh from then on).
    from seamline.analytics import tasks as analytics_tasks
    from seamline.core.db import Database

    demo_database = Database(get_settings())
    synced = analytics_tasks.sync(demo_database, get_settings()) if get_settings().analytics_backend != "postgres" else None
    demo_database.dispose()
    took = time.monotonic() - started

    by_status = ", ".join(f"{n} {status}" for status, n in summary["orders_by_status"].items())
    inbox = ", ".join(f"{n} {state}" for state, n in summary["conversations_by_state"].items())
    echo = typer.echo
    echo(f"filled in {took:.1f} s:")
    echo(f"  {summary['customers']} customers, {summary['identifiers']} identifiers, "
         f"{summary['loyalty_accounts']} loyalty accounts")
    echo(f"  {summary['products']} products in {summary['locations']} stores and warehouses")
    echo(f"  {summary['orders']} orders: {by_status}")
    echo(f"  {summary['conversations']} conversations: {inbox}")
    if synced is not None:
        echo(f"  analytics mirror: {synced.total} rows copied (console: Analytics)")
    if (trained := summary.get("recommendations") or {}).get("version"):
        counts = trained["counts"]
        echo(f"  recommendations: model {trained['version']} from {counts['purchases']} purchases, {counts['views']} views "
             f"({counts['people']} people, {counts['products']} products)")
    echo(f"admin API key: {summary['admin_key']}")
    echo(f"try: curl -H 'Authorization: Bearer {summary['admin_key']}' 'http://{host}:{port}/v1/customers/lookup?phone=8%20916%20123-45-67'")
    if migrations.describe(url) != migrations.describe(usual_url):
        echo(f"other commands on this database: SEAMLINE_DATABASE_URL='{url}' seamline ...")
    if kept is not None:
        echo(f"`seamline serve` serves it again, storefront included (its keys are kept in {kept.resolve()})")
    else:
        echo("for the storefront under `seamline serve`: " + " ".join(f"{k}={v}" for k, v in keys.items())
             + " SEAMLINE_LOGIN_CODES_REVEAL=true SEAMLINE_DEMO=true")
    if not serve_it:
        echo(demo_banner(host, port, summary["logins"], serving=False))
        return
    echo(f"starting the server on http://{host}:{port}/ ...")
    banner = demo_banner(host, port, summary["logins"], serving=True)

    class _Server(uvicorn.Server):
        """Says what to open once the port listens, after uvicorn's start-up lines."""

        async def startup(self, sockets=None) -> None:  # noqa: ANN001
            await super().startup(sockets=sockets)
            if self.started:
                typer.echo(banner)

    _Server(uvicorn.Config("seamline.app:create_app", factory=True, host=host, port=port, log_config=None)).run()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def demo_banner(host: str, port: int, logins: list[dict], *, serving: bool) -> str:
    """What the demo shows last: where to go, and the console logins (requests are logged below it
    as short lines, `core/logging.py`)."""
    base = f"http://{host}:{port}"
    rule = "=" * 78
    lines = [rule]
    if serving:
        lines.append(f"  Seamline demo is running: open {base}/")
    else:
        lines.append(f"  Seamline demo is ready: `seamline serve`, then open {base}/")
    lines += [
        "",
        f"  staff console   {base}/console/",
        f"  web shop        {base}/shop/",
        f"  the app         http://localhost:{port}/app/   (another host on purpose: another device, its own anonymous id)",
        f"  API docs        {base}/docs",
        f"  demo outbox     {base}/demo/sink/outbox   (what the demo's Telegram, WhatsApp, VK and email replies sent)",
    ]
    if logins:
        width = max(len(login["email"]) for login in logins)
        lines += ["", "  console logins (email, password, role):"]
        for login in logins:
            where = f" ({login['store']})" if login.get("store") else ""
            lines.append(f"    {login['email']:<{width}}  {login['password']:<14}  {login['role']}{where}, {login['locale']}")
    if serving:
        lines += ["", "  Ctrl+C stops the server. Requests are logged below, one line each."]
    lines.append(rule)
    return "\n".join(lines)


@stock_app.command("import")
def stock_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A CSV or CommerceML offers file")],
    format: Annotated[str | None, typer.Option("--format", help="csv or commerceml; default: from the file")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import a stock and price file; prints the run as JSON. A rejected file (any bad row) changes
    nothing, prints every problem and exits 1."""
    from seamline.commerce import sync

    if format is not None and format not in sync.FORMATS:
        raise typer.BadParameter("csv or commerceml", param_hint="--format")
    settings = _settings(database_url)
    database = _database(settings)
    try:
        run = sync.import_data(database, settings=settings, data=file.read_bytes(), file_name=file.name, format=format,
                               source="cli")
    finally:
        database.dispose()
    typer.echo(json.dumps(run, indent=2, ensure_ascii=False, default=str))
    if run["status"] == "rejected":
        raise typer.Exit(1)


@stock_app.command("sync-dir")
def stock_sync_dir(
    folder: Annotated[Path | None, typer.Argument(help="Defaults to SEAMLINE_COMMERCE_SYNC_DIR")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import the files waiting in the sync folder once (for cron); each goes to done/ or
    rejected/ with its report. Prints one JSON line per file; exits 1 if any was rejected."""
    from seamline.commerce import sync

    settings = _settings(database_url)
    folder = folder or (Path(settings.commerce_sync_dir) if settings.commerce_sync_dir else None)
    if folder is None:
        raise typer.BadParameter("give a folder or set SEAMLINE_COMMERCE_SYNC_DIR", param_hint="FOLDER")
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder", param_hint="FOLDER")
    database = _database(settings)
    try:
        runs = sync.import_folder(database, settings=settings, folder=folder)
    finally:
        database.dispose()
    for run in runs:
        typer.echo(json.dumps({k: run[k] for k in ("id", "file_name", "status", "movements", "prices_changed", "clamped")}
                              | {"problems": run["report"]["problems_total"]}, ensure_ascii=False))
    if any(run["status"] == "rejected" for run in runs):
        raise typer.Exit(1)


@staff_app.command("create")
def staff_create(
    email: Annotated[str, typer.Option(help="The person's email: their login")],
    name: Annotated[str, typer.Option(help="Shown in the console and to customers (agents)")],
    role: Annotated[str, typer.Option(help="admin, agent, clerk or marketer")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="At least 8 characters (asked for when not given)")],
    locale: Annotated[str, typer.Option(help="ru or en")] = "ru",
    store: Annotated[str | None, typer.Option(help="A clerk's store (location code)")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a console account (an agent also becomes an inbox agent)."""
    from seamline.core.errors import AppError
    from seamline.web.staff import create_staff_user

    database = _database(_settings(database_url))
    try:
        with database.write() as session:
            user = create_staff_user(session, email=email, name=name, password=password, role=role, locale=locale, store=store)
            typer.echo(json.dumps({"id": user.id, "email": user.email, "role": user.role, "agent_id": user.agent_id}))
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        database.dispose()


if __name__ == "__main__":
    app()
