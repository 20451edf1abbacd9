"""The console's orders and stock pages: the list with filters and paging, the order page with
its lines, pickup code, history and actions, returns in another store (stock back there, points
taken back), stock by location; permissions and CSRF on every action."""

from __future__ import annotations

import re

import pytest

from seamline.commerce import orders as orders_service
from seamline.web.console.pages import commerce as commerce_page
from tests.commerce import conftest as commerce_fixtures
from tests.commerce.conftest import receive
from tests.commerce.test_orders import click_and_collect, order, stock
from tests.web.conftest import PASSWORD, add_staff

ANNA = [{"type": "phone", "value": "+79161234567"}]
BORIS = [{"type": "phone", "value": "+79035550000"}]
shop = commerce_fixtures.shop  # the test shop: two stores, two warehouses, a cream and a serum


def signed_in(client, database, role: str, email: str | None = None, **kwargs) -> str:
    """Sign a new staff member in (independent of the other areas' home pages); the CSRF token."""
    email = email or f"{role}-{len(client.cookies)}-{id(kwargs)}@example.com"
    add_staff(database, email=email, role=role, **kwargs)
    client.cookies.clear()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text).group(1)
    response = client.post("/console/login", data={"email": email, "password": PASSWORD, "csrf": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/console/stock").text).group(1)


@pytest.fixture
def staff_client(client, database):
    """(role, **kw) -> the CSRF token of a new staff member of that role, signed in on `client`."""
    counter = iter(range(1, 1000))
    return lambda role, **kwargs: signed_in(client, database, role, f"{role}{next(counter)}@example.com", **kwargs)


def ready(client, headers, order_id: int) -> None:
    assert client.post(f"/v1/orders/{order_id}/ready", json={"channel": "store"}, headers=headers).status_code == 200


def handed_over(client, headers, store: str, *lines, identifiers=ANNA) -> dict:
    placed = order(client, headers, click_and_collect(store, *lines, identifiers=identifiers))
    ready(client, headers, placed["id"])
    done = client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"},
                       headers=headers)
    assert done.status_code == 200, done.text
    return done.json()


def balance(client, headers, customer_id: int) -> tuple[int, int]:
    found = client.get(f"/v1/customers/{customer_id}/loyalty", headers=headers).json()
    return found["points"], found["pending"]


def order_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-test="order-row-(\d+)"', page)]


def test_list_orders_service_filters(client, shop, database):
    headers = shop["headers"]
    arbat = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    tver = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), channel="app", identifiers=BORIS))
    shipped = order(client, headers, {"channel": "call_center", "lines": [{"sku": "SERUM-30", "quantity": 1}],
                                      "fulfilment": {"kind": "delivery", "address": {"city": "Москва"}}})
    with database.read() as session:
        def ids(**filters):
            return [o.id for o in orders_service.list_orders(session, **filters)]

        assert ids() == [shipped["id"], tver["id"], arbat["id"]]
        assert ids(location="store-arbat") == [arbat["id"]]
        assert ids(channel="app") == [tver["id"]]
        assert ids(fulfilment="delivery") == [shipped["id"]]
        assert ids(status="confirmed", profile_ids=[arbat["customer_id"]]) == [arbat["id"]]
        assert ids(limit=1, offset=1) == [tver["id"]]
        assert ids(status="cancelled") == []


def test_order_list_filters_and_pages(client, shop, staff_client, monkeypatch):
    headers = shop["headers"]
    first = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    second = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), channel="app", identifiers=BORIS))
    third = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), channel="app", identifiers=ANNA))
    ready(client, headers, third["id"])
    staff_client("marketer")  # orders.view is enough to look

    page = client.get("/console/orders")
    assert page.status_code == 200 and order_ids(page.text) == [third["id"], second["id"], first["id"]]
    assert order_ids(client.get("/console/orders", params={"store": "store-arbat"}).text) == [third["id"], first["id"]]
    assert order_ids(client.get("/console/orders", params={"channel": "app"}).text) == [third["id"], second["id"]]
    assert order_ids(client.get("/console/orders", params={"status": "ready_for_pickup"}).text) == [third["id"]]
    assert order_ids(client.get("/console/orders", params={"fulfilment": "delivery"}).text) == []
    by_phone = client.get("/console/orders", params={"customer": "8 (916) 123-45-67"})  # any format
    assert order_ids(by_phone.text) == [third["id"], first["id"]]
    assert order_ids(client.get("/console/orders", params={"customer": str(second["customer_id"])}).text) == [second["id"]]
    unknown = client.get("/console/orders", params={"customer": "+79990000000"})
    assert order_ids(unknown.text) == [] and 'data-test="orders-unknown-customer"' in unknown.text

    monkeypatch.setattr(commerce_page, "PAGE_SIZE", 2)
    one = client.get("/console/orders")
    assert order_ids(one.text) == [third["id"], second["id"]] and 'data-test="orders-next"' in one.text
    two = client.get("/console/orders", params={"page": 2})
    assert order_ids(two.text) == [first["id"]] and 'data-test="orders-next"' not in two.text
    assert 'data-test="orders-prev"' in two.text


