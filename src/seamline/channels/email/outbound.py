"""Outbound mail: building replies that thread in the customer's mail client, and sending them."""

from __future__ import annotations

import html as html_lib
import smtplib
import ssl
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Literal

from seamline.channels.email.mime import ParsedAttachment

Attachment = ParsedAttachment | tuple[str, str, bytes]  # (filename, content type, data)


_ID_HEADERS = {"message-id", "in-reply-to", "references"}


class _Policy(EmailPolicy):
    """policy.default, except that message-id headers are folded only between ids.

    The default folder RFC 2047-encodes an id longer than a line (Gmail's often are); mail
    clients then cannot match it and the reply drops out of its thread.
    """

    def fold(self, name: str, value) -> str:
        if name.lower() in _ID_HEADERS:
            return f"{name}: " + f"{self.linesep} ".join(str(value).split()) + self.linesep
        return super().fold(name, value)

    def fold_binary(self, name: str, value) -> bytes:
        if name.lower() in _ID_HEADERS:
            return self.fold(name, value).encode("utf-8")
        return super().fold_binary(name, value)


POLICY = _Policy(cte_type="7bit")  # bodies as quoted-printable/base64: any relay takes them


def make_message_id(domain: str) -> str:
    """A new globally unique Message-ID (without angle brackets) in our sending domain."""
    domain = domain.strip()
    if not domain or any(c in domain for c in "<>@ \t\r\n"):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    return f"{uuid.uuid4().hex}@{domain}"


def _bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def text_to_html(text: str) -> str:
    return '<div dir="auto">' + html_lib.escape(text).replace("\r\n", "\n").replace("\n", "<br>\n") + "</div>"


def build_message(
    *,
    from_address: str,
    from_name: str | None = None,
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str,
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    attachments: Iterable[Attachment] = (),
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative (plain + HTML) message, wrapped in multipart/mixed with attachments.

    Message ids are given without brackets. For a reply pass the customer's Message-ID as
    `in_reply_to` and their References plus that id as `references`, so clients thread it.
    """
    msg = EmailMessage(policy=POLICY)
    msg["From"] = Address(display_name=from_name or "", addr_spec=from_address)
    msg["To"] = [to] if isinstance(to, str) else list(to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = _bracketed(message_id)
    if in_reply_to:
        msg["In-Reply-To"] = _bracketed(in_reply_to)
    refs = [_bracketed(r) for r in references if r and r.strip("<> ")]
    if refs:
        msg["References"] = " ".join(refs)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    msg.add_alternative(html if html is not None else text_to_html(text), subtype="html")
    for item in attachments:
        filename, content_type, data = (
            (item.filename, item.content_type, item.data) if isinstance(item, ParsedAttachment) else item
        )
        maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
        msg.add_attachment(bytes(data), maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return msg


class EmailSendError(RuntimeError):
    """Sending failed; `temporary` says whether a later retry may succeed (4xx, network trouble)."""

    def __init__(self, message: str, *, temporary: bool, code: int | None = None):
        super().__init__(message)
        self.temporary = temporary
        self.code = code


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    timeout: float = 10
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)  # default: verify

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            smtp.starttls(context=context)
        elif self.security != "none":
            smtp.close()
            raise ValueError(f"unknown SMTP security {self.security!r}")
        return smtp

    def send(self, msg: EmailMessage) -> None:
        """Send to the message's To/Cc/Bcc recipients; raises `EmailSendError` unless all were accepted."""
        where = f"SMTP {self.host}:{self.port}"
        smtp = None
        try:
            smtp = self._connect()
            if self.username:
                smtp.login(self.username, self.password or "")
            refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise EmailSendError(
                f"{where} refused all recipients: {_describe(exc.recipients)}",
                temporary=all(400 <= c < 500 for c in codes), code=max(codes, default=None),
            ) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed, ...
            reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise EmailSendError(
                f"{where} answered {exc.smtp_code} {reply}", temporary=400 <= exc.smtp_code < 500, code=exc.smtp_code
            ) from exc
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:  # configuration: retry won't help
            raise EmailSendError(f"{where}: {exc}", temporary=False) from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused connection, timeout, disconnect
            raise EmailSendError(f"{where}: {type(exc).__name__}: {exc}", temporary=True) from exc
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()
        if refused:
            codes = [code for code, _ in refused.values()]
            raise EmailSendError(
                f"{where} refused some recipients (the others were sent to): {_describe(refused)}",
                temporary=all(400 <= c < 500 for c in codes), code=max(codes),
            )


def _describe(recipients: dict) -> str:
    return "; ".join(
        f"{addr}: {code} {msg.decode('utf-8', 'replace') if isinstance(msg, bytes) else msg}"
        for addr, (code, msg) in recipients.items()
    )
