"""The console's customers area: search, the 360 page and its timeline, merge and undo, identity
conflicts, consents, export and erasure, and who may do what."""

from __future__ import annotations

import json
import re

import pytest

from seamline.web.console.pages import customers as customers_page
from tests.commerce.conftest import shop  # noqa: F401 - the fixture
from tests.conftest import make_key

HX = {"HX-Request": "true"}


@pytest.fixture
def api(client, database):
    from seamline.core.auth.schemas import Scope

    headers = {"Authorization": f"Bearer {make_key(database, Scope.admin, name='seed')}"}

    def upsert(*pairs, **extra) -> dict:
        body = {"identifiers": [{"type": t, "value": v} for t, v in pairs], **extra}
        response = client.post("/v1/customers", json=body, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    upsert.headers = headers
    return upsert


def identities(page_text: str) -> str:
    return re.search(r'data-test="identities">(.*?)</table>', page_text, re.DOTALL).group(1)


def anna(api) -> int:
    return api(("phone", "+79161234567"), ("email", "anna@example.com"),
               traits={"first_name": "Анна", "last_name": "Петрова"})["customer"]["id"]


def test_search_finds_a_customer_by_a_phone_typed_differently_by_email_and_by_name(client, api, staff_client):
    customer_id = anna(api)
    api(("phone", "+79035550000"), traits={"first_name": "Борис"})
    staff_client("agent")
    for q in ("8 (916) 123-45-67", "+7 916 123 45 67", "8 916 123", "ANNA@example.com", "анна", "Анна Петрова"):
        page = client.get("/console/customers", params={"q": q})
        assert page.status_code == 200, page.text
        found = re.findall(r'data-customer-id="(\d+)"', page.text)
        assert found == [str(customer_id)], (q, found)
    assert "Анна Петрова" in page.text and "+7 916 123-45-67" in page.text
    listing = client.get("/console/customers")
    assert len(re.findall(r'data-test="customer-row"', listing.text)) == 2
    fragment = client.get("/console/customers", params={"q": "nobody@example.com"}, headers={**HX, "HX-Target": "results"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'data-test="no-results"' in fragment.text
    assert 'data-test="create-customer"' in fragment.text  # an agent may create the person found nowhere


def test_create_a_customer_from_a_phone_nobody_has(client, staff_client):
    csrf = staff_client("agent")
    created = client.post("/console/customers", data={"identifier": "8 999 123-45-67", "first_name": "Вера"},
                          headers={**HX, "X-CSRF-Token": csrf})
    assert created.status_code == 204 and created.headers["HX-Redirect"].startswith("/console/customers/")
    page = client.get(created.headers["HX-Redirect"])
    assert "Вера" in page.text and "+7 999 123-45-67" in page.text
    refused = client.post("/console/customers", data={"identifier": "not a phone"}, headers={**HX, "X-CSRF-Token": csrf})
    assert refused.status_code == 422 and 'data-test="flash-error"' in refused.text


def test_the_360_page_shows_every_section_and_the_timeline_loads_more(client, api, shop, staff_client, monkeypatch):  # noqa: F811
    customer_id = anna(api)
    api(("phone", "+79161234567"), consents=[{"channel": "email", "purpose": "marketing", "granted": True}])
    placed = client.post("/v1/orders", json={
        "channel": "web", "customer_id": customer_id, "lines": [{"sku": "CREAM-50", "quantity": 1}],
        "fulfilment": {"kind": "click_and_collect", "location": "store-tverskaya"}}, headers=shop["headers"])
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    cancelled = client.post(f"/v1/orders/{order_id}/cancel", json={"channel": "call_center"}, headers=shop["headers"])
    assert cancelled.status_code == 200, cancelled.text
    staff_client("agent")
    page = client.get(f"/console/customers/{customer_id}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Анна Петрова" in text and "anna@example.com" in text and "+7 916 123-45-67" in text
    assert 'data-test="orders"' in text and f'/console/orders/{order_id}' in text and "1,990.00" in text
    assert 'data-test="consent-email-marketing"' in text
    assert text.count('data-test="timeline-item"') >= 2 and "Website" in text
    assert 'data-test="export"' not in text and 'data-test="erase-form"' not in text  # an agent: no privacy actions

    monkeypatch.setattr(customers_page, "TIMELINE_PAGE", 1)
    first = client.get(f"/console/customers/{customer_id}")
    assert first.text.count('data-test="timeline-item"') == 1
    cursor = re.search(r'/timeline\?cursor=([^"]+)"', first.text).group(1)
    more = client.get(f"/console/customers/{customer_id}/timeline?cursor={cursor}", headers=HX)
    assert more.status_code == 200 and "<html" not in more.text
    assert more.text.count('data-test="timeline-item"') == 1
    bad = client.get(f"/console/customers/{customer_id}/timeline?cursor=garbage", headers=HX)
    assert bad.status_code == 422 and 'data-test="flash-error"' in bad.text


def test_merge_by_identifier_then_undo(client, api, staff_client):
    first = anna(api)
    second = api(("email", "anna.work@example.com"), traits={"city": "Москва"})["customer"]["id"]
    csrf = staff_client("agent")
    headers = {**HX, "X-CSRF-Token": csrf}
    merged = client.post(f"/console/customers/{first}/merge", data={"other": "Anna.Work@example.com"}, headers=headers)
    assert merged.status_code == 200, merged.text
    assert "anna.work@example.com" in identities(merged.text) and "anna@example.com" in identities(merged.text)
    assert "Москва" in merged.text
    merge_id = int(re.search(r'data-test="undo-(\d+)"', merged.text).group(1))
    # The absorbed number leads to the survivor.
    moved = client.get(f"/console/customers/{second}", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == f"/console/customers/{first}"

    undone = client.post(f"/console/merges/{merge_id}/undo", data={"customer_id": first}, headers=headers)
    assert undone.status_code == 200, undone.text
    assert "anna.work@example.com" not in identities(undone.text)
    assert 'data-test="flash-ok"' in undone.text
    back = client.get(f"/console/customers/{second}")
    assert back.status_code == 200 and "anna.work@example.com" in identities(back.text)
    assert "anna@example.com" not in identities(back.text)

    same = client.post(f"/console/customers/{first}/merge", data={"other": f"#{first}"}, headers=headers)
    assert same.status_code == 422 and "already the same customer" in same.text
    unknown = client.post(f"/console/customers/{first}/merge", data={"other": "ghost@example.com"}, headers=headers)
    assert unknown.status_code == 422 and "No customer has this identifier" in unknown.text
    forged = client.post(f"/console/customers/{first}/merge", data={"other": f"#{second}"}, headers=HX)
    assert forged.status_code == 403


def test_an_identity_conflict_is_listed_and_resolved(client, api, staff_client):
    a = api(("user_id", "acct-1"), ("anonymous_id", "cookie-1"))["customer"]["id"]
    second = api(("user_id", "acct-2"), ("anonymous_id", "cookie-1"))
    (conflict_id,) = second["conflict_ids"]
    csrf = staff_client("agent")
    page = client.get("/console/customers/conflicts")
    assert page.status_code == 200 and f'data-test="conflict-{conflict_id}"' in page.text
    assert "acct-1" in page.text and "acct-2" in page.text and f"/console/customers/{a}" in page.text
    resolved = client.post(f"/console/customers/conflicts/{conflict_id}/resolve", data={"action": "dismiss"},
                           headers={**HX, "X-CSRF-Token": csrf})
    assert resolved.status_code == 200 and 'data-test="conflict-dismiss"' not in resolved.text
    assert 'data-test="no-conflicts"' in client.get("/console/customers/conflicts").text
    assert f'data-test="conflict-{conflict_id}"' in client.get("/console/customers/conflicts?status=dismissed").text
    again = client.post(f"/console/customers/conflicts/{conflict_id}/resolve", data={"action": "merge"},
                        headers={**HX, "X-CSRF-Token": csrf})
    assert again.status_code == 422 and "already dismissed" in again.text


def test_consent_withdrawn_shows(client, api, staff_client):
    customer_id = api(("email", "vera@example.com"),
                      consents=[{"channel": "email", "purpose": "marketing", "granted": True}])["customer"]["id"]
    csrf = staff_client("agent")
    withdrawn = client.post(f"/console/customers/{customer_id}/consents",
                            data={"channel": "email", "purpose": "marketing", "granted": "no"},
                            headers={**HX, "X-CSRF-Token": csrf})
    assert withdrawn.status_code == 200, withdrawn.text
    row = re.search(r'data-test="consent-email-marketing">(.*?)</tr>', client.get(f"/console/customers/{customer_id}").text, re.DOTALL)
    assert "withdrawn" in row.group(1) and "Console" in row.group(1)  # the source, by its name
    wrong = client.post(f"/console/customers/{customer_id}/consents", data={"channel": "pigeon", "purpose": "marketing",
                                                                           "granted": "yes"}, headers={**HX, "X-CSRF-Token": csrf})
    assert wrong.status_code == 422 and "Unknown consent channel" in wrong.text


def test_export_downloads_the_json_with_the_identifiers(client, api, staff_client):
    customer_id = anna(api)
    staff_client("admin")
    page = client.get(f"/console/customers/{customer_id}")
    assert 'data-test="export"' in page.text and 'data-test="erase-form"' in page.text
    response = client.get(f"/console/customers/{customer_id}/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="customer-{customer_id}.json"'
    document = json.loads(response.content)
    assert {(i["type"], i["value"]) for i in document["sections"]["identities"]} == {
        ("phone", "+79161234567"), ("email", "anna@example.com")}
    assert document["format"] == "seamline.customer-export/1"


def test_erase_needs_the_confirmation_then_the_profile_is_erased(client, api, staff_client):
    customer_id = anna(api)
    csrf = staff_client("admin")
    headers = {**HX, "X-CSRF-Token": csrf}
    unconfirmed = client.post(f"/console/customers/{customer_id}/erase", data={"reason": "DSR #1", "confirm": "1234"},
                              headers=headers)
    assert unconfirmed.status_code == 422 and "confirmation" in unconfirmed.text
    assert client.get(f"/console/customers/{customer_id}").status_code == 200
    erased = client.post(f"/console/customers/{customer_id}/erase", data={"reason": "DSR #1", "confirm": str(customer_id)},
                         headers=headers)
    assert erased.status_code == 200 and 'data-test="customer-erased"' in erased.text and "DSR #1" in erased.text
    gone = client.get(f"/console/customers/{customer_id}")
    assert gone.status_code == 410 and 'data-test="customer-erased"' in gone.text and "anna@example.com" not in gone.text
    assert client.get("/console/customers", params={"q": "anna@example.com"}).text.count('data-test="customer-row"') == 0


def test_an_agent_may_not_export_or_erase_and_a_clerk_may_not_edit(client, api, staff_client):
    customer_id = anna(api)
    csrf = staff_client("agent")
    assert client.get(f"/console/customers/{customer_id}/export").status_code == 403
    erase = client.post(f"/console/customers/{customer_id}/erase", data={"reason": "x", "confirm": str(customer_id)},
                        headers={**HX, "X-CSRF-Token": csrf})
    assert erase.status_code == 403
    assert client.get(f"/console/customers/{customer_id}").status_code == 200

    csrf = staff_client("clerk", store="store-tverskaya")
    assert client.get("/console/customers/conflicts").status_code == 403
    refused = client.post(f"/console/customers/{customer_id}/consents", data={"channel": "email", "purpose": "marketing",
                                                                             "granted": "no"}, headers={**HX, "X-CSRF-Token": csrf})
    assert refused.status_code == 403
    page = client.get(f"/console/customers/{customer_id}")
    assert page.status_code == 200 and 'data-test="merge-form"' not in page.text and 'data-test="consent-form"' not in page.text


def test_unknown_customer_is_a_404_page(client, staff_client):
    staff_client("agent")
    missing = client.get("/console/customers/999999")
    assert missing.status_code == 404 and "<html" in missing.text


def test_pages_render_in_russian(client, api, staff_client):
    customer_id = anna(api)
    staff_client("admin", locale="ru")
    page = client.get(f"/console/customers/{customer_id}")
    assert page.status_code == 200 and "Идентификаторы" in page.text and "Удалить персональные данные" in page.text
    assert "+7 916 123-45-67" in page.text
    search = client.get("/console/customers", params={"q": "nobody@example.com"})
    assert "По запросу «nobody@example.com» никого не найдено." in search.text
    assert "Конфликтов нет." in client.get("/console/customers/conflicts").text
    for tab in ("channels", "keys", "staff", "routing", "loyalty"):
        settings_page = client.get(f"/console/settings?tab={tab}")
        assert settings_page.status_code == 200 and "Маршрутизация и SLA" in settings_page.text, tab
    dashboard = client.get("/console/dashboard")
    assert dashboard.status_code == 200 and "Заказы сегодня" in dashboard.text
