"""SMS gateway presets: what differs between providers, as small classes of data and parsing.

A preset says how one SMS is sent (`request`: URL, fields, credentials; `sent`: the answer as
the provider's id, or a `SendError`, temporary or not), how its callbacks are authenticated
(`verify`) and read (`messages`, `statuses`), and what it expects back (`acknowledgement`).
The adapter (adapter.py) does the HTTP and the inbox's side; another provider is one class here.

- `smsru` (SMS.ru): `POST /sms/send` (api_id, to, msg, json=1). Its callback POSTs form fields
  `data[0]`, `data[1]`... each a record of lines: `sms_status`, the id, the status code, the
  time. SMS.ru documents no incoming-SMS record: with it, customers' SMS do not reach the inbox.
  Answer: `100` (SMS.ru repeats a callback until it gets it).
- `smsc` (SMSC.ru): `POST /sys/send.php` (login and psw, or apikey; fmt=3, charset=utf-8). One
  handler URL gets statuses (id, phone, status, err) and incoming SMS (phone, mes, to, sms_id),
  in windows-1251 unless the URL asks `charset=utf-8`.
- `twilio` (Programmable Messaging): `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
  form-encoded, HTTP basic auth. Incoming messages and status callbacks are form posts signed in
  `X-Twilio-Signature` (base64 HMAC-SHA1 of the URL Twilio called and the sorted parameters,
  keyed with the Auth Token). Answer: empty TwiML (no automatic reply).
- `generic`: JSON both ways, documented in docs/inbox.md, for gateways without a preset.

SMS.ru and SMSC sign nothing we can rely on, so their callback URL carries a secret of ours
(`?secret=`, `inbox_sms_webhook_secret`), compared in constant time; the generic gateway signs
with that secret as Seamline signs its own webhooks and the PBX signs call events
(`X-Seamline-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, at most 5 minutes old).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import orjson

from seamline.core.config import Settings
from seamline.core.errors import Unauthorized, Unprocessable
from seamline.events import destinations
from seamline.inbox.adapters import DeliveryStatus, SendError

SIGNATURE_HEADER = "x-seamline-signature"
TWILIO_SIGNATURE_HEADER = "x-twilio-signature"


@dataclass(frozen=True)
class Callback:
    """One request a gateway made to the webhook. It passes through the inbox's `accept`, which
    takes bytes, as JSON; the body is kept byte for byte (signatures are over it)."""

    provider: str
    #: The URL the gateway called, as it sees it (Twilio signs it)
    url: str
    query: dict[str, str]
    content_type: str
    body: bytes

    def encode(self) -> bytes:
        return orjson.dumps({"provider": self.provider, "url": self.url, "query": self.query,
                             "content_type": self.content_type, "body": base64.b64encode(self.body).decode()})

    @classmethod
    def decode(cls, raw: bytes) -> Callback:
        data = orjson.loads(raw)
        return cls(provider=data["provider"], url=data["url"], query=data["query"], content_type=data["content_type"],
                   body=base64.b64decode(data["body"]))

    def form_pairs(self, charset: str = "utf-8") -> list[tuple[str, str]]:
        """The application/x-www-form-urlencoded fields, in order, repeats kept."""
        return parse_qsl(self.body.decode(charset, "replace"), keep_blank_values=True, encoding=charset, errors="replace")

    def form(self, charset: str = "utf-8") -> dict[str, str]:
        return dict(self.form_pairs(charset))

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise Unprocessable("The callback is not JSON", code="invalid_payload") from exc


@dataclass(frozen=True)
class Inbound:
    """A customer's SMS, the same whatever the provider; stored as the inbound part."""

    id: str
    #: The customer's number (E.164)
    sender: str
    #: Our number the customer wrote to, when the provider says
    recipient: str
    text: str
    at: datetime | None = None
    #: MMS media (Twilio): URL and content type
    media: list[dict[str, Any]] = field(default_factory=list)
    #: The provider's own fields, as received
    fields: dict[str, Any] = field(default_factory=dict)

    def encode(self, provider: str) -> bytes:
        return orjson.dumps({"provider": provider, "id": self.id, "from": self.sender, "to": self.recipient, "text": self.text,
                             "at": self.at.isoformat() if self.at else None, "media": self.media, "fields": self.fields})


@dataclass(frozen=True)
class Request:
    url: str
    form: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class Sent:
    id: str
    #: SMS the provider says it sent (and bills), when it says
    parts: int | None = None


