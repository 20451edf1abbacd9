"""A clerk's store scope (web/staff/scope.py), tried through HTTP as an attacker would: a clerk of
Arbat signed in to the console tries to cancel, mark ready, hand over and return-into-Tverskaya
an order of Tverskaya, and to ship a delivery order; each is a 403 with the reason, and nothing
changes. What a clerk may do in their own store still works; admins are not limited."""

from __future__ import annotations

import re

import pytest

from seamline.web.staff import scope
from seamline.web.staff.models import StaffUser
from tests.commerce.test_orders import click_and_collect, order, stock
from tests.web import test_console_commerce as console_commerce
from tests.web.conftest import add_staff, sign_in
from tests.web.test_console_commerce import ANNA, handed_over, order_ids, ready

shop, staff_client = console_commerce.shop, console_commerce.staff_client  # fixtures

HX = {"HX-Request": "true"}
DELIVERY = {"kind": "delivery", "address": {"city": "Москва", "street": "Тверская 1"}}


def state(client, headers, order_id: int) -> tuple[str, int]:
    """The order's status and the length of its history: what an action would change."""
    view = client.get(f"/v1/orders/{order_id}", headers=headers).json()
    return view["status"], len(view["history"])


def test_a_clerk_may_not_touch_an_order_of_another_store(client, shop, staff_client):
    headers = shop["headers"]
    theirs = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=ANNA))
    waiting = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=ANNA))
    ready(client, headers, waiting["id"])
    before = {o["id"]: state(client, headers, o["id"]) for o in (theirs, waiting)}
    stock_before = stock(client, headers, "CREAM-50")
    csrf = staff_client("clerk", store="store-arbat")
    hx = {**HX, "X-CSRF-Token": csrf}

    page = client.get(f"/console/orders/{theirs['id']}")  # readable (a customer may ask), without actions
    assert page.status_code == 200
    for button in ("order-ready", "order-cancel", "order-handover", "order-ship", "order-pickup-code"):
        assert f'data-test="{button}"' not in page.text, button

    attempts = [(theirs, "ready", {}), (theirs, "cancel", {}), (waiting, "cancel", {}),
                (waiting, "pickup", {"code": waiting["pickup_code"]}), (theirs, "pickup", {"code": theirs["pickup_code"]})]
    for placed, action, form in attempts:
        for extra in (hx, {"X-CSRF-Token": csrf}):  # HTMX, and a plain form post
            refused = client.post(f"/console/orders/{placed['id']}/{action}", data=form, headers=extra)
            assert refused.status_code == 403, (action, refused.text[:300])
            assert (f"Order #{placed['id']} belongs to store-tverskaya, not to store-arbat: a store acts only on its own "
                    "orders.") in refused.text, action
            assert 'data-test="flash-ok"' not in refused.text
    assert {o["id"]: state(client, headers, o["id"]) for o in (theirs, waiting)} == before
    assert stock(client, headers, "CREAM-50") == stock_before  # nothing released, nothing sold

    staff_client("admin")  # admins act on every store's orders
    admin = client.post(f"/console/orders/{theirs['id']}/cancel", headers={**HX, "X-CSRF-Token": client_csrf(client)})
    assert admin.status_code == 200 and 'data-status="cancelled"' in admin.text


def client_csrf(client) -> str:
    return re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/console/stock").text).group(1)


def test_a_clerk_may_not_ship_cancel_or_complete_a_delivery_order(client, shop, staff_client):
    headers = shop["headers"]
    placed = order(client, headers, {"channel": "web", "lines": [{"sku": "SERUM-30", "quantity": 1}], "identifiers": ANNA,
                                     "fulfilment": DELIVERY})
    before = state(client, headers, placed["id"])
    csrf = staff_client("clerk", store="store-arbat")
    hx = {**HX, "X-CSRF-Token": csrf}
    page = client.get(f"/console/orders/{placed['id']}").text
    assert 'data-test="order-ship"' not in page and 'data-test="order-cancel"' not in page
    for action in ("ship", "cancel", "complete", "ready"):
        refused = client.post(f"/console/orders/{placed['id']}/{action}", headers=hx)
        assert refused.status_code == 403, action
        assert "Delivery orders are shipped and delivered by the warehouse, not in a store." in refused.text
    assert state(client, headers, placed["id"]) == before

    assert client.post(f"/v1/orders/{placed['id']}/ship", json={"channel": "web"}, headers=headers).status_code == 200
    shipped = state(client, headers, placed["id"])
    assert client.post(f"/console/orders/{placed['id']}/complete", headers=hx).status_code == 403
    assert state(client, headers, placed["id"]) == shipped


