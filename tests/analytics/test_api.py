"""The analytics API: read scope, periods and parameters checked, the stable JSON shape."""

from __future__ import annotations

import pytest

from seamline.analytics import tasks
from seamline.core.auth.schemas import Scope
from seamline.core.config import RateLimit
from tests.analytics import world
from tests.conftest import make_key

PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture
def synced(database, settings, tmp_path, monkeypatch):
    world.build(database)
    settings.analytics_mirror_path = str(tmp_path / "mirror.duckdb")
    tasks.sync(database, settings)
    return settings


@pytest.fixture
def api(synced, database):
    from fastapi.testclient import TestClient

    from seamline.app import create_app

    with TestClient(create_app(synced, database=database)) as client:
        yield client


def test_each_metric_answers_in_one_shape(api, read_headers):
    for path in ("conversion", "journeys", "cohorts", "satisfaction", "clv", "engagement", "attribution", "omnichannel",
                 "contact-center", "recommendations"):
        response = api.get(f"/v1/analytics/{path}", params=PERIOD, headers=read_headers)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert body["period"] == {"from": "2026-11-01", "to": "2026-11-30"} and body["backend"] == "duckdb"
        assert isinstance(body["data"], dict)
    conversion = api.get("/v1/analytics/conversion", params=PERIOD, headers=read_headers).json()["data"]
    assert (conversion["started"], conversion["completed"]) == (6, 4)
    funnel = api.get("/v1/analytics/funnel", params={**PERIOD, "steps": ["A", "B"]}, headers=read_headers)
    assert funnel.status_code == 200 and [s["people"] for s in funnel.json()["data"]["steps"]] == [0, 0]
    people = api.get("/v1/analytics/people", params={**PERIOD, "metric": "conversion", "started_channel": "web"},
                     headers=read_headers)
    assert people.json()["people"] == [1, 3]
    gold = api.get("/v1/analytics/conversion", params={**PERIOD, "trait": "tier:gold"}, headers=read_headers).json()
    assert (gold["data"]["started"], gold["filters"]["traits"], gold["filters"]["segment_people"]) == (1, {"tier": "gold"}, 1)
    dashboard = api.get("/v1/analytics/dashboard", params=PERIOD, headers=read_headers).json()
    assert set(dashboard["metrics"]) >= {"conversion", "funnel", "clv", "contact_center"}
    assert dashboard["freshness"]["synced"] is True


def test_bad_input_is_a_clear_422(api, read_headers):
    backwards = api.get("/v1/analytics/conversion", params={"from": "2026-11-30", "to": "2026-11-01"}, headers=read_headers)
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "analytics_bad_period"
    too_long = api.get("/v1/analytics/conversion", params={"from": "2020-01-01", "to": "2026-11-01"}, headers=read_headers)
    assert too_long.status_code == 422
    unix_time = api.get("/v1/analytics/conversion", params={"to": "0"}, headers=read_headers)
    assert unix_time.status_code == 422  # a date is YYYY-MM-DD, never a number read as Unix time
    one_step = api.get("/v1/analytics/funnel", params={"steps": ["A"]}, headers=read_headers)
    assert one_step.status_code == 422
    bad_dimension = api.get("/v1/analytics/attribution", params={"dimension": "weather"}, headers=read_headers)
    assert bad_dimension.status_code == 422
    no_value = api.get("/v1/analytics/conversion", params={"trait": "tier"}, headers=read_headers)
    assert no_value.status_code == 422
    six = api.get("/v1/analytics/conversion", params={"trait": [f"k{i}:v" for i in range(6)]}, headers=read_headers)
    assert six.status_code == 422


def test_analytics_need_a_key_with_read_scope(api, database):
    assert api.get("/v1/analytics/conversion").status_code == 401
    tracker = make_key(database, Scope.track, name="tracker")  # a site's public write key reads nothing
    assert api.get("/v1/analytics/conversion", headers={"Authorization": f"Bearer {tracker}"}).status_code == 403


def test_an_empty_mirror_says_how_to_fill_it(database, settings, tmp_path, read_headers):
    from fastapi.testclient import TestClient

    from seamline.app import create_app

    settings.analytics_mirror_path = str(tmp_path / "none.duckdb")
    with TestClient(create_app(settings, database=database)) as client:
        response = client.get("/v1/analytics/conversion", headers=read_headers)
    assert response.status_code == 503 and "seamline analytics sync" in response.json()["error"]["message"]


def test_analytics_reads_have_a_rate_limit(synced, database, read_headers):
    """Each request may scan millions of rows: a key (and an IP) gets a budget per minute."""
    from fastapi.testclient import TestClient

    from seamline.app import create_app

    limited = synced.model_copy(update={"rate_limits": {**synced.rate_limits, "analytics": RateLimit(ip=100, key=2)}})
    with TestClient(create_app(limited, database=database)) as client:
        answers = [client.get("/v1/analytics/status", headers=read_headers).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


def test_revenue_from_recommendations(api, synced, database, read_headers):
    """The world's recommendation clicks and order lines (tests/analytics/test_recommendations.py
    computes them by hand): 4900 of 5800 by the channel the list was shown in; the app alone."""
    world.add_recommendations(database)
    tasks.sync(database, synced, full=True)
    body = api.get("/v1/analytics/recommendations", params=PERIOD, headers=read_headers).json()
    assert body["metric"] == "recommendations" and body["backend"] == "duckdb"
    data = body["data"]
    assert (data["clicks"], data["orders"], data["revenue"], data["all_revenue"], data["share"]) == (8, 4, 4900, 5800, 84.48)
    assert {row["channel"]: row["revenue"] for row in data["by_channel"]} == {"email": 3000, "app": 1300, "web": 600}
    app = api.get("/v1/analytics/recommendations", params={**PERIOD, "channel": "app"}, headers=read_headers).json()
    assert (app["data"]["revenue"], app["filters"]["channel"]) == (1300, "app")
    wider = api.get("/v1/analytics/recommendations", params={**PERIOD, "window_days": 10}, headers=read_headers).json()
    assert wider["data"]["revenue"] == 5400
    assert api.get("/v1/analytics/recommendations", params={"window_days": 0}, headers=read_headers).status_code == 422
    dashboard = api.get("/v1/analytics/dashboard", params=PERIOD, headers=read_headers).json()
    assert dashboard["metrics"]["recommendations"]["revenue"] == 4900
