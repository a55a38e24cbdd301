"""Statements on slots that every domain composes: claim, occupy, confirm, release.

Each is scoped by provider or by slot id, and built from `scheduling.rules`.
Publishing and listing a provider's slots are availability's (`availability.repository`).
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    TextClause,
    Uuid,
    and_,
    bindparam,
    delete,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.db import UTCDateTime
from appointments.scheduling import rules
from appointments.scheduling.models import ReservationSlot, Slot, SlotStatus


def is_free(now: datetime) -> TextClause:
    """No booking holds the slot at `now` (`scheduling.rules.slot_free`): withdrawable."""
    return rules.where(rules.slot_free("slots"), now)


def is_open(now: datetime) -> TextClause:
    """A new booking may take the slot at `now` (`scheduling.rules.slot_open`)."""
    return rules.where(rules.slot_open("slots"), now)


@dataclass(frozen=True)
class Withdrawn:
    """Which of a provider's slots an edit withdraws: those starting in [start_from,
    start_before) but not at `keep_starts` (an availability edit), or exactly those at
    `only_starts` (a schedule's republish, a time off)."""

    provider_id: uuid.UUID
    start_from: datetime
    start_before: datetime
    keep_starts: Collection[datetime] = ()
    only_starts: Collection[datetime] | None = None

    @classmethod
    def at(cls, provider_id: uuid.UUID, starts: Sequence[datetime]) -> list["Withdrawn"]:
        """The slots at `starts` (sorted), in chunks of at most WITHDRAW_CHUNK (each
        start is one bound parameter of the statements)."""
        return [
            cls(provider_id, chunk[0], chunk[-1] + _JUST_AFTER, only_starts=chunk)
            for chunk in (
                starts[i : i + WITHDRAW_CHUNK] for i in range(0, len(starts), WITHDRAW_CHUNK)
            )
        ]

    def where(self) -> list[ColumnElement[bool]]:
        criteria = [
            Slot.provider_id == self.provider_id,
            Slot.start_time >= self.start_from,
            Slot.start_time < self.start_before,
        ]
        if self.keep_starts:
            criteria.append(Slot.start_time.not_in(list(self.keep_starts)))
        if self.only_starts is not None:
            criteria.append(Slot.start_time.in_(list(self.only_starts)))
        return criteria


# Below both drivers' limits on bound parameters (32,767 for asyncpg, 32,766 SQLite's).
WITHDRAW_CHUNK = 10_000
_JUST_AFTER = timedelta(microseconds=1)


@dataclass(frozen=True)
class ClaimedSlot:
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime


async def get(session: AsyncSession, slot_id: uuid.UUID) -> Slot | None:
    """The slot, unless it does not exist or was removed by its provider."""
    slot = await session.get(Slot, slot_id)
    return None if slot is None or slot.status == SlotStatus.REMOVED else slot


async def still_there(session: AsyncSession, slot_id: uuid.UUID) -> bool:
    """Whether the slot exists and is not removed, read afresh (not from the session's
    objects): after a refusal, to tell a slot taken from one deleted meanwhile."""
    query = select(Slot.id).where(Slot.id == slot_id, Slot.status != SlotStatus.REMOVED)
    return (await session.execute(query)).first() is not None


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
            is_open(now),
        )
        .values(status=SlotStatus.RESERVED, hold_expires_at=hold_expires_at)
        .returning(Slot.provider_id, Slot.start_time, Slot.end_time)
    )
    row = result.one_or_none()
    return None if row is None else ClaimedSlot(*row)


async def mark_confirmed(session: AsyncSession, reservation_id: uuid.UUID) -> None:
    """Every slot the reservation occupies (buffers included) becomes confirmed."""
    await mark_confirmed_many(session, [reservation_id])