def test_a_return_is_taken_into_the_clerks_own_store_only(client, shop, staff_client):
    headers = shop["headers"]
    sold = handed_over(client, headers, "store-tverskaya", ("CREAM-50", 2))  # bought in another store
    before = stock(client, headers, "CREAM-50")
    csrf = staff_client("clerk", store="store-arbat")
    hx = {**HX, "X-CSRF-Token": csrf}

    page = client.get(f"/console/orders/{sold['id']}").text
    options = re.findall(r'<option value="([^"]+)"', re.search(r'name="location".*?</select>', page, re.S).group(0))
    assert options == ["store-arbat"]  # the form offers only this store
    form = {"qty-CREAM-50": "1", "reason": "too big", "key": "scope-1"}
    for elsewhere in ("store-tverskaya", "wh-north"):
        refused = client.post(f"/console/orders/{sold['id']}/returns", data={**form, "location": elsewhere}, headers=hx)
        assert refused.status_code == 403
        assert f"You take returns into your own store (store-arbat) only, not into {elsewhere}." in refused.text
    assert client.post("/console/store/returns", data={**form, "order": sold["id"], "store": "store-tverskaya"},
                       headers=hx).status_code == 403
    assert client.get(f"/v1/orders/{sold['id']}/returns", headers=headers).json() == []
    assert stock(client, headers, "CREAM-50") == before

    accepted = client.post(f"/console/orders/{sold['id']}/returns", data={**form, "location": "store-arbat"}, headers=hx)
    assert accepted.status_code == 200, accepted.text
    on_screen = client.post("/console/store/returns", data={**form, "key": "scope-2", "order": sold["id"]}, headers=hx)
    assert on_screen.status_code == 200, on_screen.text
    assert [r["location"] for r in client.get(f"/v1/orders/{sold['id']}/returns", headers=headers).json()] == [
        "store-arbat", "store-arbat"]
    after = stock(client, headers, "CREAM-50")
    assert after["store-arbat"]["on_hand"] == before["store-arbat"]["on_hand"] + 2
    assert after["store-tverskaya"] == before["store-tverskaya"]


