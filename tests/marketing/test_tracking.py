"""Opens, clicks and unsubscribes of a marketing email, through a real SMTP server (aiosmtpd):
the mail has its own subject and RFC 8058 one-click unsubscribe headers, its links go through
signed redirects, a pixel records the open, each lands on the person's timeline, and an
unsubscribe withdraws the marketing consent so the next message is not sent."""

from __future__ import annotations

import email
from email import policy

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from seamline.app import create_app
from seamline.events.models import EventRecord
from seamline.inbox import delivery
from seamline.marketing.messages import tracking
from seamline.marketing.messages.models import MarketingMessage
from tests.channels.email.test_adapter import smtp  # noqa: F401 - a fixture
from tests.marketing.test_engine import api_journey, enroll, journey, soon
from tests.marketing.test_journeys import advance, anna

CONTENT = {"ru": {"subject": "Новинки недели", "text": "Смотрите: https://shop.example/new",
                  "html": '<p>Смотрите <a href="https://shop.example/new?utm_source=email&amp;x=1">новинки</a>.</p>'}}


@pytest.fixture
def client(settings, database, smtp):  # noqa: F811
    mailing = settings.model_copy(update={"inbox_smtp_port": smtp[1], "inbox_smtp_security": "none"})
    with TestClient(create_app(mailing, database=database)) as test_client:
        yield test_client


def send_one(client, marketer, customer_id: int) -> MarketingMessage:
    template_id = client.post("/v1/marketing/templates", headers=marketer, json={"name": "News", "content": CONTENT}).json()["id"]
    journey_id = journey(client, marketer, api_journey({"id": "news", "type": "send", "template_id": template_id, "channel": "email"}))
    enroll(client, marketer, journey_id, customer_id)
    advance(client, at=soon())
    app = client.app
    delivery.send_due(app.state.database, settings=app.state.settings)
    with app.state.database.read() as s:
        return s.scalars(select(MarketingMessage).where(MarketingMessage.profile_id == customer_id).order_by(MarketingMessage.id.desc())).first()


