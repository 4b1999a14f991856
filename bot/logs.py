"""Logging for the service: one line per record, readable text or JSON, with context.

* `COMPLAINTDESK_LOG_FORMAT=json` gives one JSON object a line (python-json-logger) for a log
  shipper; the default is a readable line. Either way the timestamp carries its zone.
* `log_context(request="…", update="telegram:123")` binds ids for everything logged inside it
  (contextvars, so concurrent requests keep their own); the text format appends them as
  `[request=… update=…]`, the JSON format as keys.
* python-telegram-bot logs a polling round that hit a 502 or a time-out (which it retries) at
  ERROR with a traceback; `QuietPlatformRetries` turns those into one WARNING line.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

_CONTEXT: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "complaintdesk_log_context", default=MappingProxyType({})
)
CONTEXT_KEYS = ("request", "update", "job")
# Platform errors the libraries retry themselves: worth a line, not a traceback.
# Libraries that log per request or per statement: held at WARNING (or the level, if higher).
NOISY_LOGGERS = ("aiohttp.access", "tortoise", "apscheduler", "httpx", "asyncio", "aiosqlite")
_RETRIED_ERRORS = frozenset({"NetworkError", "TimedOut", "BadGateway", "RetryAfter"})


@contextlib.contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Bind `fields` (request, update, job) to every record logged inside the block."""
    merged = {**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_context() -> dict[str, str]:
    return dict(_CONTEXT.get())


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (`record.request`, …, and `record.context`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _CONTEXT.get()
        for key in CONTEXT_KEYS:
            if not hasattr(record, key):
                setattr(record, key, context.get(key))
        record.context = " ".join(f"{k}={v}" for k, v in context.items())
        return True


class QuietPlatformRetries(logging.Filter):
    """A retried platform network error from python-telegram-bot: WARNING, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("telegram") or not record.exc_info:
            return True
        error = record.exc_info[1]
        if error is None or not any(
            cls.__name__ in _RETRIED_ERRORS and cls.__module__.startswith("telegram")
            for cls in type(error).__mro__
        ):
            return True
        record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.levelno = logging.WARNING
        record.levelname = "WARNING"
        return True


class TextFormatter(logging.Formatter):
    """`2026-12-01T09:30:00.123+08:00 INFO name: message [request=… update=…]`."""

    def __init__(self, tz: ZoneInfo) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.tz).isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "context", "")
        if context:
            first, newline, rest = line.partition("\n")
            line = f"{first} [{context}]{newline}{rest}"
        return line


def json_formatter(tz: ZoneInfo) -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class ZonedJsonFormatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
            return datetime.fromtimestamp(record.created, tz).isoformat(timespec="milliseconds")

        def add_fields(
            self, log_data: dict[str, Any], record: logging.LogRecord, message: dict[str, Any]
        ) -> None:
            super().add_fields(log_data, record, message)
            log_data.pop("context", None)
            for key in CONTEXT_KEYS:
                if log_data.get(key) is None:
                    log_data.pop(key, None)

    return ZonedJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s "
        + " ".join(f"%({k})s" for k in CONTEXT_KEYS),
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )


def setup_logging(
    *, level: str = "INFO", format: str = "text", tz: ZoneInfo | None = None, stream: Any = None
) -> logging.Handler:
    """Configure the root logger once for a service process; returns the handler it installed.

    Chatty libraries are held at WARNING: aiohttp's access log (one line per request), Tortoise's
    connection messages, APScheduler's own "Running job" lines (our jobs log their result),
    aiosqlite's line per statement (which at DEBUG buried the empty sweeps DEBUG is for).
    """
    zone = tz or ZoneInfo("UTC")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter(zone) if format == "json" else TextFormatter(zone))
    handler.addFilter(ContextFilter())
    handler.addFilter(QuietPlatformRetries())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_complaintdesk", False):
            root.removeHandler(old)
    handler._complaintdesk = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
