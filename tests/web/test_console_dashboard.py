"""The console's dashboard: the contact center's load (live block), today's orders by channel,
the customers new this week."""

from __future__ import annotations

import re

from tests.commerce.conftest import shop  # noqa: F401 - the fixture
from tests.inbox.conftest import create_agent, visitor  # noqa: F401 - the fixture


def stat(page: str, name: str) -> str:
    return re.search(rf'data-test="{name}">([^<]*)<', page).group(1).strip()


def test_dashboard_shows_the_queue_agents_orders_and_new_customers(client, shop, visitor, staff_client):  # noqa: F811
    headers = shop["headers"]
    create_agent(client, headers, "Ольга", online=False)
    visitor().say("Здравствуйте, где мой заказ?")  # nobody online: it waits in the queue
    for channel, quantity in (("web", 1), ("app", 2)):
        placed = client.post("/v1/orders", json={
            "channel": channel, "identifiers": [{"type": "phone", "value": "+79161234567"}],
            "lines": [{"sku": "CREAM-50", "quantity": quantity}],
            "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}}, headers=headers)
        assert placed.status_code == 201, placed.text
    staff_client("marketer")
    page = client.get("/console/dashboard")
    assert page.status_code == 200, page.text
    text = page.text
    assert stat(text, "queue-length") == "1" and stat(text, "agents-online") == "0"
    assert "Ольга" in text and 'data-test="agent-load"' in text
    assert stat(text, "orders-today") == "2" and "5,970.00" in text  # 1 990 + 2 × 1 990 roubles
    assert "Website" in text and "Mobile app" in text
    assert int(stat(text, "new-customers")) >= 2  # the visitor and the buyer
    assert 'hx-trigger="load, every 30s, sl:assignment from:body, sl:agent from:body"' in text

    block = client.get("/console/dashboard/load", headers={"HX-Request": "true"})
    assert block.status_code == 200 and "<html" not in block.text and stat(block.text, "queue-length") == "1"


def test_a_clerk_has_no_dashboard(client, staff_client):
    staff_client("clerk", store="store-arbat")
    assert client.get("/console/dashboard").status_code == 403
    assert client.get("/console/dashboard/load").status_code == 403
