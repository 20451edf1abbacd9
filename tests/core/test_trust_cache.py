"""Checked credentials are trusted for a few seconds, then asked again."""

from __future__ import annotations

import time

from seamline.core.trust_cache import TrustCache


def test_an_entry_is_trusted_until_its_time_runs_out():
    cache: TrustCache[str] = TrustCache(0.05)
    cache.put("key", "source")
    assert cache.get("key") == "source"
    assert cache.get("other") is None
    time.sleep(0.06)
    assert cache.get("key") is None


def test_a_full_cache_starts_again_and_clear_forgets_everything():
    cache: TrustCache[int] = TrustCache(60, size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)  # full: the old entries go
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, None, 3)
    cache.clear()
    assert cache.get("c") is None
