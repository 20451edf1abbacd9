"""Secrets Seamline must keep usable, encrypted at rest: the HMAC signing secrets of event
destinations and inbox webhooks (a copy of the database, a dump or a stray SELECT does not
give them away).

A stored value is `enc1:` + a Fernet token (AES-128-CBC with HMAC-SHA256, `cryptography`) under
a key derived with HKDF-SHA256 from the key material; it is decrypted only to sign a request.
A value without the prefix was written by an earlier version and is used as it is, until it is
encrypted (by the migration, or at its next delivery once a key is there: `reseal`).

The key material, in this order (docs/configuration.md, `SEAMLINE_SECRET_KEY`):

1. `SEAMLINE_SECRET_KEY` (at least 32 characters): what production sets, from its secret store.
2. A SQLite database file: the key file beside it, `<database>.key` (mode 0600), created the
   first time a secret is stored. The embedded default works out of the box; back the file up
   with the database, and keep it when moving the database.
3. An in-memory SQLite database: a random key for the process (the data dies with it too).
4. Otherwise (PostgreSQL without `SEAMLINE_SECRET_KEY`): no key. Storing a new secret is
   refused (409 `secret_key_required`), since each server would otherwise make its own key;
   values stored in clear by earlier versions keep working.

`SEAMLINE_SECRET_KEY_FALLBACKS` lists earlier keys, tried for decryption only, while rotating.
A value no key opens is a `SecretKeyError` (409 `secret_key_mismatch`) that says so, never
garbage used as a secret.
"""

from __future__ import annotations

import base64
import os
import hashlib
import hmac
import secrets
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url

from seamline.core.config import Settings
from seamline.core.errors import Conflict

PREFIX = "enc1:"
MIN_KEY_LENGTH = 32
_INFO = b"seamline: secrets at rest, v1"


class SecretKeyError(Conflict):
    """A secret cannot be stored or read with the keys this server has."""

    code = "secret_key_error"


def _fernet(material: str) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


def key_file_of(database_url: str) -> Path | None:
    """`<file>.key` beside a SQLite database file; None for PostgreSQL and in-memory SQLite."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{Path(database).expanduser()}.key")


def _read_key_file(path: Path) -> str | None:
    try:
        material = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if len(material) < MIN_KEY_LENGTH:
        raise SecretKeyError(f"The key file {path} is damaged (shorter than {MIN_KEY_LENGTH} characters)",
                             code="secret_key_mismatch", details={"key_file": str(path)})
    return material


def _create_key_file(path: Path) -> str:
    """A new random key in `path` (0600); if another process made one meanwhile, that one."""
    material = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path) or material
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(material + "\n")
    return material


class SecretBox:
    """Seals and opens stored secrets with one server's keys (see the module's notes)."""

    def __init__(self, *, secret_key: str = "", fallbacks: tuple[str, ...] = (), database_url: str = "sqlite://"):
        self._given = secret_key
        self._fallbacks = tuple(f for f in fallbacks if f)
        self.key_file = None if secret_key else key_file_of(database_url)
        self._memory = not secret_key and self.key_file is None and make_url(database_url).get_backend_name() == "sqlite"
        self._primary: str | None = secret_key or (secrets.token_urlsafe(32) if self._memory else None)
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """Where the key comes from, for messages."""
        if self._given:
            return "SEAMLINE_SECRET_KEY"
        if self.key_file is not None:
            return f"the key file {self.key_file}"
        return "a key of this process" if self._memory else "no key (set SEAMLINE_SECRET_KEY)"

    def _key(self, *, create: bool) -> str | None:
        if self._primary is None and self.key_file is not None:
            with self._lock:
                if self._primary is None:
                    self._primary = _read_key_file(self.key_file) or (_create_key_file(self.key_file) if create else None)
        return self._primary

    def _keys(self) -> MultiFernet | None:
        primary = self._key(create=False)
        materials = ([primary] if primary else []) + list(self._fallbacks)
        return MultiFernet([_fernet(m) for m in materials]) if materials else None

    def seal(self, secret: str) -> str:
        """The value to store for `secret`."""
        primary = self._key(create=True)
        if primary is None:
            raise SecretKeyError(
                "Set SEAMLINE_SECRET_KEY (at least 32 random characters, the same on every server) before storing "
                "signing secrets: they are kept encrypted, and this database has no key file", code="secret_key_required")
        return PREFIX + _fernet(primary).encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret of a stored value (a value without the prefix is an earlier version's, in clear)."""
        if not stored.startswith(PREFIX):
            return stored
        keys = self._keys()
        if keys is None:
            missing = (f"the key file {self.key_file} is missing: restore it, or set SEAMLINE_SECRET_KEY"
                       if self.key_file is not None else "set SEAMLINE_SECRET_KEY")
            raise SecretKeyError(f"A stored secret is encrypted, but this server has no key ({missing})",
                                 code="secret_key_mismatch")
        try:
            return keys.decrypt(stored[len(PREFIX):].encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretKeyError(
                f"A stored secret was encrypted with another key than {self.where} (was SEAMLINE_SECRET_KEY changed, "
                "or the key file lost? an earlier key can be listed in SEAMLINE_SECRET_KEY_FALLBACKS)",
                code="secret_key_mismatch") from None

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (signing links in messages), derived from this server's key, so
        every server of a cluster signs alike and no second secret needs configuring."""
        primary = self._key(create=True)
        if primary is None:
            raise SecretKeyError("Set SEAMLINE_SECRET_KEY (at least 32 random characters, the same on every server) to sign "
                                 "links", code="secret_key_required")
        return hmac.new(primary.encode(), f"seamline:{purpose}".encode(), hashlib.sha256).digest()

    def reseal(self, stored: str) -> str | None:
        """A better value to store instead of `stored` (in clear, or under a fallback key), or None
        when it is fine as it is or there is no key to seal with (a SQLite database gets its key
        file here if need be)."""
        primary = self._key(create=True)
        if primary is None:
            return None
        if stored.startswith(PREFIX):
            try:
                _fernet(primary).decrypt(stored[len(PREFIX):].encode("ascii"))
                return None
            except (InvalidToken, ValueError):
                pass
        return self.seal(self.open(stored))


_boxes: dict[tuple[str, tuple[str, ...], str], SecretBox] = {}
_boxes_lock = threading.Lock()


def secret_box(settings: Settings) -> SecretBox:
    """The box of a server's settings (one per key and database, kept for the process)."""
    given = settings.secret_key.get_secret_value()
    fallbacks = tuple(f.get_secret_value() for f in settings.secret_key_fallbacks)
    cache_key = (given, fallbacks, "" if given else settings.database_url)
    with _boxes_lock:
        box = _boxes.get(cache_key)
        if box is None:
            box = _boxes[cache_key] = SecretBox(secret_key=given, fallbacks=fallbacks, database_url=settings.database_url)
        return box
