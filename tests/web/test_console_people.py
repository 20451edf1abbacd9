"""Customers are shown as people know them (issue 18, item 12): a name, else a formatted phone or
an email, else "Anonymous visitor"; never a device's anonymous id, never a bare `#140`."""

from __future__ import annotations

import re

from tests.commerce import conftest as commerce_fixtures
from tests.commerce.test_orders import click_and_collect, order

shop = commerce_fixtures.shop  # the test shop: two stores, two warehouses, a cream and a serum
UUID = "3f2a9c4e-8d1b-4c7a-9e55-0a1b2c3d4e5f"


def upsert(client, headers, *pairs, **extra) -> int:
    body = {"identifiers": [{"type": t, "value": v} for t, v in pairs], **extra}
    response = client.post("/v1/customers", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["customer"]["id"]


def labels(page: str) -> dict[int, str]:
    """{customer id: the label shown} of the customer list."""
    return {int(cid): label.strip() for cid, label in re.findall(
        r'data-customer-id="(\d+)">\s*<td><a [^>]*data-test="customer-label">([^<]*)</a>', page)}


def test_the_customer_list_shows_names_phones_emails_and_anonymous_visitors(client, admin_headers, staff_client):
    named = upsert(client, admin_headers, ("phone", "+79161234567"), traits={"first_name": "Анна", "last_name": "Петрова"})
    phone_only = upsert(client, admin_headers, ("phone", "8 903 555-00-00"), ("anonymous_id", "a2b3c4d5-0000-4000-8000-000000000001"))
    email_only = upsert(client, admin_headers, ("email", "boris@example.com"))
    anonymous = upsert(client, admin_headers, ("anonymous_id", UUID))
    staff_client("agent")
    page = client.get("/console/customers")
    assert page.status_code == 200, page.text
    shown = labels(page.text)
    assert shown == {named: "Анна Петрова", phone_only: "+7 903 555-00-00", email_only: "boris@example.com",
                     anonymous: "Anonymous visitor"}
    assert UUID not in page.text and "a2b3c4d5" not in page.text  # device ids are counted, not printed
    assert 'data-test="customer-devices"' in page.text
    # The 360 page is titled the same way.
    assert "<h1>Anonymous visitor" in client.get(f"/console/customers/{anonymous}").text
    assert "<h1>+7 903 555-00-00" in client.get(f"/console/customers/{phone_only}").text


def test_russian_labels(client, admin_headers, staff_client):
    anonymous = upsert(client, admin_headers, ("anonymous_id", UUID))
    staff_client("agent", locale="ru")
    page = client.get("/console/customers")
    assert labels(page.text) == {anonymous: "Анонимный посетитель"}


def test_orders_show_the_customer_not_their_number(client, shop, staff_client):  # noqa: F811
    headers = shop["headers"]
    anna = order(client, headers, click_and_collect("store-tverskaya", ("CREAM-50", 1), identifiers=[
        {"type": "phone", "value": "+79161234567"}]))
    upsert(client, headers, ("phone", "+79161234567"), traits={"first_name": "Анна"})
    boris = order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=[
        {"type": "phone", "value": "+79035550000"}]))
    staff_client("marketer")
    listing = client.get("/console/orders")
    assert listing.status_code == 200, listing.text
    cells = dict(re.findall(r'data-test="order-row-(\d+)">.*?data-test="order-customer">(.*?)</td>', listing.text, re.DOTALL))
    assert ">Анна</a>" in cells[str(anna["id"])] and "+7 916 123-45-67" in cells[str(anna["id"])]
    assert ">+7 903 555-00-00</a>" in cells[str(boris["id"])]
    assert not any("#" in cell for cell in cells.values())
    page = client.get(f"/console/orders/{boris['id']}")
    assert re.search(r'data-test="order-customer">\+7 903 555-00-00</a>', page.text)


def test_the_store_pickups_show_the_customer_not_their_number(client, shop, staff_client):  # noqa: F811
    placed = order(client, shop["headers"], click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=[
        {"type": "phone", "value": "+79035550000"}]))
    staff_client("clerk", store="store-arbat")
    page = client.get("/console/store")
    cell = re.search(rf'data-test="pickup-row-{placed["id"]}">.*?data-test="pickup-customer">(.*?)</td>', page.text,
                     re.DOTALL).group(1)
    assert cell.strip() == "+7 903 555-00-00"
