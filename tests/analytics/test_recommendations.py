"""Revenue from recommendations (`metrics.recommendations`) on the world of world.py with its
products, order lines and recommendation clicks (`world.add_recommendations`), on every backend;
and an analytics mirror made before the events had product columns, upgraded in place."""

from __future__ import annotations

import duckdb
import ibis
import pytest

from seamline.analytics import metrics
from seamline.analytics.metrics import Filters
from seamline.analytics.mirror import Mirror, reading
from seamline.analytics.warehouse import Warehouse
from tests.analytics import world

PERIOD = Filters(start=world.START, end=world.END)
ALL_REVENUE = 1000 + 3000 + 400 + 900 + 500  # purchased orders 1, 2, 4, 5, 6 (3 was cancelled)


@pytest.fixture
def w(database, warehouse_for):
    world.build(database)
    world.add_recommendations(database)
    with warehouse_for(database) as warehouse:
        yield warehouse


def _by(rows: list[dict], key: str) -> dict:
    return {row[key]: (row["clicks"], row["people"], row["orders"], row["revenue"]) for row in rows}


def test_revenue_from_recommendations_by_channel_and_reason(w):
    """Attributed lines: Anna's shoe (600, order 1): clicks in email (h1) and on the web (h3): the
    later one, web/similar, counted once; her hat (400) had no click, her click on the bag bought
    nothing. Boris's bag (3000, order 2): email/for_you (h10; his web click at h30 came after the
    order); his hat at the till (400, order 4, h100): app/popular (h24, 76 h before); the hat of
    order 6 (h240) is 9 days after that click: not attributed. Vera's shoe (900, order 5): app/
    popular_in_store (h90; her search-list click at h95 is not a recommendation); her cancelled
    order 3 is no purchase. Clicks: 8 (the stranger's included), 4 people."""
    result = metrics.recommendations(w, PERIOD)
    assert (result["clicks"], result["people"], result["orders"], result["lines"], result["buyers"]) == (8, 4, 4, 4, 3)
    assert (result["revenue"], result["all_revenue"], result["share"]) == (4900, ALL_REVENUE, 84.48)
    assert result["window_days"] == metrics.RECOMMENDATION_WINDOW_DAYS == 7
    assert _by(result["by_channel"], "channel") == {"email": (2, 2, 1, 3000), "app": (3, 3, 2, 1300),
                                                    "web": (3, 3, 1, 600)}
    assert [row["channel"] for row in result["by_channel"]] == ["email", "app", "web"]  # by revenue
    assert {row["channel"]: row["share"] for row in result["by_channel"]} == {"email": 51.72, "app": 22.41, "web": 10.34}
    assert _by(result["by_reason"], "reason") == {"for_you": (2, 2, 1, 3000), "popular_in_store": (1, 1, 1, 900),
                                                  "similar": (2, 2, 1, 600), "popular": (3, 3, 1, 400)}


def test_the_window_is_seven_days_and_can_be_asked_wider(w):
    """Ten days: Boris's app click (h24) also reaches order 6's hat (h240, 9 days later): +500."""
    wider = metrics.recommendations(w, PERIOD, window_days=10)
    assert (wider["orders"], wider["revenue"]) == (5, 5400)
    assert _by(wider["by_channel"], "channel")["app"] == (3, 3, 3, 1800)
    with pytest.raises(ValueError):
        metrics.recommendations(w, PERIOD, window_days=0)


