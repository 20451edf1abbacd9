"""The server's own jobs: an order whose hold ran out is cancelled without cron."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from seamline.app import create_app
from seamline.commerce.models import CommerceOrder
from seamline.core.time import utcnow


def test_the_server_cancels_orders_whose_hold_ran_out(shop, settings, database, client):
    headers = shop["headers"]
    placed = client.post("/v1/orders", headers=headers, json={
        "channel": "web", "lines": [{"sku": "CREAM-50", "quantity": 2}], "payment_method": "test",
        "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}})
    assert placed.status_code == 201 and placed.json()["status"] == "pending_payment", placed.text
    kept = client.post("/v1/orders", headers=headers, json={
        "channel": "web", "lines": [{"sku": "CREAM-50", "quantity": 1}],
        "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}}).json()
    with database.write() as session:
        session.execute(update(CommerceOrder).where(CommerceOrder.id == placed.json()["id"])
                        .values(reserved_until=utcnow() - timedelta(minutes=1)))

    settings.commerce_expire_interval_seconds = 0.05
    settings.serve_worker = True
    with TestClient(create_app(settings, database=database)) as server:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            order = server.get(f"/v1/orders/{placed.json()['id']}", headers=headers).json()
            if order["status"] == "cancelled":
                break
            time.sleep(0.05)
        assert order["status"] == "cancelled" and order["history"][-1]["note"] == "hold expired"
        assert server.get(f"/v1/orders/{kept['id']}", headers=headers).json()["status"] == "confirmed"
        arbat = {row["location"]: row for row in server.get("/v1/stock/CREAM-50", headers=headers).json()}["store-arbat"]
        assert arbat["reserved"] == 1
