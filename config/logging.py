"""The log lines of every process: what the current request or task is about, and nothing secret.

Settings' LOGGING puts `LogContextFilter` on the console handler and picks one of the two
formatters with LOG_FORMAT:

- `PlainFormatter` (`make run`, tests): `2026-11-20 12:00:01,123 INFO payments.x renewed
  [request_id=3f2a... subscription_id=...]`, the fields at the end of the first line;
- `JsonFormatter` (production): one JSON object per line, `timestamp` (UTC, ISO 8601), `level`,
  `logger`, `message`, the known fields of `core.log_context.FIELDS`, any `extra=` the call
  passed, and `exc_info` with the traceback.

Both scrub everything they write (the message with its arguments, the traceback, the extras)
with core.scrubbing, so neither a key nor a card number that an exception message or a careless
format argument carried reaches the log collector. The record itself is left as it was logged:
other handlers (pytest's capture, the demo's mail line) see what the code wrote.
"""

import logging
from datetime import date, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from core.log_context import FIELDS, log_context_fields
from core.scrubbing import scrub_data, scrub_text

# The first keys of a JSON line, in this order; the rest follow as the record has them.
JSON_LEADING_KEYS = ("timestamp", "level", "logger", "message", *FIELDS)


class LogContextFilter(logging.Filter):
    """Put the current request's or task's fields (core/log_context.py) on each record.

    On the handler, so it sees the records of every logger that propagates to it. A field the
    call passed itself (`extra={"payment_id": ...}`) wins over the context's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    """One line of text per record, the context's fields in brackets at its end, scrubbed."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None))
        return f"{line} [{fields}]" if fields else line

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))


def _json_safe(value: Any) -> Any:
    """Return `value` as JSON's types, other objects as their text (which is then scrubbed too)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class JsonFormatter(_JsonFormatter):
    """One JSON object per line (python-json-logger), scrubbed, with the usual keys first."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
            **kwargs,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        data = scrub_data(_json_safe(log_data))
        leading = {key: data.pop(key) for key in JSON_LEADING_KEYS if key in data}
        return {**leading, **data}
