"""Queries on slots. Every statement is scoped by provider or by slot id."""

import json
import os
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, TextClause, and_, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.availability.models import Slot, SlotRecord, SlotStatus
from appointments.availability.schemas import SlotFilter
from appointments.booking.models import ReservationSlot
from appointments.pagination import PageRequest
from appointments.scheduling import rules


def is_free(now: datetime) -> TextClause:
    """The slot is free at `now` (`scheduling.rules.slot_free`), as an ORM condition."""
    return rules.where(rules.slot_free("slots"), now)


@dataclass(frozen=True)
class ClaimedSlot:
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime


async def get(session: AsyncSession, slot_id: uuid.UUID) -> Slot | None:
    """The slot, unless it does not exist or was removed by its provider."""
    slot = await session.get(Slot, slot_id)
    return None if slot is None or slot.status == SlotStatus.REMOVED else slot


_INSERT_SLOTS = {
    # One statement whatever the window size: the rows travel as arrays (PostgreSQL)
    # or one JSON document (SQLite), so there is one round trip and one cached plan.
    "postgresql": """
        INSERT INTO slots (id, provider_id, start_time, end_time, status)
        SELECT gen_random_uuid(), :provider_id, new.start_time, new.end_time, 'available'
        FROM unnest(CAST(:starts AS timestamptz[]),
                    CAST(:ends AS timestamptz[])) AS new (start_time, end_time)
        ON CONFLICT (provider_id, start_time) DO UPDATE
            SET status = 'available', hold_expires_at = NULL
            WHERE slots.status = 'removed'
        RETURNING id, provider_id, start_time, end_time, status, hold_expires_at
    """,
    "sqlite": """
        INSERT INTO slots (id, provider_id, start_time, end_time, status)
        SELECT json_extract(value, '$[0]'), :provider_id, json_extract(value, '$[1]'),
               json_extract(value, '$[2]'), 'available'
        FROM json_each(:rows) WHERE true
        ON CONFLICT (provider_id, start_time) DO UPDATE
            SET status = 'available', hold_expires_at = NULL
            WHERE slots.status = 'removed'
        RETURNING id, provider_id, start_time, end_time, status, hold_expires_at
    """,
}


