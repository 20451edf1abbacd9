"""Staff sign-in: argon2 passwords, sessions, CSRF, roles enforced on the server (throttling of failed
sign-ins: test_console_login_throttle.py)."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from seamline.web.staff.models import StaffSession, StaffUser
from tests.web.conftest import PASSWORD, add_staff, sign_in


def test_pages_need_sign_in_and_redirect_back(client):
    response = client.get("/console/customers?q=anna", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/customers%3Fq%3Danna"
    htmx = client.get("/console/customers", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/console/login")


def test_password_is_argon2_and_session_token_is_hashed(client, database):
    add_staff(database, email="Admin@Example.com", role="admin")
    sign_in(client, "admin@example.com")
    with database.read() as session:
        user = session.scalar(select(StaffUser))
        stored = session.scalar(select(StaffSession))
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    cookie = client.cookies.get("sl_console")
    assert cookie and stored.token_hash != cookie and len(stored.token_hash) == 64


def test_wrong_password_and_unknown_email_get_the_same_answer(client, database):
    add_staff(database, email="agent@example.com", role="agent")
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    wrong = client.post("/console/login", data={"email": "agent@example.com", "password": "nope-nope", "csrf": token})
    unknown = client.post("/console/login", data={"email": "ghost@example.com", "password": "nope-nope", "csrf": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "Неверный email или пароль." in wrong.text and "Неверный email или пароль." in unknown.text  # Russian by default
    assert "sl_console" not in client.cookies


def test_login_form_needs_its_csrf_token(client, database):
    add_staff(database, email="admin@example.com", role="admin")
    client.get("/console/login")
    forged = client.post("/console/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf": "forged"})
    assert forged.status_code == 403 and "sl_console" not in client.cookies


def test_writes_need_the_session_csrf_token(client, database):
    add_staff(database, email="admin@example.com", role="admin")
    csrf = sign_in(client, "admin@example.com")
    assert client.post("/console/locale", data={"locale": "ru"}).status_code == 403
    assert client.post("/console/locale", data={"locale": "ru"}, headers={"X-CSRF-Token": "x" + csrf}).status_code == 403
    ok = client.post("/console/locale", data={"locale": "ru"}, headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert ok.status_code == 303
    with database.read() as session:
        assert session.scalar(select(StaffUser)).locale == "ru"


def test_language_switch_translates_the_console(client, database):
    add_staff(database, email="admin@example.com", role="admin", locale="en")
    csrf = sign_in(client, "admin@example.com")
    assert ">Inbox" in client.get("/console/inbox").text
    client.post("/console/locale", data={"locale": "ru", "csrf": csrf})
    assert ">Входящие" in client.get("/console/inbox").text
    client.post("/console/logout", data={"csrf": csrf})
    assert "Sign in" in client.get("/console/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert "Войти" in client.get("/console/login", headers={"Accept-Language": "ru-RU"}).text


def test_roles_are_enforced_on_the_server(client, database):
    add_staff(database, email="clerk@example.com", role="clerk", store="S1")
    sign_in(client, "clerk@example.com")
    assert client.get("/console/settings").status_code == 403
    assert client.get("/console/inbox").status_code == 403


def test_sign_out_ends_the_session(client, database):
    add_staff(database, email="admin@example.com", role="admin")
    csrf = sign_in(client, "admin@example.com")
    cookie = client.cookies.get("sl_console")
    client.post("/console/logout", data={"csrf": csrf})
    client.cookies.set("sl_console", cookie)
    assert client.get("/console/dashboard", follow_redirects=False).status_code == 303


def test_the_cli_creates_an_account_that_can_sign_in(client, database):
    from typer.testing import CliRunner

    from seamline.cli import app as cli

    args = ["staff", "create", "--email", "Boss@Example.com", "--name", "Boss", "--role", "agent", "--locale", "en",
            "--database-url", database.url]
    result = CliRunner().invoke(cli, [*args, "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["agent_id"] is not None  # an agent is an inbox agent too
    again = CliRunner().invoke(cli, [*args, "--password", PASSWORD])
    assert again.exit_code == 1 and "exists" in again.output
    weak = CliRunner().invoke(cli, ["staff", "create", "--email", "x@example.com", "--name", "X", "--role", "admin",
                                    "--password", "short", "--database-url", database.url])
    assert weak.exit_code == 1 and "8 characters" in weak.output
    sign_in(client, "boss@example.com")
