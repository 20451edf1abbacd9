"""Credentials a process has checked against the database, trusted for a few seconds.

Hot endpoints (event collection, checkout) answer thousands of requests a second with the same
few keys; asking the database about the key on each costs more than some of the work itself.
A key's check is kept for `seconds`, so revoking it (or disabling an event source) takes effect
in every process within that time; the process that revokes forgets it at once. A failed check
is never kept."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

T = TypeVar("T")


class TrustCache(Generic[T]):
    def __init__(self, seconds: float, *, size: int = 10_000):
        self.seconds, self.size = seconds, size
        self._entries: dict[str, tuple[float, T]] = {}

    def get(self, key: str) -> T | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, value: T) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.seconds, value)

    def clear(self) -> None:
        self._entries.clear()
