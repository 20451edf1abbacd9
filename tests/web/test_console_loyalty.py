"""The console's loyalty pages: find a member, the account with its ledger and wallet, manual
adjustments by admins only (audited with the staff member's email), readable refusals."""

from __future__ import annotations

import re

from sqlalchemy import select

from seamline.loyalty.models import LoyaltyEntry
from tests.commerce.test_orders import click_and_collect, order
from tests.web import test_console_commerce as console_commerce
from tests.web.test_console_commerce import ANNA, balance, handed_over

shop, staff_client = console_commerce.shop, console_commerce.staff_client  # fixtures
HX = {"HX-Request": "true"}


def member(client, headers) -> int:
    response = client.post("/v1/customers", json={
        "identifiers": [*ANNA, {"type": "loyalty_card", "value": "7700000000017"}],
        "traits": {"first_name": "Анна", "last_name": "Петрова"}}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def test_find_a_member_and_read_the_ledger(client, shop, staff_client):
    headers = shop["headers"]
    cid = member(client, headers)
    sold = handed_over(client, headers, "store-arbat", ("CREAM-50", 2))
    assert sold["customer_id"] == cid
    client.post(f"/v1/customers/{cid}/loyalty/adjustments", json={"points": 40, "staff": "olga", "comment": "late parcel"},
                headers=headers)
    staff_client("agent")

    for q in ("8 916 123-45-67", "7700000000017", str(cid)):
        found = client.get("/console/loyalty", params={"q": q})
        assert found.status_code == 200 and f'data-test="loyalty-row-{cid}"' in found.text, q
        assert "Анна Петрова" in found.text
    assert "No customer found." in client.get("/console/loyalty", params={"q": "+79990001122"}).text

    page = client.get(f"/console/loyalty/customers/{cid}")
    assert page.status_code == 200
    text = page.text
    assert 'data-test="loyalty-points">40<' in text and 'data-test="loyalty-pending">199<' in text
    ledger = re.search(r'data-test="loyalty-ledger">(.*?)</table>', text, re.S).group(1)
    assert "Earned" in ledger and f'href="/console/orders/{sold["id"]}"' in ledger and "+199" in ledger
    assert "Adjustment" in ledger and "late parcel" in ledger and "olga" in ledger
    assert "spendable from" in ledger  # the earning's hold
    assert f'href="/console/customers/{cid}"' in text
    assert 'data-test="adjust-form"' not in text  # agents see, admins adjust
    assert client.get("/console/loyalty/customers/999999").status_code == 404


def test_older_ledger_entries_follow_a_cursor(client, shop, staff_client, monkeypatch):
    from seamline.web.console.pages import loyalty as loyalty_page

    headers = shop["headers"]
    cid = member(client, headers)
    for n, comment in enumerate(("first gift", "second gift", "third gift"), start=1):
        client.post(f"/v1/customers/{cid}/loyalty/adjustments", json={"points": n, "staff": "olga", "comment": comment},
                    headers=headers)
    monkeypatch.setattr(loyalty_page, "ENTRY_PAGE", 2)
    staff_client("agent")
    newest = client.get(f"/console/loyalty/customers/{cid}").text
    assert "third gift" in newest and "second gift" in newest and "first gift" not in newest
    link = re.search(r'href="([^"]+)" data-test="ledger-older"', newest).group(1).replace("&amp;", "&")
    assert "?cursor=" in link and "before=" not in link
    older = client.get(link).text
    assert "first gift" in older and "second gift" not in older and 'data-test="ledger-older"' not in older
    damaged = client.get(f"/console/loyalty/customers/{cid}", params={"cursor": "!!"})
    assert damaged.status_code == 200 and "third gift" in damaged.text  # the first page


def test_an_admin_adjusts_points_with_a_reason_and_is_recorded(client, shop, staff_client, database):
    headers = shop["headers"]
    cid = member(client, headers)
    csrf = staff_client("admin")
    hx = {**HX, "X-CSRF-Token": csrf}
    page = client.get(f"/console/loyalty/customers/{cid}")
    assert 'data-test="loyalty-no-account"' in page.text and 'data-test="adjust-form"' in page.text
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)

    no_reason = client.post(f"/console/loyalty/customers/{cid}/adjustments", data={"points": "50", "key": key}, headers=hx)
    assert no_reason.status_code == 422 and "Give the reason for the adjustment." in no_reason.text
    zero = client.post(f"/console/loyalty/customers/{cid}/adjustments", data={"points": "0", "comment": "x", "key": key}, headers=hx)
    assert zero.status_code == 422 and "Points are a whole number" in zero.text
    too_much = client.post(f"/console/loyalty/customers/{cid}/adjustments", data={"points": "-10", "comment": "oops", "key": key},
                           headers=hx)
    assert too_much.status_code == 422 and "Not enough points: 0 available." in too_much.text

    body = {"points": "75", "comment": "apology for the delay", "key": key}
    done = client.post(f"/console/loyalty/customers/{cid}/adjustments", data=body, headers=hx)
    assert done.status_code == 200, done.text
    assert 'data-test="loyalty-points">75<' in done.text and "<html" not in done.text and 'data-test="flash-ok"' in done.text
    again = client.post(f"/console/loyalty/customers/{cid}/adjustments", data=body, headers=hx)  # sent twice: once
    assert again.status_code == 200 and 'data-test="loyalty-points">75<' in again.text
    taken = client.post(f"/console/loyalty/customers/{cid}/adjustments", data={"points": "-25", "comment": "double credit",
                                                                             "key": "another"}, headers=hx)
    assert taken.status_code == 200 and 'data-test="loyalty-points">50<' in taken.text

    assert balance(client, headers, cid) == (50, 0)
    with database.read() as session:
        entries = list(session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.kind == "adjust").order_by(LoyaltyEntry.id)))
    assert [(e.available_delta, e.staff, e.comment, e.api_key_id) for e in entries] == [
        (75, "admin1@example.com", "apology for the delay", None), (-25, "admin1@example.com", "double credit", None)]
    audit = client.get("/v1/loyalty/adjustments", headers=headers).json()["items"]
    assert [(a["points"], a["staff"]) for a in audit] == [(-25, "admin1@example.com"), (75, "admin1@example.com")]


def test_clerks_and_agents_may_not_adjust(client, shop, staff_client):
    headers = shop["headers"]
    cid = member(client, headers)
    order(client, headers, click_and_collect("store-arbat", ("CREAM-50", 1), identifiers=ANNA))
    for role, extra in (("clerk", {"store": "store-arbat"}), ("agent", {}), ("marketer", {})):
        csrf = staff_client(role, **extra)
        assert client.get(f"/console/loyalty/customers/{cid}").status_code == 200
        refused = client.post(f"/console/loyalty/customers/{cid}/adjustments", data={"points": "1000", "comment": "me"},
                              headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403, role
    staff_client("admin")
    assert client.post(f"/console/loyalty/customers/{cid}/adjustments", data={"points": "5", "comment": "no token"}).status_code == 403
    missing = client.get(f"/v1/customers/{cid}/loyalty", headers=headers)
    assert missing.status_code == 404  # nothing was adjusted, so no account was opened
