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
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.appointment_types.models import AppointmentType
from appointments.background import stop_if_cancelled
from appointments.busy import writeback
from appointments.clients.models import Client
from appointments.clock import Clock
from appointments.db import UTCDateTime, transaction
from appointments.notifications import mail
from appointments.notifications.dispatch import dispatch
from appointments.notifications.metrics import DELIVERIES, LAG, QUEUE
from appointments.notifications.models import Channel, Delivery, DeliveryStatus, WebhookEndpoint
from appointments.notifications.payload import body_of
from appointments.notifications.senders import WebhookSender
from appointments.notifications.webhook import send_webhook
from appointments.providers.models import Provider
from appointments.scheduling import rules as core
from appointments.scheduling import wakeup
from appointments.scheduling.events import Event
from appointments.scheduling.models import Reservation, ReservationStatus, Series
from appointments.settings import Settings

logger = logging.getLogger(__name__)

# Events dispatched per round; deliveries claimed per round is the worker's concurrency,
# so every claimed attempt starts sending at once and its lease measures only the send.
BATCH = 500
CONCURRENCY = 64
# At most this many of the slots go to one endpoint: a receiver that hangs until the
# timeout leaves the rest to everyone else.
PER_ENDPOINT = 16
# After some attempts end, wait this much longer for others before recording.
RECORD_GATHER_SECONDS = 0.02
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
    # A reminder whose appointment was cancelled or moved since it was planned; a
    # calendar write with nothing to write.
    stale: bool
    # A calendar write: the booking as it stands when the attempt begins.
    write: writeback.Write | None = None

    @property
    def endpoint_id(self) -> uuid.UUID | None:
        return self.delivery.endpoint_id


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    skipped: bool = False
    # Trying again cannot help (the message cannot be built): failed at once.
    final: bool = False


_TABLE = cast(Table, Delivery.__table__)
_DELIVERIES = _TABLE.c

_DUE_SQL = """
SELECT id, endpoint_id FROM deliveries
 WHERE status = 'pending' AND next_attempt_at <= :now {busy}
 ORDER BY next_attempt_at LIMIT :scan {lock}
"""
_NOT_BUSY = "AND (endpoint_id IS NULL OR endpoint_id NOT IN :busy)"
# How many due rows a claim looks at per free slot, to find other endpoints' work
# behind one endpoint's backlog.
SCAN_FACTOR = 4


