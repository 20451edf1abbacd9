"""The email channel end to end through the inbox: mail in (posted raw, as an MTA does, and
polled from a real Dovecot by IMAP), replies out through a real SMTP server (aiosmtpd), threaded
both ways; repeats, malformed mail, consent and delivery failures."""

from __future__ import annotations

import socket
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.channels.email import adapter as email_adapter
from seamline.channels.email.mime import parse_email
from seamline.customers.identifiers import IdentifierRules
from seamline.inbox import delivery
from tests.channels.email.conftest import append
from tests.inbox.conftest import Visitor, conversation, create_agent, reply

SUPPORT = "support@shop.example"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"


class Inbox:
    """An aiosmtpd handler keeping what it receives; answers `reject` when set."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.reject: str | None = None

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.reject:
            return self.reject
        self.received.append(envelope.original_content or envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def email_settings(settings, smtp):
    return settings.model_copy(update={
        "inbox_smtp_host": "127.0.0.1", "inbox_smtp_port": smtp[1], "inbox_smtp_security": "none",
        "inbox_email_address": SUPPORT, "inbox_email_name": "Магазин",
    })


@pytest.fixture
def client(email_settings, database):
    with TestClient(create_app(email_settings, database=database)) as test_client:
        yield test_client


def mail(text: str, *, sender: str = "anna@example.com", name: str = "Анна Петрова", subject: str = "Возврат крема",
         charset: str = "utf-8", in_reply_to: str | None = None, message_id: str | None = None) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = f"{name} <{sender}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="example.com")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text, charset=charset)
    return message.as_bytes(), message["Message-ID"].strip("<>")


def post(client, headers, raw: bytes, path: str = "/v1/channels/email/messages") -> dict:
    response = client.post(path, content=raw, headers={**headers, "Content-Type": "message/rfc822"})
    assert response.status_code == 202, response.text
    return response.json()


def send_queued(database, settings) -> int:
    return delivery.send_due(database, settings=settings)


def test_mail_in_reply_out_threaded_both_ways(client, admin_headers, write_headers, database, email_settings, smtp):
    agent = create_agent(client, admin_headers, "Мария")
    raw, first_id = mail("Здравствуйте! Хочу вернуть один тюбик крема.", charset="koi8-r")
    accepted = post(client, write_headers, raw)
    assert accepted["duplicate"] is False and accepted["error"] is None and accepted["provider_message_id"] == first_id
    assert post(client, write_headers, raw)["duplicate"] is True  # the same Message-ID again: ignored

    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    view = conversation(client, admin_headers, cid)
    assert view["channel"] == "email" and view["subject"] == "Возврат крема" and view["assignee_id"] == agent["id"]
    assert [m["text"] for m in view["messages"] if m["kind"] == "message"] == ["Здравствуйте! Хочу вернуть один тюбик крема."]
    customer = client.get(f"/v1/customers/{view['customer_id']}", headers=admin_headers).json()
    assert customer["sections"]["profile"]["traits"]["name"]["value"] == "Анна Петрова"

    sent = reply(client, admin_headers, cid, "Конечно, в любом магазине сети.", agent_id=agent["id"])
    assert sent["delivery_status"] == "queued"
    assert send_queued(database, email_settings) == 1
    handler, _port = smtp
    out = parse_email(handler.received[0])
    assert out.in_reply_to == first_id and first_id in out.references
    assert out.subject == "Re: Возврат крема" and out.to == ["anna@example.com"] and out.from_address == SUPPORT
    assert out.text == "Конечно, в любом магазине сети." and out.html
    stored = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == sent["id"])
    assert stored["delivery_status"] == "sent"

    # Her answer quotes ours and threads by In-Reply-To, from another address even: same conversation.
    quoted = "Спасибо!\n\n23.11.2026, 10:00, Магазин пишет:\n> Конечно, в любом магазине сети.\n"
    raw, _ = mail(quoted, sender="anna.work@example.com", subject="Re: Возврат крема", in_reply_to=out.message_id)
    post(client, write_headers, raw)
    texts = [m["text"] for m in conversation(client, admin_headers, cid)["messages"] if m["kind"] == "message"]
    assert texts[-1] == "Спасибо!"


def test_malformed_mail_is_kept_visible_and_nothing_is_lost(client, admin_headers, write_headers):
    raw = b"Subject: no sender\r\n\r\nbody without a From header\r\n"
    accepted = post(client, write_headers, raw)
    assert accepted["message_id"] is None and "malformed_email" in accepted["error"]
    failed = client.get("/v1/inbox/inbound", params={"status": "failed"}, headers=admin_headers).json()["items"]
    assert len(failed) == 1 and failed[0]["id"] == accepted["inbound_id"] and "malformed_email" in failed[0]["error"]
    empty = client.post("/v1/channels/email/messages", content=b"", headers={**write_headers, "Content-Type": "message/rfc822"})
    assert empty.status_code == 400


def test_the_old_path_still_takes_mail_and_is_marked_deprecated(client, app, write_headers):
    """`/v1/channels/email/messages` beside every provider; MTAs set up with the old
    `/v1/inbox/channels/email/messages` keep working meanwhile."""
    raw, message_id = mail("Старый адрес", sender="old-mta@example.com")
    old = post(client, write_headers, raw, path="/v1/inbox/channels/email/messages")
    assert old["message_id"] and old["provider_message_id"] == message_id
    again = post(client, write_headers, raw)  # the same message on the new path: one message
    assert again["duplicate"] is True and again["inbound_id"] == old["inbound_id"]
    paths = app.openapi()["paths"]
    assert paths["/v1/inbox/channels/email/messages"]["post"]["deprecated"] is True
    assert "deprecated" not in paths["/v1/channels/email/messages"]["post"]
    assert client.post("/v1/channels/email/messages", content=raw, headers={"Content-Type": "message/rfc822"}).status_code == 401


def test_russian_charsets_and_broken_mime_decode(client, admin_headers, write_headers):
    """koi8-r, cp1251 quoted-printable, a multipart without its boundary, an unknown charset: each
    becomes readable text, and what had to be repaired is kept on the message."""
    expected = {
        "cp1251_qp.eml": "Прошу вернуть деньги за товар «Чайник электрический»",
        "koi8r_plain.eml": "Заказ 1042 оформлен 15 ноября",
        "broken_multipart.eml": "Тикет 77: клиент просит перезвонить.",
        "bogus_charset.eml": "Можно ли оплатить заказ при получении?",
    }
    for name, phrase in expected.items():
        accepted = post(client, write_headers, (FIXTURES / name).read_bytes())
        assert accepted["error"] is None, (name, accepted)
        found = client.get("/v1/inbox/search", params={"q": phrase}, headers=admin_headers).json()["items"]
        assert [m["id"] for m in found] == [accepted["message_id"]], name
        if name in ("broken_multipart.eml", "bogus_charset.eml"):
            assert found[0]["meta"]["problems"], name


def test_reply_refused_when_consent_withdrawn(client, admin_headers, write_headers):
    agent = create_agent(client, admin_headers)
    raw, _ = mail("Вопрос")
    post(client, write_headers, raw)
    view = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]
    consent = client.post(f"/v1/customers/{view['customer_id']}/consents",
                          json=[{"channel": "email", "purpose": "service", "granted": False}], headers=write_headers)
    assert consent.status_code in (200, 201), consent.text
    refused = reply(client, admin_headers, view["id"], "Ответ", agent_id=agent["id"], expect=409)
    assert refused["error"]["code"] == "consent_withdrawn"
    assert "email" not in refused["error"]["details"]["reachable"]


def test_permanent_smtp_failure_marks_the_reply_failed(client, admin_headers, write_headers, database, email_settings, smtp):
    agent = create_agent(client, admin_headers)
    raw, _ = mail("Вопрос")
    post(client, write_headers, raw)
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    smtp[0].reject = "550 5.1.1 mailbox unavailable"
    sent = reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    send_queued(database, email_settings)
    view = conversation(client, admin_headers, cid)
    failed = next(m for m in view["messages"] if m["id"] == sent["id"])
    assert failed["delivery_status"] == "failed" and "550" in failed["error"]
    assert any("could not be delivered" in m["text"] for m in view["messages"] if m["kind"] == "event")


def test_web_chat_continues_by_email_when_nobody_is_online(client, admin_headers, write_key, database, email_settings, smtp):
    anna = Visitor(client, write_key)
    anna.say("Есть кто-нибудь?")
    assert anna.open()["agentsOnline"] is False
    left = client.post("/v1/webchat/email", json={"email": "Anna@Example.com"}, headers=anna.headers)
    assert left.status_code == 200 and left.json() == {"email": "anna@example.com"}
    bad = client.post("/v1/webchat/email", json={"email": "not-an-email"}, headers=anna.headers)
    assert bad.status_code == 422
    cid = anna.open()["conversation"]["id"]
    view = conversation(client, admin_headers, cid)
    assert view["reply_channel"] == "email"
    agent = create_agent(client, admin_headers)
    reply(client, admin_headers, cid, "Ответили на почту", agent_id=agent["id"])
    send_queued(database, email_settings)
    out = parse_email(smtp[0].received[0])
    assert out.to == ["anna@example.com"] and out.text == "Ответили на почту"


def test_imap_poll_from_a_real_dovecot(dovecot, imap_account, database, email_settings, client, admin_headers):
    user, password = imap_account
    settings = email_settings.model_copy(update={
        "inbox_imap_host": dovecot.host, "inbox_imap_port": dovecot.port, "inbox_imap_security": "none",
        "inbox_imap_username": user, "inbox_imap_password": SecretStr(password),
    })
    raw_koi8, _ = mail("Письмо в КОИ-8", charset="koi8-r", sender="ivan@example.com", name="Иван")
    raw_1251, _ = mail("Письмо в cp1251", charset="cp1251", sender="olga@example.com", name="Ольга")
    append(dovecot, imap_account, raw_koi8, raw_1251)
    rules = IdentifierRules(settings)
    assert email_adapter.poll_mailbox(database, settings=settings, rules=rules) == 2
    assert email_adapter.poll_mailbox(database, settings=settings, rules=rules) == 0  # seen now
    append(dovecot, imap_account, raw_koi8)  # delivered twice by the MTA: the same Message-ID is ignored
    assert email_adapter.poll_mailbox(database, settings=settings, rules=rules) == 0
    texts = sorted(m["text"] for c in client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"]
                   for m in conversation(client, admin_headers, c["id"])["messages"] if m["kind"] == "message")
    assert texts == ["Письмо в cp1251", "Письмо в КОИ-8"]


def test_csat_question_by_email_and_a_numeric_reply_is_the_answer(client, admin_headers, write_headers, database, email_settings, smtp):
    agent = create_agent(client, admin_headers)
    raw, _ = mail("Вопрос по доставке")
    post(client, write_headers, raw)
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    reply(client, admin_headers, cid, "Доставим завтра", agent_id=agent["id"])
    client.post(f"/v1/inbox/conversations/{cid}/status", json={"status": "resolved", "agent_id": agent["id"]}, headers=admin_headers)
    assert send_queued(database, email_settings) == 2
    question = parse_email(smtp[0].received[-1])
    assert "от 1" in question.text and question.in_reply_to
    answer, _ = mail("5\n\n> Как вы оцениваете нашу помощь?", subject="Re: Возврат крема", in_reply_to=question.message_id)
    post(client, write_headers, answer)
    survey = client.get("/v1/inbox/surveys", params={"conversation_id": cid}, headers=admin_headers).json()["items"][0]
    assert survey["score"] == 5 and survey["channel"] == "email" and survey["agent_id"] == agent["id"]
    assert conversation(client, admin_headers, cid)["status"] == "resolved"  # an answer does not reopen it