def test_order_page_shows_lines_code_history_and_customer(client, shop, staff_client):
    headers = shop["headers"]
    receive(client, headers, "CREAM-100", "store-arbat", 3)
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 2), ("CREAM-100", 1), identifiers=ANNA))
    staff_client("agent")
    page = client.get(f"/console/orders/{placed['id']}")
    assert page.status_code == 200
    text = page.text
    assert 'data-test="order-line-CREAM-50"' in text and 'data-test="order-line-CREAM-100"' in text
    assert "Крем для лица 50 мл" in text
    assert f'data-test="order-pickup-code">{placed["pickup_code"]}<' in text
    assert f'href="/console/customers/{placed["customer_id"]}"' in text
    assert 'data-test="order-history"' in text and "Confirmed" in text
    assert "7,470.00" in text  # 2 × 1,990 + 3,490 roubles, formatted for the English console
    assert 'data-test="order-ready"' not in text  # an agent may look, not act
    assert client.get("/console/orders/999999").status_code == 404


def test_order_actions_follow_the_state_and_a_wrong_code_is_refused(client, shop, staff_client, database):
    headers = shop["headers"]
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    csrf = staff_client("clerk", store="store-arbat")
    hx = {"X-CSRF-Token": csrf, "HX-Request": "true"}

    page = client.get(f"/console/orders/{placed['id']}").text
    assert 'data-test="order-ready"' in page and 'data-test="order-handover"' not in page and 'data-test="order-ship"' not in page
    made_ready = client.post(f"/console/orders/{placed['id']}/ready", headers=hx)
    assert made_ready.status_code == 200 and 'data-status="ready_for_pickup"' in made_ready.text
    assert 'data-test="order-handover"' in made_ready.text and 'data-test="flash-ok"' in made_ready.text

    wrong = client.post(f"/console/orders/{placed['id']}/pickup", data={"code": "000000" if placed["pickup_code"] != "000000" else "111111"},
                        headers=hx)
    assert wrong.status_code == 422 and "The pickup code does not match this order." in wrong.text
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "ready_for_pickup"
    done = client.post(f"/console/orders/{placed['id']}/pickup", data={"code": placed["pickup_code"]}, headers=hx)
    assert done.status_code == 200 and 'data-status="completed"' in done.text
    view = client.get(f"/v1/orders/{placed['id']}", headers=headers).json()
    assert view["status"] == "completed" and view["completed_channel"] == "store"
    assert view["history"][-1]["note"].startswith("console clerk1@example.com")
    again = client.post(f"/console/orders/{placed['id']}/cancel", headers=hx)
    assert again.status_code == 422 and "this cannot be done" in again.text

    # A browser without JavaScript: a plain form post answers the whole page.
    other = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    plain = client.post(f"/console/orders/{other['id']}/cancel", data={"csrf": csrf})
    assert plain.status_code == 200 and "<html" in plain.text and 'data-status="cancelled"' in plain.text


