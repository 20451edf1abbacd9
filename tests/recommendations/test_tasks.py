"""The periodic retrain: registered through the runtime as its setting asks, and it trains."""

from __future__ import annotations

from seamline import runtime
from seamline.recommendations import service


def test_the_retrain_task_is_registered_and_runs(world, reco_settings):
    world.shoppers()
    settings = reco_settings.model_copy(update={"recommendations_retrain_minutes": 60})
    built = runtime.build(settings, database=world.database)
    tasks = {p.name: p for p in built.periodic_tasks()}
    task = tasks["recommendations.retrain"]
    assert task.interval == 3600 and task.queue == "recommendations"
    assert "periodic.recommendations.retrain" in built.tasks.handlers
    task.work()
    with world.database.read() as session:
        assert service.active_version(session) == 1


def test_off_when_disabled_or_zero(world, reco_settings):
    for update in ({"recommendations_retrain_minutes": 0}, {"recommendations_enabled": False}):
        built = runtime.build(reco_settings.model_copy(update=update), database=world.database)
        assert "recommendations.retrain" not in {p.name for p in built.periodic_tasks()}
