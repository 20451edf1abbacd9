"""Secrets in query strings never reach a log line (uvicorn logs a WebSocket's path with its query); JSON
lines for a collector, short readable lines for a person."""

from __future__ import annotations

import io
import logging
import re

from seamline.core.logging import configure_logging, get_logger, redact_secrets, wants_json


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


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_json_logs_unless_a_person_reads_them():
    assert wants_json(True, demo=True, stream=_Stream(tty=True)) is True  # SEAMLINE_LOG_JSON decides when set
    assert wants_json(False, stream=_Stream(tty=False)) is False
    assert wants_json(None, stream=_Stream(tty=False)) is True  # a server's stdout goes to a collector
    assert wants_json(None, stream=_Stream(tty=True)) is False  # a terminal
    assert wants_json(None, demo=True, stream=_Stream(tty=False)) is False  # the demo, even piped


def test_readable_lines(capsys):
    try:
        configure_logging("INFO", json=False)
        log = get_logger("seamline.http")
        log.info("request", method="GET", path="/shop/", route="/shop/", status=200, duration_ms=12.5, request_id="abc")
        log.warning("delivery failed", destination=7, reason="connection refused")
        logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8000")
        lines = capsys.readouterr().out.splitlines()
    finally:
        configure_logging("INFO", json=True)
    assert re.fullmatch(r"\d\d:\d\d:\d\d GET /shop/ 200 12\.5 ms", lines[0]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING delivery failed  destination=7 reason='connection refused'", lines[1])
    assert re.fullmatch(r"\d\d:\d\d:\d\d Uvicorn running on http://127\.0\.0\.1:8000", lines[2])
    assert not any(line.startswith("{") for line in lines)
