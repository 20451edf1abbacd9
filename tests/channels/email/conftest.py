"""A real Dovecot IMAP server for the email channel's tests, one per session.

Without Dovecot installed the IMAP tests are skipped locally and fail under CI (`CI=true`), so CI
cannot go green without them (`.ci/run` installs `dovecot-imapd`).
"""

from __future__ import annotations

import imaplib
import itertools
import os
from collections.abc import Iterator

import pytest

from seamline.devtools.dovecot import DovecotServer, find_dovecot

_users = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    if find_dovecot() is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but Dovecot is not installed: .ci/run must install dovecot-imapd")
        pytest.skip("Dovecot is not installed here (CI installs dovecot-imapd)")
    server = DovecotServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_account(dovecot) -> tuple[str, str]:
    """A fresh user (so an empty mailbox) on the session's Dovecot: (name, password)."""
    name, password = f"user{next(_users)}", "пароль-secret"
    dovecot.add_user(name, password)
    return name, password


def append(dovecot: DovecotServer, account: tuple[str, str], *messages: bytes, folder: str = "INBOX",
           flags: str | None = None) -> None:
    """Place messages in a mailbox with IMAP APPEND, as a delivering MTA would."""
    imap = imaplib.IMAP4(dovecot.host, dovecot.port)
    try:
        imap.authenticate("PLAIN", lambda _: f"\0{account[0]}\0{account[1]}".encode())
        for raw in messages:
            typ, data = imap.append(folder, flags, None, raw)
            assert typ == "OK", data
    finally:
        imap.logout()
