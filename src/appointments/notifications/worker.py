"""The delivery worker: dispatch new events, claim due deliveries, send, record outcomes.

A claim is one short transaction that begins an attempt: it counts the attempt and
pushes `next_attempt_at` past the attempt's timeout (a lease). On PostgreSQL the
rows are picked with `FOR UPDATE SKIP LOCKED`, so workers in any number of
processes never begin the same attempt; on SQLite writers are serialised anyway.
Sending happens outside any transaction. The outcome is recorded only if the
delivery still carries the attempt number this worker began; a worker that died
mid-send leaves its deliveries due again when the lease runs out (at least once).
"""

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.appointment_types.models import AppointmentType
from appointments.booking.models import Reservation, ReservationStatus
from appointments.clients.models import Client
from appointments.clock import Clock
from appointments.db import UTCDateTime, transaction
from appointments.notifications import mail, wakeup
from appointments.notifications.dispatch import dispatch
from appointments.notifications.http1 import Pool
from appointments.notifications.metrics import DELIVERIES, LAG, QUEUE
from appointments.notifications.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Event,
    WebhookEndpoint,
)
from appointments.notifications.payload import body_of
from appointments.notifications.webhook import send_webhook
from appointments.providers.models import Provider
from appointments.settings import Settings

logger = logging.getLogger(__name__)

# Events dispatched per round; deliveries claimed per round is the worker's concurrency,
# so every claimed attempt starts sending at once and its lease measures only the send.
BATCH = 500
CONCURRENCY = 64
# After a wake-up, wait this long so one round takes the events of many requests.
COALESCE_SECONDS = 0.2
# The queue-depth gauge costs two counts; refreshed at most this often.
COUNT_EVERY_SECONDS = 5.0
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Job:
    delivery: Delivery
    event: Event
    endpoint: WebhookEndpoint | None
    letter: mail.Letter | None
    # A reminder whose appointment was cancelled or moved since it was planned.
    stale: bool


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    skipped: bool = False


_CLAIM_SQL = """
UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = :lease
 WHERE id IN (SELECT id FROM deliveries
               WHERE status = 'pending' AND next_attempt_at <= :now
               ORDER BY next_attempt_at LIMIT :limit {lock})
RETURNING id
"""


async def _claim(
    session: AsyncSession, now: datetime, lease: datetime, limit: int
) -> list[uuid.UUID]:
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = (
        text(_CLAIM_SQL.format(lock="FOR UPDATE SKIP LOCKED" if postgres else ""))
        .bindparams(
            bindparam("now", type_=UTCDateTime()),
            bindparam("lease", type_=UTCDateTime()),
        )
        .columns(id=Delivery.__table__.c.id.type)
    )
    result = await session.execute(statement, {"now": now, "lease": lease, "limit": limit})
    return [row.id for row in result]


async def _jobs(session: AsyncSession, ids: Sequence[uuid.UUID], now: datetime) -> list[Job]:
    rows = (
        await session.execute(
            select(Delivery, Event, WebhookEndpoint)
            .join(Event, Event.id == Delivery.event_id)
            .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
            .where(Delivery.id.in_(ids))
        )
    ).all()
    jobs: list[Job] = []
    for delivery, event, endpoint in rows:
        letter, stale = None, False
        if delivery.channel == Channel.EMAIL:
            letter, stale = await _letter(session, delivery, event, now)
        jobs.append(Job(delivery, event, endpoint, letter, stale))
    return jobs


async def _letter(
    session: AsyncSession, delivery: Delivery, event: Event, now: datetime
) -> tuple[mail.Letter | None, bool]:
    """What the message needs; (None, True) for a reminder that no longer applies."""
    current = await session.get(Reservation, event.reservation_id) if event.reservation_id else None
    if delivery.template == "reminder" and not (
        current is not None
        and current.status == ReservationStatus.CONFIRMED
        and current.revision == event.revision
        and current.start_time > now
    ):
        return None, True
    client = await session.get(Client, event.client_id) if event.client_id else None
    provider = await session.get(Provider, event.provider_id) if event.provider_id else None
    kind = (
        await session.get(AppointmentType, event.appointment_type_id)
        if event.appointment_type_id
        else None
    )
    letter = mail.Letter(
        delivery_id=delivery.id,
        template=str(delivery.template),
        recipient=str(delivery.recipient),
        event=event,
        client=mail.Party(client.name if client else "there", client.email if client else None),
        provider=mail.Party(
            provider.name if provider else "your provider",
            provider.email if provider else None,
            provider.timezone if provider else "UTC",
        ),
        type_name=kind.name if kind else None,
    )
    return letter, False


