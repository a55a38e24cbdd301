"""The access line of each request, as the JSON log handler writes it.

Through `logging` the line cost ~12 us (a LogRecord, `extra` merged into it, the
formatter's dict and encoder, the handler's lock and flush): on the hot paths more
than any step of ours but the ETag, and on a confirm an eighth of the service's own
Python. When the JSON handler `configure_logging` installs is the only handler that
would see the line (no test capturing logs, no handler added by a host), the same
line (`logging.json_line`, the formatter's own) is written straight to its stream,
without a LogRecord. Otherwise the record goes through `logging` as any other.
"""

import logging
import time
from typing import Any

from appointments.observability.logging import json_line

logger = logging.getLogger("appointments.access")


def _only_json_handler() -> "logging.StreamHandler[Any] | None":
    """The JSON handler, when it is the one handler an INFO line of ours would reach."""
    if logger.disabled or logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    found: logging.StreamHandler[Any] | None = None
    node: logging.Logger | None = logger
    while node is not None:  # the walk `Logger.callHandlers` makes
        for handler in node.handlers:
            if (
                found is not None
                or not getattr(handler, "appointments_json", False)
                or not isinstance(handler, logging.StreamHandler)
                or handler.filters
                or handler.level > logging.INFO
            ):
                return None
            found = handler
        node = node.parent if node.propagate else None
    return found


def write(request_id: str, method: str, route: str, status: int, duration_ms: float) -> None:
    """Log one request: method, route template, status, duration (never its data)."""
    fields = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
    }
    handler = _only_json_handler()
    if handler is not None:
        line = json_line(time.time(), "info", logger.name, "request", fields)
        try:
            with handler.lock:  # type: ignore[union-attr]
                handler.stream.write(line + handler.terminator)
            handler.flush()
            return
        except Exception:  # a broken stream: logging reports it below
            pass
    logger.info("request", extra={"fields": fields})