def _random_ids(count: int) -> list[uuid.UUID]:
    """`count` version-4 UUIDs from one read of the OS's randomness (uuid4() reads once
    per id)."""
    noise = os.urandom(16 * count)
    return [uuid.UUID(bytes=noise[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


def _sqlite_time(moment: datetime) -> str:
    # The text form UTCDateTime stores on SQLite, so comparisons stay textual.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def insert_missing_slots(
    session: AsyncSession, provider_id: uuid.UUID, starts: Sequence[datetime], length: timedelta
) -> list[SlotRecord]:
    """Insert a slot at each start unless the provider has one there; return the new ones.

    Set-based: one INSERT ... SELECT ... ON CONFLICT, so a repeated or overlapping
    window is idempotent, even when two arrive at once. A slot the provider had
    removed comes back (and counts as created); any other existing slot is left
    exactly as it is.
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
    )
    if dialect == "postgresql":
        # Ids made by the database (gen_random_uuid): 3,000 uuid4() calls cost more
        # in Python than the whole INSERT does in PostgreSQL.
        params: dict[str, object] = {
            "provider_id": provider_id,
            "starts": list(starts),
            "ends": [start + length for start in starts],
        }
    else:
        rows = [
            [ident.hex, _sqlite_time(start), _sqlite_time(start + length)]
            for ident, start in zip(_random_ids(len(starts)), starts, strict=True)
        ]
        params = {"provider_id": provider_id.hex, "rows": json.dumps(rows)}
    result = await session.execute(statement, params)
    # Plain rows, not ORM objects: thousands of them are built ten times faster.
    created: list[SlotRecord] = list(result.all())
    created.sort(key=lambda slot: slot.start_time)
    return created


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
        query = query.where(bookable, is_free(now))
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


async def claim_slot_if_free(
    session: AsyncSession,
    slot_id: uuid.UUID,
    now: datetime,
    hold_expires_at: datetime,
    *,
    starting_after: datetime,
) -> ClaimedSlot | None:
    """Mark the slot reserved if, and only if, it is free at `now` and starts after
    `starting_after`; return what the reservation needs to know of it.

    One conditional UPDATE: of any number of concurrent callers, exactly one sees
    the row match (the others wait on the row lock, re-check, and get None).
    """
    result = await session.execute(
        update(Slot)
        .where(
            Slot.id == slot_id,
            rules.where(rules.starts_bookable("slots"), bookable_after=starting_after),
            is_free(now),
        )
        .values(status=SlotStatus.RESERVED, hold_expires_at=hold_expires_at)
        .returning(Slot.provider_id, Slot.start_time, Slot.end_time)
    )
    row = result.one_or_none()
    return None if row is None else ClaimedSlot(*row)


async def mark_confirmed(session: AsyncSession, reservation_id: uuid.UUID) -> None:
    """Every slot the reservation occupies (buffers included) becomes confirmed."""
    occupied = select(ReservationSlot.slot_id).where(
        ReservationSlot.reservation_id == reservation_id
    )
    await session.execute(
        update(Slot)
        .where(Slot.id.in_(occupied))
        .values(status=SlotStatus.CONFIRMED, hold_expires_at=None)
        .execution_options(synchronize_session=False)
    )


async def lock_free_span(
    session: AsyncSession,
    provider_id: uuid.UUID,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    occupied_by: uuid.UUID | None = None,
) -> Sequence[uuid.UUID]:
    """Lock the provider's slots in [start, end) that are free at `now` (or occupied by
    reservation `occupied_by`, which is moving); return their ids in start order.

    Rows are locked in start order, so two claims of overlapping spans queue up
    instead of deadlocking; a row that a rival changed while we waited is
    re-checked and left out. Fewer ids than the span has slots means it cannot be had.
    """
    usable: ColumnElement[bool] | TextClause = is_free(now)
    if occupied_by is not None:
        own = select(ReservationSlot.slot_id).where(ReservationSlot.reservation_id == occupied_by)
        usable = or_(usable, and_(Slot.status != SlotStatus.REMOVED, Slot.id.in_(own)))
    query = (
        select(Slot.id)
        .where(
            Slot.provider_id == provider_id,
            Slot.start_time >= start,
            Slot.start_time < end,
            usable,
        )
        .order_by(Slot.start_time)
        .with_for_update(key_share=True)
    )
    return (await session.scalars(query)).all()


async def occupy(
    session: AsyncSession, slot_ids: Sequence[uuid.UUID], hold_expires_at: datetime | None
) -> None:
    """Mark these (locked) slots held until `hold_expires_at`, or confirmed when None:
    one statement for every slot of an appointment and its buffers."""
    if not slot_ids:
        return
    status = SlotStatus.CONFIRMED if hold_expires_at is None else SlotStatus.RESERVED
    await session.execute(
        update(Slot)
        .where(Slot.id.in_(slot_ids))
        .values(status=status, hold_expires_at=hold_expires_at)
        .execution_options(synchronize_session=False)
    )


async def release(
    session: AsyncSession, slot_ids: Sequence[uuid.UUID], *, remove: bool = False
) -> None:
    """Make these slots available again, or withdraw them (their reservations were
    ended by the caller). Removed slots stay removed."""
    if slot_ids:
        status = SlotStatus.REMOVED if remove else SlotStatus.AVAILABLE
        await session.execute(
            update(Slot)
            .where(Slot.id.in_(slot_ids), Slot.status != SlotStatus.REMOVED)
            .values(status=status, hold_expires_at=None)
            .execution_options(synchronize_session=False)
        )


async def remove_slots(
    session: AsyncSession,
    provider_id: uuid.UUID,
    start_from: datetime,
    start_before: datetime,
    now: datetime,
    *,
    keep_starts: Collection[datetime] = (),
    only_free: bool = True,
) -> int:
    """Withdraw the provider's slots starting in [start_from, start_before), except
    those starting at `keep_starts`: the free ones, or every one (`only_free=False`,
    once the bookings on them are being cancelled or moved).

    A conditional UPDATE: a reserve racing with us either claimed its slot first
    (the slot is not free, so it stays and shows up as a conflict) or waits for
    our row lock and then finds the slot gone.
    """
    statement = update(Slot).where(
        Slot.provider_id == provider_id,
        Slot.start_time >= start_from,
        Slot.start_time < start_before,
        is_free(now) if only_free else Slot.status != SlotStatus.REMOVED,
    )
    if keep_starts:
        statement = statement.where(Slot.start_time.not_in(list(keep_starts)))
    result = await session.execute(
        statement.values(status=SlotStatus.REMOVED, hold_expires_at=None).execution_options(
            synchronize_session=False
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def release_stale_holds(session: AsyncSession, now: datetime) -> int:
    """Persist every run-out hold as available; one set-based UPDATE."""
    result = await session.execute(
        update(Slot)
        .where(rules.where(rules.slot_hold_ran_out("slots"), now))
        .values(status=SlotStatus.AVAILABLE, hold_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_free_slots(session: AsyncSession, provider_id: uuid.UUID, now: datetime) -> None:
    """Delete the provider's slots that no live booking needs (free ones and past ones)."""
    await session.execute(
        delete(Slot)
        .where(Slot.provider_id == provider_id, or_(is_free(now), Slot.start_time <= now))
        .execution_options(synchronize_session=False)
    )
