"""Staff accounts (issue 18, item 12): an admin changes a person's role (a clerk with their store)
and deactivates or reactivates an account; a deactivated account cannot sign in and its sessions
end at once; the last active admin can neither be demoted nor deactivated."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from seamline.inbox.models import InboxAgent
from seamline.web.staff.models import StaffSession, StaffUser
from tests.commerce import conftest as commerce_fixtures
from tests.web.conftest import PASSWORD, add_staff, sign_in

shop = commerce_fixtures.shop  # two stores (store-tverskaya, store-arbat)
HX = {"HX-Request": "true"}


def post(client, path: str, csrf: str, data: dict | None = None):
    return client.post(path, data=data or {}, headers={**HX, "X-CSRF-Token": csrf})


def try_sign_in(client, email: str) -> int:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text).group(1)
    return client.post("/console/login", data={"email": email, "password": PASSWORD, "csrf": token},
                       follow_redirects=False).status_code


@pytest.fixture
def other(app):
    """A second browser, for the person whose account the admin changes."""
    with TestClient(app) as second:
        yield second


def test_deactivating_ends_sessions_and_sign_in_reactivating_restores_it(client, other, database, shop):  # noqa: F811
    add_staff(database, email="admin@example.com", role="admin")
    agent_id, inbox_agent = add_staff(database, email="olga@example.com", role="agent")
    csrf = sign_in(client, "admin@example.com")
    sign_in(other, "olga@example.com")
    assert other.get("/console/inbox").status_code == 200
    with database.write() as session:
        session.get(InboxAgent, inbox_agent).status = "online"

    done = post(client, f"/console/settings/staff/{agent_id}/deactivate", csrf)
    assert done.status_code == 200, done.text
    assert 'data-test="flash-ok"' in done.text and f'data-test="staff-disabled-{agent_id}"' in done.text
    assert f'data-test="staff-reactivate-{agent_id}"' in done.text
    # Signed out at once, everywhere; the sign-in is refused like a wrong password.
    assert other.get("/console/inbox", follow_redirects=False).status_code == 303
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(StaffSession).where(StaffSession.user_id == agent_id)) == 0
        assert session.get(InboxAgent, inbox_agent).status == "offline"  # routing gives them nothing more
    other.cookies.clear()
    assert try_sign_in(other, "olga@example.com") == 401

    back = post(client, f"/console/settings/staff/{agent_id}/reactivate", csrf)
    assert back.status_code == 200 and f'data-test="staff-deactivate-{agent_id}"' in back.text
    assert try_sign_in(other, "olga@example.com") == 303


def test_changing_the_role_takes_effect_at_the_next_request(client, other, database, shop):  # noqa: F811
    add_staff(database, email="admin@example.com", role="admin")
    user_id, inbox_agent = add_staff(database, email="olga@example.com", role="agent")
    csrf = sign_in(client, "admin@example.com")
    sign_in(other, "olga@example.com")
    assert other.get("/console/store").status_code == 403

    no_store = post(client, f"/console/settings/staff/{user_id}/role", csrf, {"role": "clerk", "store": ""})
    assert no_store.status_code == 422 and "A store clerk needs a store." in no_store.text
    warehouse = post(client, f"/console/settings/staff/{user_id}/role", csrf, {"role": "clerk", "store": "wh-north"})
    assert warehouse.status_code == 422 and "Choose one of the stores." in warehouse.text
    unknown = post(client, f"/console/settings/staff/{user_id}/role", csrf, {"role": "owner"})
    assert unknown.status_code == 422 and "Choose a role." in unknown.text
    with database.read() as session:
        assert session.get(StaffUser, user_id).role == "agent"

    clerk = post(client, f"/console/settings/staff/{user_id}/role", csrf, {"role": "clerk", "store": "store-arbat"})
    assert clerk.status_code == 200, clerk.text
    assert f'data-test="staff-role-{user_id}" data-role="clerk" data-store="store-arbat"' in clerk.text
    store = other.get("/console/store")  # the same session, the new role
    assert store.status_code == 200 and 'data-test="store-code">store-arbat<' in store.text
    assert other.get("/console/inbox").status_code == 403

    # Back to an agent: the same inbox agent (its history) answers again.
    again = post(client, f"/console/settings/staff/{user_id}/role", csrf, {"role": "agent"})
    assert again.status_code == 200, again.text
    with database.read() as session:
        user = session.get(StaffUser, user_id)
        assert (user.role, user.store, user.agent_id) == ("agent", None, inbox_agent)

    marketer = add_staff(database, email="mila@example.com", role="marketer")[0]
    promoted = post(client, f"/console/settings/staff/{marketer}/role", csrf, {"role": "agent"})
    assert promoted.status_code == 200
    with database.read() as session:
        agent = session.get(InboxAgent, session.get(StaffUser, marketer).agent_id)
        assert agent.email == "mila@example.com"


def test_the_last_admin_stays_an_admin(client, database):
    admin_id = add_staff(database, email="admin@example.com", role="admin", locale="ru")[0]
    csrf = sign_in(client, "admin@example.com")
    demoted = post(client, f"/console/settings/staff/{admin_id}/role", csrf, {"role": "marketer"})
    assert demoted.status_code == 422
    assert "единственный активный администратор" in demoted.text  # in the admin's language
    assert post(client, f"/console/settings/staff/{admin_id}/deactivate", csrf).status_code == 422
    # A disabled admin does not count.
    disabled_admin = add_staff(database, email="old@example.com", role="admin")[0]
    assert post(client, f"/console/settings/staff/{disabled_admin}/deactivate", csrf).status_code == 200
    assert post(client, f"/console/settings/staff/{admin_id}/role", csrf, {"role": "marketer"}).status_code == 422

    add_staff(database, email="second@example.com", role="admin")
    handed_over = post(client, f"/console/settings/staff/{admin_id}/role", csrf, {"role": "marketer"})
    assert handed_over.status_code == 200, handed_over.text
    assert client.get("/console/settings?tab=staff").status_code == 403  # no longer an admin


def test_only_admins_change_accounts(client, database, staff_client):
    target = add_staff(database, email="clerk@example.com", role="clerk", store="store-arbat")[0]
    for role in ("marketer", "agent", "clerk"):
        csrf = staff_client(role, store="store-arbat") if role == "clerk" else staff_client(role)
        assert post(client, f"/console/settings/staff/{target}/deactivate", csrf).status_code == 403
        assert post(client, f"/console/settings/staff/{target}/role", csrf, {"role": "admin"}).status_code == 403
    csrf = staff_client("admin")
    assert client.post(f"/console/settings/staff/{target}/deactivate", headers=HX).status_code == 403  # no CSRF token
    with database.read() as session:
        user = session.get(StaffUser, target)
        assert (user.role, user.disabled_at) == ("clerk", None)
    assert post(client, "/console/settings/staff/999999/deactivate", csrf).status_code == 422
