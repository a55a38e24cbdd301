"""Structured JSON logs, one object per line, carrying the request id.

Only technical facts are logged (route, status, duration, ids): never names,
emails or phone numbers, which live in request bodies we do not log.
"""

import contextvars
import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


# One encoder for every line: json.dumps(..., default=str) would build a new one each time.
_ENCODER = json.JSONEncoder(default=str)


def json_line(
    created: float,
    level: str,
    name: str,
    message: str,
    fields: Mapping[str, Any],
    exception: str | None = None,
) -> str:
    """The one JSON line of a log entry: the formatter's, and the access log's when it
    writes straight to the handler's stream."""
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(created, UTC).isoformat(),
        "level": level,
        "logger": name,
        "message": message,
    }
    current = request_id.get()
    if current:
        entry["request_id"] = current
    entry.update(fields)
    if exception is not None:
        entry["exception"] = exception
    return _ENCODER.encode(entry)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return json_line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            getattr(record, "fields", {}),
            exception,
        )


def configure_logging(level: str = "INFO") -> None:
    """Route the service's and uvicorn's logs through the JSON formatter on stderr.

    Idempotent, and leaves other handlers (a test runner's, say) in place.
    """
    root = logging.getLogger()
    root.setLevel(level)
    # The JSON lines use none of these, and gathering them costs every record (the
    # caller's file and line are found by walking the stack): the Logging HOWTO's
    # "Optimization" section names these switches.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if not any(getattr(h, "appointments_json", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.appointments_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Our own access log (with route template and request id) replaces uvicorn's.
    logging.getLogger("uvicorn.access").disabled = True
    # A line per webhook attempt at INFO; the deliveries table keeps each outcome.
    logging.getLogger("httpx").setLevel(logging.WARNING)
