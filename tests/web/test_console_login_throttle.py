"""Failed console sign-ins slow down the address they come from, never the account everywhere,
and tell nothing about which emails exist. Tried as an attacker would: through the login form,
from chosen client addresses."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import extract_parameters
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from seamline.core.time import utcnow
from seamline.web.staff import service
from seamline.web.staff.models import StaffLoginThrottle, StaffUser
from tests.web.conftest import PASSWORD, add_staff, sign_in

ATTACKER = ("203.0.113.7", 40000)
OWNER = ("198.51.100.20", 50000)


def _token(client: TestClient) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text).group(1)


def _attempt(client: TestClient, email: str, password: str, token: str, **headers: str):  # noqa: ANN202
    return client.post("/console/login", data={"email": email, "password": password, "csrf": token},
                       headers=headers, follow_redirects=False)


@pytest.fixture
def verifications(monkeypatch):  # noqa: ANN001, ANN201
    """The argon2 hashes each sign-in verified against (the expensive step)."""
    real, calls = service._hasher, []  # noqa: SLF001

    class Spy:
        def verify(self, hash, password):  # noqa: A002, ANN001, ANN202
            calls.append(hash)
            return real.verify(hash, password)

        def __getattr__(self, name):  # noqa: ANN001, ANN204
            return getattr(real, name)

    monkeypatch.setattr(service, "_hasher", Spy())
    return calls


@pytest.fixture
def clock(monkeypatch):  # noqa: ANN001, ANN201
    """Moves the sign-in service's clock forward: `clock(seconds)`."""
    offset = [timedelta(0)]
    monkeypatch.setattr(service, "utcnow", lambda: utcnow() + offset[0])

    def advance(seconds: float) -> None:
        offset[0] += timedelta(seconds=seconds)

    return advance


def test_an_attackers_failures_do_not_stop_the_owner_signing_in_from_another_address(app, database):
    add_staff(database, email="owner@example.com", role="admin")
    with TestClient(app, client=ATTACKER) as attacker:
        token = _token(attacker)
        codes = [_attempt(attacker, "owner@example.com", f"guess-{n}-xx", token).status_code for n in range(12)]
        assert codes == [401] * 5 + [429] * 7  # the attacker's address waits; nothing is locked
        with TestClient(app, client=OWNER) as owner:
            sign_in(owner, "owner@example.com")
            assert owner.get("/console/dashboard").status_code == 200
        # The owner's success forgives nothing of the attacker's: their address still waits.
        assert _attempt(attacker, "owner@example.com", PASSWORD, token).status_code == 429
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(StaffUser).where(StaffUser.disabled_at.is_not(None))) == 0


def test_an_address_trying_many_emails_waits_for_every_email(app, database, settings):
    add_staff(database, email="owner@example.com", role="admin")
    free = settings.console_login_ip_free_attempts
    with TestClient(app, client=ATTACKER) as attacker:
        token = _token(attacker)
        for n in range(free):  # password spraying: one guess per email, never 5 on one
            assert _attempt(attacker, f"user{n}@example.com", "Summer2026!", token).status_code == 401
        assert _attempt(attacker, "owner@example.com", "Summer2026!", token).status_code == 429
        assert _attempt(attacker, "owner@example.com", PASSWORD, token).status_code == 429
    with TestClient(app, client=OWNER) as owner:
        sign_in(owner, "owner@example.com")


