"""What to offer: the customer page and the agent's panel beside a conversation show the person's
recommendations (picked for them, else popular), in the reader's language, with why."""

from __future__ import annotations

import re

from tests.inbox.conftest import Visitor
from tests.recommendations.conftest import reco_settings, train, world  # noqa: F401 - fixtures
from tests.web.conftest import add_staff, sign_in


def test_the_customer_page_says_what_to_offer(client, database, reco_settings, world, staff_client):  # noqa: F811
    world.shoppers()
    buyer = world.person()
    world.order(buyer, ["serum"], days_ago=5)
    train(world, reco_settings)
    client.app.state.settings = reco_settings
    staff_client("admin", locale="ru")
    page = client.get(f"/console/customers/{buyer}")
    assert page.status_code == 200, page.text[:2000]
    offers = re.search(r'data-test="offers">(.*?)</ul>', page.text, flags=re.S).group(1)
    assert "Что предложить" in page.text and "toner" in offers and ">serum<" not in offers  # bought lately: not offered again
    assert "подобрано для клиента" in offers
    staff_client("admin", locale="en")
    english = re.search(r'data-test="offers">(.*?)</ul>', client.get(f"/console/customers/{buyer}").text, flags=re.S).group(1)
    assert "Toner" in english and "picked for them" in english


def test_the_agent_sees_what_to_offer_a_newcomer(client, database, reco_settings, world, write_key):  # noqa: F811
    world.shoppers()
    train(world, reco_settings)
    client.app.state.settings = reco_settings
    add_staff(database, email="maria@example.com", role="agent", locale="ru")
    csrf = sign_in(client, "maria@example.com")
    client.post("/console/inbox/availability", data={"status": "online"}, headers={"X-CSRF-Token": csrf})
    Visitor(client, write_key).say("Что посоветуете к сыворотке?")
    conversation_id = int(re.search(r'data-test="conversation-(\d+)"', client.get("/console/inbox?view=mine").text).group(1))
    page = client.get(f"/console/inbox/{conversation_id}").text
    side = re.search(r'data-test="side-offers">(.*?)</section>', page, flags=re.S).group(1)
    assert "Что предложить" in side and "популярно" in side  # no history: the popular ones, said so