def test_delivery_is_shipped_then_completed(client, shop, staff_client):
    headers = shop["headers"]
    placed = order(client, headers, {"channel": "web", "lines": [{"sku": "SERUM-30", "quantity": 1}], "identifiers": ANNA,
                                     "fulfilment": {"kind": "delivery", "address": {"city": "Москва", "street": "Тверская 1"}}})
    csrf = staff_client("admin")
    page = client.get(f"/console/orders/{placed['id']}").text
    assert 'data-test="order-ship"' in page and 'data-test="order-ready"' not in page and "Тверская 1" in page
    assert client.post(f"/console/orders/{placed['id']}/ship", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.post(f"/console/orders/{placed['id']}/complete", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "completed"


def test_marketers_and_agents_may_not_act_and_writes_need_csrf(client, shop, staff_client):
    headers = shop["headers"]
    placed = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    for role in ("marketer", "agent"):
        csrf = staff_client(role)
        for action in ("ready", "pickup", "ship", "complete", "cancel", "returns"):
            response = client.post(f"/console/orders/{placed['id']}/{action}", data={"code": "1"},
                                   headers={"X-CSRF-Token": csrf})
            assert response.status_code == 403, (role, action)
    staff_client("clerk", store="store-arbat")
    assert client.post(f"/console/orders/{placed['id']}/ready").status_code == 403  # no CSRF token
    assert client.post(f"/console/orders/{placed['id']}/ready", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.get(f"/v1/orders/{placed['id']}", headers=headers).json()["status"] == "confirmed"


def test_a_return_in_another_store_puts_stock_there_and_takes_points_back(client, shop, staff_client):
    headers = shop["headers"]
    sold = handed_over(client, headers, "store-arbat", ("CREAM-50", 2))
    earned = balance(client, headers, sold["customer_id"])
    assert earned == (0, 2 * 199000 * 5 // 100 // 100)  # 5 % of what was paid, pending for the hold
    before = stock(client, headers, "CREAM-50")
    csrf = staff_client("clerk", store="store-tverskaya")
    hx = {"X-CSRF-Token": csrf, "HX-Request": "true"}

    page = client.get(f"/console/orders/{sold['id']}").text
    assert 'data-test="order-return-qty-CREAM-50"' in page and 'value="store-tverskaya" selected' in page
    form = {"qty-CREAM-50": "1", "location": "store-tverskaya", "reason": "wrong size", "key": "k-1"}
    refused = client.post(f"/console/orders/{sold['id']}/returns", data={**form, "qty-CREAM-50": "3"}, headers=hx)
    assert refused.status_code == 422 and "Only 2 of CREAM-50 can be returned." in refused.text
    nothing = client.post(f"/console/orders/{sold['id']}/returns", data={**form, "qty-CREAM-50": "0"}, headers=hx)
    assert nothing.status_code == 422 and "Enter how many" in nothing.text

    accepted = client.post(f"/console/orders/{sold['id']}/returns", data=form, headers=hx)
    assert accepted.status_code == 200, accepted.text
    assert 'data-test="order-return-result"' in accepted.text and "1,990.00" in accepted.text
    assert re.search(r"Taken back: -99\b", accepted.text)  # half of the 199 points earned, rounded down
    retry = client.post(f"/console/orders/{sold['id']}/returns", data=form, headers=hx)  # the same form sent twice
    assert retry.status_code == 200

    after = stock(client, headers, "CREAM-50")
    assert after["store-tverskaya"]["on_hand"] == before["store-tverskaya"]["on_hand"] + 1
    assert after["store-arbat"] == before["store-arbat"]
    returned = client.get(f"/v1/orders/{sold['id']}/returns", headers=headers).json()
    assert [(r["location"], r["channel"], r["amount"], r["reason"]) for r in returned] == [
        ("store-tverskaya", "store", 199000, "wrong size")]
    assert [f["status"] for f in returned[0]["refunds"]] == ["succeeded"]
    assert balance(client, headers, sold["customer_id"]) == (0, earned[1] - 99)


def test_stock_page_shows_locations_and_highlights_low_stock(client, shop, staff_client):
    headers = shop["headers"]
    order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 2), identifiers=ANNA))
    staff_client("agent")
    page = client.get("/console/stock", params={"sku": "cream"})
    assert page.status_code == 200
    text = page.text
    assert 'data-test="stock-row-CREAM-50"' in text and 'data-test="stock-row-SERUM-30"' not in text
    # Tverskaya: 3 on hand, 2 reserved, 1 available: low; Arbat: 5 on hand, safety stock 1: 4 available.
    assert re.search(r'class="num stock-level low" data-test="stock-CREAM-50-store-tverskaya" data-available="1"', text)
    assert re.search(r'class="num stock-level " data-test="stock-CREAM-50-store-arbat" data-available="4"', text)
    assert 'data-test="stock-CREAM-100-wh-south"' not in text  # never held there
    by_name = client.get("/console/stock", params={"sku": "Сыворотка"}).text
    assert 'data-test="stock-row-SERUM-30"' in by_name and 'data-test="stock-row-CREAM-50"' not in by_name
    low = client.get("/console/stock", params={"low": "1"}).text
    assert 'data-test="stock-row-CREAM-50"' in low and 'data-test="stock-row-SERUM-30"' in low  # SERUM-30: 1 at wh-south
    receive(client, headers, "CREAM-100", "wh-north", 50)
    assert 'data-test="stock-row-CREAM-100"' not in client.get("/console/stock", params={"sku": "CREAM-100", "low": "1"}).text


def test_the_pages_speak_russian(client, shop, staff_client):
    headers = shop["headers"]
    sold = handed_over(client, headers, "store-arbat", ("CREAM-50", 1))
    waiting = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    staff_client("admin", locale="ru", store="store-arbat")
    pages = {
        "/console/orders": "Получение",
        f"/console/orders/{sold['id']}": "Принять возврат",
        f"/console/orders/{waiting['id']}": "Готов к выдаче",
        "/console/stock?sku=CREAM": "В наличии",
        f"/console/store?q=%2B79161234567&order={sold['id']}": "Выдача по коду получения",
        f"/console/loyalty?q={sold['customer_id']}": "Баллы",
        f"/console/loyalty/customers/{sold['customer_id']}": "Журнал баллов",
    }
    for path, russian in pages.items():
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert russian in page.text, path
    assert "1 990,00" in client.get(f"/console/orders/{sold['id']}").text.replace("\xa0", " ")
