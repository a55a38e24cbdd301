"""Metrics of the outbox: events taken, deliveries by outcome, lag, and what is waiting."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "appointments_events_total",
    "Events taken from the outbox and turned into deliveries, by type.",
    ["type"],
)
DELIVERIES = Counter(
    "appointments_deliveries_total",
    "Delivery attempts by channel and outcome: delivered, retry (failed, will be tried "
    "again), failed (gave up), skipped (a reminder that no longer applied).",
    ["channel", "outcome"],
)
LAG = Histogram(
    "appointments_delivery_lag_seconds",
    "From the change's commit (its event) to the successful delivery, first tries and "
    "retries alike; reminders count from when they were due.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 7200, 86400),
)
QUEUE = Gauge(
    "appointments_outbox_pending",
    "What waits: undispatched events and pending deliveries that are due, as last counted "
    "by a delivery worker.",
    ["kind"],
    multiprocess_mode="mostrecent",
)
