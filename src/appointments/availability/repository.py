"""Queries on slots. Every statement is scoped by provider or by slot id."""

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.availability.schemas import SlotFilter
from appointments.db import sqlite_time
from appointments.pagination import PageRequest
from appointments.scheduling import rules, slots
from appointments.scheduling.models import Slot, SlotRecord, SlotSource, SlotStatus

_INSERT_SLOTS = {
    # One statement whatever the window size: the rows travel as arrays (PostgreSQL)
    # or one JSON document (SQLite), so there is one round trip and one cached plan.
    "postgresql": """
        INSERT INTO slots (id, provider_id, start_time, end_time, status, source)
        SELECT gen_random_uuid(), :provider_id, new.start_time, new.end_time, 'available',
               :source
        FROM unnest(CAST(:starts AS timestamptz[]),
                    CAST(:ends AS timestamptz[])) AS new (start_time, end_time)
        ON CONFLICT (provider_id, start_time) DO UPDATE
            SET status = 'available', hold_expires_at = NULL, source = excluded.source
            WHERE slots.status = 'removed'
        RETURNING id, provider_id, start_time, end_time, status, hold_expires_at, busy
    """,
    "sqlite": """
        INSERT INTO slots (id, provider_id, start_time, end_time, status, source)
        SELECT json_extract(value, '$[0]'), :provider_id, json_extract(value, '$[1]'),
               json_extract(value, '$[2]'), 'available', :source
        FROM json_each(:rows) WHERE true
        ON CONFLICT (provider_id, start_time) DO UPDATE
            SET status = 'available', hold_expires_at = NULL, source = excluded.source
            WHERE slots.status = 'removed'
        RETURNING id, provider_id, start_time, end_time, status, hold_expires_at, busy
    """,
}


