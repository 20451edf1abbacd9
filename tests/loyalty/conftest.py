"""The commerce test shop, a customer, and helpers to read the loyalty API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seamline.core.time import utcnow
from seamline.loyalty import ledger, tasks
from tests.commerce.conftest import put, receive, server, shop  # noqa: F401 - fixtures
from tests.commerce.test_orders import click_and_collect, order

ANNA = [{"type": "phone", "value": "+79161234567"}]


def program(client, headers, **rules) -> dict:
    response = client.patch("/v1/loyalty/program", json=rules, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def customer_id(client, headers, identifiers=ANNA, **traits) -> int:
    response = client.post("/v1/customers", json={"identifiers": identifiers, "traits": traits}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def account(client, headers, cid: int) -> dict:
    response = client.get(f"/v1/customers/{cid}/loyalty", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def balance(client, headers, cid: int) -> tuple[int, int]:
    """(spendable, pending) points; the hot balance read (one driver statement) must say the
    same as the full account view, wherever a test looks."""
    found = account(client, headers, cid)
    quick = client.get(f"/v1/customers/{cid}/loyalty/balance", headers=headers)
    assert quick.status_code == 200, quick.text
    assert quick.json() == {key: found[key] for key in quick.json()}
    return found["points"], found["pending"]


def handed_over(client, headers, *lines: tuple[str, int], store: str = "store-arbat", key: str | None = None,
                identifiers=ANNA, **more) -> dict:
    """A click & collect order placed, paid on pickup, made ready and collected."""
    placed = order(client, headers, click_and_collect(store, *lines, identifiers=identifiers, **more), key=key)
    assert client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=headers).status_code == 200
    done = client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"},
                       headers=headers)
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    return done.json()


def after_hold(database, days: int = 15) -> dict:
    """Run the loyalty jobs as if `days` had passed."""
    return tasks.run_due(database, now=utcnow() + timedelta(days=days))


def consistent(database) -> None:
    with database.read() as session:
        assert ledger.check(session) == []


@pytest.fixture
def staff_headers(database) -> dict[str, str]:
    from seamline.core.auth.schemas import Scope
    from tests.conftest import make_key

    return {"Authorization": f"Bearer {make_key(database, Scope.loyalty_adjust, Scope.read, name='staff')}"}


def adjust(client, headers, cid: int, points: int, *, key: str | None = None, expect: int = 201, **more) -> dict:
    extra = {"Idempotency-Key": key} if key else {}
    body = {"points": points, "staff": "olga", "comment": "goodwill for a late delivery", **more}
    response = client.post(f"/v1/customers/{cid}/loyalty/adjustments", json=body, headers={**headers, **extra})
    assert response.status_code == expect, response.text
    return response.json()
