"""Who just changed: listeners told, inside the changing transaction, which profiles or identities
had a trait, a consent, a merge, an unmerge or an erasure (marketing re-evaluates their segments).

A listener is `listener(session, profile_ids=..., identity_ids=...)`; it runs in the transaction
of the change, so what it writes (a job) commits or rolls back with it. Registered once by the
composition root (`seamline.runtime.wire`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

Listener = Callable[..., None]
_listeners: list[Listener] = []


def on_changed(listener: Listener) -> None:
    if listener not in _listeners:  # registering again is a no-op
        _listeners.append(listener)


def changed(session: Session, *, profile_ids: Iterable[int] = (), identity_ids: Iterable[int] = ()) -> None:
    if not _listeners:
        return
    profiles, identities = sorted(set(profile_ids)), sorted(set(identity_ids))
    if profiles or identities:
        for listener in list(_listeners):
            listener(session, profile_ids=profiles, identity_ids=identities)
