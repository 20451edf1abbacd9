"""Polling a real Dovecot: unseen mail fetched intact and left unseen until marked, at least once."""

from __future__ import annotations

import imaplib
from pathlib import Path

import pytest

from seamline.channels.email.imap import (
    ImapError,
    ImapMailbox,
    encode_mailbox,
    quote_mailbox,
)
from seamline.channels.email.mime import parse_email
from seamline.devtools.dovecot import DovecotServer
from tests.channels.email.conftest import append

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"
SAMPLES = ["koi8r_plain.eml", "cp1251_qp.eml", "attachments.eml", "thunderbird_ru_reply.eml"]


def mailbox(dovecot: DovecotServer, account: tuple[str, str], **options) -> ImapMailbox:
    return ImapMailbox(host=dovecot.host, port=dovecot.port, username=account[0], password=account[1],
                       security="none", **options)


def test_fetch_parse_mark_seen(dovecot, imap_account):
    raws = [(FIXTURES / name).read_bytes() for name in SAMPLES]
    append(dovecot, imap_account, *raws)
    with mailbox(dovecot, imap_account) as box:
        fetched = box.fetch_unseen()
        assert [raw for _, raw in fetched] == raws  # byte for byte, oldest first
        uids = [uid for uid, _ in fetched]
        assert uids == sorted(uids) and box.uidvalidity
        assert box.fetch_unseen() == fetched  # fetching (BODY.PEEK) does not mark them seen
        mails = [parse_email(raw) for _, raw in fetched]
        assert [m.subject for m in mails] == ["Где мой заказ 1042?", "Возврат товара «Чайник»", "Акт сверки", "Re: Самовывоз"]
        assert mails[0].text.startswith("Здравствуйте!\n\nЗаказ 1042 оформлен 15 ноября")
        assert mails[1].text.startswith("Добрый день!\n\nПрошу вернуть деньги за товар «Чайник электрический»")
        assert [a.filename for a in mails[2].attachments] == ["logo.png", "Акт сверки.pdf", "Счета.csv"]
        assert mails[3].text.endswith("на Тверской, завтра после обеда.")
        box.mark_seen(uids)
        assert box.fetch_unseen() == []
    with mailbox(dovecot, imap_account) as box:  # the flags persist across sessions
        assert box.fetch_unseen() == []


def test_unmarked_mail_is_fetched_again(dovecot, imap_account):
    """At least once: mail fetched but not marked (a crash before storing it) comes back next poll."""
    first, second = (FIXTURES / "koi8r_plain.eml").read_bytes(), (FIXTURES / "cp1251_qp.eml").read_bytes()
    append(dovecot, imap_account, first, second)
    with mailbox(dovecot, imap_account) as box:
        (uid1, _), (uid2, _) = box.fetch_unseen()
        box.mark_seen([uid1])  # stored the first, then "crashed"
    with mailbox(dovecot, imap_account) as box:
        assert box.fetch_unseen() == [(uid2, second)]
        box.mark_seen([uid2, uid2])
        assert box.fetch_unseen() == []
        box.mark_seen([])  # nothing to do


def test_limit_and_already_seen(dovecot, imap_account):
    raws = [f"From: c{i}@example.com\r\nMessage-ID: <m{i}@example.com>\r\nSubject: {i}\r\n\r\nbody {i}\r\n".encode() for i in range(4)]
    append(dovecot, imap_account, raws[0], flags=r"(\Seen)")
    append(dovecot, imap_account, *raws[1:])
    with mailbox(dovecot, imap_account) as box:
        assert [raw for _, raw in box.fetch_unseen(limit=2)] == raws[1:3]
        assert [raw for _, raw in box.fetch_unseen()] == raws[1:]


def test_other_folder_with_a_cyrillic_name(dovecot, imap_account):
    folder = quote_mailbox("Обращения клиентов")
    assert folder == '"&BB4EMQRABDAESQQ1BD0EOARP- &BDoEOwQ4BDUEPQRCBD4EMg-"'
    imap = imaplib.IMAP4(dovecot.host, dovecot.port)
    imap.authenticate("PLAIN", lambda _: f"\0{imap_account[0]}\0{imap_account[1]}".encode())
    assert imap.create(folder)[0] == "OK"
    imap.logout()
    raw = (FIXTURES / "utf8_base64.eml").read_bytes()
    append(dovecot, imap_account, raw, folder=folder)
    with mailbox(dovecot, imap_account) as inbox:
        assert inbox.fetch_unseen() == []
    with mailbox(dovecot, imap_account, folder="Обращения клиентов") as box:
        ((_, fetched),) = box.fetch_unseen()
        assert parse_email(fetched).subject == "Смена адреса доставки"


def test_modified_utf7_mailbox_names():
    assert encode_mailbox("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"  # RFC 3501's example
    assert quote_mailbox("INBOX") == "INBOX" and quote_mailbox('R&D "x"') == '"R&-D \\"x\\""'


def test_errors_are_imap_errors(dovecot, imap_account):
    with pytest.raises(ImapError, match="cannot select"), mailbox(dovecot, imap_account, folder="Nope"):
        pass
    closed = ImapMailbox(host="127.0.0.1", port=1, username="x", password="y", security="none", timeout=2)
    with pytest.raises(ImapError, match="cannot connect"):
        closed.connect()
    with pytest.raises(ImapError, match="not connected"):
        closed.fetch_unseen()


def test_wrong_password():
    # A server of its own: after a failed login Dovecot delays the next one from the same address by
    # seconds, which would slow every later test on the shared server.
    server = DovecotServer()
    server.add_user("someone", "right")
    server.start()
    try:
        with pytest.raises(ImapError, match="AUTHENTICATIONFAILED"), mailbox(server, ("someone", "wrong")):
            pass
    finally:
        server.stop()


def test_dovecot_server_fails_clearly(monkeypatch, dovecot):
    second = DovecotServer()
    second.port = dovecot.port  # taken: Dovecot cannot bind it
    with pytest.raises(RuntimeError, match="Address already in use"):
        second.start()
    assert not second.root.exists()
    monkeypatch.setattr("seamline.devtools.dovecot.find_dovecot", lambda: None)
    with pytest.raises(RuntimeError, match="dovecot-imapd"):
        DovecotServer()
