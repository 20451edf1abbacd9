"""The catalog snapshot a process keeps (`commerce.catalog_cache`) never serves a stale catalog:
another process's change is seen by the very next request, because the database raises the
catalog version in the changing transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from seamline.app import create_app
from seamline.commerce import catalog_cache
from seamline.core.db import Database, DriverSQL
from tests.commerce.conftest import LOCATIONS, put

PICKUP = {"kind": "click_and_collect", "location": "store-arbat"}


@pytest.fixture
def other_process(settings, shop) -> Iterator[TestClient]:
    """A second server on the same database, with its own engine and so its own snapshot."""
    database = Database(settings)
    with TestClient(create_app(settings, database=database)) as client:
        yield client
    database.dispose()


def quote(client: TestClient, headers: dict, sku: str = "CREAM-50") -> dict:
    return client.post("/v1/pricing/quote", headers=headers,
                       json={"channel": "web", "lines": [{"sku": sku, "quantity": 1}]})


def order(client: TestClient, headers: dict, sku: str = "CREAM-50", **fulfilment) -> dict:
    return client.post("/v1/orders", headers=headers, json={
        "channel": "web", "lines": [{"sku": sku, "quantity": 1}], "fulfilment": fulfilment or PICKUP,
    })


def test_a_price_change_in_one_process_is_seen_by_the_next_request_of_another(client, other_process, shop):
    headers = shop["headers"]
    assert quote(other_process, headers).json()["total"] == 199000  # warms the other process's snapshot
    put(client, headers, "/v1/catalog/products/cream", {
        "name_ru": "Крем для лица", "name_en": "Face cream", "category": "face",
        "variants": [{"sku": "CREAM-50", "name_ru": "50 мл", "price": {"amount": 189000, "currency": "RUB"}},
                     {"sku": "CREAM-100", "name_ru": "100 мл", "price": {"amount": 349000, "currency": "RUB"}}],
    })
    assert quote(other_process, headers).json()["total"] == 189000
    placed = order(other_process, headers)
    assert placed.status_code == 201, placed.text
    assert placed.json()["total"] == 189000 and placed.json()["lines"][0]["name"] == "Крем для лица 50 мл"


def test_a_withdrawn_sku_a_new_promotion_and_a_closed_pickup_are_seen_at_once(client, other_process, shop):
    headers = shop["headers"]
    assert order(other_process, headers).status_code == 201
    assert quote(other_process, headers, "SERUM-30").status_code == 200

    put(client, headers, "/v1/catalog/products/serum", {
        "name_ru": "Сыворотка", "name_en": "Serum", "category": "face",
        "variants": [{"sku": "SERUM-30", "active": False, "price": {"amount": 250000, "currency": "RUB"}}],
    })
    refused = quote(other_process, headers, "SERUM-30")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown_sku"

    put(client, headers, "/v1/promotions/autumn", {"name_ru": "Осень", "name_en": "Autumn", "kind": "percent", "value": 10})
    assert quote(other_process, headers).json()["total"] == 179100

    put(client, headers, "/v1/locations/store-arbat", {**LOCATIONS["store-arbat"], "pickup_enabled": False})
    closed = order(other_process, headers)
    assert closed.status_code == 422 and closed.json()["error"]["code"] == "pickup_not_available"


def test_the_version_rises_with_every_catalog_write_and_only_then(database, shop, client):
    def version() -> int:
        with database.read() as session:
            return catalog_cache.snapshot(session).version

    before = version()
    assert version() == before  # reading changes nothing
    assert order(client, shop["headers"]).status_code == 201  # orders and stock are not the catalog
    assert version() == before
    put(client, shop["headers"], "/v1/promotions/spring", {"name_ru": "Весна", "name_en": "Spring", "kind": "percent", "value": 5})
    assert version() > before


def test_a_transaction_raises_the_version_once_on_postgresql(database, shop):
    """However many catalog rows and statements a transaction writes (a bulk load), PostgreSQL's
    trigger raises the version once; SQLite's row triggers raise it per row."""
    with database.read() as session:
        before = catalog_cache.snapshot(session).version
    with database.write() as session:
        sql = DriverSQL(session)
        for n in range(50):  # one statement each
            sql.execute("UPDATE commerce_price SET amount = amount + ? WHERE channel = ''", (n,))
    with database.read() as session:
        after = catalog_cache.snapshot(session).version
    assert after > before
    if not database.is_sqlite:
        assert after == before + 1
