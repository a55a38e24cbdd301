"""Writing events: always inside the transaction that makes the change.

Each event is a snapshot of the reservation copied by `INSERT ... SELECT` from the
reservations table after the change, so any number of reservations is recorded
with one set-based statement, on both databases. New ids come from
`gen_random_uuid()` (built into PostgreSQL; registered on every SQLite connection).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, TextClause, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.db import UTCDateTime
from appointments.scheduling import wakeup
from appointments.scheduling.events import Event, EventType
from appointments.scheduling.models import Reservation

# Events table columns filled from a reservation, in the order of `_snapshot`.
_SNAPSHOT_COLUMNS = (
    "id",
    "type",
    "occurred_at",
    "provider_id",
    "reservation_id",
    "slot_id",
    "client_id",
    "appointment_type_id",
    "status",
    "start_time",
    "end_time",
    "reservation_created_at",
    "expires_at",
    "confirmed_at",
    "cancelled_at",
    "revision",
    "series_id",
    "session_id",
    "seats",
    "previous_start",
    "previous_end",
)

# Keeps each IN list far below both databases' bound-parameter limits.
_CHUNK = 5000


def _snapshot(
    event_type: EventType, now: datetime, previous: tuple[datetime, datetime] | None
) -> Select[tuple[object, ...]]:
    previous_start, previous_end = previous if previous is not None else (None, None)
    return select(
        func.gen_random_uuid(type_=Event.__table__.c.id.type),
        literal(str(event_type)),
        literal(now, UTCDateTime()),
        Reservation.provider_id,
        Reservation.id,
        Reservation.slot_id,
        Reservation.client_id,
        Reservation.appointment_type_id,
        Reservation.status,
        Reservation.start_time,
        Reservation.end_time,
        Reservation.created_at,
        Reservation.expires_at,
        Reservation.confirmed_at,
        Reservation.cancelled_at,
        Reservation.revision,
        Reservation.series_id,
        Reservation.session_id,
        Reservation.seats,
        literal(previous_start, UTCDateTime()),
        literal(previous_end, UTCDateTime()),
    )


async def record(
    session: AsyncSession,
    event_type: EventType,
    reservation_ids: Sequence[uuid.UUID],
    now: datetime,
    *,
    previous: tuple[datetime, datetime] | None = None,
) -> None:
    """Write one event per reservation, as each reservation stands now (after the change)."""
    if reservation_ids:
        wakeup.mark(session)
    for start in range(0, len(reservation_ids), _CHUNK):
        chunk = reservation_ids[start : start + _CHUNK]
        query = _snapshot(event_type, now, previous).where(Reservation.id.in_(chunk))
        await session.execute(insert(Event).from_select(list(_SNAPSHOT_COLUMNS), query))


async def record_where(
    session: AsyncSession,
    event_type: EventType,
    which: ColumnElement[bool] | TextClause,
    now: datetime,
    *,
    status: str,
) -> None:
    """Write one event per reservation matching `which`, as it will stand once the caller's
    next statement gives it `status`. Only where writers are serialised (SQLite): between
    this and that statement, nothing else may change the rows."""
    wakeup.mark(session)
    query = _snapshot(event_type, now, None).where(which)
    statuses = {"status": literal(status)}
    query = query.with_only_columns(
        *(
            statuses.get(name, column)
            for name, column in zip(_SNAPSHOT_COLUMNS, query.selected_columns, strict=True)
        )
    )
    await session.execute(insert(Event).from_select(list(_SNAPSHOT_COLUMNS), query))


async def record_ping(
    session: AsyncSession, endpoint_id: uuid.UUID, provider_id: uuid.UUID | None, now: datetime
) -> uuid.UUID:
    event_id = uuid.uuid4()
    wakeup.mark(session)
    session.add(
        Event(
            id=event_id,
            type=EventType.PING,
            occurred_at=now,
            provider_id=provider_id,
            endpoint_id=endpoint_id,
        )
    )
    await session.flush()
    return event_id


async def record_calendar_failed(
    session: AsyncSession,
    provider_id: uuid.UUID,
    calendar_id: uuid.UUID,
    detail: str,
    now: datetime,
) -> None:
    """`calendar.sync_failed`: a provider's other calendar could not be read."""
    wakeup.mark(session)
    session.add(
        Event(
            id=uuid.uuid4(),
            type=EventType.CALENDAR_SYNC_FAILED,
            occurred_at=now,
            provider_id=provider_id,
            calendar_id=calendar_id,
            detail=detail,
        )
    )
    await session.flush()


def insert_from_sql(source: str, event_type: EventType, now_param: str = ":now") -> str:
    """`INSERT INTO events ... SELECT` from rows shaped like `reservations` named `source`,
    for PostgreSQL statements that record inside a data-modifying CTE."""
    columns = ", ".join(_SNAPSHOT_COLUMNS)
    return (
        f"INSERT INTO events ({columns}) "
        f"SELECT gen_random_uuid(), '{event_type}', {now_param}, r.provider_id, r.id, "
        "r.slot_id, r.client_id, r.appointment_type_id, r.status, r.start_time, r.end_time, "
        "r.created_at, r.expires_at, r.confirmed_at, r.cancelled_at, r.revision, r.series_id, "
        "r.session_id, r.seats, NULL, NULL "
        f"FROM {source} AS r"
    )
