"""Secrets in query strings never reach a log line (uvicorn logs a WebSocket's path with its query)."""

from __future__ import annotations

import logging

from seamline.core.logging import configure_logging, redact_secrets


def test_redact_secrets_in_query_strings():
    line = '127.0.0.1:5 - "WebSocket /v1/webchat/ws?token=wc_abc123&x=1" [accepted] /console/ws?key=sl_1_2 ?code=123456'
    redacted = redact_secrets(line)
    assert "wc_abc123" not in redacted and "sl_1_2" not in redacted and "123456" not in redacted
    assert "x=1" in redacted and "token=[redacted]" in redacted


def test_uvicorns_websocket_line_is_redacted(capsys):
    configure_logging("INFO", json=True)
    logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000",
                                            "/v1/inbox/ws?key=sl_abc_secretvalue")
    out = capsys.readouterr().out
    assert "secretvalue" not in out and "key=[redacted]" in out
