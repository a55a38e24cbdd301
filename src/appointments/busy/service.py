"""The provider's other calendars: connect, read (sync), list what they conflict with.

A sync reads the feed outside any transaction (the network is never inside one, nor on
a booking's path), then in one transaction under the calendar's row lock replaces its
busy time and rewrites the `busy` flag of the provider's slots it changes
(`scheduling.slots.mark_busy`): a claim checks that flag in its own statement, so busy
time and bookings meet in the database. An unchanged feed (the same busy time, by
hash) writes no busy row again. A feed that cannot be read keeps the busy time it
had (fail closed), says `error` and why, tells the provider once by webhook
(`calendar.sync_failed`, on the change from readable to not), and is read again at the
next round: it recovers by itself.
"""

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.background import every
from appointments.busy import fetch, ical, secrets, sources
from appointments.busy.errors import CalendarNotAllowed
from appointments.busy.models import BusyInterval, Calendar, CalendarKind, CalendarStatus
from appointments.clock import Clock
from appointments.db import RowLock, transaction
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.pagination import PageRequest
from appointments.providers import service as providers
from appointments.providers.models import Provider
from appointments.scheduling import holds, outbox, slots
from appointments.scheduling.models import Reservation
from appointments.settings import Settings

logger = logging.getLogger(__name__)

# How far ahead busy time is read: the furthest bookable day of any type (730).
HORIZON = timedelta(days=731)


def _far(now: datetime) -> datetime:
    return now + HORIZON


@dataclass(frozen=True)
class Connection:
    """How to reach a calendar, as the provider gives it (the API's body, the page's
    form). No password on a change keeps the stored one."""

    kind: CalendarKind
    url: str
    username: str | None = None
    password: str | None = None
    write_bookings: bool = False


async def _check(settings: Settings, connection: Connection) -> None:
    if connection.write_bookings and connection.kind is not CalendarKind.CALDAV:
        raise CalendarNotAllowed(
            "write_bookings needs a CalDAV calendar; an iCal feed is read-only"
        )
    if not connection.url.startswith(("https://", "http://")):
        raise CalendarNotAllowed("the calendar's url must be http or https")
    try:
        await fetch.check_address(settings, connection.url)
    except fetch.FetchError as exc:
        raise CalendarNotAllowed(str(exc)) from None