async def mark_confirmed_many(session: AsyncSession, reservation_ids: Sequence[uuid.UUID]) -> None:
    """Every slot these reservations occupy becomes confirmed: one statement."""
    occupied = select(ReservationSlot.slot_id).where(
        ReservationSlot.reservation_id.in_(list(reservation_ids))
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
    usable: ColumnElement[bool] | TextClause = is_open(now)
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


async def lock_free_spans(
    session: AsyncSession,
    provider_id: uuid.UUID,
    ranges: Sequence[tuple[datetime, datetime]],
    now: datetime,
) -> list[list[uuid.UUID]]:
    """`lock_free_span` for several disjoint ranges in one statement (rows locked in
    start order all the same): the free slots' ids of each range, in start order."""
    within = or_(*(and_(Slot.start_time >= start, Slot.start_time < end) for start, end in ranges))
    query = (
        select(Slot.id, Slot.start_time)
        .where(Slot.provider_id == provider_id, within, is_open(now))
        .order_by(Slot.start_time)
        .with_for_update(key_share=True)
    )
    found: list[list[uuid.UUID]] = [[] for _ in ranges]
    for slot_id, start_time in (await session.execute(query)).all():
        for index, (start, end) in enumerate(ranges):
            if start <= start_time < end:
                found[index].append(slot_id)
                break
    return found


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


# Busy time over a slot: an interval of the provider's other calendars overlapping it.
# The slots hit are found from the intervals (few) into the slots (many) by the index
# on provider and start: on PostgreSQL a LATERAL subquery that cannot be flattened
# (OFFSET 0) forces that direction, each interval a range scan of the slots starting
# in (its start - 1 day, its end), a slot being at most a day long.
_HIT = {
    "postgresql": """
    SELECT DISTINCT s.id FROM busy_intervals AS b
     CROSS JOIN LATERAL (
        SELECT id FROM slots
         WHERE provider_id = :provider_id
           AND start_time > b.start_time - interval '1 day' AND start_time < b.end_time
           AND end_time > b.start_time
           AND start_time >= :start_from AND start_time < :start_before
        OFFSET 0
     ) AS s
     WHERE b.provider_id = :provider_id
       AND b.end_time > :start_from AND b.start_time < :start_before
    """,
    "sqlite": """
    SELECT DISTINCT s.id FROM busy_intervals AS b
      JOIN slots AS s
        ON s.provider_id = b.provider_id
       AND s.start_time < b.end_time AND s.end_time > b.start_time
       AND s.start_time >= :start_from AND s.start_time < :start_before
     WHERE b.provider_id = :provider_id
       AND b.end_time > :start_from AND b.start_time < :start_before
    """,
}


async def mark_busy(
    session: AsyncSession, provider_id: uuid.UUID, start_from: datetime, start_before: datetime
) -> None:
    """Write `busy` on the provider's slots starting in the range as its calendars' busy
    time (`busy_intervals`) now says: set where an interval overlaps, cleared where none
    does, writing only the slots whose flag changes.

    The two sets are read, compared here and written by primary key: the intervals
    were typically just written and their statistics are stale, and the one-statement
    forms (an anti-join, `busy <> (id IN hits)`) were planned as a re-scan of the hits
    per slot when the estimates were off: 10 to 29 s for 5,000 intervals, against
    0.2 s this way."""
    binds: list[BindParameter[Any]] = [
        bindparam("provider_id", type_=Uuid()),
        bindparam("start_from", type_=UTCDateTime()),
        bindparam("start_before", type_=UTCDateTime()),
    ]
    values = {"provider_id": provider_id, "start_from": start_from, "start_before": start_before}
    hits_sql = text(_HIT[session.get_bind().dialect.name]).bindparams(*binds)
    hits = set((await session.scalars(hits_sql.columns(id=Uuid()), values)).all())
    marked = await session.scalars(
        select(Slot.id).where(
            Slot.provider_id == provider_id,
            Slot.start_time >= start_from,
            Slot.start_time < start_before,
            Slot.busy,
        )
    )
    busy_now = set(marked.all())
    for ids, busy in ((sorted(hits - busy_now), True), (sorted(busy_now - hits), False)):
        for i in range(0, len(ids), WITHDRAW_CHUNK):
            await session.execute(
                update(Slot)
                .where(Slot.id.in_(ids[i : i + WITHDRAW_CHUNK]))
                .values(busy=busy)
                .execution_options(synchronize_session=False)
            )


async def has_busy_time(session: AsyncSession, provider_id: uuid.UUID) -> bool:
    """Whether any calendar of the provider holds busy time (else no slot is busy)."""
    query = text(
        "SELECT EXISTS (SELECT 1 FROM busy_intervals WHERE provider_id = :provider_id)"
    ).bindparams(bindparam("provider_id", type_=Uuid()))
    return bool(await session.scalar(query, {"provider_id": provider_id}))
