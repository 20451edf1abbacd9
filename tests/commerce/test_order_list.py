"""GET /v1/orders: every channel's orders, filtered by the person (through merges), status,
channel, store and placing time, a page at a time with a cursor."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import update

from seamline.commerce.models import CommerceOrder
from tests.commerce.test_orders import click_and_collect, order
from seamline.core.auth.schemas import Scope
from tests.conftest import make_key

PHONE = [{"type": "phone", "value": "+79161234567"}]
EMAIL = [{"type": "email", "value": "anna@example.com"}]


def listed(client, headers, expect: int = 200, **params) -> dict:
    response = client.get("/v1/orders", params=params, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def ids(client, headers, **params) -> list[int]:
    return [o["id"] for o in listed(client, headers, **params)["items"]]


def delivery(*lines: tuple[str, int], channel: str = "web", **more) -> dict:
    return {"channel": channel, "lines": [{"sku": s, "quantity": q} for s, q in lines],
            "fulfilment": {"kind": "delivery", "address": {"city": "Москва", "latitude": 55.75, "longitude": 37.6}}, **more}


def test_orders_are_listed_by_person_status_channel_store_and_time(client, shop, database):
    headers = shop["headers"]
    by_phone = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), channel="web", identifiers=PHONE))
    by_email = order(client, headers, delivery(("SERUM-30", 1), channel="app", identifiers=EMAIL))
    someone = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), channel="app",
                                                       identifiers=[{"type": "phone", "value": "+79030000000"}]))
    sale = client.post("/v1/pos/stores/store-tverskaya/sales", json={
        "lines": [{"sku": "CREAM-50", "quantity": 1}], "payment": {"method": "card"}, "receipt": "R-1"}, headers=headers)
    assert sale.status_code == 201, sale.text
    sale = sale.json()
    cancelled = client.post(f"/v1/orders/{someone['id']}/cancel", json={"channel": "app"}, headers=headers)
    assert cancelled.status_code == 200, cancelled.text

    # A read key is enough; newest first; each item is the whole order, as GET /v1/orders/{id} shows it.
    reader = {"Authorization": f"Bearer {make_key(database, Scope.read)}"}
    everything = listed(client, reader)
    assert [o["id"] for o in everything["items"]] == [sale["id"], someone["id"], by_email["id"], by_phone["id"]]
    assert everything["next_cursor"] is None
    assert everything["items"][3] == client.get(f"/v1/orders/{by_phone['id']}", headers=reader).json()
    assert everything["items"][0]["payment"]["status"] == "paid" and everything["items"][0]["lines"][0]["sku"] == "CREAM-50"

    # The person's orders follow a merge of their profiles, asked by either id.
    assert ids(client, headers, customer_id=by_phone["customer_id"]) == [by_phone["id"]]
    merged = client.post("/v1/customers", json={"identifiers": PHONE + EMAIL}, headers=headers)
    assert merged.status_code == 200 and merged.json()["merged_customer_ids"], merged.text
    for customer_id in (by_phone["customer_id"], by_email["customer_id"]):
        assert ids(client, headers, customer_id=customer_id) == [by_email["id"], by_phone["id"]]

    assert ids(client, headers, status="cancelled") == [someone["id"]]
    assert ids(client, headers, status=["confirmed", "completed"]) == [sale["id"], by_email["id"], by_phone["id"]]
    assert ids(client, headers, channel="app") == [someone["id"], by_email["id"]]
    assert ids(client, headers, channel="store") == [sale["id"]]
    assert ids(client, headers, store="store-tverskaya") == [sale["id"], someone["id"]]
    assert ids(client, headers, store="store-arbat", channel="web", customer_id=by_email["customer_id"]) == [by_phone["id"]]
    assert ids(client, headers, store="wh-north") == []

    # Placing time: from inclusive, to exclusive; no zone means UTC.
    with database.write() as session:
        session.execute(update(CommerceOrder).where(CommerceOrder.id == by_phone["id"])
                        .values(created_at=datetime(2026, 1, 15, 10, 0, tzinfo=timezone.utc)))
    assert ids(client, headers, placed_from="2026-01-01", placed_to="2026-02-01") == [by_phone["id"]]
    assert ids(client, headers, placed_from="2026-01-15T10:00:00Z", placed_to="2026-01-15T10:00:01Z") == [by_phone["id"]]
    assert ids(client, headers, placed_from="2026-01-15T13:00:00+03:00", placed_to="2026-01-15T10:00:00") == []
    assert by_phone["id"] not in ids(client, headers, placed_from="2026-02-01")
    assert ids(client, headers, placed_to="2026-01-15T10:00:00.000001Z") == [by_phone["id"]]


def test_pages_follow_the_cursor_to_the_end(client, shop):
    headers = shop["headers"]
    placed = [order(client, headers, delivery(("CREAM-50", 1), identifiers=PHONE))["id"] for _ in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        page = listed(client, headers, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [o["id"] for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == placed[::-1] and pages == 3
    exact = listed(client, headers, limit=5)
    assert len(exact["items"]) == 5 and exact["next_cursor"] is None  # no empty last page


def test_bad_filters_are_client_errors(client, shop):
    headers = shop["headers"]
    assert client.get("/v1/orders").status_code == 401
    error = lambda response: (response.status_code, response.json()["error"]["code"])  # noqa: E731
    assert error(client.get("/v1/orders", params={"customer_id": 999_999}, headers=headers)) == (404, "customer_not_found")
    assert error(client.get("/v1/orders", params={"store": "nowhere"}, headers=headers)) == (422, "unknown_location")
    assert error(client.get("/v1/orders", params={"cursor": "bm9wZQ"}, headers=headers)) == (422, "invalid_cursor")
    assert error(client.get("/v1/orders", params={"status": "lost"}, headers=headers)) == (422, "validation_error")
    assert error(client.get("/v1/orders", params={"placed_from": "yesterday"}, headers=headers)) == (422, "validation_error")
    assert error(client.get("/v1/orders", params={"placed_from": "0001-01-01T00:00:00+03:00"}, headers=headers)) == (
        422, "validation_error")
    assert error(client.get("/v1/orders", params={"limit": 101}, headers=headers)) == (422, "validation_error")
