"""Channel adapters: one folder per provider behind the inbox's adapter interface
(`seamline.inbox.adapters`). Each folder's `adapter.ADAPTER` is registered by the composition
root (`seamline.runtime.wire`), never by importing it."""

from __future__ import annotations

import importlib

from seamline.inbox.adapters import ChannelAdapter

#: Every channel, in the order the console lists them.
CHANNELS = ("webchat", "email", "telegram", "whatsapp", "vk", "viber", "sms", "webpush", "mobilepush", "telephony")


def adapters() -> list[ChannelAdapter]:
    """Every channel's adapter (imports each channel's `adapter` module)."""
    return [importlib.import_module(f"seamline.channels.{name}.adapter").ADAPTER for name in CHANNELS]
