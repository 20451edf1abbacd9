"""Ids out of the database's integer range in console URLs are refused, never a 500."""

from __future__ import annotations

import pytest



HUGE = str(2**63)


@pytest.mark.parametrize("path", [
    "/console/customers/{id}", "/console/customers/{id}/timeline", "/console/customers/{id}/export",
    "/console/inbox/{id}", "/console/inbox/{id}/thread", "/console/inbox/attachments/{id}",
    "/console/loyalty/customers/{id}", "/console/orders/{id}",
])
def test_a_huge_id_in_a_page_url_is_not_a_server_error(client, staff_client, path):
    staff_client("admin")
    response = client.get(path.format(id=HUGE))
    assert response.status_code in (404, 422), (response.status_code, response.text[:300])


@pytest.mark.parametrize("path", [
    "/console/customers/{id}/merge", "/console/merges/{id}/undo", "/console/customers/conflicts/{id}/resolve",
    "/console/inbox/{id}/take", "/console/settings/keys/{id}/revoke", "/console/orders/{id}/cancel",
])
def test_a_huge_id_in_an_action_url_is_not_a_server_error(client, staff_client, path):
    csrf = staff_client("admin")
    response = client.post(path.format(id=HUGE), headers={"X-CSRF-Token": csrf}, data={"csrf": csrf})
    assert response.status_code in (403, 404, 422), (response.status_code, response.text[:300])