async def _send(job: Job, settings: Settings, http: Pool, now: datetime) -> Outcome:
    if job.stale:
        return Outcome(delivered=False, skipped=True)
    timeout = settings.webhook_timeout_seconds
    try:
        if job.letter is not None:
            message = mail.compose(job.letter, settings, now)
            await asyncio.wait_for(mail.send(message, settings, job.delivery.id), timeout)
            return Outcome(delivered=True)
        if job.endpoint is None:
            return Outcome(delivered=False, error="the endpoint was deleted")
        # The whole attempt is bounded, not only each network step.
        status = await asyncio.wait_for(
            send_webhook(
                http,
                settings,
                job.endpoint.url,
                job.endpoint.secret,
                str(job.event.id),
                body_of(job.event),
            ),
            timeout,
        )
    except TimeoutError:
        return Outcome(delivered=False, error=f"no answer within {timeout:g} s")
    except Exception as exc:  # every failure of one attempt is that attempt's outcome
        return Outcome(delivered=False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
    if 200 <= status < 300:
        return Outcome(delivered=True, status_code=status)
    return Outcome(delivered=False, status_code=status, error=f"answered HTTP {status}")


def next_delay(settings: Settings, attempts: int) -> float | None:
    """Seconds until the next try after `attempts` failed ones; None: give up."""
    schedule = settings.webhook_retry_seconds
    if attempts > len(schedule):
        return None
    # A little jitter, so receivers that failed together are not retried together.
    return schedule[attempts - 1] * random.uniform(0.9, 1.1)


_TABLE = cast(Table, Delivery.__table__)
_DELIVERIES = _TABLE.c
# Core, not ORM: one executemany of conditional updates for a whole round's outcomes.
_RECORD = (
    update(_TABLE)
    .where(
        and_(
            _DELIVERIES.id == bindparam("delivery_id"),
            _DELIVERIES.attempts == bindparam("attempt"),
            _DELIVERIES.status == DeliveryStatus.PENDING,
        )
    )
    .values(
        status=bindparam("new_status"),
        last_status_code=bindparam("code"),
        last_error=bindparam("error"),
        next_attempt_at=bindparam("next_at"),
        delivered_at=bindparam("delivered"),
    )
)


def _record_values(
    job: Job, outcome: Outcome, settings: Settings, now: datetime
) -> dict[str, object]:
    delivery = job.delivery
    values: dict[str, object] = {
        "delivery_id": delivery.id,
        "attempt": delivery.attempts,
        "code": outcome.status_code,
        "error": outcome.error,
        "next_at": now,
        "delivered": None,
    }
    channel = delivery.channel
    if outcome.skipped:
        DELIVERIES.labels(channel=channel, outcome="skipped").inc()
        return values | {"new_status": DeliveryStatus.SKIPPED, "error": "no longer applies"}
    if outcome.delivered:
        DELIVERIES.labels(channel=channel, outcome="delivered").inc()
        if delivery.template != "reminder":
            LAG.labels(channel=channel).observe(
                max(0.0, (now - job.event.occurred_at).total_seconds())
            )
        return values | {"new_status": DeliveryStatus.DELIVERED, "delivered": now}
    delay = next_delay(settings, delivery.attempts)
    if delay is None:
        DELIVERIES.labels(channel=channel, outcome="failed").inc()
        return values | {"new_status": DeliveryStatus.FAILED}
    DELIVERIES.labels(channel=channel, outcome="retry").inc()
    return values | {
        "new_status": DeliveryStatus.PENDING,
        "next_at": now + timedelta(seconds=delay),
    }


@dataclass(frozen=True)
class Round:
    dispatched: int
    attempted: int
    # A batch was full: more may be waiting, so the next round starts at once.
    full: bool


class Deliverer:
    """One process's worker: `run_once` for a round, `run` to loop."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        *,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.concurrency = concurrency
        # As many kept-alive connections per receiver as attempts at once: a round's
        # attempts reuse the last round's connections instead of reconnecting.
        self.http = Pool(max_idle=concurrency)

    async def close(self) -> None:
        await self.http.close()

    async def run_once(self) -> Round:
        """Dispatch new events and make due attempts, one batch of each."""
        now = self.clock.now()
        # Twice the attempt's bound, and a little: another worker retries an attempt only
        # when the worker that began it has certainly died or given up on it.
        lease = now + timedelta(seconds=2 * self.settings.webhook_timeout_seconds + 5)
        # One transaction: the deliveries just dispatched are claimed in the same round.
        async with transaction(self.sessionmaker, writes=True) as session:
            dispatched = await dispatch(session, self.settings, now, BATCH)
            ids = await _claim(session, now, lease, self.concurrency)
            jobs = await _jobs(session, ids, now) if ids else []
        if jobs:
            outcomes = await asyncio.gather(
                *(_send(job, self.settings, self.http, self.clock.now()) for job in jobs)
            )
            done = self.clock.now()
            async with transaction(self.sessionmaker, writes=True) as session:
                await session.execute(
                    _RECORD,
                    [
                        _record_values(job, outcome, self.settings, done)
                        for job, outcome in zip(jobs, outcomes, strict=True)
                    ],
                )
        return Round(dispatched, len(jobs), dispatched >= BATCH or len(jobs) >= self.concurrency)

    async def count_waiting(self) -> None:
        """Refresh the queue-depth gauge."""
        now = self.clock.now()
        async with transaction(self.sessionmaker, writes=False) as session:
            events = await session.scalar(
                select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))
            )
            due = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
            )
        QUEUE.labels(kind="events").set(events or 0)
        QUEUE.labels(kind="deliveries_due").set(due or 0)

    async def run(self, interval_seconds: float) -> None:
        """Deliver forever: at once again after a busy round, else after the interval or
        as soon as this process commits new events, whichever comes first. A failed
        round (database away) is logged and tried again next round."""
        wake = wakeup.listen()
        counted = 0.0
        try:
            while True:
                full = False
                try:
                    full = (await self.run_once()).full
                    if time.monotonic() - counted >= COUNT_EVERY_SECONDS:
                        await self.count_waiting()
                        counted = time.monotonic()
                except Exception:
                    logger.exception("delivery round failed; retrying in %ss", interval_seconds)
                if full:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), interval_seconds)
                # Gather what commits in the next moment into the same round.
                await asyncio.sleep(COALESCE_SECONDS)
                wake.clear()
        finally:
            wakeup.forget(wake)