def test_open_click_unsubscribe(client, shop, marketer, smtp):  # noqa: F811
    customer_id = anna(client, shop["headers"])
    record = send_one(client, marketer, customer_id)
    received, = smtp[0].received
    mail = email.message_from_bytes(received, policy=policy.default)
    assert mail["Subject"] == "Новинки недели"  # its own subject, not a reply's
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    html = mail.get_body(("html",)).get_content()
    assert "https://shop.example/new" not in html and "/t/c/" in html and "/t/o/" in html
    click = html.split('href="')[1].split('"')[0].replace("&amp;", "&")
    pixel = html.split('<img src="')[1].split('"')[0].replace("&amp;", "&")
    base = client.app.state.settings.marketing_public_url

    opened = client.get(pixel.removeprefix(base))
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif", (pixel, opened.text)
    client.get(pixel.removeprefix(base))  # a second open is the same open
    followed = client.get(click.removeprefix(base), follow_redirects=False)
    assert followed.status_code == 302 and followed.headers["location"] == "https://shop.example/new?utm_source=email&x=1"

    token = click.rsplit("/", 1)[1]
    forged = tracking.make_token(client.app.state.settings, {"k": "x", "u": "https://evil.example"}).split(".")[0] + "." + token.split(".")[1]
    assert client.get(f"/t/c/{forged}", follow_redirects=False).status_code == 404  # no open redirect

    page = client.get(unsubscribe.removeprefix(base))
    assert page.status_code == 200 and "Отписаться" in page.text and "email" in page.text
    consents = client.get(f"/v1/customers/{customer_id}/consents", headers=shop["headers"]).json()
    assert [c["granted"] for c in consents if (c["channel"], c["purpose"]) == ("email", "marketing")] == [True]  # a GET changes nothing
    done = client.post(unsubscribe.removeprefix(base), data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "больше не придут" in done.text
    consents = client.get(f"/v1/customers/{customer_id}/consents", headers=shop["headers"]).json()
    assert [c["granted"] for c in consents if (c["channel"], c["purpose"]) == ("email", "marketing")] == [False]

    with client.app.state.database.read() as s:
        record = s.get(MarketingMessage, record.id)
        names = s.scalars(select(EventRecord.name).where(EventRecord.person == "u:anna").order_by(EventRecord.id)).all()
    assert record.opened_at and record.clicked_at and record.unsubscribed_at
    assert names == ["Message Opened", "Message Clicked", "Unsubscribed"]
    again = send_one(client, marketer, customer_id)  # after unsubscribing: not sent
    assert again.status == "skipped" and again.reason == "no_marketing_consent"


def test_bad_tokens(client):
    assert client.get("/t/c/nothing.here", follow_redirects=False).status_code == 404
    assert client.get("/u/nothing.here").status_code == 404
    assert client.post("/u/nothing.here").status_code == 404
    assert client.get("/t/o/nothing.here.gif").status_code == 200  # a pixel is a pixel: nothing recorded


FIXTURE = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "email" / "dsn_failed.eml"


def test_a_bounce_marks_the_message_failed_and_starts_no_conversation(client, shop, marketer, smtp, write_headers):  # noqa: F811
    customer_id = anna(client, shop["headers"])
    record = send_one(client, marketer, customer_id)
    sent_id = email.message_from_bytes(smtp[0].received[0], policy=policy.default)["Message-ID"].strip("<>")
    dsn = FIXTURE.read_bytes().replace(b"ORIGINAL_ID", sent_id.encode())
    assert [s.status for s in __import__("seamline.channels.email.bounces", fromlist=["x"]).statuses_of(
        dsn.replace(b"Action: failed", b"Action: delayed"))] == []  # a delay is not a bounce
    answer = client.post("/v1/channels/email/messages", content=dsn, headers={**write_headers, "Content-Type": "message/rfc822"})
    assert answer.status_code == 202 and answer.json()["statuses_applied"] == 1 and answer.json()["inbound_id"] is None
    from seamline.inbox.models import InboxConversation, InboxInbound, InboxMessage
    with client.app.state.database.read() as s:
        message = s.get(InboxMessage, record.inbox_message_id)
        assert message.delivery_status == "failed" and message.error.startswith("bounced (5.1.1) anna@example.com")
        assert s.scalar(select(InboxInbound.id)) is None  # nothing stored as a customer's message
        assert len(s.scalars(select(InboxConversation)).all()) == 1


def test_a_hard_bounce_suppresses_the_address_until_the_person_writes_from_it(client, shop, marketer, smtp, write_headers,  # noqa: F811
                                                                              admin_headers):
    from seamline.channels.email import bounces

    customer_id = anna(client, shop["headers"])
    first = send_one(client, marketer, customer_id)
    sent_id = email.message_from_bytes(smtp[0].received[0], policy=policy.default)["Message-ID"].strip("<>")
    dsn = FIXTURE.read_bytes().replace(b"ORIGINAL_ID", sent_id.encode())
    # a full mailbox or a spam refusal says nothing about the address; "user unknown" does
    for status, gone in ((b"5.2.2", ()), (b"5.7.1", ()), (b"5.1.1", ("anna@example.com",)), (b"5.2.1", ("anna@example.com",))):
        assert [s.gone for s in bounces.statuses_of(dsn.replace(b"Status: 5.1.1", b"Status: " + status))] == [gone]
    client.post("/v1/channels/email/messages", content=dsn, headers={**write_headers, "Content-Type": "message/rfc822"})
    [row] = client.get("/v1/inbox/suppressions", headers=admin_headers, params={"channel": "email"}).json()["items"]
    assert (row["address"], row["message_id"]) == ("anna@example.com", first.inbox_message_id) and "5.1.1" in row["reason"]
    assert client.get("/v1/inbox/suppressions", headers=write_headers).status_code == 403  # staff only

    refused = send_one(client, marketer, customer_id)  # the next campaign does not try it again
    assert (refused.status, refused.reason) == ("skipped", "address_bounced") and len(smtp[0].received) == 1

    # Anna writes to the shop from that address: it works again
    mail = (b"From: Anna <ANNA@example.com>\r\nTo: shop@example.com\r\nSubject: Hello\r\nMessage-ID: <anna-1@example.com>\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nI fixed my mailbox.\r\n")
    assert client.post("/v1/channels/email/messages", content=mail, headers={**write_headers, "Content-Type": "message/rfc822"}
                       ).status_code == 202
    state = client.app.state
    delivery.process_inbound_due(state.database, rules=state.identifier_rules, settings=state.settings)
    assert client.get("/v1/inbox/suppressions", headers=admin_headers).json()["items"] == []
    again = send_one(client, marketer, customer_id)
    assert again.status == "queued" and len(smtp[0].received) == 2

    # staff may lift one too
    client.post("/v1/channels/email/messages", content=dsn, headers={**write_headers, "Content-Type": "message/rfc822"})
    [row] = client.get("/v1/inbox/suppressions", headers=admin_headers).json()["items"]
    assert client.delete(f"/v1/inbox/suppressions/{row['id']}", headers=admin_headers).status_code == 204
    assert client.delete(f"/v1/inbox/suppressions/{row['id']}", headers=admin_headers).status_code == 404
    client.post("/v1/channels/email/messages", content=dsn, headers={**write_headers, "Content-Type": "message/rfc822"})
    exported = client.get(f"/v1/customers/{customer_id}/export", headers=admin_headers).json()
    assert [s["address"] for s in exported["sections"]["suppressed_addresses"]] == ["anna@example.com"]
    erased = client.post(f"/v1/customers/{customer_id}/erase", json={"reason": "asked"}, headers=admin_headers)
    assert erased.status_code == 200, erased.text
    assert client.get("/v1/inbox/suppressions", headers=admin_headers).json()["items"] == []  # the address went with her
