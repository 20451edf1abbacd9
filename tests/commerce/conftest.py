"""A small shop: two stores in Moscow, one warehouse, a cream and a serum."""

from __future__ import annotations

import pytest

from seamline.devtools.serve import ServerProcess

MOSCOW_HOURS = {d: ["10:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
LOCATIONS = {
    "store-tverskaya": {"kind": "store", "name_ru": "Тверская", "name_en": "Tverskaya", "address": "Тверская ул., 10",
                        "latitude": 55.7616, "longitude": 37.6094, "opening_hours": MOSCOW_HOURS, "pickup_enabled": True},
    "store-arbat": {"kind": "store", "name_ru": "Арбат", "name_en": "Arbat", "address": "ул. Арбат, 20",
                    "latitude": 55.7494, "longitude": 37.5907, "opening_hours": MOSCOW_HOURS, "pickup_enabled": True,
                    "safety_stock": 1},
    "wh-north": {"kind": "warehouse", "name_ru": "Склад Север", "name_en": "North warehouse",
                 "latitude": 55.90, "longitude": 37.55},
    "wh-south": {"kind": "warehouse", "name_ru": "Склад Юг", "name_en": "South warehouse",
                 "latitude": 55.55, "longitude": 37.60},
}


def put(client, headers, path: str, body: dict) -> dict:
    response = client.put(path, json=body, headers=headers)
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else {}


def receive(client, headers, sku: str, location: str, quantity: int, kind: str = "receipt") -> dict:
    response = client.post("/v1/stock/movements", json={"sku": sku, "location": location, "kind": kind,
                                                        "quantity": quantity, "reference": "test"}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def shop(client, admin_headers) -> dict:
    put(client, admin_headers, "/v1/catalog/categories/face", {"name_ru": "Лицо", "name_en": "Face"})
    put(client, admin_headers, "/v1/catalog/products/cream", {
        "name_ru": "Крем для лица", "name_en": "Face cream", "category": "face",
        "image_urls": ["https://cdn.example/cream.jpg"],
        "variants": [{"sku": "CREAM-50", "name_ru": "50 мл", "name_en": "50 ml", "price": {"amount": 199000, "currency": "RUB"}},
                     {"sku": "CREAM-100", "name_ru": "100 мл", "name_en": "100 ml", "price": {"amount": 349000, "currency": "RUB"}}],
    })
    put(client, admin_headers, "/v1/catalog/products/serum", {
        "name_ru": "Сыворотка", "name_en": "Serum", "category": "face",
        "variants": [{"sku": "SERUM-30", "price": {"amount": 250000, "currency": "RUB"}}],
    })
    for code, body in LOCATIONS.items():
        put(client, admin_headers, f"/v1/locations/{code}", body)
    receive(client, admin_headers, "CREAM-50", "store-tverskaya", 3)
    receive(client, admin_headers, "CREAM-50", "store-arbat", 5)
    receive(client, admin_headers, "CREAM-50", "wh-north", 2)
    receive(client, admin_headers, "CREAM-50", "wh-south", 10)
    receive(client, admin_headers, "SERUM-30", "wh-south", 1)
    receive(client, admin_headers, "SERUM-30", "wh-north", 4)
    return {"headers": admin_headers}


@pytest.fixture
def server(database, tmp_path):
    """A real `seamline serve` with two worker processes on the test database (concurrency tests)."""
    process = ServerProcess(database.url, workers=2, log_path=tmp_path / "server.log").start()
    yield process
    process.stop()
