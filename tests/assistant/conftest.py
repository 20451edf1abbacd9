"""Each test starts with the bot's per-process caches empty (its database was emptied); the
commerce tests' small shop (two Moscow stores, a cream and a serum) is the bot's shop too."""

from __future__ import annotations

import pytest

from seamline.assistant import service as bot
from tests.commerce.conftest import shop  # noqa: F401 - the fixture


@pytest.fixture(autouse=True)
def fresh_bot_caches():
    bot.forget_catalog()
    bot.forget_edits()
    yield
    bot.forget_catalog()
    bot.forget_edits()
