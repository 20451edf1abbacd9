"""Telegram: a bot's webhook in, the Bot API out (`inbox_telegram_*` settings)."""
