"""The bot's scheduled work, every `ASSISTANT_JOB_SECONDS`: conversations only the bot answered
that went quiet are resolved by it (containment), and people waiting for a product are told
it is back. Both are also `seamline assistant run` for cron."""

from __future__ import annotations

from seamline.assistant import service
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic

ASSISTANT_JOB_SECONDS = 60.0


def run(database: Database, settings: Settings) -> dict[str, int]:
    with database.write() as session:
        closed = service.close_idle(session, settings=settings)
    with database.write() as session:
        told = service.notify_back_in_stock(session, settings=settings)
    return {"resolved": closed, "back_in_stock": told}


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    if not settings.assistant_enabled:
        return []
    return [Periodic("assistant", ASSISTANT_JOB_SECONDS, lambda: run(database, settings))]
