"""The access line written straight to the JSON handler's stream is the line the
handler writes for the record, and goes through `logging` whenever anything else
would see it."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from appointments.observability import access_log
from appointments.observability.logging import JsonFormatter, request_id


@pytest.fixture
def json_only() -> Iterator[tuple[logging.StreamHandler[io.StringIO], logging.Logger]]:
    """The access logger with our JSON handler, not propagating to the root logger (where
    pytest's capture handlers sit; pytest 9 adds them to non-propagating loggers too
    when a test's call starts, so each test takes them off again with `_alone`)."""
    logger = logging.getLogger("appointments.access")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    handler.appointments_json = True  # type: ignore[attr-defined]
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield handler, logger
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def _alone(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.handlers = [handler]


def _without_time(line: str) -> list[tuple[str, object]]:
    return [(k, v) for k, v in json.loads(line).items() if k != "time"]


def _lines(handler: logging.StreamHandler[io.StringIO]) -> list[dict[str, object]]:
    return [json.loads(line) for line in handler.stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/providers/{provider_id}/availability"),
        ("OTHER-Ä", 'un"matched\\ é'),  # escapes as the encoder makes them
    ],
)
def test_the_direct_line_is_the_formatter_s(
    json_only: tuple[logging.StreamHandler[io.StringIO], logging.Logger],
    method: str,
    route: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, logger = json_only
    _alone(logger, handler)
    token = request_id.set("req-9")
    try:
        with monkeypatch.context() as patched:  # no LogRecord on the direct way
            patched.setattr(logger, "info", lambda *_, **__: pytest.fail("went through logging"))
            access_log.write("req-9", method, route, 201, 1.25)
        handler.appointments_json = False  # type: ignore[attr-defined]
        access_log.write("req-9", method, route, 201, 1.25)  # through logging
    finally:
        request_id.reset(token)
    direct, formatted = handler.stream.getvalue().splitlines()
    # The whole line, key order included; only the moment differs.
    assert _without_time(direct) == _without_time(formatted)
    assert list(json.loads(direct)) == [
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
    ]
    entries = _lines(handler)
    assert entries[0]["route"] == route
    assert entries[0]["method"] == method
    assert entries[0]["status"] == 201


def test_a_second_handler_gets_the_record(
    json_only: tuple[logging.StreamHandler[io.StringIO], logging.Logger],
) -> None:
    handler, logger = json_only
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    other = Collect()
    _alone(logger, handler)
    logger.addHandler(other)
    access_log.write("req-1", "POST", "/clients", 201, 0.5)
    logger.removeHandler(other)
    assert [r.fields["route"] for r in seen] == ["/clients"]  # type: ignore[attr-defined]
    assert _lines(handler)[0]["request_id"] == "req-1"


def test_nothing_is_written_when_the_level_is_above_info(
    json_only: tuple[logging.StreamHandler[io.StringIO], logging.Logger],
) -> None:
    handler, logger = json_only
    _alone(logger, handler)
    logger.setLevel(logging.WARNING)
    access_log.write("req-2", "GET", "/healthz", 200, 0.1)
    assert handler.stream.getvalue() == ""
