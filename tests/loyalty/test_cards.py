"""Cards: printed ones validated by their check digit, virtual ones generated; each an
identifier of the profile (a card scanned at the till finds the person of the app); a lost card
blocked and reissued with the balance kept; spending at the till by card."""

from __future__ import annotations

from stdnum import ean, luhn

from tests.commerce.test_pos import pos, sale, sale_body
from tests.loyalty.conftest import (
    account,
    adjust,
    balance,
    consistent,
    customer_id,
    program,
)

PRINTED = "4000001234567899"  # Luhn-valid


def _card(client, headers, cid: int, body: dict, expect: int = 201) -> dict:
    response = client.post(f"/v1/customers/{cid}/loyalty/cards", json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def test_printed_cards_are_validated_and_virtual_ones_generated(client, shop):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    assert luhn.is_valid(PRINTED)
    wrong = client.post(f"/v1/customers/{cid}/loyalty/cards", json={"kind": "physical", "number": "4000001234567890"}, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_card_number"
    card = _card(client, headers, cid, {"kind": "physical", "number": PRINTED, "channel": "store"})
    assert (card["number"], card["kind"], card["status"]) == (PRINTED, "physical", "active")
    again = _card(client, headers, cid, {"kind": "physical", "number": PRINTED})  # registering twice is a no-op
    assert again["number"] == PRINTED
    virtual = _card(client, headers, cid, {"kind": "virtual", "channel": "app"})
    assert virtual["number"].startswith("7700") and len(virtual["number"]) == 16 and luhn.is_valid(virtual["number"])
    assert [c["number"] for c in account(client, headers, cid)["cards"]] == [PRINTED, virtual["number"]]
    program(client, headers, card_check_digit="ean13", card_prefix="460")
    barcode = _card(client, headers, cid, {"kind": "virtual"})
    assert len(barcode["number"]) == 13 and ean.is_valid(barcode["number"]) and barcode["number"].startswith("460")
    assert client.post(f"/v1/customers/{cid}/loyalty/cards", json={"kind": "virtual", "number": "123456"}, headers=headers).status_code == 422


def test_a_card_is_an_identifier_of_the_profile_and_cannot_be_someone_elses(client, shop):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _card(client, headers, cid, {"kind": "physical", "number": PRINTED})
    found = client.get(pos("store-arbat", "/customers"), params={"card": PRINTED}, headers=headers)
    assert found.status_code == 200 and found.json()["id"] == cid
    other = customer_id(client, headers, [{"type": "email", "value": "boris@example.com"}])
    taken = client.post(f"/v1/customers/{other}/loyalty/cards", json={"kind": "physical", "number": PRINTED}, headers=headers)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "card_taken"
    # an order identified by the card joins the same person
    placed = client.post("/v1/orders", json={"channel": "store", "lines": [{"sku": "CREAM-50", "quantity": 1}],
                                             "identifiers": [{"type": "loyalty_card", "value": PRINTED}],
                                             "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}}, headers=headers)
    assert placed.status_code == 201 and placed.json()["customer_id"] == cid


def test_a_lost_card_is_blocked_and_reissued_keeping_the_balance(client, shop, staff_headers, database):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _card(client, headers, cid, {"kind": "physical", "number": PRINTED})
    adjust(client, staff_headers, cid, 400)
    till = client.get(pos("store-arbat", f"/loyalty/cards/{PRINTED}"), headers=headers)
    assert till.status_code == 200 and till.json()["points"] == 400
    # A physical replacement comes with its printed number (without one this was a 500: schemathesis).
    unnumbered = client.post(f"/v1/loyalty/cards/{PRINTED}/reissue", json={}, headers=headers)
    assert unnumbered.status_code == 422 and unnumbered.json()["error"]["code"] == "validation_error", unnumbered.text
    replacement = client.post(f"/v1/loyalty/cards/{PRINTED}/reissue", json={"kind": "virtual", "reason": "lost"}, headers=headers)
    assert replacement.status_code == 201
    new_number = replacement.json()["number"]
    again = client.post(f"/v1/loyalty/cards/{PRINTED}/reissue", json={"kind": "virtual", "reason": "lost"}, headers=headers)
    assert again.json()["number"] == new_number  # a retried reissue returns the same replacement
    old = client.get(f"/v1/loyalty/cards/{PRINTED}", headers=headers).json()
    assert (old["status"], old["block_reason"], old["replaced_by"]) == ("blocked", "lost", new_number)
    blocked = client.get(pos("store-arbat", f"/loyalty/cards/{PRINTED}"), headers=headers)
    assert blocked.status_code == 409 and blocked.json()["error"] == {
        "code": "card_blocked", "message": f"Card {PRINTED} is blocked (lost)", "details": {"number": PRINTED, "replaced_by": new_number}}
    # spending with the lost card at the till is refused, with the new one it works
    refused = client.post(pos("store-arbat", "/sales"), json=sale_body(("CREAM-50", 1), receipt="R-1", points=100,
                                                                         identifiers=[{"type": "loyalty_card", "value": PRINTED}]),
                          headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "card_blocked"
    assert client.get(pos("store-arbat", f"/loyalty/cards/{new_number}"), headers=headers).json()["points"] == 400
    done = sale(client, headers, "store-arbat", sale_body(("CREAM-50", 1), receipt="R-2", points=100,
                                                          identifiers=[{"type": "loyalty_card", "value": new_number}]))
    assert done["customer_id"] == cid and done["total"] == 199000 - 10000
    # the till sale earned points too (pending through the hold): 5% of 1890
    assert balance(client, headers, cid) == (300, 94)
    assert client.post("/v1/loyalty/cards/123456789/block", json={}, headers=headers).status_code == 404
    consistent(database)


def test_till_sale_with_points_is_capped_and_checks_the_amount(client, shop, staff_headers):
    headers = shop["headers"]
    cid = customer_id(client, headers)
    _card(client, headers, cid, {"kind": "physical", "number": PRINTED})
    adjust(client, staff_headers, cid, 1000)
    card = [{"type": "loyalty_card", "value": PRINTED}]
    over = client.post(pos("store-arbat", "/sales"), json=sale_body(("CREAM-50", 1), receipt="R-1", points=600, identifiers=card),
                       headers=headers)
    assert over.status_code == 422 and over.json()["error"]["code"] == "points_over_cap"
    body = sale_body(("CREAM-50", 1), receipt="R-2", points=500, identifiers=card)
    body["payment"]["amount"] = 199000  # the till forgot the points
    mismatch = client.post(pos("store-arbat", "/sales"), json=body, headers=headers)
    assert mismatch.status_code == 422 and mismatch.json()["error"]["code"] == "amount_mismatch"
    assert balance(client, headers, cid)[0] == 1000