def e164(number: str) -> str:
    """A provider's number ("79161234567", "+7 916...") as +digits."""
    return "+" + re.sub(r"\D", "", number)


def _unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _not_configured(provider: str, *names: str) -> SendError:
    return SendError(f"{provider} is not configured ({', '.join(names)})", temporary=True)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retriable(response: httpx.Response) -> bool:
    return response.status_code in (408, 425, 429) or response.status_code >= 500


def _secret_in_query(callback: Callback, settings: Settings) -> None:
    secret = settings.inbox_sms_webhook_secret.get_secret_value()
    given = callback.query.get("secret", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthorized("Missing or wrong secret in the callback URL (?secret=)", code="invalid_signature")


class Provider:
    name: ClassVar[str]
    title: ClassVar[str]
    #: API base URL when `inbox_sms_api_url` is empty
    api_url: ClassVar[str] = ""
    #: What the provider expects back: (body, media type); None: a JSON summary
    acknowledgement: ClassVar[tuple[str, str] | None] = None
    #: Without `inbox_sms_sender`, a reply goes from our number the customer wrote to (Twilio
    #: needs a From); SMSC wants a registered sender name there, so it uses its default instead
    replies_from_recipient: ClassVar[bool] = False

    def verify(self, callback: Callback, headers: Mapping[str, str], settings: Settings) -> None:
        raise NotImplementedError

    def messages(self, callback: Callback) -> list[Inbound]:
        """Incoming SMS in the callback; raises `Unprocessable` when it is not the provider's
        callback at all (checked before anything is stored)."""
        raise NotImplementedError

    def statuses(self, callback: Callback) -> list[DeliveryStatus]:
        raise NotImplementedError

    def request(self, *, to: str, text: str, sender: str, reference: str, settings: Settings,
                status_url: str | None) -> Request:
        raise NotImplementedError

    def sent(self, response: httpx.Response, *, reference: str) -> Sent:
        raise NotImplementedError

    def base(self, settings: Settings) -> str:
        return (settings.inbox_sms_api_url or self.api_url).rstrip("/")


class SmsRu(Provider):
    name, title, api_url = "smsru", "SMS.ru", "https://sms.ru"
    acknowledgement = ("100", "text/plain")
    #: Send errors worth retrying: daily limit (206), service unavailable (220), per-number
    #: limits (230-233), server error (500); others (bad api_id 200/300/301, no money 201,
    #: bad number 202, forbidden number 207, stop list 209...) are permanent
    TEMPORARY: ClassVar[frozenset[int]] = frozenset({206, 220, 230, 231, 232, 233, 500})
    #: Status codes: 100 (queued) and 101 (being handed to the operator) say nothing new
    STATUSES: ClassVar[dict[int, str]] = {102: "sent", 103: "delivered", 110: "read"}
    FAILED: ClassVar[dict[int, str]] = {
        104: "not delivered: its lifetime expired", 105: "deleted by the operator", 106: "phone failure",
        107: "not delivered for an unknown reason", 108: "rejected", 150: "no route to this number"}
    _RECORD = re.compile(r"^data\[(\d+)\]$")

    def verify(self, callback: Callback, headers: Mapping[str, str], settings: Settings) -> None:
        _secret_in_query(callback, settings)

    def records(self, callback: Callback) -> list[list[str]]:
        numbered = [(int(m.group(1)), value) for key, value in callback.form_pairs() if (m := self._RECORD.match(key))]
        if not numbered:
            raise Unprocessable("Not an SMS.ru callback (no data[] records)", code="invalid_payload")
        return [value.split("\n") for _, value in sorted(numbered, key=lambda item: item[0])]

    def messages(self, callback: Callback) -> list[Inbound]:
        self.records(callback)
        return []

    def statuses(self, callback: Callback) -> list[DeliveryStatus]:
        found = []
        for lines in self.records(callback):
            if lines[0].strip() != "sms_status" or len(lines) < 3 or not lines[2].strip().lstrip("-").isdigit():
                continue  # test records, call checks: acknowledged, nothing to do
            code = int(lines[2])
            status = self.STATUSES.get(code) or ("failed" if code in self.FAILED else None)
            if status and lines[1].strip():
                found.append(DeliveryStatus(
                    provider_message_id=lines[1].strip(), status=status, at=_unix(lines[3]) if len(lines) > 3 else None,
                    error=f"SMS.ru {code}: {self.FAILED[code]}" if status == "failed" else None))
        return found

    def request(self, *, to: str, text: str, sender: str, reference: str, settings: Settings,
                status_url: str | None) -> Request:
        api_id = settings.inbox_sms_api_key.get_secret_value()
        if not api_id:
            raise _not_configured(self.title, "inbox_sms_api_key: the api_id")
        form = {"api_id": api_id, "to": to.lstrip("+"), "msg": text, "json": "1"}
        if sender:
            form["from"] = sender
        return Request(url=f"{self.base(settings)}/sms/send", form=form)

    def sent(self, response: httpx.Response, *, reference: str) -> Sent:
        data = _answer(response)
        result = next(iter((data.get("sms") or {}).values()), {}) if isinstance(data.get("sms"), dict) else {}
        if response.status_code == 200 and data.get("status") == "OK" and result.get("status") == "OK" and result.get("sms_id"):
            return Sent(id=str(result["sms_id"]))
        code = result.get("status_code") or data.get("status_code")
        text = result.get("status_text") or data.get("status_text") or response.text[:200]
        temporary = _retriable(response) or code in self.TEMPORARY
        raise SendError(f"SMS.ru {code or response.status_code}: {text}", temporary=temporary)


class Smsc(Provider):
    name, title, api_url = "smsc", "SMSC.ru", "https://smsc.ru"
    acknowledgement = ("OK", "text/plain")
    #: Send errors worth retrying: 4 (IP blocked for a while after errors), 9 (too many
    #: requests); others (1 parameters, 2 login, 3 no money, 6 forbidden text or sender, 7 bad
    #: number, 8 undeliverable) are permanent
    TEMPORARY: ClassVar[frozenset[int]] = frozenset({4, 9})
    #: Message statuses: -1 waiting and -3 not found say nothing new
    STATUSES: ClassVar[dict[int, str]] = {0: "sent", 1: "delivered", 2: "read"}
    FAILED: ClassVar[dict[int, str]] = {
        3: "expired", 20: "impossible to deliver", 22: "wrong number", 23: "prohibited", 24: "insufficient funds",
        25: "unavailable number"}

    def verify(self, callback: Callback, headers: Mapping[str, str], settings: Settings) -> None:
        _secret_in_query(callback, settings)

    def fields(self, callback: Callback) -> dict[str, str]:
        # SMSC sends windows-1251 unless the handler's URL asks for another charset
        charset = callback.query.get("charset") or "windows-1251"
        try:
            fields = callback.form(charset)
        except LookupError as exc:
            raise Unprocessable(f"Unknown charset {charset!r} in the callback URL", code="invalid_payload") from exc
        if not fields.get("phone"):
            raise Unprocessable("Not an SMSC callback (no phone)", code="invalid_payload")
        return fields

    def messages(self, callback: Callback) -> list[Inbound]:
        fields = self.fields(callback)
        if "mes" not in fields:
            return []
        message_id = fields.get("sms_id") or fields.get("id") or hashlib.sha256(
            "\n".join((fields["phone"], fields.get("to", ""), fields.get("sent", ""), fields["mes"])).encode()).hexdigest()[:32]
        return [Inbound(id=message_id, sender=e164(fields["phone"]), recipient=fields.get("to", ""), text=fields["mes"],
                        at=_unix(fields.get("sent")) or _unix(fields.get("time")), fields=fields)]

    def statuses(self, callback: Callback) -> list[DeliveryStatus]:
        fields = self.fields(callback)
        if "mes" in fields or not fields.get("id") or not fields.get("status", "").lstrip("-").isdigit():
            return []
        code = int(fields["status"])
        status = self.STATUSES.get(code) or ("failed" if code in self.FAILED else None)
        if status is None:
            return []
        error = None
        if status == "failed":
            error = f"SMSC {code}: {self.FAILED[code]}" + (f" (error {fields['err']})" if fields.get("err") else "")
        return [DeliveryStatus(provider_message_id=fields["id"], status=status, error=error,
                               at=_unix(fields.get("ts")) or _unix(fields.get("time")))]

    def request(self, *, to: str, text: str, sender: str, reference: str, settings: Settings,
                status_url: str | None) -> Request:
        secret = settings.inbox_sms_api_key.get_secret_value()
        if not secret:
            raise _not_configured(self.title, "inbox_sms_login", "inbox_sms_api_key")
        credentials = {"login": settings.inbox_sms_login, "psw": secret} if settings.inbox_sms_login else {"apikey": secret}
        form = {**credentials, "phones": to, "mes": text, "fmt": "3", "charset": "utf-8"}
        if sender:
            form["sender"] = sender
        return Request(url=f"{self.base(settings)}/sys/send.php", form=form)

    def sent(self, response: httpx.Response, *, reference: str) -> Sent:
        data = _answer(response)
        if response.status_code == 200 and "error" not in data and data.get("id") is not None:
            parts = data.get("cnt")
            return Sent(id=str(data["id"]), parts=int(parts) if str(parts or "").isdigit() else None)
        code = data.get("error_code")
        temporary = _retriable(response) or code in self.TEMPORARY
        raise SendError(f"SMSC {code or response.status_code}: {data.get('error') or response.text[:200]}", temporary=temporary)


class Twilio(Provider):
    name, title, api_url = "twilio", "Twilio", "https://api.twilio.com"
    acknowledgement = ('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")
    replies_from_recipient = True
    #: MessageStatus of status callbacks; queued, accepted, scheduled, sending say nothing new
    STATUSES: ClassVar[dict[str, str]] = {"sent": "sent", "delivered": "delivered", "read": "read", "undelivered": "failed",
                                         "failed": "failed", "canceled": "failed"}
    #: Error codes of failed deliveries (the rest: Twilio's error dictionary)
    ERRORS: ClassVar[dict[str, str]] = {
        "30001": "queue overflow", "30002": "account suspended", "30003": "unreachable destination handset",
        "30004": "message blocked", "30005": "unknown destination handset", "30006": "landline or unreachable carrier",
        "30007": "filtered by the carrier", "30008": "unknown error", "21610": "the recipient replied STOP"}
    INBOUND = ("received", "receiving")

    def verify(self, callback: Callback, headers: Mapping[str, str], settings: Settings) -> None:
        token = settings.inbox_sms_api_key.get_secret_value()
        given = {k.lower(): v for k, v in headers.items()}.get(TWILIO_SIGNATURE_HEADER, "")
        pairs = callback.form_pairs()
        if not token or not given or not any(hmac.compare_digest(given.encode(), twilio_signature(token, url, pairs).encode())
                                             for url in _with_and_without_port(callback.url)):
            raise Unauthorized("Missing or wrong X-Twilio-Signature", code="invalid_signature")

    def fields(self, callback: Callback) -> dict[str, str]:
        fields = callback.form()
        if not fields.get("MessageSid"):
            raise Unprocessable("Not a Twilio messaging callback (no MessageSid)", code="invalid_payload")
        return fields

    def _is_message(self, fields: dict[str, str]) -> bool:
        status = fields.get("MessageStatus") or fields.get("SmsStatus")
        return status in self.INBOUND if status else "Body" in fields

    def messages(self, callback: Callback) -> list[Inbound]:
        fields = self.fields(callback)
        if not self._is_message(fields) or not fields.get("From"):
            return []
        count = int(fields["NumMedia"]) if fields.get("NumMedia", "").isdigit() else 0
        media = [{"url": fields.get(f"MediaUrl{n}"), "content_type": fields.get(f"MediaContentType{n}")} for n in range(count)]
        return [Inbound(id=fields["MessageSid"], sender=e164(fields["From"]), recipient=fields.get("To", ""),
                        text=fields.get("Body", ""), media=media, fields=fields)]

    def statuses(self, callback: Callback) -> list[DeliveryStatus]:
        fields = self.fields(callback)
        raw = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
        status = self.STATUSES.get(raw)
        if self._is_message(fields) or status is None:
            return []
        code = fields.get("ErrorCode")
        error = f"Twilio {code}: {self.ERRORS.get(code, fields.get('ErrorMessage') or 'see the Twilio error dictionary')}" if code else None
        return [DeliveryStatus(provider_message_id=fields["MessageSid"], status=status,
                               error=error or (f"Twilio: {raw}" if status == "failed" else None))]

    def request(self, *, to: str, text: str, sender: str, reference: str, settings: Settings,
                status_url: str | None) -> Request:
        account, token = settings.inbox_sms_login, settings.inbox_sms_api_key.get_secret_value()
        if not account or not token:
            raise _not_configured(self.title, "inbox_sms_login: the Account SID", "inbox_sms_api_key: the Auth Token")
        if not sender:
            raise _not_configured(self.title, "inbox_sms_sender: a number or a Messaging Service SID")
        form = {"To": to, "Body": text, **({"MessagingServiceSid": sender} if sender.startswith("MG") else {"From": sender})}
        if status_url:
            form["StatusCallback"] = status_url
        return Request(url=f"{self.base(settings)}/2010-04-01/Accounts/{account}/Messages.json", form=form, auth=(account, token))

    def sent(self, response: httpx.Response, *, reference: str) -> Sent:
        data = _answer(response)
        if response.status_code in (200, 201) and data.get("sid"):
            parts = str(data.get("num_segments") or "")
            return Sent(id=str(data["sid"]), parts=int(parts) if parts.isdigit() and int(parts) > 0 else None)
        raise SendError(f"Twilio {data.get('code') or response.status_code}: {data.get('message') or response.text[:200]}",
                        temporary=_retriable(response))


class Generic(Provider):
    name, title = "generic", "SMS gateway"
    replies_from_recipient = True
    STATUSES: ClassVar[dict[str, str]] = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
                                         "undelivered": "failed"}

    def verify(self, callback: Callback, headers: Mapping[str, str], settings: Settings) -> None:
        secret = settings.inbox_sms_webhook_secret.get_secret_value()
        given = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "")
        if not secret or not destinations.verify(secret, given, callback.body):
            raise Unauthorized("Missing, wrong or stale X-Seamline-Signature", code="invalid_signature")

    def events(self, callback: Callback) -> list[dict[str, Any]]:
        data = callback.json()
        events = data if isinstance(data, list) else [data]
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("id"), str | int) or str(event["id"]) == "":
                raise Unprocessable("Every event needs an id", code="invalid_payload")
            if "status" in event:
                if not isinstance(event["status"], str):
                    raise Unprocessable("A status is a string", code="invalid_payload")
            elif not isinstance(event.get("from"), str) or not isinstance(event.get("text"), str):
                raise Unprocessable("A message needs from and text; a status needs status", code="invalid_payload")
        return events

    def messages(self, callback: Callback) -> list[Inbound]:
        return [Inbound(id=str(e["id"]), sender=e164(e["from"]), recipient=str(e.get("to") or ""), text=e["text"],
                        at=_timestamp(e.get("received_at")), fields=e)
                for e in self.events(callback) if "status" not in e]

    def statuses(self, callback: Callback) -> list[DeliveryStatus]:
        return [DeliveryStatus(provider_message_id=str(e["id"]), status=self.STATUSES[e["status"]],
                               error=str(e["error"])[:500] if e.get("error") else None, at=_timestamp(e.get("at")))
                for e in self.events(callback) if e.get("status") in self.STATUSES]

    def request(self, *, to: str, text: str, sender: str, reference: str, settings: Settings,
                status_url: str | None) -> Request:
        token = settings.inbox_sms_api_key.get_secret_value()
        if not settings.inbox_sms_api_url:
            raise _not_configured(self.title, "inbox_sms_api_url")
        body = {"id": reference, "to": to, "text": text, **({"from": sender} if sender else {})}
        return Request(url=settings.inbox_sms_api_url, json=body, headers={"Authorization": f"Bearer {token}"} if token else {})

    def sent(self, response: httpx.Response, *, reference: str) -> Sent:
        data = _answer(response)
        if 200 <= response.status_code < 300:
            parts = data.get("parts")
            return Sent(id=str(data.get("id") or reference), parts=parts if isinstance(parts, int) and parts > 0 else None)
        raise SendError(f"SMS gateway {response.status_code}: {data.get('error') or response.text[:200]}",
                        temporary=_retriable(response))


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return _unix(value)
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return None
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return None


def twilio_signature(token: str, url: str, pairs: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature: the URL, then every parameter's name and value sorted by name."""
    data = url + "".join(name + value for name, value in sorted(pairs))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _with_and_without_port(url: str) -> list[str]:
    """Twilio may sign https://host/... or https://host:443/...: both are accepted, as its SDKs do."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if port is None:
        return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))] if default else [url]
    return [url, urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))]


PROVIDERS: dict[str, Provider] = {p.name: p for p in (SmsRu(), Smsc(), Twilio(), Generic())}