def _random_ids(count: int) -> list[uuid.UUID]:
    """`count` version-4 UUIDs from one read of the OS's randomness (uuid4() reads once
    per id)."""
    noise = os.urandom(16 * count)
    return [uuid.UUID(bytes=noise[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


async def insert_missing_slots(
    session: AsyncSession,
    provider_id: uuid.UUID,
    starts: Sequence[datetime],
    length: timedelta,
    source: SlotSource = SlotSource.WINDOW,
) -> list[SlotRecord]:
    """Insert a slot at each start unless the provider has one there; return the new ones.

    Set-based: one INSERT ... SELECT ... ON CONFLICT, so a repeated or overlapping
    window is idempotent, even when two arrive at once. A slot the provider had
    removed comes back (and counts as created, now `source`'s); any other existing
    slot is left exactly as it is.
    """
    if not starts:
        return []
    dialect = session.get_bind().dialect.name
    columns = Slot.__table__.c
    statement = text(_INSERT_SLOTS[dialect]).columns(
        columns.id,
        columns.provider_id,
        columns.start_time,
        columns.end_time,
        columns.status,
        columns.hold_expires_at,
        columns.busy,
    )
    if dialect == "postgresql":
        # Ids made by the database (gen_random_uuid): 3,000 uuid4() calls cost more
        # in Python than the whole INSERT does in PostgreSQL.
        params: dict[str, object] = {
            "provider_id": provider_id,
            "starts": list(starts),
            "ends": [start + length for start in starts],
            "source": source.value,
        }
    else:
        rows = [
            [ident.hex, sqlite_time(start), sqlite_time(start + length)]
            for ident, start in zip(_random_ids(len(starts)), starts, strict=True)
        ]
        params = {"provider_id": provider_id.hex, "rows": json.dumps(rows), "source": source.value}
    result = await session.execute(statement, params)
    # Plain rows, not ORM objects: thousands of them are built ten times faster.
    created: list[SlotRecord] = list(result.all())
    created.sort(key=lambda slot: slot.start_time)
    if created and await slots.has_busy_time(session, provider_id):
        # New slots under the provider's other calendars' busy time are busy.
        await slots.mark_busy(
            session, provider_id, created[0].start_time, created[-1].start_time + length
        )
        busy = await _busy_among(session, [slot.id for slot in created])
        created = [NewSlot.of(slot, slot.id in busy) for slot in created]
    return created


@dataclass
class NewSlot:
    """A slot just created, with its busy flag as written after the insert."""

    id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: str
    hold_expires_at: datetime | None
    busy: bool

    @classmethod
    def of(cls, slot: SlotRecord, busy: bool) -> "NewSlot":
        return cls(
            slot.id,
            slot.provider_id,
            slot.start_time,
            slot.end_time,
            slot.status,
            slot.hold_expires_at,
            busy,
        )


async def _busy_among(session: AsyncSession, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for i in range(0, len(ids), slots.WITHDRAW_CHUNK):
        chunk = list(ids[i : i + slots.WITHDRAW_CHUNK])
        rows = await session.scalars(select(Slot.id).where(Slot.id.in_(chunk), Slot.busy))
        found.update(rows.all())
    return found


async def page(
    session: AsyncSession,
    provider_id: uuid.UUID,
    *,
    status: SlotFilter,
    start_from: datetime | None,
    start_before: datetime | None,
    bookable_after: datetime,
    now: datetime,
    request: PageRequest,
) -> Sequence[Slot]:
    """Slots of one provider ordered by (start_time, id), one extra row for look-ahead.

    Served by the unique index on (provider_id, start_time).
    """
    query = select(Slot).where(Slot.provider_id == provider_id)
    if start_from is not None:
        query = query.where(Slot.start_time >= start_from)
    if start_before is not None:
        query = query.where(Slot.start_time < start_before)
    if status is SlotFilter.AVAILABLE:
        bookable = rules.where(rules.starts_bookable("slots"), bookable_after=bookable_after)
        query = query.where(bookable, slots.is_open(now))
    elif status is SlotFilter.RESERVED:
        query = query.where(rules.where(rules.slot_held("slots"), now))
    elif status is SlotFilter.CONFIRMED:
        query = query.where(Slot.status == SlotStatus.CONFIRMED)
    else:
        query = query.where(Slot.status != SlotStatus.REMOVED)
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(Slot.start_time >= at, or_(Slot.start_time > at, Slot.id > last_id))
    query = query.order_by(Slot.start_time, Slot.id).limit(request.limit + 1)
    return (await session.scalars(query)).all()


async def remove_slots(
    session: AsyncSession, withdrawn: slots.Withdrawn, now: datetime, *, only_free: bool = True
) -> int:
    """Withdraw the slots `withdrawn` picks: the free ones, or every one
    (`only_free=False`, once the bookings on them are being cancelled or moved).

    A conditional UPDATE: a reserve racing with us either claimed its slot first
    (the slot is not free, so it stays and shows up as a conflict) or waits for
    our row lock and then finds the slot gone.
    """
    statement = update(Slot).where(
        *withdrawn.where(),
        slots.is_free(now) if only_free else Slot.status != SlotStatus.REMOVED,
    )
    result = await session.execute(
        statement.values(status=SlotStatus.REMOVED, hold_expires_at=None).execution_options(
            synchronize_session=False
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def adopt_slots(
    session: AsyncSession, provider_id: uuid.UUID, starts: Sequence[datetime]
) -> None:
    """The provider's schedule-published slots at `starts` become the window's: published
    explicitly as well, they stay when the schedule changes."""
    for i in range(0, len(starts), slots.WITHDRAW_CHUNK):
        chunk = list(starts[i : i + slots.WITHDRAW_CHUNK])
        await session.execute(
            update(Slot)
            .where(
                Slot.provider_id == provider_id,
                Slot.source == SlotSource.SCHEDULE,
                Slot.start_time.in_(chunk),
            )
            .values(source=SlotSource.WINDOW)
            .execution_options(synchronize_session=False)
        )


async def live_starts_of(
    session: AsyncSession,
    provider_id: uuid.UUID,
    source: SlotSource,
    start_from: datetime,
    start_before: datetime | None = None,
) -> set[datetime]:
    """Start times of the provider's slots (not withdrawn) that `source` published,
    from `start_from` on (and before `start_before`)."""
    query = select(Slot.start_time).where(
        Slot.provider_id == provider_id,
        Slot.start_time >= start_from,
        Slot.source == source,
        Slot.status != SlotStatus.REMOVED,
    )
    if start_before is not None:
        query = query.where(Slot.start_time < start_before)
    return set((await session.scalars(query)).all())


async def published_between(
    session: AsyncSession, provider_id: uuid.UUID, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """(start, end) of the provider's slots in [start, end), free or booked, by start."""
    rows = await session.execute(
        select(Slot.start_time, Slot.end_time)
        .where(
            Slot.provider_id == provider_id,
            Slot.start_time >= start,
            Slot.start_time < end,
            Slot.status != SlotStatus.REMOVED,
        )
        .order_by(Slot.start_time)
    )
    return [(row[0], row[1]) for row in rows.all()]
