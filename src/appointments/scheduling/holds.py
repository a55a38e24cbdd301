"""Statements on reservations (holds and bookings) that every domain composes: link and
unlink their slots, confirm, cancel, expire run-out holds, lock, sweep.

Lock order everywhere: reservation rows first, then slot rows. Booking's own reads
(an owner's lists, feeds, counts) are in `booking.repository`.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    TextClause,
    and_,
    bindparam,
    delete,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.types import Integer

from appointments.db import UTCDateTime
from appointments.scheduling import outbox, rules, seats, wakeup
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    GroupSession,
    Reservation,
    ReservationSlot,
    ReservationStatus,
    Slot,
)
from appointments.scheduling.slots import Withdrawn

# Any fixed 64-bit number: the key of PostgreSQL's advisory lock for sweeping.
_SWEEP_LOCK_KEY = 0x6170706F696E74


def is_live(now: datetime) -> TextClause:
    """Occupies its slots at `now` (`scheduling.rules.reservation_live`)."""
    return rules.where(rules.reservation_live("reservations"), now)


def ran_out(now: datetime) -> TextClause:
    """Still written down as held, but its hold had ended by `now`."""
    return rules.where(rules.hold_ran_out("reservations"), now)


async def count_live_holds(session: AsyncSession, client_id: uuid.UUID, now: datetime) -> int:
    """Holds of the client that have not run out (confirmed bookings do not count; a
    series counts once: `rules.live_hold_count`)."""
    query: Select[tuple[int]] = (
        select(literal_column(rules.live_hold_count("reservations"), Integer))
        .select_from(Reservation)
        .where(
            Reservation.client_id == client_id,
            rules.where(rules.hold_live("reservations"), now),
        )
    )
    return int((await session.scalar(query)) or 0)


async def expire_stale_hold_of_slot(
    session: AsyncSession, slot_id: uuid.UUID, now: datetime
) -> None:
    """Write down that the hold occupying the slot ran out, so another may take its place."""
    await _expire_run_out(session, Reservation.id.in_(_occupants(Slot.id == slot_id)), now)


async def expire_stale_holds_in_span(
    session: AsyncSession, provider_id: uuid.UUID, start: datetime, end: datetime, now: datetime
) -> None:
    """Write down every run-out hold occupying a slot of the provider in [start, end)."""
    await expire_stale_holds_in_spans(session, provider_id, [(start, end)], now)


async def expire_stale_holds_in_spans(
    session: AsyncSession,
    provider_id: uuid.UUID,
    ranges: Sequence[tuple[datetime, datetime]],
    now: datetime,
) -> None:
    """`expire_stale_holds_in_span` for several ranges, one statement."""
    occupying = _occupants(
        Slot.provider_id == provider_id,
        or_(*(and_(Slot.start_time >= start, Slot.start_time < end) for start, end in ranges)),
    )
    await _expire_run_out(session, Reservation.id.in_(occupying), now)


async def expire_run_out_seats_at(
    session: AsyncSession,
    provider_id: uuid.UUID,
    type_id: uuid.UUID,
    start: datetime | None,
    now: datetime,
) -> None:
    """Write down the run-out seats of the open session of the type at `start` (of every
    open session of the type starting after `now`, when None)."""
    starting = GroupSession.start_time > now if start is None else GroupSession.start_time == start
    open_sessions = select(GroupSession.id).where(
        *seats.open_of_type(provider_id, type_id, starting)
    )
    await _expire_run_out(session, Reservation.session_id.in_(open_sessions), now)


def _occupants(*slot_filter: ColumnElement[bool]) -> CompoundSelect[tuple[uuid.UUID | None]]:
    """Ids of the reservations occupying the slots `slot_filter` picks: those that
    occupy a slot themselves, and every seat of a group session that occupies one."""
    links = select(ReservationSlot).join(Slot, Slot.id == ReservationSlot.slot_id)
    links = links.where(*slot_filter)
    own = links.with_only_columns(ReservationSlot.reservation_id).where(
        ReservationSlot.reservation_id.is_not(None)
    )
    sessions = links.with_only_columns(ReservationSlot.session_id).where(
        ReservationSlot.session_id.is_not(None)
    )
    seats = select(_SEAT.id).where(_SEAT.session_id.in_(sessions))
    return union_all(own, seats)


# Made once: an alias builds a proxy of every column (~4 ms a call, measured in the
# series' profile), and it is the same alias every time.
_SEAT = aliased(Reservation)


def _holders(withdrawn: Withdrawn) -> CompoundSelect[tuple[uuid.UUID | None]]:
    """Reservations occupying a slot an edit withdraws."""
    return _occupants(*withdrawn.where())


async def _expire_run_out(session: AsyncSession, which: ColumnElement[bool], now: datetime) -> int:
    """Write down the run-out holds among `which` as expired (events, links, seats);
    return how many."""
    result = await session.scalars(
        update(Reservation)
        .where(which, ran_out(now))
        .values(status=ReservationStatus.EXPIRED)
        .returning(Reservation.id)
        .execution_options(synchronize_session=False)
    )
    expired = result.all()
    await outbox.record(session, EventType.EXPIRED, expired, now)
    # Their slots keep reading free by their run-out expiry until a claim or the sweep.
    await unlink(session, expired)
    return len(expired)


async def link(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    provider_id: uuid.UUID,
    slot_ids: Sequence[uuid.UUID],
) -> None:
    """Record the slots the reservation occupies; the unique index on `slot_id` refuses
    a slot another reservation occupies, whatever the caller checked before."""
    await link_many(session, [(reservation_id, provider_id, slot_ids)])


async def link_many(
    session: AsyncSession,
    links: Sequence[tuple[uuid.UUID, uuid.UUID, Sequence[uuid.UUID]]],
) -> None:
    """`link` for several reservations (reservation, provider, slots), one statement."""
    await session.execute(
        insert(ReservationSlot),
        [
            {"reservation_id": reservation_id, "slot_id": slot_id, "provider_id": provider_id}
            for reservation_id, provider_id, slot_ids in links
            for slot_id in slot_ids
        ],
    )


async def unlink(
    session: AsyncSession, reservation_ids: Sequence[uuid.UUID]
) -> Sequence[uuid.UUID]:
    """Forget the slots these (ended or moving) reservations occupied; return the slots
    nothing occupies any more (a seat gives its seats back: its session's slots are
    returned only when that was the session's last seat, `seats.leave`)."""
    if not reservation_ids:
        return []
    result = await session.scalars(
        delete(ReservationSlot)
        .where(ReservationSlot.reservation_id.in_(reservation_ids))
        .returning(ReservationSlot.slot_id)
        .execution_options(synchronize_session=False)
    )
    freed = list(result.all())
    freed.extend(await seats.leave(session, reservation_ids))
    return freed


async def confirm_if_live(
    session: AsyncSession, reservation_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> Reservation | None:
    """Confirm the client's hold if, and only if, it is still held and not run out."""
    result = await session.scalars(
        update(Reservation)
        .where(
            Reservation.id == reservation_id,
            Reservation.client_id == client_id,
            rules.where(rules.hold_live("reservations"), now),
        )
        .values(status=ReservationStatus.CONFIRMED, confirmed_at=now)
        .returning(Reservation)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none()


async def cancel_live_of_client(
    session: AsyncSession, client_id: uuid.UUID, now: datetime
) -> Sequence[uuid.UUID]:
    """End every live reservation of the client; return the slots they occupied."""
    result = await session.scalars(
        update(Reservation)
        .where(Reservation.client_id == client_id, is_live(now))
        .values(status=ReservationStatus.CANCELLED, cancelled_at=now)
        .returning(Reservation.id)
        .execution_options(synchronize_session=False)
    )
    cancelled = result.all()
    await outbox.record(session, EventType.CANCELLED, cancelled, now)
    # Run-out holds are expired, not cancelled; their links go too.
    await _expire_run_out(session, Reservation.client_id == client_id, now)
    return await unlink(session, cancelled)


async def lock_sweep(session: AsyncSession) -> None:
    """Serialise sweeps across processes on PostgreSQL.

    Two sweeps updating the same rows in different orders could deadlock; SQLite
    needs nothing since its writers are serialised by BEGIN IMMEDIATE.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SWEEP_LOCK_KEY})


# PostgreSQL: expire, record and unlink in one statement, so exactly the rows this
# UPDATE changed get an event, even while a lazy expiry elsewhere races with it.
_SWEEP_SQL = text(
    f"""
WITH expired AS (
    UPDATE reservations SET status = 'expired'
     WHERE {rules.hold_ran_out()} AND session_id IS NULL
    RETURNING *
), recorded AS (
    {outbox.insert_from_sql("expired", EventType.EXPIRED)}
    RETURNING 1
), unlinked AS (
    DELETE FROM reservation_slots WHERE reservation_id IN (SELECT id FROM expired)
    RETURNING 1
)
SELECT count(*) FROM expired
"""
).bindparams(bindparam("now", type_=UTCDateTime()))


async def expire_stale_holds(session: AsyncSession, now: datetime) -> int:
    """Mark every run-out hold expired, set-based; record an event for each; return how many.

    On SQLite (writers serialised) the events and the link deletion select the same
    rows before the UPDATE; on PostgreSQL one statement does all three.
    """
    # Seats: their rows, then their sessions' (`seats.leave`), as every path locks them.
    expired_seats = await _expire_run_out(session, Reservation.session_id.is_not(None), now)
    if session.get_bind().dialect.name == "postgresql":
        expired = int((await session.scalar(_SWEEP_SQL, {"now": now})) or 0)
        if expired:
            wakeup.mark(session)
        return expired + expired_seats
    await outbox.record_where(session, EventType.EXPIRED, ran_out(now), now, status="expired")
    await session.execute(
        delete(ReservationSlot)
        .where(ReservationSlot.reservation_id.in_(select(Reservation.id).where(ran_out(now))))
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        update(Reservation)
        .where(ran_out(now))
        .values(status=ReservationStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) + expired_seats


async def live_in_range(
    session: AsyncSession,
    provider_id: uuid.UUID,
    start_from: datetime,
    start_before: datetime,
    now: datetime,
) -> Sequence[Reservation]:
    """Live reservations of the provider whose appointment starts in the range."""
    query = select(Reservation).where(
        Reservation.provider_id == provider_id,
        Reservation.start_time >= start_from,
        Reservation.start_time < start_before,
        is_live(now),
    )
    query = query.order_by(Reservation.start_time, Reservation.id)
    return (await session.scalars(query)).all()


async def cancel_many(
    session: AsyncSession, reservation_ids: Sequence[uuid.UUID], now: datetime
) -> Sequence[Reservation]:
    """Cancel those of these reservations that are still live; return them."""
    if not reservation_ids:
        return []
    result = await session.scalars(
        update(Reservation)
        .where(Reservation.id.in_(reservation_ids), is_live(now))
        .values(status=ReservationStatus.CANCELLED, cancelled_at=now)
        .returning(Reservation)
        .execution_options(synchronize_session=False)
    )
    return result.all()


async def lock(session: AsyncSession, reservation_id: uuid.UUID) -> Reservation | None:
    """The reservation, read again and locked until the transaction ends; None when it
    was deleted meanwhile (with its provider, client or slot)."""
    query = (
        select(Reservation)
        .where(Reservation.id == reservation_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def lock_every_held_or_confirmed(session: AsyncSession, provider_id: uuid.UUID) -> None:
    """Lock every reservation of the provider still written down as held or confirmed
    (run-out holds included), by id: before a change that deletes or withdraws its
    slots, in the one order (reservation rows, then slot rows)."""
    await session.execute(
        select(Reservation.id)
        .where(
            Reservation.provider_id == provider_id,
            Reservation.status.in_((ReservationStatus.HELD, ReservationStatus.CONFIRMED)),
        )
        .order_by(Reservation.id)
        .with_for_update()
    )


async def expire_run_out_on_withdrawn_slots(
    session: AsyncSession, withdrawn: Withdrawn, now: datetime
) -> None:
    """Write down every run-out hold on a slot an edit withdraws (expired, its event,
    its links gone), so no `held` reservation is left on a removed slot."""
    await _expire_run_out(session, Reservation.id.in_(_holders(withdrawn)), now)


async def live_on_withdrawn_slots(
    session: AsyncSession, withdrawn: Withdrawn, now: datetime
) -> Sequence[Reservation]:
    """Live reservations occupying a slot an edit withdraws, locked (reservation rows
    before slot rows: the order every path takes), by start time."""
    holders = _holders(withdrawn)
    provider_id = withdrawn.provider_id
    query = (
        select(Reservation)
        .where(Reservation.provider_id == provider_id, Reservation.id.in_(holders), is_live(now))
        .order_by(Reservation.start_time, Reservation.id)
        .with_for_update(of=Reservation)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).all()