def test_unknown_email_and_wrong_password_get_identical_answers_after_the_same_work(app, database, verifications):
    add_staff(database, email="agent@example.com", role="agent")
    answers = {}
    with TestClient(app, client=ATTACKER) as client:
        token = _token(client)
        for email in ("agent@example.com", "ghost@example.com"):  # same length: the page echoes the email
            for n in range(7):
                verifications.clear()
                response = _attempt(client, email, "nope-nope", token, **{"Accept-Language": "en"})
                # The wait's seconds may tick between the two runs on a busy machine: compare its shape.
                answers.setdefault(email, []).append(
                    (response.status_code,
                     sorted((k, "N" if k in ("retry-after", "content-length") else v)
                            for k, v in response.headers.items() if k != "x-request-id"),
                     re.sub(r"\d+", "N", response.text.replace(email, "EMAIL")),
                     len(verifications)))
            assert "sl_console" not in client.cookies
    assert answers["agent@example.com"] == answers["ghost@example.com"]
    statuses = [status for status, *_ in answers["ghost@example.com"]]
    assert statuses == [401] * 5 + [429] * 2
    assert "Wrong email or password." in answers["ghost@example.com"][0][2]
    # One argon2 verification per refused attempt, none while throttled; the dummy hash an unknown
    # email is checked against costs what a real one does.
    assert [n for *_, n in answers["ghost@example.com"]] == [1] * 5 + [0] * 2
    with database.read() as session:
        real_hash = session.scalar(select(StaffUser.password_hash))
    assert extract_parameters(service._DUMMY_HASH) == extract_parameters(real_hash)  # noqa: SLF001


def test_a_disabled_account_answers_like_an_unknown_email(app, database):
    add_staff(database, email="gone1@example.com", role="agent")
    with database.write() as session:
        session.scalar(select(StaffUser)).disabled_at = utcnow()
    with TestClient(app, client=ATTACKER) as client:
        token = _token(client)
        disabled = _attempt(client, "gone1@example.com", PASSWORD, token)
        unknown = _attempt(client, "gone2@example.com", PASSWORD, token)
    assert disabled.status_code == unknown.status_code == 401
    assert disabled.text.replace("gone1", "x") == unknown.text.replace("gone2", "x")


def test_throttled_attempts_get_429_with_retry_after_without_a_password_check(app, database, settings, verifications,
                                                                              clock):
    add_staff(database, email="clerk@example.com", role="clerk", store="S1")
    free = settings.console_login_free_attempts
    with TestClient(app, client=ATTACKER) as client:
        token = _token(client)
        for _ in range(free):
            assert _attempt(client, "clerk@example.com", "bad-password", token).status_code == 401
        verifications.clear()
        waiting = _attempt(client, "clerk@example.com", PASSWORD, token)  # even the right password waits
        assert waiting.status_code == 429 and verifications == []
        assert 1 <= int(waiting.headers["Retry-After"]) <= 10
        assert "Слишком много неудачных попыток входа с этого адреса" in waiting.text and "через" in waiting.text
        english = _attempt(client, "clerk@example.com", PASSWORD, token, **{"Accept-Language": "en"})
        assert english.status_code == 429 and "Too many failed sign-in attempts from this address" in english.text
        assert "sl_console" not in client.cookies

        clock(11)  # the wait is over: one more try, which fails, and the next wait is twice as long
        assert _attempt(client, "clerk@example.com", "bad-password", token).status_code == 401
        again = _attempt(client, "clerk@example.com", PASSWORD, token)
        assert again.status_code == 429 and 10 < int(again.headers["Retry-After"]) <= 20

        clock(21)  # a delay, never a lock: the right password works from the same address
        assert _attempt(client, "clerk@example.com", PASSWORD, token).status_code == 303
    with database.read() as session:  # the owner's own failures are forgiven by the success
        assert session.scalar(select(func.count()).select_from(StaffLoginThrottle)) == 0


def test_the_wait_is_capped(app, database, settings, clock):
    add_staff(database, email="admin@example.com", role="admin")
    cap = settings.console_login_max_delay_minutes * 60
    with TestClient(app, client=ATTACKER) as client:
        token = _token(client)
        for _ in range(settings.console_login_free_attempts + 12):
            response = _attempt(client, "admin@example.com", "bad-password", token)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) <= cap
                clock(int(response.headers["Retry-After"]))
                assert _attempt(client, "admin@example.com", "bad-password", token).status_code == 401
        last = _attempt(client, "admin@example.com", PASSWORD, token)
        assert last.status_code == 429 and int(last.headers["Retry-After"]) == cap
