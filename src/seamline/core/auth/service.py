"""API keys: `sl_<prefix>_<secret>`. The prefix finds the row, the secret's SHA-256 proves it.

Keys are 160+ bits of randomness, so a fast hash is as safe as a slow one here (no dictionary
to try); argon2 is for the human passwords of the staff console.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.auth.models import ApiKey
from seamline.core.auth.schemas import Scope
from seamline.core.errors import Forbidden, NotFound, Unauthorized
from seamline.core.time import utcnow

KEY_PREFIX = "sl"

#: Which scopes satisfy a required scope. admin may do everything; write implies read.
_GRANTS: dict[Scope, set[Scope]] = {
    Scope.admin: {Scope.admin},
    Scope.write: {Scope.admin, Scope.write},
    Scope.read: {Scope.admin, Scope.write, Scope.read},
    Scope.track: {Scope.admin, Scope.write, Scope.track},
    Scope.loyalty_adjust: {Scope.admin, Scope.loyalty_adjust},
    Scope.agent: {Scope.admin, Scope.write, Scope.agent},
    Scope.marketing: {Scope.admin, Scope.marketing},
}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, *, name: str, scopes: Iterable[Scope], created_by: ApiKey | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never retrievable again."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(30)
    key = ApiKey(
        prefix=prefix,
        secret_hash=_hash(secret),
        name=name,
        scopes=sorted({Scope(s).value for s in scopes}),
        created_by_key_id=created_by.id if created_by else None,
    )
    session.add(key)
    session.flush()
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


def authenticate(session: Session, raw_key: str) -> ApiKey:
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or "\x00" in raw_key:  # NUL: never a key (PostgreSQL refuses it)
        raise Unauthorized("Malformed API key", code="invalid_api_key")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
        raise Unauthorized("Unknown API key", code="invalid_api_key")
    if key.revoked_at is not None:
        raise Unauthorized("This API key was revoked", code="api_key_revoked")
    return key


def check_scope(key: ApiKey, required: Scope) -> None:
    if not set(Scope(s) for s in key.scopes) & _GRANTS[required]:
        raise Forbidden(
            f"This API key lacks the '{required.value}' scope",
            code="insufficient_scope",
            details={"required": required.value, "granted": key.scopes},
        )


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, *, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
    if key.revoked_at is None:  # revoking twice is a no-op, so the call can be retried
        key.revoked_at = utcnow()
    return key