async def add(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    connection: Connection,
    now: datetime,
) -> Calendar:
    """Connect a calendar; it is read right after (status `pending` until then)."""
    provider = await providers.get_provider(session, provider_id, lock=RowLock.KEEP)
    await _check(settings, connection)
    password = connection.password
    calendar = Calendar(
        id=uuid.uuid4(),
        provider_id=provider.id,
        kind=connection.kind,
        url=connection.url,
        username=connection.username,
        password_secret=None if password is None else secrets.seal(settings, password),
        write_bookings=connection.write_bookings,
        backfill_due=connection.write_bookings,
        status=CalendarStatus.PENDING,
        busy_count=0,
        sync_due_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(calendar)
    await session.flush()
    return calendar


async def get(
    session: AsyncSession, provider_id: str, calendar_id: str, lock: RowLock | None = None
) -> Calendar:
    """The provider's calendar or NotFound, its row locked as `lock` says."""
    provider = await providers.get_provider(session, provider_id)
    flags = None if lock is None else lock.options
    found = await session.get(
        Calendar, parse_id(calendar_id, "calendar"), populate_existing=True, with_for_update=flags
    )
    if found is None or found.provider_id != provider.id:
        raise NotFound(f"calendar {calendar_id!r} does not exist")
    return found


async def page(session: AsyncSession, provider_id: str, request: PageRequest) -> Sequence[Calendar]:
    provider = await providers.get_provider(session, provider_id)
    query = select(Calendar).where(Calendar.provider_id == provider.id)
    if request.after is not None:
        at, last = request.after.at, request.after.id
        query = query.where(
            Calendar.created_at >= at, or_(Calendar.created_at > at, Calendar.id > last)
        )
    query = query.order_by(Calendar.created_at, Calendar.id).limit(request.limit + 1)
    return (await session.scalars(query)).all()


async def replace(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    calendar_id: str,
    connection: Connection,
    now: datetime,
) -> Calendar:
    """New address or options (a password left out is kept); read again soon."""
    found = await get(session, provider_id, calendar_id, RowLock.EDIT)
    await _check(settings, connection)
    url, write_bookings = connection.url, connection.write_bookings
    if url != found.url:
        found.content_hash = None  # another feed: its busy time is rewritten whole
    # Bookings are written to a calendar that newly takes them (or to its new address),
    # the ones made before included.
    found.backfill_due = write_bookings and (not found.write_bookings or url != found.url)
    found.kind, found.url, found.username = connection.kind, url, connection.username
    found.write_bookings = write_bookings
    if connection.password is not None:
        found.password_secret = secrets.seal(settings, connection.password)
    found.sync_due_at, found.updated_at = now, now
    await session.flush()
    return found


async def remove(session: AsyncSession, provider_id: str, calendar_id: str, now: datetime) -> None:
    """Disconnect: its busy time goes, and the slots it alone covered are bookable again."""
    found = await get(session, provider_id, calendar_id, RowLock.EDIT)
    provider = found.provider_id
    await session.delete(found)
    await session.flush()
    await slots.mark_busy(session, provider, now, _far(now))


async def due_now(session: AsyncSession, calendar_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(Calendar).where(Calendar.id == calendar_id).values(sync_due_at=now)
    )


async def conflicts(
    session: AsyncSession, provider_id: str, calendar_id: str, now: datetime, request: PageRequest
) -> Sequence[Reservation]:
    """Live bookings of the provider that this calendar's busy time overlaps (kept:
    a calendar never cancels a booking; the provider decides), by start."""
    found = await get(session, provider_id, calendar_id)
    overlapping = select(BusyInterval.id).where(
        BusyInterval.calendar_id == found.id,
        BusyInterval.start_time < Reservation.occupied_end,
        BusyInterval.end_time > Reservation.occupied_start,
    )
    query = select(Reservation).where(
        Reservation.provider_id == found.provider_id,
        Reservation.occupied_end > now,
        holds.is_live(now),
        overlapping.exists(),
    )
    if request.after is not None:
        at, last = request.after.at, request.after.id
        query = query.where(
            Reservation.start_time >= at, or_(Reservation.start_time > at, Reservation.id > last)
        )
    query = query.order_by(Reservation.start_time, Reservation.id).limit(request.limit + 1)
    return (await session.scalars(query)).all()


# --- reading a calendar ------------------------------------------------------------


def _digest(found: Sequence[ical.Busy]) -> str:
    text = "\n".join(f"{b.start.isoformat()}/{b.end.isoformat()}" for b in found)
    return hashlib.sha256(text.encode()).hexdigest()


async def sync(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    calendar_id: uuid.UUID,
    now: datetime,
) -> None:
    """Read the calendar now and write what it says (see the module's docstring)."""
    async with transaction(sessionmaker, writes=False) as session:
        row = (
            await session.execute(
                select(Calendar, Provider.timezone)
                .join(Provider, Provider.id == Calendar.provider_id)
                .where(Calendar.id == calendar_id)
            )
        ).one_or_none()
        if row is None:
            return
        calendar, zone = row
    login = secrets.credentials(settings, calendar)
    error = login.problem
    found: list[ical.Busy] = []
    if error is None:
        try:
            source = sources.source(settings, calendar.kind, calendar.url, login.auth)
            texts = await source.read(now, _far(now))
            found = ical.busy_times(texts, ZoneInfo(zone), now, _far(now))
        except (fetch.FetchError, ical.FeedError) as exc:
            error = str(exc)[:1000]
        except Exception as exc:  # anything else a foreign address or feed can cause
            logger.warning("calendar %s could not be read", calendar_id, exc_info=True)
            error = f"the feed could not be read: {type(exc).__name__}"
    async with transaction(sessionmaker, writes=True) as session:
        locked = await session.scalar(
            select(Calendar).where(Calendar.id == calendar_id).with_for_update()
        )
        if locked is None:
            return  # disconnected meanwhile
        next_due = now + timedelta(seconds=settings.calendar_sync_seconds or 300)
        locked.sync_due_at, locked.updated_at = next_due, now
        if error is not None:
            if locked.status != CalendarStatus.ERROR:  # told once, not at every round
                await outbox.record_calendar_failed(
                    session, locked.provider_id, locked.id, error, now
                )
            locked.status, locked.last_error = CalendarStatus.ERROR, error
            return
        digest = _digest(found)
        if digest != locked.content_hash:
            await session.execute(delete(BusyInterval).where(BusyInterval.calendar_id == locked.id))
            if found:
                await session.execute(
                    insert(BusyInterval),
                    [
                        {
                            "id": uuid.uuid4(),
                            "calendar_id": locked.id,
                            "provider_id": locked.provider_id,
                            "start_time": busy.start,
                            "end_time": busy.end,
                        }
                        for busy in found
                    ],
                )
            await slots.mark_busy(session, locked.provider_id, now, _far(now))
            locked.content_hash, locked.busy_count = digest, len(found)
        locked.status, locked.last_error, locked.last_synced_at = CalendarStatus.OK, None, now


async def take_due(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, limit: int = 20
) -> list[uuid.UUID]:
    """Calendars due for a read, leased to this process (their next read pushed a few
    minutes on, under SKIP LOCKED): several processes never read one twice at once."""
    async with transaction(sessionmaker, writes=True) as session:
        query = (
            select(Calendar.id)
            .where(Calendar.sync_due_at <= now)
            .order_by(Calendar.sync_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        due = list((await session.scalars(query)).all())
        if due:
            await _lease(session, due, now)
        return due


async def _lease(session: AsyncSession, due: list[uuid.UUID], now: datetime) -> None:
    """Push the next read of the calendars taken a few minutes on (this process reads
    them now; should it die, they are due again then)."""
    await session.execute(
        update(Calendar).where(Calendar.id.in_(due)).values(sync_due_at=now + timedelta(minutes=5))
    )


async def run_reader(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
    interval_seconds: float,
) -> None:
    """Read every calendar that is due, forever (each process takes its own lease),
    looking for due ones at least every minute (`background.every`)."""

    async def step() -> None:
        for calendar_id in await take_due(sessionmaker, clock.now()):
            await sync(sessionmaker, settings, calendar_id, clock.now())

    await every(min(interval_seconds, 60), step, "calendar reads", logger)
