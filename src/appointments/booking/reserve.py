"""Reserve: hold one slot, or every slot of an appointment of a type (all or none)."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from appointments import db
from appointments.appointment_types import repository as appointment_types
from appointments.appointment_types.rules import BookingRules, Span
from appointments.booking import one_statement, sessions, spans
from appointments.booking.errors import (
    SlotUnavailable,
)
from appointments.booking.spans import Claim, claim_span
from appointments.clients import service as clients
from appointments.errors import DomainError, NotFound
from appointments.ids import parse_id
from appointments.scheduling import holds, outbox, slots
from appointments.scheduling import rules as core
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    Reservation,
    ReservationStatus,
    SlotRecord,
)
from appointments.settings import Settings


async def reserve_slot(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    slot_id: str,
    now: datetime,
    appointment_type_id: str | None = None,
    seats: int = 1,
) -> Reservation:
    """Hold a free slot for the client for `hold_seconds`; with an appointment type,
    every slot of the appointment and its buffers, or seats in a group session
    (`reserve_appointment`). A plain slot has one seat.

    The claim is one conditional UPDATE (free and far enough ahead), then one
    INSERT; the partial unique index on live reservations backs it up, so even a
    bug here could not produce a second live reservation of a slot. The caller
    must have locked the client's row (`clients.lock_client`), so parallel
    reserves of one client cannot together exceed the hold limit.
    """
    slot_uuid = parse_id(slot_id, "slot")
    if appointment_type_id is not None:
        return await reserve_appointment(
            session, settings, client_id, slot_uuid, appointment_type_id, now, seats
        )
    notice = core.service_notice(settings)
    bookable_after = core.bookable_after(now, notice)
    reservation = _new_hold(settings, client_id, slot_uuid, now)
    with spans.slot_taken_meanwhile("the slot was taken at the same moment"):
        if session.get_bind().dialect.name == "postgresql":
            await _reserve_in_one_statement(session, settings, reservation, bookable_after, notice)
        else:
            await _reserve_step_by_step(session, settings, reservation, bookable_after, notice)
    core.check_session_has_room(1, seats)  # the caller's rollback undoes the hold
    return reservation


def _new_hold(
    settings: Settings, client_id: uuid.UUID, slot_id: uuid.UUID, now: datetime
) -> Reservation:
    """The hold a plain reserve makes (times and provider filled in by the claim)."""
    return Reservation(
        id=uuid.uuid4(),
        slot_id=slot_id,
        client_id=client_id,
        status=ReservationStatus.HELD,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.hold_seconds),
        seats=1,
    )


async def reserve_slot_autocommit(
    engine: AsyncEngine, settings: Settings, client_id: str, slot_id: str, now: datetime
) -> Reservation:
    """PostgreSQL, a plain reserve with no Idempotency-Key: the client's lock, the
    checks, the claim and the insert as one statement committing by itself, so the whole
    reserve is one round trip and one implicit transaction."""
    client_uuid = parse_id(client_id, "client")
    notice = core.service_notice(settings)
    bookable_after = core.bookable_after(now, notice)
    reservation = _new_hold(settings, client_uuid, parse_id(slot_id, "slot"), now)
    with spans.slot_taken_meanwhile("the slot was taken at the same moment"):
        values = one_statement.reserve_values(
            reservation, bookable_after, settings.max_holds_per_client
        )
        outcome = await one_statement.reserve_autocommit(engine, values)
        if _changed_meanwhile(outcome, settings, reservation, notice):
            outcome = await one_statement.reserve_autocommit(engine, values)
        if _needs_steps(outcome):
            async with db.transaction(db.create_sessionmaker(engine), writes=True) as session:
                await clients.lock_client(session, client_id)
                await _reserve_step_by_step(session, settings, reservation, bookable_after, notice)
            return reservation
        _settle_hold(outcome, settings, reservation, bookable_after, notice, client_id)
    return reservation


# Types this process has seen booked, and whether each is a group type: a hint (the
# statement itself checks the type) that spares other typed reserves a wasted statement.
_group_types: dict[uuid.UUID, bool] = {}
_GROUP_TYPES_KEPT = 10_000


def _remember_type(type_id: uuid.UUID, books_sessions: bool) -> None:
    if len(_group_types) >= _GROUP_TYPES_KEPT:
        _group_types.clear()
    _group_types[type_id] = books_sessions


def may_join_in_one_statement(appointment_type_id: str | None) -> bool:
    """Whether a reserve of this type should first try `one_statement.SEAT_SQL`."""
    if appointment_type_id is None:
        return False
    try:
        return _group_types.get(uuid.UUID(appointment_type_id), False)
    except ValueError:
        return False


async def reserve_seat_autocommit(
    engine: AsyncEngine,
    settings: Settings,
    client_id: str,
    slot_id: str,
    appointment_type_id: str,
    seats: int,
    now: datetime,
) -> one_statement.ReservationRow | None:
    """PostgreSQL, a group type's reserve with no Idempotency-Key: a seat in the open
    session at the slot as one statement committing by itself, or when none is open
    there the session opened by another (`SEAT_OPEN_SQL`); None when neither booked
    anything (the caller takes the step-by-step path, which decides and explains: a
    refusal, run-out seats or holds to write down, a capped day)."""
    try:
        ids = (uuid.UUID(client_id), uuid.UUID(slot_id), uuid.UUID(appointment_type_id))
    except ValueError:
        return None
    values = {
        "id": uuid.uuid4(),
        "client_id": ids[0],
        "slot_id": ids[1],
        "type_id": ids[2],
        "seats": seats,
        "now": now,
        "expires_at": now + timedelta(seconds=settings.hold_seconds),
        "notice_seconds": float(settings.min_notice_seconds),
        "max_holds": settings.max_holds_per_client,
    }
    with sessions.one_seat_per_client():
        joined = await one_statement.reserve_seat_autocommit(engine, values)
        if joined is not None:
            return joined
        # No open session there to join: open it, when every slot of its span is free.
        opening = values | {"session_id": uuid.uuid4(), "slot_minutes": settings.slot_minutes}
        return await one_statement.open_session_autocommit(engine, opening)


def _needs_steps(outcome: one_statement.Outcome) -> bool:
    """The statement left the slot alone only because a group session's run-out seats
    occupy it: the step-by-step path writes them down and claims it."""
    return outcome.claimed is None and outcome.in_session and outcome.slot_free


async def _reserve_in_one_statement(
    session: AsyncSession,
    settings: Settings,
    reservation: Reservation,
    bookable_after: datetime,
    notice: timedelta,
) -> None:
    """PostgreSQL: lock the client, expire, claim, count and insert in one round trip."""
    values = one_statement.reserve_values(
        reservation, bookable_after, settings.max_holds_per_client
    )
    outcome = await one_statement.reserve(session, values)
    if _changed_meanwhile(outcome, settings, reservation, notice):
        outcome = await one_statement.reserve(session, values)
    if _needs_steps(outcome):
        await _reserve_step_by_step(session, settings, reservation, bookable_after, notice)
        return
    _settle_hold(outcome, settings, reservation, bookable_after, notice, "")


def _changed_meanwhile(
    outcome: one_statement.Outcome,
    settings: Settings,
    reservation: Reservation,
    notice: timedelta,
) -> bool:
    """The statement saw nothing refusing the hold (the client, the slot free and far
    enough ahead, room under the hold limit) yet claimed nothing: a rival's claim, or
    the slot's deletion, committed after its snapshot. Run again, it sees which (409
    taken, or 404 gone); only refusals pay for the second run."""
    return (
        outcome.client_known
        and outcome.claimed is None
        and not outcome.in_session
        and outcome.slot_start is not None
        and outcome.slot_free
        and core.is_bookable(outcome.slot_start, reservation.created_at, notice)
        and core.may_hold(outcome.holds, settings.max_holds_per_client)
    )


def _settle_hold(
    outcome: one_statement.Outcome,
    settings: Settings,
    reservation: Reservation,
    bookable_after: datetime,
    notice: timedelta,
    client: str,
) -> None:
    """Fill in the held reservation from what the statement did, or raise why not."""
    if not outcome.client_known:
        raise NotFound(f"client {client!r} does not exist")
    if outcome.claimed is not None:
        spans.take_times(reservation, outcome.claimed)
        return
    if outcome.slot_start is None:
        raise NotFound(f"slot {str(reservation.slot_id)!r} does not exist")
    core.check_notice(outcome.slot_start, reservation.created_at, notice)
    # The statement saw the slot free, so only the hold limit can have refused it (or a
    # rival's claim that committed after the snapshot, seen twice: then it is taken).
    if outcome.slot_free:
        core.check_hold_limit(outcome.holds, settings.max_holds_per_client)
    raise SlotUnavailable("the slot is already held or confirmed")


async def _reserve_step_by_step(
    session: AsyncSession,
    settings: Settings,
    reservation: Reservation,
    bookable_after: datetime,
    notice: timedelta,
) -> None:
    """Portable path (SQLite): the same steps as separate statements."""
    now = reservation.created_at
    await holds.expire_stale_hold_of_slot(session, reservation.slot_id, now)
    claimed = await slots.claim_slot_if_free(
        session, reservation.slot_id, now, reservation.expires_at, starting_after=bookable_after
    )
    if claimed is None:
        await spans.explain_refused_claim(session, reservation.slot_id, now, notice)
    held = await holds.count_live_holds(session, reservation.client_id, now)
    core.check_hold_limit(held, settings.max_holds_per_client)
    spans.take_times(reservation, claimed)
    session.add(reservation)
    await session.flush()
    await holds.link(session, reservation.id, claimed.provider_id, [reservation.slot_id])
    await outbox.record(session, EventType.HELD, [reservation.id], now)


async def reserve_appointment(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    slot_id: uuid.UUID,
    appointment_type_id: str,
    now: datetime,
    seats: int = 1,
) -> Reservation:
    """Hold every slot of an appointment of the type starting at the slot, buffers
    included; of a group type, `seats` seats in its session there (`sessions`).

    The slots are locked in start order and claimed by one UPDATE, in one
    transaction with the reservation and its slot links: all of them or none.
    The unique index on the links still refuses a slot a rival holds, whatever
    happened before. Checks in the contract's order: unknown slot or type (404),
    notice and horizon (422), slots (409 `slot_unavailable`), daily cap, hold limit.
    """
    anchor = await slots.get(session, slot_id)
    if anchor is None:
        raise NotFound(f"slot {str(slot_id)!r} does not exist")
    found = await appointment_types.get_with_timezone(
        session, anchor.provider_id, parse_id(appointment_type_id, "appointment type")
    )
    if found is None:
        raise NotFound(f"appointment type {appointment_type_id!r} does not exist")
    kind, zone = found
    rules = BookingRules.of(kind, settings)
    _remember_type(kind.id, rules.books_sessions)
    expires_at = now + timedelta(seconds=settings.hold_seconds)
    async with spans.slot_gone_meanwhile(session, anchor.id, str(slot_id)):
        if rules.books_sessions:
            seating = sessions.Seating(
                settings, client_id, rules, zone, now, expires_at, seats, check_limit=True
            )
            return await sessions.hold_seats(session, seating, anchor)
        reservation = await hold_span(
            session, settings, client_id, anchor, rules, zone, now, expires_at, check_limit=True
        )
    # After the type's own checks, as for a session; the caller's rollback undoes the hold.
    core.check_session_has_room(1, seats)
    return reservation


async def claim_spans(
    session: AsyncSession,
    provider_id: uuid.UUID,
    rules: BookingRules,
    zone: str,
    anchors: Sequence[SlotRecord],
    now: datetime,
) -> list[Claim | DomainError]:
    """`claim_span` for the occurrences of a series (anchors in start order, weeks
    apart), set-based: each one's refusal or claim. Locks in the one order: the capped
    days (ascending), then every span's slot rows in one statement (ascending)."""
    results: list[Claim | DomainError | None] = []
    candidates: list[tuple[int, SlotRecord, Span]] = []
    for anchor in anchors:
        try:
            rules.check_start(anchor.start_time, now)
        except DomainError as refusal:
            results.append(refusal)
            continue
        candidates.append((len(results), anchor, rules.span(anchor.start_time)))
        results.append(None)
    days = [
        await spans.hold_day(session, provider_id, rules, span, zone) for _, _, span in candidates
    ]
    ranges = [(span.occupied_start, span.occupied_end) for _, _, span in candidates]
    if ranges:
        await holds.expire_stale_holds_in_spans(session, provider_id, ranges, now)
        locked = await slots.lock_free_spans(session, provider_id, ranges, now)
    else:
        locked = []
    for (index, anchor, span), day, free in zip(candidates, days, locked, strict=True):
        try:
            spans.check_whole(span, free)
            await spans.check_daily_cap(session, day, now)
        except DomainError as refusal:
            results[index] = refusal
            continue
        results[index] = Claim(anchor, span, free)
    return [result for result in results if result is not None]


