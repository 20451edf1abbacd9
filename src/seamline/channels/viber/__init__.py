"""Viber: a bot's webhook in, the REST bot API out (`inbox_viber_*` settings)."""
