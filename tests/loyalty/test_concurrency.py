"""No double spend: the same points spent at the same moment from the website, the app and a
store's till, and the same wallet money paid for several orders at once, against a real
`seamline serve` with two worker processes: exactly one wins."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from seamline.commerce.models import CommercePaymentTransaction
from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from seamline.devtools.serve import ServerProcess
from seamline.loyalty import ledger
from tests.commerce.conftest import LOCATIONS

CARD = "4000001234567899"


def test_the_same_points_spent_in_three_channels_at_once_are_spent_once(server, database):
    with database.write() as session:
        _, key = auth_service.create_api_key(session, name="shop", scopes=[Scope.write, Scope.read, Scope.loyalty_adjust])
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        assert http.put("/v1/catalog/products/hit", json={
            "name_ru": "Хит", "name_en": "Hit", "variants": [{"sku": "HIT", "price": {"amount": 100000, "currency": "RUB"}}],
        }).status_code == 200
        assert http.put("/v1/locations/store-tverskaya", json=LOCATIONS["store-tverskaya"]).status_code == 200
        assert http.post("/v1/stock/movements", json={"sku": "HIT", "location": "store-tverskaya", "kind": "receipt",
                                                      "quantity": 100}).status_code == 201
        customer = http.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": "+79161234567"}]}).json()["customer"]["id"]
        assert http.post(f"/v1/customers/{customer}/loyalty/cards", json={"kind": "physical", "number": CARD}).status_code == 201
        assert http.post(f"/v1/customers/{customer}/loyalty/adjustments",
                         json={"points": 300, "staff": "olga", "comment": "test balance"}).status_code == 201

    def spend(n: int) -> tuple[int, str]:
        lines = [{"sku": "HIT", "quantity": 1}]
        with httpx.Client(base_url=server.base_url, headers={**headers, "Idempotency-Key": f"spend-{n}"}, timeout=60) as http:
            if n % 3 == 2:  # the till, by card
                response = http.post("/v1/pos/stores/store-tverskaya/sales", json={
                    "lines": lines, "points": 300, "payment": {"method": "card"},
                    "identifiers": [{"type": "loyalty_card", "value": CARD}]})
            else:
                response = http.post("/v1/orders", json={
                    "channel": ("web", "app")[n % 3], "lines": lines, "points": 300, "customer_id": customer,
                    "fulfilment": {"kind": "click_and_collect", "location": "store-tverskaya"}})
        return response.status_code, response.json().get("error", {}).get("code", "")

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(spend, range(24)))
    assert sorted(set(outcomes)) == [(201, ""), (409, "insufficient_points")], outcomes
    assert outcomes.count((201, "")) == 1

    with database.read() as session:
        account = ledger.find_account(session, customer)
        assert account.points_available == 0
        assert ledger.check(session) == []


@pytest.fixture
def wallet_server(database, tmp_path):
    """`seamline serve` with two workers where orders may be paid with the wallet."""
    process = ServerProcess(database.url, workers=2, log_path=tmp_path / "server.log",
                            env={"SEAMLINE_COMMERCE_PAYMENT_METHODS": '["on_pickup", "test", "wallet"]'}).start()
    yield process
    process.stop()


def test_the_same_wallet_money_is_spent_once_by_concurrent_captures(wallet_server, database):
    """Twelve orders of one customer paid at once from a wallet holding enough for one, half
    through `POST /v1/orders/{id}/payments` (the order's wallet provider), half through
    `POST /v1/loyalty/wallet/payments`: exactly one capture, one debit."""
    with database.write() as session:
        _, key = auth_service.create_api_key(session, name="shop", scopes=[Scope.write, Scope.read])
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=wallet_server.base_url, headers=headers, timeout=60) as http:
        assert http.put("/v1/catalog/products/hit", json={
            "name_ru": "Хит", "name_en": "Hit", "variants": [{"sku": "HIT", "price": {"amount": 100000, "currency": "RUB"}}],
        }).status_code == 200
        assert http.put("/v1/locations/store-tverskaya", json=LOCATIONS["store-tverskaya"]).status_code == 200
        assert http.post("/v1/stock/movements", json={"sku": "HIT", "location": "store-tverskaya", "kind": "receipt",
                                                      "quantity": 100}).status_code == 201
        customer = http.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": "+79161234567"}]}).json()["customer"]["id"]
        assert http.post(f"/v1/customers/{customer}/loyalty/wallet/topups", json={"amount": 100000, "channel": "store"},
                         headers={"Idempotency-Key": "t-1"}).status_code == 201
        placed = []
        for n in range(12):
            response = http.post("/v1/orders", json={
                "channel": ("web", "app")[n % 2], "lines": [{"sku": "HIT", "quantity": 1}], "customer_id": customer,
                "payment_method": "wallet", "fulfilment": {"kind": "click_and_collect", "location": "store-tverskaya"}})
            assert response.status_code == 201, response.text
            placed.append(response.json()["id"])

    def pay(n: int) -> tuple[int, str]:
        with httpx.Client(base_url=wallet_server.base_url, headers=headers, timeout=60) as http:
            if n % 2:
                response = http.post(f"/v1/orders/{placed[n]}/payments", json={"channel": "app"})
            else:
                response = http.post("/v1/loyalty/wallet/payments", json={"order_id": placed[n], "channel": "web"})
        return response.status_code // 100, response.json().get("error", {}).get("code", "")

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(pay, range(12)))
    assert sorted(set(outcomes)) == [(2, ""), (4, "insufficient_funds")], outcomes
    assert outcomes.count((2, "")) == 1

    with database.read() as session:
        assert ledger.find_account(session, customer).wallet_balance == 0
        captures = session.scalar(select(func.count()).select_from(CommercePaymentTransaction)
                                  .where(CommercePaymentTransaction.kind == "capture"))
        assert captures == 1
        assert ledger.check(session) == []
