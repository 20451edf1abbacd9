"""The store channel (POS) through the API: find the customer at the till, the pickup queue,
handover by code, in-store sales joined to the online profile, stock in other stores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from seamline.commerce import stock as stock_ledger
from seamline.commerce.models import CommerceOrder
from seamline.customers.models import CustomerProfile
from tests.commerce.conftest import MOSCOW_HOURS, put, receive
from tests.commerce.test_orders import click_and_collect, order, stock

PHONE_STORED = "8 (916) 123-45-67"
PHONE_AT_TILL = "+7 916 123 45 67"


def pos(store: str, path: str = "") -> str:
    return f"/v1/pos/stores/{store}{path}"


def ready(client, headers, order_id: int) -> dict:
    response = client.post(f"/v1/orders/{order_id}/ready", json={"channel": "store"}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def sale(client, headers, store: str, body: dict, key: str | None = None, expect: int = 201) -> dict:
    extra = {"Idempotency-Key": key} if key else {}
    response = client.post(pos(store, "/sales"), json=body, headers={**headers, **extra})
    assert response.status_code == expect, response.text
    return response.json()


def sale_body(*lines: tuple[str, int], method: str = "cash", **more) -> dict:
    return {"lines": [{"sku": s, "quantity": q} for s, q in lines], "payment": {"method": method}, **more}


def error_code(response) -> str:
    return response.json()["error"]["code"]


def count(database, model) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_find_the_customer_by_phone_in_any_format_and_by_card(client, shop, database):
    headers = shop["headers"]
    anna = {"type": "phone", "value": PHONE_STORED}
    upsert = client.post("/v1/customers", json={
        "identifiers": [anna, {"type": "loyalty_card", "value": "CARD-0777"}, {"type": "device_id", "value": "d-1"}],
        "traits": {"first_name": "Анна", "last_name": "Петрова", "city": "Москва"}}, headers=headers)
    assert upsert.status_code == 200, upsert.text
    here = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), channel="app", identifiers=[anna]))
    ready(client, headers, here["id"])
    elsewhere = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=[anna]))
    delivered = order(client, headers, {"channel": "call_center", "lines": [{"sku": "SERUM-30", "quantity": 1}],
                                        "identifiers": [anna], "fulfilment": {"kind": "delivery", "address": {"city": "Москва"}}})
    someone_else = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1),
                                                            identifiers=[{"type": "phone", "value": "+79035550000"}]))
    profiles = count(database, CustomerProfile)

    response = client.get(pos("store-arbat", "/customers"), params={"phone": PHONE_AT_TILL}, headers=headers)
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["id"] == here["customer_id"] == upsert.json()["customer"]["id"]
    assert card["name"] == "Анна Петрова" and card["traits"]["city"] == "Москва"
    assert {(i["type"], i["value"]) for i in card["identifiers"]} == {("phone", "+79161234567"), ("loyalty_card", "CARD-0777")}
    assert [o["id"] for o in card["pickups_here"]] == [here["id"]]  # not the Tverskaya one, not someone else's
    waiting = card["pickups_here"][0]
    assert waiting["status"] == "ready_for_pickup" and waiting["pickup_location"] == "store-arbat"
    assert waiting["lines"] == [{"sku": "CREAM-50", "name": "Крем для лица 50 мл", "quantity": 1, "unit_price": 199000, "total": 199000}]
    assert "pickup_code" not in waiting  # the customer proves the order is theirs with it
    assert [(o["id"], o["channel"]) for o in card["recent_orders"]] == [
        (delivered["id"], "call_center"), (elsewhere["id"], "web"), (here["id"], "app")]
    assert someone_else["id"] not in [o["id"] for o in card["recent_orders"]]

    by_card = client.get(pos("store-arbat", "/customers"), params={"card": " CARD-0777 "}, headers=headers)
    assert by_card.status_code == 200 and by_card.json()["id"] == card["id"]
    by_card_at_tverskaya = client.get(pos("store-tverskaya", "/customers"), params={"card": "CARD-0777"}, headers=headers).json()
    assert [o["id"] for o in by_card_at_tverskaya["pickups_here"]] == [elsewhere["id"]]

    unknown = client.get(pos("store-arbat", "/customers"), params={"phone": "+7 926 000-00-01"}, headers=headers)
    assert unknown.status_code == 404 and error_code(unknown) == "customer_not_found"
    assert client.get(pos("store-arbat", "/customers"), params={"email": "nobody@example.com"}, headers=headers).status_code == 404
    assert count(database, CustomerProfile) == profiles  # reading never creates a profile

    for params, code in [({}, "one_identifier_required"), ({"phone": PHONE_AT_TILL, "card": "CARD-0777"}, "one_identifier_required"),
                         ({"phone": "12"}, "invalid_phone"), ({"email": "not-an-email"}, "invalid_email")]:
        bad = client.get(pos("store-arbat", "/customers"), params=params, headers=headers)
        assert bad.status_code == 422 and error_code(bad) == code, (params, bad.text)


def test_the_pickup_queue_shows_ready_orders_first_with_lines_and_customer(client, shop):
    headers = shop["headers"]
    client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": PHONE_STORED}],
                                       "traits": {"name": "Анна"}}, headers=headers)
    waiting = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), ("CREAM-50", 1),
                                                       identifiers=[{"type": "phone", "value": PHONE_STORED}]))
    assembled = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1)))
    ready(client, headers, assembled["id"])
    order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1)))
    gone = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1)))
    client.post(f"/v1/orders/{gone['id']}/cancel", json={}, headers=headers)

    response = client.get(pos("store-arbat", "/pickups"), headers=headers)
    assert response.status_code == 200, response.text
    queue = response.json()
    assert [(o["id"], o["status"]) for o in queue] == [(assembled["id"], "ready_for_pickup"), (waiting["id"], "confirmed")]
    assert queue[1]["customer"] == {"id": waiting["customer_id"], "name": "Анна",
                                    "identifiers": [{"type": "phone", "value": "+79161234567"}]}
    assert queue[0]["customer"] is None and queue[1]["lines"][0]["quantity"] == 2
    assert all("pickup_code" not in o for o in queue)
    assert [o["id"] for o in client.get(pos("store-arbat", "/pickups"), params={"limit": 1}, headers=headers).json()] == [assembled["id"]]


def test_handover_by_code_at_the_right_store_only(client, shop):
    headers = shop["headers"]
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2)))
    ready(client, headers, placed["id"])
    code = placed["pickup_code"]
    before = stock(client, headers, "CREAM-50")

    wrong_store = client.post(pos("store-tverskaya", "/pickups"), json={"order_id": placed["id"], "code": code}, headers=headers)
    assert wrong_store.status_code == 409 and error_code(wrong_store) == "wrong_store"
    assert wrong_store.json()["error"]["details"] == {"store": "store-tverskaya", "pickup_location": "store-arbat"}
    wrong_code = client.post(pos("store-arbat", "/pickups"), json={"order_id": placed["id"], "code": "000000" if code != "000000" else "111111"},
                             headers=headers)
    assert wrong_code.status_code == 422 and error_code(wrong_code) == "wrong_pickup_code"
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "ready_for_pickup"
    assert stock(client, headers, "CREAM-50") == before  # nothing changed

    done = client.post(pos("store-arbat", "/pickups"), json={"order_id": placed["id"], "code": code, "clerk": "Ольга"}, headers=headers)
    assert done.status_code == 200, done.text
    handed = done.json()
    assert handed["status"] == "completed" and handed["completed_channel"] == "store"
    assert handed["history"][-1] == {**handed["history"][-1], "status": "completed", "channel": "store",
                                     "note": "store-arbat; clerk Ольга"}
    assert stock(client, headers, "CREAM-50")["store-arbat"]["on_hand"] == before["store-arbat"]["on_hand"] - 2
    again = client.post(pos("store-arbat", "/pickups"), json={"order_id": placed["id"], "code": code}, headers=headers)
    assert again.status_code == 200 and len(again.json()["history"]) == len(handed["history"])  # a retry is a no-op
    assert client.get(pos("store-arbat", "/pickups"), headers=headers).json() == []

    delivery = order(client, headers, {"channel": "web", "lines": [{"sku": "SERUM-30", "quantity": 1}],
                                       "fulfilment": {"kind": "delivery", "address": {"city": "Москва"}}})
    not_here = client.post(pos("store-arbat", "/pickups"), json={"order_id": delivery["id"], "code": "123456"}, headers=headers)
    assert not_here.status_code == 409 and error_code(not_here) == "wrong_store"
    missing = client.post(pos("store-arbat", "/pickups"), json={"order_id": 10**9, "code": "123456"}, headers=headers)
    assert missing.status_code == 404 and error_code(missing) == "order_not_found"


def test_an_in_store_sale_joins_the_profile_of_online_orders(client, shop, database):
    headers = shop["headers"]
    online = order(client, headers, {"channel": "web", "lines": [{"sku": "SERUM-30", "quantity": 1}],
                                     "identifiers": [{"type": "phone", "value": PHONE_STORED}],
                                     "fulfilment": {"kind": "delivery", "address": {"city": "Москва"}}})
    sold = sale(client, headers, "store-tverskaya", sale_body(
        ("CREAM-50", 1), ("CREAM-50", 1), identifiers=[{"type": "phone", "value": PHONE_AT_TILL}],
        receipt="R-0001", clerk="Ольга", payment={"method": "card", "amount": 398000}))
    assert sold["customer_id"] == online["customer_id"]
    assert (sold["channel"], sold["completed_channel"], sold["status"], sold["fulfilment"]) == ("store", "store", "completed", "in_store")
    assert (sold["payment_method"], sold["total"], sold["currency"], sold["pickup_code"]) == ("on_pickup", 398000, "RUB", None)
    assert (sold["payment"]["status"], sold["payment"]["paid"]) == ("paid", 398000)  # taken at the till
    assert sold["pickup_location"] == "store-tverskaya" and sold["reserved_until"] is None
    assert sold["lines"] == [{**sold["lines"][0], "sku": "CREAM-50", "quantity": 2, "unit_price": 199000, "total": 398000,
                              "allocations": [{"location": "store-tverskaya", "quantity": 2, "status": "committed"}]}]
    assert [(h["status"], h["channel"], h["note"]) for h in sold["history"]] == [
        ("completed", "store", "store-tverskaya; receipt R-0001; clerk Ольга; paid by card")]
    assert stock(client, headers, "CREAM-50")["store-tverskaya"] == {
        "location": "store-tverskaya", "kind": "store", "on_hand": 1, "reserved": 0, "available": 1}
    assert client.get(f"/v1/orders/{sold['id']}", headers=headers).json() == sold

    customer = client.get(f"/v1/customers/{online['customer_id']}", headers=headers).json()
    assert [(o["id"], o["channel"], o["fulfilment"]) for o in customer["sections"]["orders"]] == [
        (sold["id"], "store", "in_store"), (online["id"], "web", "delivery")]
    timeline = client.get(f"/v1/customers/{online['customer_id']}/timeline", params={"type": "order"}, headers=headers).json()
    assert [(i["type"], i["channel"], i["data"]["order_id"]) for i in timeline["items"]] == [
        ("order.completed", "store", sold["id"]), ("order.confirmed", "web", online["id"])]
    # the till's card shows both
    card = client.get(pos("store-arbat", "/customers"), params={"phone": PHONE_STORED}, headers=headers).json()
    assert [o["id"] for o in card["recent_orders"]] == [sold["id"], online["id"]]

    # a new person at the till gets a profile; an anonymous sale has none
    newcomer = sale(client, headers, "store-tverskaya", sale_body(("CREAM-50", 1), receipt="R-0002",
                                                                  identifiers=[{"type": "loyalty_card", "value": "CARD-9"}]))
    assert newcomer["customer_id"] not in (None, online["customer_id"])
    assert client.get(pos("store-tverskaya", "/customers"), params={"card": "CARD-9"}, headers=headers).json()["id"] == newcomer["customer_id"]
    receive(client, headers, "CREAM-50", "store-tverskaya", 1)
    anonymous = sale(client, headers, "store-tverskaya", sale_body(("CREAM-50", 1), receipt="R-0003"))
    assert anonymous["customer_id"] is None
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


def test_a_sale_is_recorded_once_however_often_it_is_sent(client, shop, database):
    headers = shop["headers"]
    body = sale_body(("CREAM-50", 1), identifiers=[{"type": "phone", "value": PHONE_STORED}])
    first = sale(client, headers, "store-arbat", body, key="till-1-0042")
    again = sale(client, headers, "store-arbat", body, key="till-1-0042", expect=200)
    assert again == first
    assert stock(client, headers, "CREAM-50")["store-arbat"]["on_hand"] == 4
    reused = client.post(pos("store-arbat", "/sales"), json=sale_body(("CREAM-50", 2)), headers={**headers, "Idempotency-Key": "till-1-0042"})
    assert reused.status_code == 422 and error_code(reused) == "idempotency_key_reused"

    # the receipt number is the key when there is no header, per store
    by_receipt = sale_body(("CREAM-50", 1), receipt="0042")
    one = sale(client, headers, "store-arbat", by_receipt)
    assert sale(client, headers, "store-arbat", by_receipt, expect=200)["id"] == one["id"]
    other_store = sale(client, headers, "store-tverskaya", by_receipt)
    assert other_store["id"] != one["id"]
    assert stock(client, headers, "CREAM-50")["store-arbat"]["on_hand"] == 3

    no_key = client.post(pos("store-arbat", "/sales"), json=sale_body(("CREAM-50", 1)), headers=headers)
    assert no_key.status_code == 422 and error_code(no_key) == "idempotency_key_required"

    # the same sale sent from several threads at once is still one sale
    orders_before = count(database, CommerceOrder)

    def send(_: int) -> tuple[int, int]:
        response = client.post(pos("store-arbat", "/sales"), json=sale_body(("CREAM-50", 1), receipt="0043"), headers=headers)
        return response.status_code, response.json().get("id", 0)

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(send, range(6)))
    assert sorted(status for status, _ in outcomes) == [200] * 5 + [201], outcomes
    assert len({order_id for _, order_id in outcomes}) == 1
    assert count(database, CommerceOrder) == orders_before + 1
    assert stock(client, headers, "CREAM-50")["store-arbat"]["on_hand"] == 2
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


def test_the_till_does_not_sell_stock_held_for_click_and_collect(client, shop, database):
    headers = shop["headers"]
    order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 2)))  # 3 on hand, 2 held
    before, orders_before = stock(client, headers, "CREAM-50"), count(database, CommerceOrder)
    refused = client.post(pos("store-tverskaya", "/sales"), json=sale_body(("CREAM-50", 2), ("SERUM-30", 1), receipt="R-1"),
                          headers=headers)
    assert refused.status_code == 409 and error_code(refused) == "insufficient_stock"
    assert refused.json()["error"]["details"]["shortages"] == [
        {"sku": "CREAM-50", "requested": 2, "available": 1, "location": "store-tverskaya"},
        {"sku": "SERUM-30", "requested": 1, "available": 0, "location": "store-tverskaya"}]
    assert stock(client, headers, "CREAM-50") == before and count(database, CommerceOrder) == orders_before
    # the same receipt, corrected, goes through: the refused attempt kept nothing, not even its key
    assert sale(client, headers, "store-tverskaya", sale_body(("CREAM-50", 1), receipt="R-1"))["total"] == 199000
    assert stock(client, headers, "CREAM-50")["store-tverskaya"] == {
        "location": "store-tverskaya", "kind": "store", "on_hand": 2, "reserved": 2, "available": 0}
    # the safety stock is kept from online sale, not from the till: Arbat sells all 5 it holds
    assert sale(client, headers, "store-arbat", sale_body(("CREAM-50", 5), receipt="R-2"))["lines"][0]["quantity"] == 5

    mismatch = client.post(pos("store-arbat", "/sales"), json={**sale_body(("SERUM-30", 1), receipt="R-3"),
                                                                "payment": {"method": "cash", "amount": 1}}, headers=headers)
    assert mismatch.status_code == 422 and error_code(mismatch) == "amount_mismatch"
    assert mismatch.json()["error"]["details"] == {"expected": 250000, "given": 1, "currency": "RUB"}
    for body, code in [(sale_body(("NOPE", 1), receipt="R-4"), "unknown_sku"),
                       (sale_body(("CREAM-50", 0), receipt="R-4"), "validation_error"),
                       ({**sale_body(("CREAM-50", 1), receipt="R-4"), "payment": {"method": "cheque"}}, "validation_error"),
                       (sale_body(("CREAM-50", 1), receipt="R\x00"), "validation_error")]:
        bad = client.post(pos("store-tverskaya", "/sales"), json=body, headers=headers)
        assert bad.status_code == 422 and error_code(bad) == code, bad.text
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


def test_stock_here_and_in_other_stores_nearest_first(client, shop):
    headers = shop["headers"]
    all_day = {d: ["00:00", "24:00"] for d in MOSCOW_HOURS}
    stores = {
        "store-piter": {"kind": "store", "name_ru": "Невский", "name_en": "Nevsky", "latitude": 59.9343, "longitude": 30.3351,
                        "opening_hours": all_day, "pickup_enabled": True, "timezone": "Europe/Moscow"},
        "store-tula": {"kind": "store", "name_ru": "Тула", "name_en": "Tula", "latitude": 54.1931, "longitude": 37.6173,
                       "opening_hours": all_day, "pickup_enabled": False},
        "store-nowhere": {"kind": "store", "name_ru": "Без координат", "name_en": "No coordinates", "pickup_enabled": True},
        "store-empty": {"kind": "store", "name_ru": "Пусто", "name_en": "Empty", "latitude": 55.75, "longitude": 37.6},
    }
    for code, body in stores.items():
        put(client, headers, f"/v1/locations/{code}", body)
    for code in ("store-piter", "store-tula", "store-nowhere"):
        receive(client, headers, "CREAM-50", code, 4)
    order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1)))

    response = client.get(pos("store-tverskaya", "/stock/CREAM-50"), headers=headers)
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["sku"] == "CREAM-50"
    assert found["here"] == {"location": "store-tverskaya", "on_hand": 3, "reserved": 0, "sellable": 3}
    elsewhere = found["elsewhere"]
    # Arbat (5 on hand, 1 held, 1 safety), then Tula, St Petersburg, and the store without coordinates;
    # no warehouses, not this store, not a store without the SKU
    assert [s["location"] for s in elsewhere] == ["store-arbat", "store-tula", "store-piter", "store-nowhere"]
    assert elsewhere[0]["available"] == 3 and elsewhere[0]["distance_km"] < 3
    assert 150 < elsewhere[1]["distance_km"] < elsewhere[2]["distance_km"] and elsewhere[3]["distance_km"] is None
    assert [(s["pickup_enabled"], s["pickup_today"]) for s in elsewhere[1:]] == [(False, False), (True, True), (True, False)]
    enough = client.get(pos("store-tverskaya", "/stock/CREAM-50"), params={"quantity": 4, "limit": 2}, headers=headers).json()
    assert [s["location"] for s in enough["elsewhere"]] == ["store-tula", "store-piter"]

    nothing_here = client.get(pos("store-arbat", "/stock/SERUM-30"), headers=headers).json()
    assert nothing_here == {"sku": "SERUM-30", "here": {"location": "store-arbat", "on_hand": 0, "reserved": 0, "sellable": 0},
                            "elsewhere": []}
    unknown = client.get(pos("store-arbat", "/stock/NOPE"), headers=headers)
    assert unknown.status_code == 422 and error_code(unknown) == "unknown_sku"


def test_an_unknown_store_or_a_location_that_is_not_a_store_is_refused(client, shop, database, read_headers):
    headers = shop["headers"]
    put(client, headers, "/v1/locations/store-closed", {"kind": "store", "name_ru": "Закрыт", "name_en": "Closed", "active": False})
    before = stock(client, headers, "CREAM-50")
    for store, status, code in [("nowhere", 404, "store_not_found"), ("store-closed", 404, "store_not_found"),
                                ("wh-south", 422, "not_a_store")]:
        for response in (
            client.get(pos(store, "/pickups"), headers=headers),
            client.get(pos(store, "/customers"), params={"phone": PHONE_STORED}, headers=headers),
            client.get(pos(store, "/stock/CREAM-50"), headers=headers),
            client.post(pos(store, "/pickups"), json={"order_id": 1, "code": "123456"}, headers=headers),
            client.post(pos(store, "/sales"), json=sale_body(("CREAM-50", 1), receipt="R-1"), headers=headers),
        ):
            assert response.status_code == status and error_code(response) == code, (store, response.text)
    assert stock(client, headers, "CREAM-50") == before and count(database, CommerceOrder) == 0
    read_only = client.post(pos("store-arbat", "/sales"), json=sale_body(("CREAM-50", 1), receipt="R-1"), headers=read_headers)
    assert read_only.status_code == 403 and count(database, CommerceOrder) == 0


def test_a_return_at_the_till_goes_through_the_returns_api(client, shop, database):
    """The POS accepts returns with `POST /v1/orders/{id}/returns`, the store's code as location:
    an online order bought at Arbat comes back at Tverskaya, a till sale at its own store."""
    headers = shop["headers"]
    online = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2), channel="app"))
    ready(client, headers, online["id"])
    handed = client.post(pos("store-arbat", "/pickups"), json={"order_id": online["id"], "code": online["pickup_code"]}, headers=headers)
    assert handed.status_code == 200, handed.text
    sold = sale(client, headers, "store-tverskaya", sale_body(("CREAM-50", 1), receipt="R-7"))
    before = stock(client, headers, "CREAM-50")

    back = client.post(f"/v1/orders/{online['id']}/returns", json={"lines": [{"sku": "CREAM-50", "quantity": 1}],
                                                                   "location": "store-tverskaya", "channel": "store"},
                       headers={**headers, "Idempotency-Key": "tverskaya-return-1"})
    assert back.status_code == 201, back.text
    assert (back.json()["location"], back.json()["amount"]) == ("store-tverskaya", 199000)
    whole_sale = client.post(f"/v1/orders/{sold['id']}/returns", json={"location": "store-tverskaya", "channel": "store", "all": True},
                             headers={**headers, "Idempotency-Key": "tverskaya-return-2"})
    assert whole_sale.status_code == 201, whole_sale.text
    assert whole_sale.json()["amount"] == 199000 and whole_sale.json()["full"] is True
    assert [r["status"] for r in whole_sale.json()["refunds"]] == ["succeeded"]  # paid out at the till
    after = stock(client, headers, "CREAM-50")
    assert after["store-tverskaya"]["on_hand"] == before["store-tverskaya"]["on_hand"] + 2
    assert after["store-arbat"] == before["store-arbat"]  # the goods are where they came back
    returned = client.get(f"/v1/orders/{sold['id']}", headers=headers).json()
    assert returned["status"] == "returned" and returned["payment"]["refunded"] == 199000
    with database.read() as session:
        assert stock_ledger.check_stock(session) == []


def test_handover_by_the_code_alone_and_before_the_order_was_marked_ready(client, shop):
    headers = shop["headers"]
    placed = client.post("/v1/orders", headers=headers, json={
        "channel": "app", "lines": [{"sku": "CREAM-50", "quantity": 1}],
        "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}}).json()
    assert placed["status"] == "confirmed"  # pay on pickup; the store has not marked it ready
    unknown = client.post("/v1/pos/stores/store-arbat/pickups", json={"code": "000000" if placed["pickup_code"] != "000000" else "111111"},
                          headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "pickup_code_unknown"
    elsewhere = client.post("/v1/pos/stores/store-tverskaya/pickups", json={"code": placed["pickup_code"]}, headers=headers)
    assert elsewhere.status_code == 404  # the code alone finds only orders waiting in this store
    done = client.post("/v1/pos/stores/store-arbat/pickups", json={"code": placed["pickup_code"], "clerk": "Ольга"}, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    history = [h["status"] for h in client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["history"]]
    assert history[-2:] == ["ready_for_pickup", "completed"]
