"""Signed user ids: how a site proves, through a browser, that a user id is really its user's.

The site's backend computes `userHash` = hex HMAC-SHA256 of the user id with the identity secret
(`SEAMLINE_INBOX_WEBCHAT_IDENTITY_SECRET`) and hands it to the page; the web chat widget and the
tracker send it with the user id. A browser cannot forge it, so a user id with a valid hash is
vouched for; without one it is only a claim (docs/customers.md, "Trust")."""

from __future__ import annotations

import hashlib
import hmac


def user_hash(secret: str, user_id: str) -> str:
    """What the site's backend computes for a logged-in user: hex HMAC-SHA256 of the user id."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def valid_user_hash(secret: str, user_id: str | None, given: object) -> bool:
    """Whether `given` signs `user_id` with `secret` (False without a secret, a user id or a hash)."""
    if not secret or not user_id or not isinstance(given, str) or len(given) > 128:
        return False
    return hmac.compare_digest(user_hash(secret, user_id), given.lower())
