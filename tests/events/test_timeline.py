"""Events joined to the one profile: identify/alias feed the graph, the timeline tells the story."""

from __future__ import annotations

import base64

import pytest

from seamline.events import service as events_service


@pytest.fixture
def keys(database) -> dict[str, str]:
    made = {}
    with database.write() as session:
        for name, channel in (("Website", "web"), ("App", "app"), ("Store POS", "store")):
            made[channel] = events_service.create_source(session, name=name, channel=channel)[1]
        # The shop's backend: its key stays on the server, so what it says about who is who is vouched for.
        made["server"] = events_service.create_source(session, name="Backend", channel="server", server_side=True)[1]
    return made


def send(client, key: str, kind: str, **body) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    response = client.post(f"/v1/{kind}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    # The answer comes once the event is stored; its identity work is applied right after.
    assert client.app.state.event_writer.wait_idle()


def lookup(client, headers, **identifier) -> dict:
    response = client.get("/v1/customers/lookup", params=identifier, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def timeline(client, headers, customer_id: int, **params) -> dict:
    response = client.get(f"/v1/customers/{customer_id}/timeline", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_anonymous_browsing_joins_the_profile_at_login_retroactively(client, keys, admin_headers):
    """Anna browses on the web without logging in, then logs in in the app with the same
    account: the web browsing and the app events are one story."""
    send(client, keys["web"], "page", anonymousId="web-cookie", name="Cream", messageId="p1",
         timestamp="2026-11-20T10:00:00Z", context={"campaign": {"source": "ads", "name": "winter"}})
    send(client, keys["web"], "track", anonymousId="web-cookie", event="Product Added", messageId="t1",
         timestamp="2026-11-20T10:01:00Z", properties={"sku": "CREAM-50"})
    lookup_missing = client.get("/v1/customers/lookup", params={"anonymous_id": "web-cookie"}, headers=admin_headers)
    assert lookup_missing.status_code == 404  # anonymous-only events make no profile
    # She logs in on the website: the shop's backend says so (a browser's identify is only a claim).
    send(client, keys["server"], "identify", anonymousId="web-cookie", userId="anna-1", messageId="i1",
         timestamp="2026-11-20T10:02:00Z", traits={"email": "Anna@Example.com", "phone": "8 (916) 123-45-67", "first_name": "Анна"})
    # In the evening she logs in in the app, which the backend confirms the same way.
    send(client, keys["server"], "identify", anonymousId="app-install", userId="anna-1", messageId="i2",
         timestamp="2026-11-20T18:59:00Z")
    send(client, keys["app"], "track", anonymousId="app-install", userId="anna-1", event="Order Completed",
         messageId="t2", timestamp="2026-11-20T19:00:00Z", properties={"order_id": "A-1"})

    customer = lookup(client, admin_headers, anonymous_id="web-cookie")
    identifiers = {(i["type"], i["value"]) for i in customer["sections"]["identities"]}
    assert {("user_id", "anna-1"), ("anonymous_id", "web-cookie"), ("anonymous_id", "app-install"),
            ("email", "anna@example.com"), ("phone", "+79161234567")} <= identifiers
    assert customer["sections"]["profile"]["traits"]["first_name"]["value"] == "Анна"
    assert lookup(client, admin_headers, phone="+7 916 123 45 67")["id"] == customer["id"]

    items = timeline(client, admin_headers, customer["id"])["items"]
    assert [i["data"]["message_id"] for i in items] == ["t2", "i2", "i1", "t1", "p1"]  # newest first
    assert [i["channel"] for i in items] == ["app", "server", "server", "web", "web"]
    assert items[0]["title"] == "Order Completed" and items[0]["type"] == "event.track"
    assert items[-1]["data"]["context"]["campaign"]["source"] == "ads"
    assert customer["sections"]["events"]["by_channel"] == {"app": 1, "server": 2, "web": 2}
    assert [i["data"]["message_id"] for i in customer["sections"]["timeline"]] == ["t2", "i2", "i1", "t1", "p1"]


def test_alias_joins_the_previous_id(client, keys, admin_headers):
    send(client, keys["web"], "page", anonymousId="old-cookie", messageId="p1")
    send(client, keys["web"], "alias", userId="u-9", previousId="old-cookie", messageId="a1")
    customer = lookup(client, admin_headers, user_id="u-9")
    assert {"old-cookie"} <= {i["value"] for i in customer["sections"]["identities"] if i["type"] == "anonymous_id"}
    assert {i["data"]["message_id"] for i in timeline(client, admin_headers, customer["id"])["items"]} == {"p1", "a1"}


def test_a_user_id_seen_first_in_a_store_is_a_customer(client, keys, admin_headers):
    send(client, keys["store"], "track", userId="card-owner-5", event="Purchase", messageId="s1")
    customer = lookup(client, admin_headers, user_id="card-owner-5")
    assert [i["channel"] for i in timeline(client, admin_headers, customer["id"])["items"]] == ["store"]


def test_invalid_identifiers_in_traits_do_not_reject_the_event(client, keys, admin_headers):
    send(client, keys["web"], "identify", userId="u-5", traits={"email": "not-an-email", "phone": "12"}, messageId="i")
    customer = lookup(client, admin_headers, user_id="u-5")
    assert {i["type"] for i in customer["sections"]["identities"]} == {"user_id"}
    assert customer["sections"]["profile"]["traits"]["email"]["value"] == "not-an-email"


def test_a_replayed_identify_changes_nothing(client, keys, admin_headers):
    send(client, keys["web"], "identify", userId="u-1", traits={"city": "Казань"}, messageId="i1",
         timestamp="2026-11-20T10:00:00Z")
    send(client, keys["web"], "identify", userId="u-1", traits={"city": "Москва"}, messageId="i2",
         timestamp="2026-11-21T10:00:00Z")
    send(client, keys["web"], "identify", userId="u-1", traits={"city": "Казань"}, messageId="i1",
         timestamp="2026-11-20T10:00:00Z")
    assert lookup(client, admin_headers, user_id="u-1")["sections"]["profile"]["traits"]["city"]["value"] == "Москва"


def test_timeline_pages_and_filters(client, keys, admin_headers):
    for i in range(7):
        send(client, keys["web"], "page", userId="u-1", messageId=f"p{i}", timestamp=f"2026-11-20T10:0{i}:00Z")
        send(client, keys["app"], "track", userId="u-1", event="Tap", messageId=f"t{i}", timestamp=f"2026-11-20T10:0{i}:30Z")
    customer_id = lookup(client, admin_headers, user_id="u-1")["id"]
    seen, cursor = [], None
    while True:
        page = timeline(client, admin_headers, customer_id, limit=4, **({"cursor": cursor} if cursor else {}))
        seen += [i["data"]["message_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    expected = [m for i in reversed(range(7)) for m in (f"t{i}", f"p{i}")]
    assert seen == expected
    web = timeline(client, admin_headers, customer_id, channel="web")["items"]
    assert {i["channel"] for i in web} == {"web"} and len(web) == 7
    tracks = timeline(client, admin_headers, customer_id, type="event.track")["items"]
    assert {i["type"] for i in tracks} == {"event.track"} and len(tracks) == 7
    assert len(timeline(client, admin_headers, customer_id, type="order")["items"]) == 0
    bad = client.get(f"/v1/customers/{customer_id}/timeline", params={"cursor": "garbage"}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_events_of_a_merged_profile_follow_the_survivor(client, keys, admin_headers, write_headers):
    send(client, keys["web"], "page", userId="u-1", messageId="a")
    send(client, keys["app"], "screen", anonymousId="device-2", messageId="b")
    send(client, keys["app"], "identify", anonymousId="device-2", traits={"email": "x@example.com"}, messageId="c")
    response = client.post(
        "/v1/customers", headers=write_headers,
        # The backend vouches for the email and the app install it was typed on (an email only a
        # browser claimed leaves that browser's profile when someone else's server vouches for it).
        json={"identifiers": [{"type": "user_id", "value": "u-1"}, {"type": "email", "value": "x@example.com"},
                              {"type": "anonymous_id", "value": "device-2"}]},
    )
    assert response.status_code == 200 and response.json()["merged_customer_ids"]
    customer_id = lookup(client, admin_headers, user_id="u-1")["id"]
    assert {i["data"]["message_id"] for i in timeline(client, admin_headers, customer_id)["items"]} == {"a", "b", "c"}


def test_export_holds_and_erasure_removes_the_persons_events(client, keys, admin_headers):
    send(client, keys["web"], "page", anonymousId="cookie", messageId="p1")
    send(client, keys["web"], "identify", anonymousId="cookie", userId="u-1", traits={"email": "e@example.com"}, messageId="i1")
    send(client, keys["web"], "page", anonymousId="someone-else", messageId="other")
    customer_id = lookup(client, admin_headers, user_id="u-1")["id"]
    export = client.get(f"/v1/customers/{customer_id}/export", headers=admin_headers).json()
    assert sorted(e["message_id"] for e in export["sections"]["events"]) == ["i1", "p1"]
    erased = client.post(f"/v1/customers/{customer_id}/erase", json={"reason": "data subject request"}, headers=admin_headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["removed_counts"]["events"] == 2
    remaining = client.get("/v1/events", headers=admin_headers).json()["items"]
    assert [e["message_id"] for e in remaining] == ["other"]