async def _claim(
    session: AsyncSession,
    now: datetime,
    lease: datetime,
    limit: int,
    in_flight: Counter[uuid.UUID | None],
    per_endpoint: int,
) -> tuple[list[uuid.UUID], bool]:
    """Begin up to `limit` due attempts, oldest first, each endpoint's in flight staying
    within `per_endpoint`: count the attempt and lease the delivery. Also says whether
    due attempts were left behind (for want of a slot or of the endpoint's share)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    busy = [key for key, count in in_flight.items() if key and count >= per_endpoint]
    sql = _DUE_SQL.format(
        lock="FOR UPDATE SKIP LOCKED" if postgres else "", busy=_NOT_BUSY if busy else ""
    )
    identifier = _DELIVERIES.id.type
    values: dict[str, object] = {"now": now, "scan": limit * SCAN_FACTOR}
    parameters = [bindparam("now", type_=UTCDateTime())]
    if busy:
        parameters.append(bindparam("busy", expanding=True, type_=identifier))
        values["busy"] = busy
    statement = text(sql).bindparams(*parameters).columns(id=identifier, endpoint_id=identifier)
    taken = Counter(in_flight)
    chosen: list[uuid.UUID] = []
    rows = (await session.execute(statement, values)).all()
    for row in rows:
        endpoint = row.endpoint_id
        # Mail has no endpoint and no share.
        if endpoint is None or taken[endpoint] < per_endpoint:
            taken[endpoint] += 1
            chosen.append(row.id)
            if len(chosen) == limit:
                break
    left_behind = len(rows) > len(chosen) or len(rows) == values["scan"]
    if chosen:
        await session.execute(
            update(_TABLE)
            .where(_DELIVERIES.id.in_(chosen))
            .values(attempts=_DELIVERIES.attempts + 1, next_attempt_at=lease)
            .execution_options(synchronize_session=False)
        )
    return chosen, left_behind


async def _jobs(
    session: AsyncSession, settings: Settings, ids: Sequence[uuid.UUID], now: datetime
) -> list[Job]:
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
        letter, stale, write = None, False, None
        if delivery.channel == Channel.EMAIL:
            letter, stale = await _letter(session, delivery, event, now)
        elif delivery.channel == Channel.CALENDAR:
            write = await _write(session, settings, delivery, event)
            stale = write is None
        jobs.append(Job(delivery, event, endpoint, letter, stale, write))
    return jobs


async def _write(
    session: AsyncSession, settings: Settings, delivery: Delivery, event: Event
) -> writeback.Write | None:
    if delivery.calendar_id is None or event.reservation_id is None:
        return None
    return await writeback.plan(session, settings, delivery.calendar_id, event.reservation_id)


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
    series = None
    if event.series_id is not None:
        zone = provider.timezone if provider else "UTC"
        series = await _series_of(session, event.series_id, zone)
    letter = mail.Letter(
        series=series,
        series_start=current.series_start if current is not None else None,
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


async def _series_of(
    session: AsyncSession, series_id: uuid.UUID, zone: str
) -> mail.SeriesOf | None:
    """The series' rule and the weeks whose occurrence is booked (confirmed, by the start
    the series gave it), for its invite."""
    series = await session.get(Series, series_id)
    if series is None:
        return None
    starts = (
        await session.scalars(
            select(Reservation.series_start).where(
                Reservation.series_id == series_id,
                Reservation.status == ReservationStatus.CONFIRMED,
            )
        )
    ).all()
    booked = set(starts)
    weeks = frozenset(
        k
        for k in range(series.count)
        if core.same_time_weeks_later(series.first_start, zone, k * series.interval_weeks) in booked
    )
    return mail.SeriesOf(series.id, series.first_start, series.interval_weeks, series.count, weeks)


async def _send(job: Job, settings: Settings, http: WebhookSender, now: datetime) -> Outcome:
    if job.stale:
        return Outcome(delivered=False, skipped=True)
    timeout = settings.webhook_timeout_seconds
    try:
        if job.letter is not None:
            try:
                message = mail.compose(job.letter, settings, now)
            except (ValueError, TypeError) as exc:
                error = f"the message cannot be built: {exc}"[:MAX_ERROR_LENGTH]
                return Outcome(delivered=False, error=error, final=True)
            await asyncio.wait_for(mail.send(message, settings, job.delivery.id), timeout)
            return Outcome(delivered=True)
        if job.write is not None:
            await asyncio.wait_for(writeback.send(settings, job.write), timeout)
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


async def _overtaken(session: AsyncSession, settings: Settings, job: Job) -> bool:
    """A calendar write whose booking no longer reads as what was written."""
    if job.write is None:
        return False
    now = await _write(session, settings, job.delivery, job.event)
    return now is not None and now != job.write


def next_delay(settings: Settings, attempts: int) -> float | None:
    """Seconds until the next try after `attempts` failed ones; None: give up."""
    schedule = settings.webhook_retry_seconds
    if attempts > len(schedule):
        return None
    # A little jitter, so receivers that failed together are not retried together.
    return schedule[attempts - 1] * random.uniform(0.9, 1.1)


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
    delay = None if outcome.final else next_delay(settings, delivery.attempts)
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
    # The dispatch batch was full: more events wait, so the next round starts at once.
    full: bool
    # Due attempts were left for want of a free slot or of their endpoint's share: the
    # next round starts as soon as an attempt ends.
    backlog: bool


Attempts = dict["asyncio.Task[Outcome]", Job]


class Deliverer:
    """One process's worker: `run_once` for a round, `run` to loop.

    `run` keeps up to `concurrency` attempts in flight and claims more as soon as some
    finish, so one slow receiver (an attempt may take the whole timeout) delays only
    its own deliveries; and no endpoint holds more than `per_endpoint` of the slots.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        *,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        # As many kept-alive connections per receiver as attempts at once: a round's
        # attempts reuse the last round's connections instead of reconnecting.
        self.http = WebhookSender(max_idle=concurrency)

    async def close(self) -> None:
        await self.http.close()

    async def _begin(self, attempts: Attempts) -> Round:
        """Dispatch new events, claim due deliveries for the free slots, start sending."""
        now = self.clock.now()
        # Twice the attempt's bound, and a little: another worker retries an attempt only
        # when the worker that began it has certainly died or given up on it.
        lease = now + timedelta(seconds=2 * self.settings.webhook_timeout_seconds + 5)
        free = self.concurrency - len(attempts)
        in_flight = Counter(job.endpoint_id for job in attempts.values())
        # One transaction: the deliveries just dispatched are claimed in the same round.
        async with transaction(self.sessionmaker, writes=True) as session:
            dispatched = await dispatch(session, self.settings, now, BATCH)
            ids, backlog = await _claim(session, now, lease, free, in_flight, self.per_endpoint)
            jobs = await _jobs(session, self.settings, ids, now) if ids else []
        for job in jobs:
            attempts[asyncio.create_task(_send(job, self.settings, self.http, now))] = job
        return Round(dispatched, len(jobs), dispatched >= BATCH, backlog)

    async def _record(self, finished: list["asyncio.Task[Outcome]"], attempts: Attempts) -> None:
        """Record the outcomes of finished attempts, in one transaction."""
        done = self.clock.now()
        ended = [(attempts.pop(task), task.result()) for task in finished]
        async with transaction(self.sessionmaker, writes=True) as session:
            values = []
            for job, outcome in ended:
                value = _record_values(job, outcome, self.settings, done)
                if outcome.delivered and await _overtaken(session, self.settings, job):
                    # The booking changed while it was being written: write it again
                    # (two writes of one booking may arrive in either order).
                    value |= {"new_status": DeliveryStatus.PENDING, "delivered": None}
                values.append(value)
            await session.execute(_RECORD, values)

    async def run_once(self) -> Round:
        """Dispatch new events and make due attempts, one batch of each, and wait for them."""
        attempts: Attempts = {}
        begun = await self._begin(attempts)
        if attempts:
            await asyncio.wait(attempts)
            await self._record(list(attempts), attempts)
        return begun

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
        """Deliver until cancelled. A round (dispatch, claim, start attempts) runs when
        slots are free and either the last round was full, the interval has passed,
        or this process committed new events (then after a short coalescing pause).
        Finished attempts are recorded as they end, a batch at a time. A failed round
        (database away) is logged and tried again after the interval."""
        wake = wakeup.listen()
        attempts: Attempts = {}
        counted = last_round = 0.0
        due, more, backlog = True, False, False
        try:
            while True:
                if due and len(attempts) < self.concurrency:
                    last_round = time.monotonic()
                    try:
                        begun = await self._begin(attempts)
                        more, backlog = begun.full, begun.backlog
                        if last_round - counted >= COUNT_EVERY_SECONDS:
                            await self.count_waiting()
                            counted = last_round
                    except Exception:
                        stop_if_cancelled()
                        more = backlog = False
                        logger.exception("delivery round failed; retrying in %ss", interval_seconds)
                woken = await self._wait(
                    wake,
                    attempts,
                    0 if more and len(attempts) < self.concurrency else interval_seconds,
                )
                finished = [task for task in attempts if task.done()]
                if finished:
                    try:
                        await self._record(finished, attempts)
                    except Exception:
                        stop_if_cancelled()
                        # Unrecorded attempts are made again when their lease runs out.
                        logger.exception("recording delivery outcomes failed")
                # A backlog is claimed again when an attempt has ended (a slot or a share
                # came free), not at once: that would spin on work it may not take.
                due = (
                    more
                    or woken
                    or (backlog and bool(finished))
                    or time.monotonic() - last_round >= interval_seconds
                )
        finally:
            for task in attempts:
                task.cancel()
            wakeup.forget(wake)

    @staticmethod
    async def _wait(wake: asyncio.Event, attempts: Attempts, timeout: float) -> bool:
        """Until an attempt ends, this process commits events, or the timeout; True
        when woken by a commit (after gathering what commits in the next moment)."""
        waker = asyncio.ensure_future(wake.wait())
        try:
            done, _ = await asyncio.wait(
                {waker, *attempts}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waker.cancel()
        if waker not in done:
            if done:
                # Let attempts that end together be recorded together.
                await asyncio.wait(attempts, timeout=RECORD_GATHER_SECONDS)
            return False
        await asyncio.sleep(COALESCE_SECONDS)
        wake.clear()
        return True
