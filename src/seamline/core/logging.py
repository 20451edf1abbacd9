"""Logs on stdout: one JSON object per line for a log collector, or short readable lines for a
person at a terminal or running the demo (`wants_json` decides when SEAMLINE_LOG_JSON is unset)."""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime
from typing import Any, TextIO

import structlog

#: Query parameters that carry secrets (API keys, chat and console tokens, login codes): their
#: values never reach a log line, e.g. uvicorn's `"WebSocket /v1/webchat/ws?token=..." [accepted]`.
_SECRET_PARAM = re.compile(r"(?i)([?&](?:key|token|api_key|apikey|writekey|write_key|secret|code|password)=)[^&\s\"']*")


def redact_secrets(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """Replaces secret query parameters in a standard-library record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def wants_json(setting: bool | None, *, demo: bool = False, stream: TextIO | None = None) -> bool:
    """JSON lines when SEAMLINE_LOG_JSON says so; unset, JSON unless this is the demo or stdout is
    a terminal: a server's logs go to a collector, a person reads the demo's and a terminal's."""
    if setting is not None:
        return setting
    stream = stream if stream is not None else sys.stdout
    try:
        at_terminal = stream.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        at_terminal = False
    return not (demo or at_terminal)


class ReadableRenderer:
    """One short line per entry for a person: local time, the level unless info, the message and
    its values; a request as `12:03:04 GET /shop/ 200 12.5 ms`."""

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> str:
        stamp = event.pop("timestamp", None)
        try:
            when = datetime.fromisoformat(stamp).astimezone().strftime("%H:%M:%S") if stamp else ""
        except (TypeError, ValueError):
            when = str(stamp)
        level = str(event.pop("level", "info"))
        message = str(event.pop("event", ""))
        problem = event.pop("exception", None)
        if message == "request" and {"method", "path", "status"} <= event.keys():
            line = f"{when} {event['method']} {event['path']} {event['status']}"
            if "duration_ms" in event:
                line += f" {event['duration_ms']} ms"
        else:
            values = " ".join(f"{key}={_readable(value)}" for key, value in event.items())
            prefix = "" if level in ("info", "debug") else f"{level.upper()} "
            line = f"{when} {prefix}{message}" + (f"  {values}" if values else "")
        return f"{line}\n{problem}" if problem else line


def _readable(value: Any) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = structlog.processors.JSONRenderer() if json else ReadableRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    # Route the standard library's loggers (uvicorn, alembic) through the same renderer.
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own Config (log_level=..., log_config=...) may have set these before us.
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers[:] = []
        stdlib_logger.propagate = True
        stdlib_logger.disabled = False
        stdlib_logger.setLevel(logging.NOTSET)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # our middleware logs requests


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
