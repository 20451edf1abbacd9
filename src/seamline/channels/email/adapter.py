"""The email adapter: customers' mail in (IMAP polling, or raw messages posted by an MTA), replies
out by SMTP, threaded both ways.

- In: each message is stored raw under its Message-ID, then parsed (`mime.parse_email`: any
  charset, broken MIME repaired, quoted replies stripped). In-Reply-To and References find the
  conversation; otherwise the sender's latest conversation continues, as on any channel.
- Out: a reply gets a new Message-ID on the support domain, In-Reply-To the customer's last
  message and References the thread's ids, so mail clients thread it; its Message-ID is kept as
  the reply's provider id, so the customer's answer to it threads back.
"""

from __future__ import annotations

import hashlib
import re
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import structlog
from sqlalchemy.orm import Session

from seamline.channels.email.imap import ImapMailbox
from seamline.channels.email.mime import MalformedEmail, parse_email
from seamline.channels.email.outbound import (
    EmailSendError,
    SmtpSender,
    build_message,
    make_message_id,
)
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.errors import Unprocessable
from seamline.core.queue import Periodic
from seamline.customers.identifiers import IdentifierRules
from seamline.inbox import delivery, service, suppression
from seamline.channels.email import bounces
from seamline.inbox.adapters import (
    ChannelAdapter,
    DeliveryStatus,
    InboundMessage,
    NewAttachment,
    OutboundMessage,
    SendError,
    SendResult,
)

log = structlog.get_logger("seamline.channels.email")
CHANNEL = "email"


def provider_id_of(raw: bytes) -> str:
    """The Message-ID, read from the headers alone (the body is parsed once, later); else what
    the full parse derives, or a digest of the bytes when the mail cannot be parsed at all (it
    is still stored, and its failure shown)."""
    try:
        header = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    except Exception:  # noqa: BLE001 - any damage: the full parse below decides
        header = None
    found = re.findall(r"<([^<>\s]+)>", str(header)) if header else []
    if found:
        return found[0]
    try:
        return parse_email(raw).message_id
    except MalformedEmail:
        return f"unparsable-{hashlib.sha256(raw).hexdigest()[:40]}"


