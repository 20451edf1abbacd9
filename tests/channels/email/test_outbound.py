"""Outbound mail: built messages parse back to what was meant, and go through a real SMTP server."""

from __future__ import annotations

import re
import socket

import pytest
from aiosmtpd.controller import Controller

from seamline.channels.email.mime import ParsedAttachment, parse_email
from seamline.channels.email.outbound import (
    EmailSendError,
    SmtpSender,
    build_message,
    make_message_id,
)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
GMAIL_ID = "CAFk2Z+vGmail1234567890abcdef1234567890abcdef1234567890abcdef@mail.gmail.com"  # longer than a line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """aiosmtpd handler: keeps envelopes; answers `rcpt_reply` / `data_reply` instead of accepting when set."""

    def __init__(self) -> None:
        self.envelopes = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd's hook name
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield handler, SmtpSender(host="127.0.0.1", port=controller.port, security="none", timeout=5)
    finally:
        controller.stop()


def reply_message():
    return build_message(
        from_address="support@shop.example", from_name="Служба поддержки «Магазин»",
        to=["anna@example.com"], subject="Re: Где мой заказ №1042?",
        text="Здравствуйте, Анна!\n\nЗаказ <1042> отправлен & будет у вас завтра.",
        message_id="reply-1@shop.example", in_reply_to=GMAIL_ID,
        references=["first@example.com", GMAIL_ID],
        attachments=[ParsedAttachment("Накладная №1042.pdf", "application/pdf", PDF), ("notes.txt", "text/plain", b"plain\n")],
    )


def assert_is_the_reply(mail) -> None:
    assert mail.message_id == "reply-1@shop.example"
    assert mail.in_reply_to == GMAIL_ID and mail.references == ["first@example.com", GMAIL_ID]
    assert (mail.from_address, mail.from_name) == ("support@shop.example", "Служба поддержки «Магазин»")
    assert mail.to == ["anna@example.com"] and mail.subject == "Re: Где мой заказ №1042?"
    assert mail.text == mail.full_text == "Здравствуйте, Анна!\n\nЗаказ <1042> отправлен & будет у вас завтра."
    assert "Заказ &lt;1042&gt; отправлен &amp; будет" in mail.html and "<br>" in mail.html
    assert [(a.filename, a.content_type, a.data) for a in mail.attachments] == [
        ("Накладная №1042.pdf", "application/pdf", PDF), ("notes.txt", "text/plain", b"plain\n")]
    assert mail.date is not None and mail.problems == []


def test_build_round_trip():
    msg = reply_message()
    raw = msg.as_bytes()
    assert_is_the_reply(parse_email(raw))
    assert msg.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf", "text/plain"]
    # Threading headers stay literal ids (never RFC 2047-encoded, which breaks threading), folded between ids.
    headers = raw.split(b"\n\n", 1)[0].decode("ascii")
    assert f"In-Reply-To: <{GMAIL_ID}>" in headers
    assert re.search(rf"References: <first@example.com>\r?\n <{re.escape(GMAIL_ID)}>", headers)
    assert raw.isascii()  # 7-bit clean: any relay takes it


def test_given_html_and_no_threading():
    msg = build_message(from_address="a@shop.example", to="b@example.com", subject="Hello", text="Hi", html="<p>Hi</p>",
                        message_id="x@shop.example")
    mail = parse_email(msg.as_bytes())
    assert mail.html.strip() == "<p>Hi</p>" and mail.in_reply_to is None and mail.references == []
    assert msg.get_content_type() == "multipart/alternative" and "References" not in msg


def test_make_message_id():
    first, second = make_message_id("shop.example"), make_message_id("shop.example")
    assert first != second and first.endswith("@shop.example") and "<" not in first
    with pytest.raises(ValueError):
        make_message_id("bad domain")


def test_send_through_a_real_smtp_server(smtp_server):
    handler, sender = smtp_server
    sender.send(reply_message())
    (envelope,) = handler.envelopes
    assert envelope.mail_from == "support@shop.example" and envelope.rcpt_tos == ["anna@example.com"]
    assert_is_the_reply(parse_email(envelope.original_content or envelope.content))


@pytest.mark.parametrize(("rcpt_reply", "data_reply", "temporary", "code"), [
    ("550 5.1.1 No such user", None, False, 550),
    (None, "554 5.7.1 Message rejected as spam", False, 554),
    ("450 4.2.1 Mailbox busy, try later", None, True, 450),
    (None, "451 4.3.0 Temporary local problem", True, 451),
])
def test_refusals_are_permanent_or_temporary_by_code(smtp_server, rcpt_reply, data_reply, temporary, code):
    handler, sender = smtp_server
    handler.rcpt_reply, handler.data_reply = rcpt_reply, data_reply
    with pytest.raises(EmailSendError) as info:
        sender.send(reply_message())
    assert info.value.temporary is temporary and info.value.code == code
    assert str(code) in str(info.value)


def test_closed_port_is_a_temporary_failure():
    sender = SmtpSender(host="127.0.0.1", port=_free_port(), security="none", timeout=2)
    with pytest.raises(EmailSendError) as info:
        sender.send(reply_message())
    assert info.value.temporary is True and info.value.code is None


def test_starttls_unsupported_is_a_permanent_failure(smtp_server):
    _handler, sender = smtp_server  # aiosmtpd without a TLS context offers no STARTTLS
    with pytest.raises(EmailSendError) as info:
        SmtpSender(host=sender.host, port=sender.port, security="starttls", timeout=5).send(reply_message())
    assert info.value.temporary is False and "STARTTLS" in str(info.value)
