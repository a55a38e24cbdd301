"""Prometheus metrics: request latency by route, booking outcomes, sweeps, the pool.

With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to an empty directory
shared by them and /metrics aggregates every worker (prometheus-client's
multiprocess mode); without it each worker reports its own numbers.
"""

import functools
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from appointments import connections

REQUEST_SECONDS = Histogram(
    "appointments_request_duration_seconds",
    "HTTP request latency by route template, method and status class.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RESERVATIONS = Counter(
    "appointments_reservations_total",
    "Booking outcomes: held, confirmed, cancelled, expired, or refused with its reason.",
    ["outcome"],
)
SWEEPS = Counter("appointments_sweeps_total", "Expiry sweeps run (sweeper, CLI or admin).")
SCHEDULE_SLOTS = Counter(
    "appointments_schedule_slots_total",
    "Slots the standing schedules published or removed, by what did it: the roll (loop, "
    "CLI or CronJob) or a change (schedule, override, time off).",
    ["action", "trigger"],
)
ROLLS = Counter("appointments_schedule_rolls_total", "Rolls run over every standing schedule.")
SWEPT = Counter("appointments_swept_holds_total", "Holds marked expired by sweeps.")
POOL_IN_USE = Gauge(
    "appointments_db_pool_in_use",
    "Database connections in use in this process's pools (sessions and autocommitted statements).",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "appointments_db_pool_size",
    "Connections this process's pools keep: SQLAlchemy's pool size plus the statement "
    "pool's open connections.",
    multiprocess_mode="livesum",
)


@functools.cache
def labelled(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, found once per label set: labels() takes a lock and a
    lookup on every call, and these run on every request. Label sets are bounded
    (routes, known methods, outcomes), so the cache is too."""
    return metric.labels(*values)


def count_outcome(outcome: str, amount: int = 1) -> None:
    labelled(RESERVATIONS, outcome).inc(amount)


def record_refusal(code: str) -> None:
    count_outcome(f"refused_{code}")


def sample_pool(engine: AsyncEngine) -> None:
    """The process's connections to the database: sessions and statements alike."""
    shared = connections.of(engine)
    if shared is not None:
        POOL_IN_USE.set(shared.pool.in_use)
        POOL_SIZE.set(shared.pool.open_connections)
        return
    pool = engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", None)
    pool_size = getattr(pool, "size", None)
    if callable(checked_out) and callable(pool_size):
        POOL_IN_USE.set(checked_out())
        POOL_SIZE.set(pool_size())


def render(engine: AsyncEngine) -> tuple[bytes, str]:
    """The exposition text for a scrape."""
    sample_pool(engine)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
