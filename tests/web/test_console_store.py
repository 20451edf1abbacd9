"""The store clerk's screen: find the customer by phone or card, the pickups waiting here and
handover by code (a wrong code or another store's order refused readably), a return taken in
this store, an in-store sale; the clerk's store is enforced on the server."""

from __future__ import annotations

import re

from tests.commerce.test_orders import click_and_collect, order, stock
from tests.web import test_console_commerce as console_commerce
from tests.web.test_console_commerce import ANNA, balance, handed_over, ready

shop, staff_client = console_commerce.shop, console_commerce.staff_client  # fixtures

HX = {"HX-Request": "true"}


def anna(client, headers) -> int:
    response = client.post("/v1/customers", json={
        "identifiers": [*ANNA, {"type": "loyalty_card", "value": "7700000000017"}],
        "traits": {"first_name": "Анна", "last_name": "Петрова"}}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def test_find_the_customer_by_phone_in_any_format_or_by_card(client, shop, staff_client):
    headers = shop["headers"]
    cid = anna(client, headers)
    waiting = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    ready(client, headers, waiting["id"])
    elsewhere = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=ANNA))
    client.post(f"/v1/customers/{cid}/loyalty/adjustments", json={"points": 120, "staff": "olga", "comment": "welcome"},
                headers=headers)
    staff_client("clerk", store="store-arbat")

    page = client.get("/console/store")
    assert page.status_code == 200 and 'data-test="store-code">store-arbat<' in page.text
    assert f'data-test="pickup-row-{waiting["id"]}"' in page.text and f'pickup-row-{elsewhere["id"]}' not in page.text

    found = client.get("/console/store/customer", params={"q": "8 (916) 123-45-67"}, headers=HX)
    assert found.status_code == 200 and "<html" not in found.text
    assert f'data-customer-id="{cid}"' in found.text and "Анна Петрова" in found.text
    assert 'data-test="customer-points">120<' in found.text
    pickups = re.search(r'data-test="customer-pickups">(.*?)</ul>', found.text, re.S).group(1)
    assert f"#{waiting['id']}" in pickups and f"#{elsewhere['id']}" not in pickups
    by_card = client.get("/console/store/customer", params={"q": "7700000000017"}, headers=HX)
    assert f'data-customer-id="{cid}"' in by_card.text
    unknown = client.get("/console/store/customer", params={"q": "+79990001122"}, headers=HX)
    assert 'data-test="customer-error">No customer found.<' in unknown.text
    # Without JavaScript the search is the page itself.
    assert f'data-customer-id="{cid}"' in client.get("/console/store", params={"q": "+7 916 123 45 67"}).text


def test_hand_over_by_code_here_and_refusals_for_a_wrong_code_or_store(client, shop, staff_client):
    headers = shop["headers"]
    here = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2), identifiers=ANNA))
    ready(client, headers, here["id"])
    there = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=ANNA))
    ready(client, headers, there["id"])
    csrf = staff_client("clerk", store="store-arbat")
    hx = {**HX, "X-CSRF-Token": csrf}

    wrong_code = "000000" if here["pickup_code"] != "000000" else "111111"
    refused = client.post("/console/store/pickups", data={"code": wrong_code, "order": str(here["id"])}, headers=hx)
    assert refused.status_code == 422
    assert re.search(r'data-test="pickup-result" data-outcome="error">The pickup code does not match this order.<', refused.text)
    other = client.post("/console/store/pickups", data={"code": there["pickup_code"], "order": str(there["id"])}, headers=hx)
    assert other.status_code == 422 and "This order is collected at store-tverskaya, not at store-arbat." in other.text
    alone = client.post("/console/store/pickups", data={"code": there["pickup_code"]}, headers=hx)
    if there["pickup_code"] != here["pickup_code"]:
        assert alone.status_code == 422 and "No order waiting in this store has this pickup code." in alone.text
    for placed in (here, there):
        assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "ready_for_pickup"

    done = client.post("/console/store/pickups", data={"code": here["pickup_code"]}, headers=hx)  # the code alone
    assert done.status_code == 200, done.text
    assert f'data-outcome="ok" data-order-id="{here["id"]}"' in done.text
    assert "199 points will accrue" in done.text  # 5 % of 3,980 roubles, pending for the hold
    assert 'id="store-pickups"' in done.text and 'hx-swap-oob="true"' in done.text and f"pickup-row-{here['id']}" not in done.text
    view = client.get(f"/v1/orders/{here['id']}", headers=headers).json()
    assert view["status"] == "completed" and view["completed_channel"] == "store"
    assert "clerk clerk1@example.com" in view["history"][-1]["note"]
    assert balance(client, headers, here["customer_id"]) == (0, 199)


