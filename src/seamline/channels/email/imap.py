"""Polling a mailbox over IMAP, at least once.

`fetch_unseen` reads with BODY.PEEK[], which leaves messages unseen; the caller stores them and
only then calls `mark_seen`. A crash in between leaves the mail unseen, so the next poll fetches
it again and the caller drops the repeat by Message-ID. UIDs stay valid across connections while
the folder's UIDVALIDITY (`ImapMailbox.uidvalidity`) is unchanged.
"""

from __future__ import annotations

import base64
import imaplib
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal


class ImapError(RuntimeError):
    """The IMAP server could not be reached or refused a command."""


@dataclass
class ImapMailbox:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    security: Literal["none", "ssl", "starttls"] = "ssl"
    folder: str = "INBOX"
    timeout: float = 10
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)  # default: verify
    uidvalidity: int | None = field(default=None, init=False)
    _imap: imaplib.IMAP4 | None = field(default=None, init=False, repr=False, compare=False)

    def __enter__(self) -> "ImapMailbox":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.logout()

    def connect(self) -> None:
        context = self.ssl_context or ssl.create_default_context()
        where = f"IMAP {self.host}:{self.port}"
        try:
            if self.security == "ssl":
                imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=self.timeout)
            elif self.security in ("none", "starttls"):
                imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    imap.starttls(ssl_context=context)
            else:
                raise ValueError(f"unknown IMAP security {self.security!r}")
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapError(f"{where}: cannot connect: {exc}") from exc
        self._imap = imap
        try:
            if (self.username + self.password).isascii():
                imap.login(self.username, self.password)
            else:  # LOGIN is ASCII-only in imaplib; AUTHENTICATE PLAIN carries UTF-8
                imap.authenticate("PLAIN", lambda _: f"\0{self.username}\0{self.password}".encode())
            typ, data = imap.select(quote_mailbox(self.folder))
            if typ != "OK":
                raise ImapError(f"{where}: cannot select {self.folder!r}: {_text(data)}")
            validity = imap.response("UIDVALIDITY")[1]
            self.uidvalidity = int(validity[0]) if validity and validity[0] else None
        except (OSError, imaplib.IMAP4.error) as exc:
            self.logout()
            raise ImapError(f"{where}: {exc}") from exc
        except ImapError:
            self.logout()
            raise

    def logout(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            try:
                imap.shutdown()
            except OSError:
                pass

    def _command(self, *args: str) -> list:
        if self._imap is None:
            raise ImapError("not connected: use `with ImapMailbox(...) as mailbox:`")
        try:
            typ, data = self._imap.uid(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapError(f"IMAP UID {args[0]} failed: {exc}") from exc
        if typ != "OK":
            raise ImapError(f"IMAP UID {args[0]} answered {typ}: {_text(data)}")
        return data

    def fetch_unseen(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """(UID, raw RFC 822 bytes) of up to `limit` unseen messages, oldest first, left unseen."""
        found = self._command("SEARCH", "UNSEEN")
        uids = sorted(int(u) for u in b" ".join(d for d in found if d).split())[:limit]
        if not uids:
            return []
        data = self._command("FETCH", ",".join(map(str, uids)), "(BODY.PEEK[])")
        messages: dict[int, bytes] = {}
        for i, item in enumerate(data):
            if not isinstance(item, tuple):
                continue
            # "* 5 FETCH (UID 12 BODY[] {342}" - the UID may also follow the literal, in the next item.
            following = data[i + 1] if i + 1 < len(data) and isinstance(data[i + 1], bytes) else b""
            match = re.search(rb"\bUID (\d+)", item[0]) or re.search(rb"\bUID (\d+)", following)
            if match:
                messages[int(match.group(1))] = item[1]
        return sorted(messages.items())

    def mark_seen(self, uids: Iterable[int]) -> None:
        """Flag messages \\Seen, once they are safely stored."""
        uids = sorted(set(uids))
        for start in range(0, len(uids), 500):
            self._command("STORE", ",".join(map(str, uids[start : start + 500])), "+FLAGS.SILENT", r"(\Seen)")


def encode_mailbox(name: str) -> str:
    """A mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3): non-ASCII runs as "&...-"."""
    out, run = [], []

    def flush() -> None:
        if run:
            encoded = base64.b64encode("".join(run).encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append("&" + encoded.decode("ascii") + "-")
            run.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def quote_mailbox(name: str) -> str:
    """The mailbox name as a command argument: encoded, and quoted when it has to be."""
    encoded = encode_mailbox(name)
    return encoded if re.fullmatch(r"[\w./&,+-]+", encoded) else '"' + re.sub(r'(["\\])', r"\\\1", encoded) + '"'


def _text(data) -> str:
    return " ".join(d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data or [])