class EmailAdapter(ChannelAdapter):
    name = CHANNEL
    consent_channel = "email"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.inbox_smtp_host and settings.inbox_email_address)

    def split(self, body: bytes) -> list[tuple[str, bytes]]:
        """The mail as one message; none when it is a bounce (`parse_statuses` reads it)."""
        return [] if bounces.is_report(body) else [(provider_id_of(body), body)]

    def parse_statuses(self, body: bytes) -> list[DeliveryStatus]:
        return bounces.statuses_of(body)

    def parse(self, raw: bytes) -> InboundMessage:
        try:
            mail = parse_email(raw)
        except MalformedEmail as exc:
            raise Unprocessable(f"Malformed email: {exc}", code="malformed_email") from exc
        refs = [*mail.references, *([mail.in_reply_to] if mail.in_reply_to else [])]
        return InboundMessage(
            channel=CHANNEL, provider_message_id=mail.message_id, identifiers=[("email", mail.from_address)],
            sender_name=mail.from_name, text=mail.text or mail.full_text, html=mail.html, subject=mail.subject or None,
            attachments=[NewAttachment(a.filename, a.content_type, a.data) for a in mail.attachments], thread_refs=refs,
            sent_at=mail.date,
            meta={"thread": {"address": mail.from_address, "subject": mail.subject, "last_message_id": mail.message_id,
                             "references": [*refs, mail.message_id][-20:]},
                  "email": {"message_id": mail.message_id, "from": mail.from_address, "subject": mail.subject},
                  **({"problems": mail.problems} if mail.problems else {})},
        )

    def address(self, session: Session, *, customer_id: int, thread: dict[str, Any]) -> dict[str, Any]:
        """The address the person wrote from, else their oldest verified one; an address that
        hard-bounced is skipped (inbox/suppression.py)."""
        candidates = [thread["address"]] if thread.get("address") else []
        candidates += [e for e in service.identities_of_type(session, customer_id, "email") if e not in candidates]
        bounced = suppression.suppressed(session, CHANNEL, candidates)
        usable = [a for a in candidates if suppression.normalized(a) not in bounced]
        if usable:
            return {"email": usable[0]}
        if candidates:
            raise Unprocessable("Every email address of the customer bounced", code="address_bounced",
                                details={"channel": CHANNEL})
        raise Unprocessable("The customer has no email address", code="channel_unreachable", details={"channel": CHANNEL})

    def send(self, message: OutboundMessage, *, settings: Settings) -> SendResult:
        if not settings.inbox_smtp_host or not settings.inbox_email_address:
            raise SendError("Email is not configured (inbox_smtp_host, inbox_email_address)", temporary=True)
        domain = settings.inbox_email_address.rsplit("@", 1)[-1]
        message_id = make_message_id(domain)
        if message.marketing is not None:
            return self._send_marketing(message, settings=settings, message_id=message_id)
        subject = message.thread.get("subject") or message.subject or ("Ваше обращение" if settings.inbox_language == "ru" else "Your request")
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}"
        references = [r for r in message.thread.get("references", []) if r]
        for own in message.thread.get("provider_ids", [])[-5:]:
            if own not in references:
                references.append(own)
        mail = build_message(
            from_address=settings.inbox_email_address, from_name=settings.inbox_email_name, to=[message.address["email"]],
            subject=subject, text=message.text, html=message.html, message_id=message_id,
            in_reply_to=message.thread.get("last_message_id"), references=references[-20:],
            attachments=[(a.filename, a.content_type, a.data) for a in message.attachments],
        )
        self._smtp(settings, mail)
        return SendResult(provider_message_id=message_id, status="sent", meta={"email": {"message_id": message_id, "subject": subject}})

    def _send_marketing(self, message: OutboundMessage, *, settings: Settings, message_id: str) -> SendResult:
        """A marketing message: its own subject (not a reply), and one-click unsubscribe (RFC 8058:
        List-Unsubscribe with an https link and List-Unsubscribe-Post, which mail clients show as
        an "Unsubscribe" button that POSTs to the link)."""
        unsubscribe = message.marketing.get("unsubscribe_url")
        headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"} if unsubscribe else {}
        mail = build_message(
            from_address=settings.inbox_email_address, from_name=settings.inbox_email_name, to=[message.address["email"]],
            subject=message.subject or "", text=message.text, html=message.html, message_id=message_id, headers=headers)
        self._smtp(settings, mail)
        return SendResult(provider_message_id=message_id, status="sent", meta={"email": {"message_id": message_id, "subject": message.subject}})

    def _smtp(self, settings: Settings, mail: Any) -> None:
        sender = SmtpSender(host=settings.inbox_smtp_host, port=settings.inbox_smtp_port, username=settings.inbox_smtp_username or None,
                            password=settings.inbox_smtp_password.get_secret_value() or None, security=settings.inbox_smtp_security)
        try:
            sender.send(mail)
        except EmailSendError as exc:
            raise SendError(str(exc), temporary=exc.temporary) from exc

    def jobs(self, database: Database, settings: Settings, rules: IdentifierRules) -> list[Periodic]:
        if not settings.inbox_imap_host or not settings.inbox_imap_poll_seconds:
            return []
        return [Periodic("inbox-imap", settings.inbox_imap_poll_seconds, lambda: poll_mailbox(database, settings=settings, rules=rules))]


def mailbox(settings: Settings) -> ImapMailbox:
    return ImapMailbox(host=settings.inbox_imap_host, port=settings.inbox_imap_port, username=settings.inbox_imap_username,
                       password=settings.inbox_imap_password.get_secret_value(), security=settings.inbox_imap_security,
                       folder=settings.inbox_imap_folder)


def poll_mailbox(database: Database, *, settings: Settings, rules: IdentifierRules, limit: int = 100) -> int:
    """Fetch unseen mail, store each raw (a repeat is ignored), mark it seen, then process it.
    A crash before marking leaves the mail unseen: fetched again and ignored as a repeat."""
    stored = []
    with mailbox(settings) as box:
        fetched = box.fetch_unseen(limit=limit)
        for _uid, raw in fetched:
            if bounces.is_report(raw):  # a bounce: the returned message's status, not a conversation
                delivery.apply_statuses(database, channel=CHANNEL, statuses=bounces.statuses_of(raw))
                continue
            with database.write() as session:
                inbound_id = delivery.store_raw(session, channel=CHANNEL, provider_message_id=provider_id_of(raw), raw=raw)
            if inbound_id is not None:
                stored.append(inbound_id)
        box.mark_seen([uid for uid, _ in fetched])
    for inbound_id in stored:
        delivery.process(database, rules=rules, settings=settings, inbound_id=inbound_id)
    return len(stored)


ADAPTER = EmailAdapter()