def test_a_return_in_this_store_puts_the_goods_here_and_takes_points_back(client, shop, staff_client):
    headers = shop["headers"]
    sold = handed_over(client, headers, "store-arbat", ("CREAM-50", 2))
    before = stock(client, headers, "CREAM-50")
    csrf = staff_client("clerk", store="store-tverskaya")
    hx = {**HX, "X-CSRF-Token": csrf}

    form = client.get("/console/store/return", params={"order": str(sold["id"])}, headers=HX)
    assert form.status_code == 200 and 'name="qty-CREAM-50"' in form.text and 'data-test="return-qty-CREAM-50"' in form.text
    key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
    assert "No order with this number." in client.get("/console/store/return", params={"order": "999999"}, headers=HX).text

    too_many = client.post("/console/store/returns", data={"order": sold["id"], "qty-CREAM-50": "5", "key": key}, headers=hx)
    assert too_many.status_code == 422 and "Only 2 of CREAM-50 can be returned." in too_many.text
    accepted = client.post("/console/store/returns", data={"order": sold["id"], "qty-CREAM-50": "2", "key": key,
                                                           "reason": "allergy"}, headers=hx)
    assert accepted.status_code == 200, accepted.text
    assert 'data-test="return-result"' in accepted.text and "3,980.00" in accepted.text and "Taken back: -199" in accepted.text

    after = stock(client, headers, "CREAM-50")
    assert after["store-tverskaya"]["on_hand"] == before["store-tverskaya"]["on_hand"] + 2
    assert after["store-arbat"]["on_hand"] == before["store-arbat"]["on_hand"]
    view = client.get(f"/v1/orders/{sold['id']}", headers=headers).json()
    assert view["status"] == "returned" and view["payment"]["status"] == "refunded"
    assert balance(client, headers, sold["customer_id"]) == (0, 0)
    finished = client.get("/console/store/return", params={"order": str(sold["id"])}, headers=HX)
    assert "Only orders handed over to the customer can be returned; this one is Returned." in finished.text


def test_an_in_store_sale_with_points(client, shop, staff_client):
    headers = shop["headers"]
    cid = anna(client, headers)
    client.post(f"/v1/customers/{cid}/loyalty/adjustments", json={"points": 100, "staff": "olga", "comment": "gift"},
                headers=headers)
    before = stock(client, headers, "CREAM-50")["store-arbat"]["on_hand"]
    csrf = staff_client("clerk", store="store-arbat")
    hx = {**HX, "X-CSRF-Token": csrf}
    page = client.get("/console/store").text
    key = re.search(r'id="store-sale".*?name="key" value="([^"]+)"', page, re.S).group(1)
    body = {"customer": "+7 916 123-45-67", "sku-0": "CREAM-50", "qty-0": "2", "points": "50", "method": "card", "key": key}

    over = client.post("/console/store/sales", data={**body, "points": "500"}, headers=hx)
    assert over.status_code == 422 and 'data-outcome="error"' in over.text and "Not enough points: 100 available." in over.text
    assert 'value="CREAM-50"' in over.text  # what was typed stays
    unknown = client.post("/console/store/sales", data={**body, "sku-0": "NOPE"}, headers=hx)
    assert unknown.status_code == 422 and "Unknown SKU: NOPE." in unknown.text

    sold = client.post("/console/store/sales", data=body, headers=hx)
    assert sold.status_code == 200, sold.text
    order_id = int(re.search(r'data-test="sale-result" data-outcome="ok" data-order-id="(\d+)"', sold.text).group(1))
    assert "3,930.00" in sold.text  # 2 × 1,990 less 50 points of 1 rouble
    again = client.post("/console/store/sales", data=body, headers=hx)  # the same form sent twice: one sale
    assert f'data-order-id="{order_id}"' in again.text

    view = client.get(f"/v1/orders/{order_id}", headers=headers).json()
    assert (view["channel"], view["fulfilment"], view["status"], view["customer_id"], view["total"]) == (
        "store", "in_store", "completed", cid, 393000)
    assert stock(client, headers, "CREAM-50")["store-arbat"]["on_hand"] == before - 2
    assert balance(client, headers, cid)[0] == 50

    anonymous = client.post("/console/store/sales", data={"sku-0": "SERUM-30", "qty-0": "1", "method": "cash", "key": "k2"},
                            headers=hx)
    assert anonymous.status_code == 422 and "Not enough SERUM-30" in anonymous.text  # none on hand at Arbat


def test_the_clerk_works_in_their_own_store_only(client, shop, staff_client):
    csrf = staff_client("clerk", store="store-arbat")
    assert client.get("/console/store", params={"store": "store-tverskaya"}).status_code == 403
    assert client.post("/console/store/pickups", data={"store": "store-tverskaya", "code": "123456"},
                       headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.post("/console/store/pickups", data={"code": "123456"}).status_code == 403  # no CSRF token
    staff_client("admin")
    chooser = client.get("/console/store")
    assert chooser.status_code == 200 and 'data-test="store-select"' in chooser.text and 'data-test="store-none"' in chooser.text
    chosen = client.get("/console/store", params={"store": "store-tverskaya"})
    assert 'data-test="store-code">store-tverskaya<' in chosen.text
    assert 'data-test="store-error"' in client.get("/console/store", params={"store": "wh-north"}).text
    for role in ("agent", "marketer"):
        token = staff_client(role)
        assert client.get("/console/store").status_code == 403
        assert client.post("/console/store/sales", data={"sku-0": "CREAM-50"}, headers={"X-CSRF-Token": token}).status_code == 403
