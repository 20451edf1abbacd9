"""Console test helpers: staff accounts and a signed-in TestClient."""

from __future__ import annotations

import re

import pytest

from seamline.web.staff import create_staff_user

PASSWORD = "correct horse battery"


def add_staff(database, *, email: str, role: str, locale: str = "en", store: str | None = None, **extra):  # noqa: ANN001, ANN201
    with database.write() as session:
        user = create_staff_user(session, email=email, name=email.split("@")[0].title(), password=PASSWORD, role=role,
                                 locale=locale, store=store, **extra)
        return user.id, user.agent_id


def sign_in(client, email: str, password: str = PASSWORD):  # noqa: ANN001, ANN201
    """Sign in through the login form; returns the CSRF token of the new session."""
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post("/console/login", data={"email": email, "password": password, "csrf": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    home = client.get(response.headers["location"])
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert found, home.text[:500]
    return found.group(1)


@pytest.fixture
def staff_client(client, database):  # noqa: ANN001, ANN201
    """A function (role, **kw) -> (csrf token) that signs the test client in as a new staff member."""
    counter = iter(range(1, 1000))

    def make(role: str, **kwargs) -> str:  # noqa: ANN003
        email = f"{role}{next(counter)}@example.com"
        add_staff(database, email=email, role=role, **kwargs)
        return sign_in(client, email)

    return make