def test_a_clerk_lists_only_their_stores_orders(client, shop, staff_client):
    headers = shop["headers"]
    here = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=ANNA))
    order(client, headers, {"channel": "web", "lines": [{"sku": "SERUM-30", "quantity": 1}], "fulfilment": DELIVERY})
    sale = client.post("/v1/pos/stores/store-arbat/sales", json={
        "lines": [{"sku": "CREAM-50", "quantity": 1}], "payment": {"method": "cash"}, "receipt": "R-1"}, headers=headers)
    assert sale.status_code == 201, sale.text
    staff_client("clerk", store="store-arbat")

    listed = client.get("/console/orders")
    assert listed.status_code == 200 and order_ids(listed.text) == [sale.json()["id"], here["id"]]
    select = re.search(r'data-test="filter-store">(.*?)</select>', listed.text, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', select) == ["store-arbat"]
    assert order_ids(client.get("/console/orders", params={"customer": "+79161234567"}).text) == [here["id"]]
    other = client.get("/console/orders", params={"store": "store-tverskaya"})
    assert other.status_code == 403 and "You work in store-arbat: you cannot act for store-tverskaya." in other.text


def test_the_store_screen_refuses_another_store_readably_and_sells_nothing_there(client, shop, staff_client):
    headers = shop["headers"]
    before = stock(client, headers, "CREAM-50")
    csrf = staff_client("clerk", store="store-arbat", locale="ru")
    page = client.get("/console/store", params={"store": "store-tverskaya"})
    assert page.status_code == 403 and "Вы работаете в store-arbat: действовать за store-tverskaya нельзя." in page.text
    sale = client.post("/console/store/sales", data={"store": "store-tverskaya", "sku-0": "CREAM-50", "qty-0": "1",
                                                     "method": "cash", "key": "k"}, headers={"X-CSRF-Token": csrf})
    assert sale.status_code == 403
    assert stock(client, headers, "CREAM-50") == before


def test_what_a_clerk_may_do_in_their_own_store_still_works(client, shop, staff_client):
    headers = shop["headers"]
    mine = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    dropped = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    csrf = staff_client("clerk", store="store-arbat", locale="ru")
    hx = {**HX, "X-CSRF-Token": csrf}
    page = client.get(f"/console/orders/{mine['id']}").text
    assert 'data-test="order-ready"' in page and 'data-test="order-cancel"' in page
    assert 'data-test="order-pickup-code"' not in page  # the customer brings the code; the clerk does not read it off

    assert client.post(f"/console/orders/{mine['id']}/ready", headers=hx).status_code == 200
    done = client.post(f"/console/orders/{mine['id']}/pickup", data={"code": mine["pickup_code"]}, headers=hx)
    assert done.status_code == 200 and 'data-status="completed"' in done.text
    cancelled = client.post(f"/console/orders/{dropped['id']}/cancel", headers=hx)
    assert cancelled.status_code == 200 and 'data-status="cancelled"' in cancelled.text
    assert client.post(f"/console/orders/{mine['id']}/ship", headers=hx).status_code == 403  # never a clerk's

    theirs = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=ANNA))
    refused = client.post(f"/console/orders/{theirs['id']}/cancel", headers=hx)
    assert refused.status_code == 403
    assert (f"Заказ №{theirs['id']} относится к store-tverskaya, а не к store-arbat: магазин работает только со "
            "своими заказами.") in refused.text


def test_a_clerk_without_a_store_has_nothing_in_scope(client, shop, staff_client, database):
    headers = shop["headers"]
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    user_id, _ = add_staff(database, email="nostore@example.com", role="clerk", store="store-arbat")
    with database.write() as session:
        session.get(StaffUser, user_id).store = None  # e.g. edited in the database by hand
    csrf = sign_in(client, "nostore@example.com")
    refused = client.post(f"/console/orders/{placed['id']}/cancel", headers={**HX, "X-CSRF-Token": csrf})
    assert refused.status_code == 403 and "Your account has no store: ask an admin to set it." in refused.text
    assert client.get("/console/orders").status_code == 403
    assert client.get("/console/store").status_code == 403
    assert state(client, headers, placed["id"])[0] == "confirmed"


@pytest.mark.parametrize(("action", "fulfilment", "order_store", "location", "reason"), [
    ("ready", "click_and_collect", "store-a", None, None),
    ("handover", "click_and_collect", "store-a", None, None),
    ("cancel", "click_and_collect", "store-a", None, None),
    ("cancel", "in_store", "store-a", None, None),
    ("cancel", "click_and_collect", "store-b", None, "other_order"),
    ("handover", "pickup_point", "pp-1", None, "other_order"),
    ("cancel", "delivery", None, None, "delivery"),
    ("ship", "delivery", None, None, "delivery"),
    ("complete", "delivery", None, None, "delivery"),
    ("return", "click_and_collect", "store-b", "store-a", None),
    ("return", "delivery", None, "store-a", None),
    ("return", "in_store", "store-a", "store-b", "return_elsewhere"),
    ("return", "in_store", "store-a", "wh-1", "return_elsewhere"),
])
def test_the_scope_rules(action, fulfilment, order_store, location, reason):
    assert scope.refusal("store-a", action, fulfilment=fulfilment, order_store=order_store, location=location) == reason
    assert scope.refusal(None, action, fulfilment=fulfilment, order_store=order_store, location=location) is None  # admins
    assert scope.refusal("", action, fulfilment=fulfilment, order_store=order_store, location=location) == "no_store"
    clerk, admin = StaffUser(role="clerk", store="store-a"), StaffUser(role="admin", store="store-a")
    assert scope.bound_store(clerk) == "store-a" and scope.bound_store(admin) is None
    assert not scope.sees_pickup_codes(clerk) and scope.sees_pickup_codes(admin)