async def hold_claims(
    session: AsyncSession,
    client_id: uuid.UUID,
    rules: BookingRules,
    claims: Sequence[Claim],
    now: datetime,
    expires_at: datetime,
    *,
    series_id: uuid.UUID | None = None,
) -> list[Reservation]:
    """Hold every claimed span until `expires_at`: its slots, the reservation, its links
    and its event, set-based (one statement each for any number of claims)."""
    reservations = [
        Reservation(
            id=uuid.uuid4(),
            slot_id=claim.anchor.id,
            provider_id=claim.anchor.provider_id,
            client_id=client_id,
            appointment_type_id=rules.type_id,
            status=ReservationStatus.HELD,
            start_time=claim.span.start,
            end_time=claim.span.end,
            occupied_start=claim.span.occupied_start,
            occupied_end=claim.span.occupied_end,
            created_at=now,
            expires_at=expires_at,
            series_id=series_id,
            series_start=None if series_id is None else claim.span.start,
            seats=1,
        )
        for claim in claims
    ]
    if not reservations:
        return reservations
    with spans.slot_taken_meanwhile("a slot of the appointment was taken at the same moment"):
        await slots.occupy(session, [s for claim in claims for s in claim.slot_ids], expires_at)
        session.add_all(reservations)
        await session.flush()
        await holds.link_many(
            session,
            [
                (reservation.id, reservation.provider_id, claim.slot_ids)
                for reservation, claim in zip(reservations, claims, strict=True)
            ],
        )
    await outbox.record(session, EventType.HELD, [r.id for r in reservations], now)
    return reservations


async def hold_span(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    anchor: SlotRecord,
    rules: BookingRules,
    zone: str,
    now: datetime,
    expires_at: datetime,
    *,
    check_limit: bool,
) -> Reservation:
    """Hold the appointment `rules` describe, starting at `anchor`, until `expires_at`
    (`claim_span`, then `hold_claims`). A refusal raises before anything is written."""
    claim = await claim_span(
        session, settings, client_id, anchor, rules, zone, now, check_limit=check_limit
    )
    (reservation,) = await hold_claims(session, client_id, rules, [claim], now, expires_at)
    return reservation
