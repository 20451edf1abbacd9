"""Parse raw RFC 5322 mail into what the inbox needs, repairing what real-world mail gets wrong.

`parse_email` never raises on arbitrary bytes except `MalformedEmail` when there is no sender.
Everything it had to guess (unknown charsets, undecodable bytes, broken multipart structure, a
missing Message-ID) is noted in `ParsedEmail.problems`. Headers are decoded from their raw form
with our own charset fallbacks rather than through `policy.default`'s header objects, which
silently replace bytes of unknown charsets with U+FFFD.
"""

from __future__ import annotations

import email
import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from lxml import etree
from lxml import html as lxml_html


class MalformedEmail(ValueError):
    """The input is not an email we can attribute to anyone (empty, or no From address)."""


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None  # without brackets; what `cid:` URLs in the HTML point at


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    in_reply_to: str | None
    references: list[str]
    from_address: str
    from_name: str | None
    to: list[str]
    subject: str
    date: datetime | None
    text: str  # the new part: quoted reply and signature stripped
    full_text: str
    html: str | None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- charsets -----------------------------------------------------------------------------------

_LOWER_CYRILLIC = re.compile("[а-яё]")


def _guess_decode(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown charset: UTF-8 if valid, else the likelier single-byte Cyrillic one.

    Russian read in the wrong one of cp1251 / koi8-r comes out with inverted letter case, so the
    charset giving more lowercase Cyrillic letters wins.
    """
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    scored = [(len(_LOWER_CYRILLIC.findall(data.decode(cs, "replace"))), cs) for cs in ("cp1251", "koi8-r")]
    score, charset = max(scored, key=lambda sc: sc[0])
    if score == 0:
        return data.decode("utf-8", "replace"), "utf-8 with replacement"
    return data.decode(charset, "replace"), charset


def decode_bytes(data: bytes, charset: str | None, problems: list[str], where: str = "body") -> str:
    """Decode `data` declared as `charset`, falling back (with a note) when that is wrong or unknown."""
    name = (charset or "").strip().strip("\"'").lower()
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        if data.isascii():
            return data.decode("ascii")
        text, used = _guess_decode(data)
        if used != "utf-8":  # raw UTF-8 is normal nowadays (RFC 6532), anything else is a guess
            problems.append(f"8-bit {where} without a charset decoded as {used}")
        return text
    try:
        return data.decode(name)
    except UnicodeDecodeError:
        problems.append(f"invalid {name} bytes in {where} decoded with replacement")
        return data.decode(name, "replace")
    except (LookupError, TypeError, ValueError):  # unknown, or not a text codec ("base64")
        text, used = _guess_decode(data)
        problems.append(f"unknown charset {name} in {where} decoded as {used}")
        return text


# --- headers ------------------------------------------------------------------------------------


def _raw_headers(msg: Message, name: str) -> list[str]:
    """Unfolded raw values of a header; 8-bit bytes come back as surrogate escapes."""
    return [re.sub(r"\r?\n(?=[ \t])", "", str(v)) for k, v in msg.raw_items() if k.lower() == name]


def _repair_8bit(value: str, problems: list[str], where: str) -> str:
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), None, problems, where)


def decode_header_value(value: str, problems: list[str], where: str = "header") -> str:
    """Decode RFC 2047 encoded words (and raw 8-bit text) into a single-line string."""
    value = _repair_8bit(value, problems, where)
    parts = []
    try:
        chunks = decode_header(value)
    except Exception:  # noqa: BLE001 - the stdlib raises odd errors on odd input; keep it raw
        chunks = [(value, None)]
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset is None:  # unencoded text between encoded words
            parts.append(chunk.decode("ascii") if chunk.isascii() else chunk.decode("raw-unicode-escape"))
        else:
            parts.append(decode_bytes(chunk, charset, problems, where))
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _header(msg: Message, name: str, problems: list[str]) -> str | None:
    values = _raw_headers(msg, name)
    return decode_header_value(values[0], problems, f"{name} header") if values else None


def _addresses(msg: Message, name: str, problems: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs; falls back to any address-like text."""
    raws = [_repair_8bit(v, problems, f"{name} header") for v in _raw_headers(msg, name)]
    try:
        pairs = getaddresses(raws)
    except Exception:  # noqa: BLE001
        pairs = []
    found = [(decode_header_value(n, problems, f"{name} header"), a.strip().lower()) for n, a in pairs if "@" in a]
    if not found and raws:
        found = [("", a.lower()) for a in re.findall(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", " ".join(raws))]
        if found:
            problems.append(f"unparseable {name} header: took the address from its text")
    return found


def _msg_ids(value: str | None) -> list[str]:
    if not value:
        return []
    return re.findall(r"<([^<>\s]+)>", value) or value.split()


def _date(msg: Message, problems: list[str]) -> datetime | None:
    value = _header(msg, "date", problems)
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001
        problems.append(f"unparseable Date header {value[:60]!r}")
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


# --- HTML ---------------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\r\n\f\v]+")
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol", "table", "hr"}
_LINES = {"div", "li", "tr", "dt", "dd", "section", "article", "header", "footer", "address", "center", "form"}
# Quoted history the sender's client marked up: Gmail, Thunderbird / Apple Mail, Yandex.
_HTML_QUOTES = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]"
    " | //blockquote[@type='cite'] | //*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]"
)
# Outlook (web and desktop) marks where quoted history starts; everything from there on goes.
_HTML_CUT_FROM = "//*[@id='appendonsend' or @id='divRplyFwdMsg' or @id='mail-editor-reference-message-container']"


def _cut_from(el) -> None:
    """Remove `el` and everything after it in document order."""
    while el is not None and el.getparent() is not None:
        parent = el.getparent()
        for sibling in list(el.itersiblings()):
            parent.remove(sibling)
        el.tail = None
        if el.tag != "body":
            parent.remove(el)
        el = parent if parent.tag != "body" else None


def html_to_text(markup: str, *, drop_quotes: bool = False) -> str:
    """Readable plain text from HTML: tags stripped, block structure kept as line breaks."""
    try:
        parser = lxml_html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, huge_tree=True)
        doc = lxml_html.document_fromstring(markup.encode("utf-8", "replace"), parser=parser)
        for el in doc.xpath("//script | //style | //head | //template"):
            el.drop_tree()
        if drop_quotes:
            for el in doc.xpath(_HTML_QUOTES):
                if el.getparent() is not None:
                    el.drop_tree()
            marks = doc.xpath(_HTML_CUT_FROM)
            if marks:
                _cut_from(marks[0])
        out: list[str] = []
        pre = 0
        for event, el in etree.iterwalk(doc, events=("start", "end")):
            tag = el.tag.lower() if isinstance(el.tag, str) else ""
            if event == "start":
                pre += tag == "pre"
                out.append("\n\n" if tag in _PARAGRAPHS else "\n" if tag in _LINES or tag == "br" else "")
                if el.text and tag:
                    out.append(el.text if pre else _WS.sub(" ", el.text))
            else:
                pre -= tag == "pre"
                out.append("\n\n" if tag in _PARAGRAPHS else "\n" if tag in _LINES else " " if tag in ("td", "th") else "")
                if el.tail:
                    out.append(el.tail if pre else _WS.sub(" ", el.tail))
        text = "".join(out)
    except Exception:  # noqa: BLE001 - unparseable markup: strip tags by pattern
        text = html_lib.unescape(re.sub(r"<[^>]*>", " ", re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", markup)))
    lines = [line.replace("\xa0", " ").strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- quoted replies -----------------------------------------------------------------------------

_REPLY_HEADER = [
    re.compile(r"^On\b.{0,300}\bwrote:$", re.S),  # Gmail, Apple Mail, Thunderbird (English)
    re.compile(r"^(?=.*[\d@]).{0,300}\s(?:пишет|написал|написала|написал\(а\)):$", re.S | re.I),  # Thunderbird ru
    re.compile(r"^.{0,200}\d{1,2}:\d{2}.{0,200}<[^<>\s]+@[^<>\s]+>:$", re.S),  # Yandex, Mail.ru, Gmail (ru, others)
    re.compile(r"^-{2,}\s*(?:Original Message|Исходное сообщение)\s*-{2,}$", re.I),  # Outlook
]
_HEADER_FROM = re.compile(r"^\*?(?:From|От|Von|De)\s*:\*?\s*\S", re.I)
_HEADER_SENT = re.compile(r"^\*?(?:Sent|Date|Отправлено|Дата|Gesendet|Envoyé)\s*:", re.I)
_RULE = re.compile(r"^\s*(?:_{5,}|-{5,})\s*$")
_MOBILE_SIGNATURE = re.compile(r"^(?:Sent from my |Get Outlook for |Отправлено (?:с|из) )", re.I)


def _reply_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted history (reply header, Outlook separator or header block)."""
    stripped = [line.strip() for line in lines]
    for i, line in enumerate(stripped):
        if not line:
            continue
        if any(p.match(line) for p in _REPLY_HEADER):
            return i
        nxt = stripped[i + 1] if i + 1 < len(stripped) else ""
        wrapped = f"{line} {nxt}"  # a header wrapped over two lines (but not one starting on the next)
        if nxt and not any(p.match(nxt) for p in _REPLY_HEADER) and any(p.match(wrapped) for p in _REPLY_HEADER[:3]):
            return i
        if _HEADER_FROM.match(line) and any(_HEADER_SENT.match(s) for s in stripped[i + 1 : i + 5]):
            j = i - 1
            while j >= 0 and not stripped[j]:
                j -= 1
            return j if j >= 0 and _RULE.match(stripped[j]) else i
    return None


def strip_quoted(text: str) -> str:
    """The new part of a reply: without the quoted history, trailing `>` quotes and the signature."""
    lines = text.split("\n")
    start = _reply_start(lines)
    if start is not None:
        lines = lines[:start]
    end = len(lines)  # a trailing block of `>` quotes (blank lines in between allowed)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if any(line.lstrip().startswith(">") for line in lines[end:]):
        lines = lines[:end]
    for i, line in enumerate(lines):
        if line.rstrip("\r") in ("-- ", "--"):
            lines = lines[:i]
            break
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and _MOBILE_SIGNATURE.match(lines[-1].strip()):
        lines.pop()
    new = "\n".join(lines).strip()
    return new or text.strip()


def _unflow(text: str, delsp: bool) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676)."""
    out: list[list] = []  # [quote depth, content]
    for raw in text.split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        body = raw[depth:]
        body = body[1:] if body.startswith(" ") else body  # space-stuffing
        prev = out[-1] if out else None
        if prev and prev[0] == depth and prev[1].endswith(" ") and prev[1] != "-- ":
            prev[1] = (prev[1][:-1] if delsp else prev[1]) + body
        else:
            out.append([depth, body])
    return "\n".join((">" * d + " " if d else "") + b for d, b in out)


# --- structure ----------------------------------------------------------------------------------


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)


def _payload(part: Message, problems: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"undecodable {part.get_content_type()} part: {exc}")
        return b""
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message, problems: list[str], where: str) -> str:
    text = decode_bytes(_payload(part, problems), part.get_content_charset(), problems, where)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if str(part.get_param("format") or "").lower() == "flowed":
        text = _unflow(text, str(part.get_param("delsp") or "").lower() == "yes")
    return text


def _filename(part: Message, problems: list[str]) -> str | None:
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:  # noqa: BLE001
        return None
    if isinstance(name, tuple):  # an RFC 2231 value the stdlib left undecoded
        name = email.utils.collapse_rfc2231_value(name)
    return decode_header_value(str(name), problems, "attachment filename") if name else None


def _walk(part: Message, body: _Body, problems: list[str], depth: int = 0) -> None:
    ctype = part.get_content_type()
    if depth > 30:
        problems.append("MIME nesting deeper than 30 levels: ignored the rest")
        return
    if ctype == "message/rfc822" or (part.is_multipart() and part.get_content_maintype() == "message"):
        inner = part.get_payload(0) if part.is_multipart() else None
        try:
            data = inner.as_bytes(policy=policy.compat32) if inner is not None else _payload(part, problems)
        except Exception:  # noqa: BLE001
            data = str(inner).encode("utf-8", "surrogateescape")
        name = _filename(part, problems) or "message.eml"
        body.attachments.append(ParsedAttachment(name, "message/rfc822", data))
        return
    if part.is_multipart():
        for sub in part.get_payload():
            _walk(sub, body, problems, depth + 1)
        return
    if part.get_content_maintype() == "multipart":  # the parser could not split it
        _recover_multipart(part, body, problems, depth)
        return
    disposition = part.get_content_disposition()
    filename = _filename(part, problems)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        (body.plain if ctype == "text/plain" else body.html).append(_part_text(part, problems, ctype))
        return
    cid = str(part.get("Content-ID") or "").strip().strip("<>") or None
    name = filename or f"attachment-{len(body.attachments) + 1}"
    body.attachments.append(ParsedAttachment(name, ctype, _payload(part, problems), disposition == "inline", cid))


def _recover_multipart(part: Message, body: _Body, problems: list[str], depth: int) -> None:
    """A multipart whose boundary is missing or wrong: find the boundary actually used, else keep the text."""
    declared = part.get_boundary()
    problems.append(f"broken multipart: boundary {declared!r} not found" if declared else "broken multipart: no boundary")
    data = _payload(part, problems)
    found = re.search(rb"^--([^\s\"]{1,200})\r?\n(?=[\w-]+:)", data, re.M)
    if found and depth < 30:
        header = b'Content-Type: multipart/mixed; boundary="' + found.group(1) + b'"\r\n\r\n'
        repaired = email.message_from_bytes(header + data, policy=policy.compat32)
        if repaired.is_multipart() and repaired.get_payload():
            for sub in repaired.get_payload():
                _walk(sub, body, problems, depth + 1)
            return
    body.plain.append(decode_bytes(data, part.get_content_charset(), problems, "body").replace("\r\n", "\n"))


def _extract(raw: bytes, problems: list[str]) -> _Body:
    """Walk the MIME tree with policy.default, or compat32 if that raises; the raw body at worst."""
    for pol in (policy.default, policy.compat32):
        notes: list[str] = []
        try:
            body = _Body()
            _walk(email.message_from_bytes(raw, policy=pol), body, notes)
            problems.extend(notes)
            return body
        except Exception as exc:  # noqa: BLE001
            error = exc
    problems.append(f"unparseable MIME structure ({type(error).__name__}): kept the raw body as text")
    raw_body = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[-1]
    return _Body(plain=[decode_bytes(raw_body, None, problems)])


# --- entry point --------------------------------------------------------------------------------


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one raw message (as fetched over IMAP or received over SMTP)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    raw = bytes(raw)
    if not raw.strip():
        raise MalformedEmail("empty message")
    problems: list[str] = []
    msg = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)  # raw header access

    senders = _addresses(msg, "from", problems)
    if not senders:
        raise MalformedEmail("no From address")
    from_name, from_address = senders[0]

    ids = _msg_ids(_header(msg, "message-id", problems))
    if ids:
        message_id = ids[0]
    else:
        message_id = f"generated-{hashlib.sha256(raw).hexdigest()[:32]}@seamline"
        problems.append("no Message-ID: generated one from the message's bytes")
    in_reply_to = next(iter(_msg_ids(_header(msg, "in-reply-to", problems))), None)

    body = _extract(raw, problems)
    html = "\n".join(body.html) or None
    if body.plain:
        full_text = "\n\n".join(t.strip("\n") for t in body.plain).strip()
        text = strip_quoted(full_text)
    elif html:
        full_text = html_to_text(html)
        text = strip_quoted(html_to_text(html, drop_quotes=True)) or full_text
    else:
        full_text = text = ""

    return ParsedEmail(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=_msg_ids(_header(msg, "references", problems)),
        from_address=from_address,
        from_name=from_name or None,
        to=[address for _, address in _addresses(msg, "to", problems)],
        subject=_header(msg, "subject", problems) or "",
        date=_date(msg, problems),
        text=text,
        full_text=full_text,
        html=html,
        attachments=body.attachments,
        problems=list(dict.fromkeys(problems)),
    )