def test_filters_narrow_as_the_other_metrics_do(w):
    """The channel: recommendations shown there (the share still over all revenue); the segment
    (Anna): her 3 clicks and her shoe, of her 1000; the store: orders picked up in S2 (order 5:
    Vera's shoe) -- the clicks are not narrowed by a store; the period: the first day, Anna's
    order 1 (h5) and the clicks before h13."""
    app = metrics.recommendations(w, Filters(start=world.START, end=world.END, channel="app"))
    assert (app["clicks"], app["people"], app["orders"], app["revenue"], app["share"]) == (3, 3, 2, 1300, 22.41)
    assert [row["channel"] for row in app["by_channel"]] == ["app"]
    anna = metrics.recommendations(w, Filters(start=world.START, end=world.END, people=(1,)))
    assert (anna["clicks"], anna["people"], anna["revenue"], anna["all_revenue"], anna["share"]) == (3, 1, 600, 1000, 60.0)
    store = metrics.recommendations(w, Filters(start=world.START, end=world.END, store=2))
    assert (store["clicks"], store["orders"], store["revenue"], store["all_revenue"]) == (8, 1, 900, 900)
    first_day = metrics.recommendations(w, Filters(start=world.START, end=world.h(13).replace(tzinfo=None)))
    assert (first_day["clicks"], first_day["revenue"], first_day["all_revenue"]) == (4, 600, 1000)


def test_nothing_to_attribute(database, warehouse_for):
    """No lines and no clicks: zeros, no rows, a share of 0 of the period's revenue."""
    world.build(database)
    with warehouse_for(database) as w:
        result = metrics.recommendations(w, PERIOD)
    assert (result["clicks"], result["orders"], result["revenue"], result["share"]) == (0, 0, 0, 0.0)
    assert result["by_channel"] == [] and result["by_reason"] == []


# --- an older mirror ------------------------------------------------------------------------------

OLD_EVENTS = ("id BIGINT, type VARCHAR, name VARCHAR, person_key VARCHAR, channel VARCHAR, ts TIMESTAMP, "
              "utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR")


def test_a_mirror_made_before_the_product_columns_is_upgraded_by_the_next_sync(database, tmp_path):
    """The file of an older version: `events` without the product columns, no variants or
    products, its events copied up to the last one. The next sync adds the columns (the old rows
    have nulls: they predate recommendation tracking), copies the new clicks with them and the new
    tables whole; the metric then runs on it."""
    world.build(database)
    world.add_events(database, [("u:anna", "web", "Product Viewed", 0)])  # event 1, copied by the old version
    path = str(tmp_path / "mirror.duckdb")
    old = duckdb.connect(path)
    old.execute("CREATE TABLE _sync_state (name VARCHAR PRIMARY KEY, last_id BIGINT, last_stamp TIMESTAMP, holes VARCHAR)")
    old.execute(f"CREATE TABLE events ({OLD_EVENTS})")
    old.execute("INSERT INTO events VALUES (1, 'track', 'Product Viewed', 'u:anna', 'web', TIMESTAMP '2026-11-02 10:00:00',"
                " NULL, NULL, NULL)")
    old.execute("INSERT INTO _sync_state VALUES ('events', 1, NULL, '{}')")
    old.close()

    world.add_recommendations(database)
    report = Mirror(database, path).sync()
    assert report.rows["events"] == 9 and report.rows["products"] == 3 and report.rows["variants"] == 4
    with reading(path) as connection:
        columns = [row[0] for row in connection.execute("DESCRIBE events").fetchall()]
        assert columns[-4:] == ["product_code", "list_id", "rec_reason", "shown_in"]
        assert connection.execute("SELECT product_code, shown_in FROM events WHERE id = 1").fetchall() == [(None, None)]
        clicked = connection.execute("SELECT product_code, list_id, rec_reason, shown_in FROM events WHERE id = 2").fetchall()
        assert clicked == [("SHOE", "recommendations", "for_you", "email")]
    connection = ibis.duckdb.connect(path, read_only=True)
    try:
        result = metrics.recommendations(Warehouse("duckdb", connection), PERIOD)
    finally:
        connection.disconnect()
    assert (result["clicks"], result["revenue"]) == (8, 4900)
    # and a second sync of the upgraded file changes nothing more
    assert Mirror(database, path).sync().rows.get("events", 0) == 0
