"""Recommendations' scheduled work: the model trained again every
`recommendations_retrain_minutes`, once per period for the whole cluster, on its own queue (a
long training never holds up other domains' periodic work)."""

from __future__ import annotations

from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.queue import Periodic
from seamline.recommendations import training


def retrain(database: Database, settings: Settings) -> dict:
    return training.train(database, settings)


def periodic_tasks(database: Database, settings: Settings) -> list[Periodic]:
    if not settings.recommendations_enabled or not settings.recommendations_retrain_minutes:
        return []
    return [Periodic("recommendations.retrain", settings.recommendations_retrain_minutes * 60,
                     lambda: retrain(database, settings), queue="recommendations")]
