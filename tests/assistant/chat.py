"""Customers writing to the bot in the web chat (the site's widget API), for tests of what the
business reads and changes about the bot."""

from __future__ import annotations

from datetime import timedelta

from seamline.assistant import service as bot
from seamline.core.time import utcnow


def webchat(client, write_key: str, visitor: str, *texts: str) -> list[str]:  # noqa: ANN001
    """A visitor opens the chat and writes `texts`; every message of the chat, oldest first."""
    opened = client.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": visitor})
    assert opened.status_code == 201, opened.text
    token = {"Authorization": f"Bearer {opened.json()['token']}"}
    for text in texts:
        sent = client.post("/v1/webchat/messages", json={"text": text}, headers=token)
        assert sent.status_code == 201, sent.text
    return [m.get("text") for m in client.get("/v1/webchat/messages", headers=token).json()["items"]]


def an_hour_later(client) -> int:  # noqa: ANN001
    """The bot's periodic work an hour on: the conversations only it answered are resolved by it."""
    state = client.app.state
    return state.database.run_write(lambda s: bot.close_idle(s, settings=state.settings, now=utcnow() + timedelta(hours=1)))
