"""Each test starts with the bot's per-process caches empty (its database was emptied)."""

from __future__ import annotations

import pytest

from seamline.assistant import service as bot


@pytest.fixture(autouse=True)
def fresh_bot_caches():
    bot.forget_catalog()
    bot.forget_edits()
    yield
    bot.forget_catalog()
    bot.forget_edits()
