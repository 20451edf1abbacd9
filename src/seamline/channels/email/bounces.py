"""Bounces: delivery status notifications (DSN, RFC 3464) that mail servers send back to the
support mailbox when a message of ours could not be delivered.

A DSN is a `multipart/report; report-type=delivery-status` message: a human part, a
`message/delivery-status` part with a block per recipient (`Action: failed`, `Status: 5.1.1`,
`Diagnostic-Code`), and the returned message or its headers, whose `Message-ID` is ours. It is
not a customer writing: it becomes a failed delivery status of the message it returns (the
conversation shows "could not be delivered", a campaign counts a bounce), never a conversation.

A hard bounce that says the address itself is gone (RFC 3463: `5.1.x`, no such mailbox or
domain; `5.2.1`, mailbox disabled) also suppresses the address: nothing is sent there again
until it is lifted (`inbox/service.py`, `suppress`). A full mailbox (`5.2.2`), a policy or spam
refusal (`5.7.x`) or any `4.x.x` says nothing about the address, so it is not suppressed.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

from seamline.inbox.adapters import DeliveryStatus


def is_report(raw: bytes) -> bool:
    """Whether the mail is a delivery status notification."""
    head = raw[:8192].lower()
    return b"multipart/report" in head and b"delivery-status" in head


def _fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.replace("\r\n", "\n").split("\n"):
        if ":" in line and not line[:1].isspace():
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    return fields


def statuses_of(raw: bytes) -> list[DeliveryStatus]:
    """The failed deliveries a DSN reports, for the message it returns (`Action: delayed` and
    `delivered` change nothing: only a failure is final)."""
    if not is_report(raw):
        return []
    mail: EmailMessage = email.message_from_bytes(raw, policy=policy.default)
    if mail.get_content_type() != "multipart/report" or mail.get_param("report-type") != "delivery-status":
        return []
    original, report = None, ""
    for part in mail.iter_parts():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            payload = part.get_payload()
            report = "\n\n".join(p.as_string() for p in payload) if isinstance(payload, list) else str(payload)
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            if kind == "message/rfc822":
                inner = part.get_payload()[0] if isinstance(part.get_payload(), list) else part.get_payload()
                original = inner.get("Message-ID") if hasattr(inner, "get") else None
            else:
                original = email.message_from_string(part.get_content(), policy=policy.default).get("Message-ID")
    if not original:
        return []
    failures, gone = [], []
    for block in report.split("\n\n"):
        fields = _fields(block)
        if fields.get("action", "").lower() == "failed":
            recipient = fields.get("final-recipient", "").split(";")[-1].strip()
            detail = fields.get("diagnostic-code", "").split(";", 1)[-1].strip()
            status = fields.get("status", "5.0.0").split()[0] if fields.get("status") else "5.0.0"
            failures.append(f"bounced ({status}) {recipient}: {detail}".strip()[:500])
            if _address_gone(status) and "@" in recipient:
                gone.append(recipient.strip("<>").lower())
    if not failures:
        return []
    return [DeliveryStatus(provider_message_id=original.strip().strip("<>"), status="failed", error="; ".join(failures)[:1000],
                           gone=tuple(gone))]


def _address_gone(status: str) -> bool:
    """RFC 3463: 5.1.x (bad mailbox, bad domain, ...) and 5.2.1 (mailbox disabled)."""
    return status.startswith("5.1.") or status == "5.2.1"
