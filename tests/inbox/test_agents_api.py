"""The agents API's edge cases that used to answer 500."""

from __future__ import annotations

import pytest

from tests.inbox.conftest import create_agent


@pytest.mark.parametrize("field", ["name", "skills", "capacity", "team_ids"])
def test_a_null_field_is_a_clear_422_and_changes_nothing(client, admin_headers, field):
    agent = create_agent(client, admin_headers, "Мария", skills=["returns"], capacity=3)
    response = client.patch(f"/v1/inbox/agents/{agent['id']}", json={field: None}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert field in response.text
    again = client.get("/v1/inbox/agents", headers=admin_headers).json()
    mine = next(a for a in (again["items"] if isinstance(again, dict) else again) if a["id"] == agent["id"])
    assert mine["name"] == "Мария" and mine["capacity"] == 3 and mine["skills"] == ["returns"]


def test_a_null_extension_removes_it(client, admin_headers):
    agent = create_agent(client, admin_headers, "Мария")
    assert client.patch(f"/v1/inbox/agents/{agent['id']}", json={"extension": "101"}, headers=admin_headers).json()["extension"] == "101"
    cleared = client.patch(f"/v1/inbox/agents/{agent['id']}", json={"extension": None}, headers=admin_headers)
    assert cleared.status_code == 200 and cleared.json()["extension"] is None
