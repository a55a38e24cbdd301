"""Reserve on PostgreSQL in one round trip: lock the client, expire, claim, count and
insert as one statement.

The portable path in `service.reserve_slot` sends five statements; under load each
round trip costs more Python time than PostgreSQL spends on the work. Here the
same steps are data-modifying CTEs of one statement. Ordering is forced by data
dependencies: the slot's claim waits for the stale hold's expiry (an InitPlan
over `stale`) and the INSERT reads the claim's RETURNING. The link row (the slot
this reservation occupies) is inserted from the INSERT's RETURNING, after the stale
hold's links are deleted (again forced by the claim's InitPlan). The outbox events
(the stale hold expired, the new one held) are inserted from the same RETURNINGs.

The client's row is locked first (`locked`; both writing CTEs wait for it through
their InitPlans, so no row is locked before it, the order every reserve keeps). The
statement's own snapshot predates that lock, so the hold count comes from
`live_holds()`, a VOLATILE function (migration 0005) whose query takes a fresh
snapshot after the lock: it sees every hold a rival committed meanwhile, and the
count is exact. So the statement needs no transaction around it: without an
Idempotency-Key it commits by itself, one round trip on a pooled connection
(`reserve_autocommit`, `confirm`; with a key, `reserve` runs it in the request's session).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from appointments import rawsql
from appointments.db import UTCDateTime
from appointments.scheduling import rules, wakeup
from appointments.scheduling.events import EventType
from appointments.scheduling.models import Reservation, Slot
from appointments.scheduling.outbox import insert_from_sql
from appointments.scheduling.slots import ClaimedSlot


def _seats_held(source: str) -> str:
    """CTEs `inserted` (the seats' hold, in the session row `source` names) and
    `recorded` (its event), for the seat statements."""
    return f"""inserted AS (
    INSERT INTO reservations
        (id, slot_id, provider_id, client_id, appointment_type_id, status, start_time,
         end_time, occupied_start, occupied_end, created_at, expires_at, seats, session_id)
    SELECT :id, slot_id, provider_id, :client_id, appointment_type_id, 'held', start_time,
           end_time, occupied_start, occupied_end, :now, :expires_at, :seats, id
      FROM {source}
    RETURNING *
), recorded AS (
    {insert_from_sql("inserted", EventType.HELD)}
    RETURNING 1
)"""


def locked_slots(source: str) -> str:
    """A CTE's body: the slots (alias `s`) that `source` (FROM and WHERE) names, not
    removed, locked in ascending start (FOR UPDATE under the ORDER BY: the one lock
    order), as their latest versions, which a statement's checks then read."""
    where = "AND" if " WHERE " in f" {source} " else "WHERE"
    return (
        "SELECT s.id, s.provider_id, s.start_time, s.end_time, s.status, s.busy,"
        f" s.hold_expires_at {source} {where} s.status <> 'removed'"
        " ORDER BY s.start_time FOR UPDATE OF s"
    )


def takeable(locked: str) -> str:
    """How many of the `locked` slots a new hold may take as they stand: open
    (`rules.slot_open`), and with no hold on them at all, run out or not (a run-out
    hold is written down first, by the step path), nor any occupant."""
    return (
        f"(SELECT count(*) FROM {locked} AS t WHERE {rules.slot_open('t')}"
        " AND t.status = 'available'"
        " AND NOT EXISTS (SELECT 1 FROM reservation_slots AS rs WHERE rs.slot_id = t.id))"
    )


# The stale hold on the slot is expired only when the claim goes ahead (the client
# within its hold limit, the slot past the notice): a refused reserve changes nothing,
# as the step-by-step path's rolled-back transaction does not (the differential test).
# No SQL comments in the text: bench.pgbench runs it as one line.
RESERVE_SQL = f"""
WITH locked AS (
    SELECT id FROM clients WHERE id = :client_id FOR NO KEY UPDATE
), holds AS (
    SELECT live_holds(:client_id, :now) AS n FROM locked
), session_slot AS (
    SELECT 1 FROM reservation_slots WHERE slot_id = :slot_id AND session_id IS NOT NULL
), stale AS (
    UPDATE reservations SET status = 'expired'
     WHERE id = (SELECT reservation_id FROM reservation_slots WHERE slot_id = :slot_id)
       AND {rules.hold_ran_out()}
       AND {rules.holds_within("(SELECT n FROM holds)")}
       AND EXISTS (SELECT 1 FROM slots WHERE id = :slot_id AND {rules.starts_bookable()})
    RETURNING *
), stale_recorded AS (
    {insert_from_sql("stale", EventType.EXPIRED)}
    RETURNING 1
), unlinked AS (
    DELETE FROM reservation_slots WHERE reservation_id IN (SELECT id FROM stale)
    RETURNING 1
), claimed AS (
    UPDATE slots SET status = 'reserved', hold_expires_at = :expires_at
     WHERE id = :slot_id AND {rules.starts_bookable()}
       AND {rules.slot_open()}
       AND (SELECT count(*) FROM unlinked) >= 0
       AND {rules.holds_within("(SELECT n FROM holds)")}
       AND NOT EXISTS (SELECT 1 FROM session_slot)
    RETURNING provider_id, start_time, end_time
), inserted AS (
    INSERT INTO reservations
        (id, slot_id, provider_id, client_id, status, start_time, end_time,
         occupied_start, occupied_end, created_at, expires_at)
    SELECT :id, :slot_id, provider_id, :client_id, 'held', start_time, end_time,
           start_time, end_time, :now, :expires_at
      FROM claimed
    RETURNING *
), held_recorded AS (
    {insert_from_sql("inserted", EventType.HELD)}
    RETURNING 1
), linked AS (
    INSERT INTO reservation_slots (reservation_id, slot_id, provider_id)
    SELECT id, :slot_id, provider_id FROM inserted
    RETURNING 1
)
SELECT inserted.provider_id, inserted.start_time, inserted.end_time,
       slot.start_time AS slot_start,
       coalesce({rules.slot_open("slot")}, false) AS slot_free,
       coalesce((SELECT n FROM holds), 0) AS holds,
       EXISTS (SELECT 1 FROM locked) AS client_known,
       EXISTS (SELECT 1 FROM session_slot) AS in_session
  FROM (SELECT 1) AS one
  LEFT JOIN inserted ON true
  LEFT JOIN slots AS slot ON slot.id = :slot_id AND slot.status <> 'removed'
"""

_RESERVE = text(RESERVE_SQL).columns(
    provider_id=Slot.__table__.c.provider_id.type,
    start_time=UTCDateTime(),
    end_time=UTCDateTime(),
    slot_start=UTCDateTime(),
)


@dataclass(frozen=True)
class Outcome:
    """What the statement did; when nothing was inserted, what it saw of the slot
    (`slot_free`: by the same test the claim uses)."""

    claimed: ClaimedSlot | None
    slot_start: datetime | None
    slot_free: bool
    holds: int
    client_known: bool
    # The slot is a group session's: its seats' run-out holds are written down by the
    # step-by-step path, which the caller falls back to (`reserve.reserve_slot`).
    in_session: bool = False


def reserve_values(
    reservation: Reservation, bookable_after: datetime, max_holds: int
) -> dict[str, object]:
    """The reserve statement's parameters for the hold `reservation` (not yet claimed)."""
    return {
        "id": reservation.id,
        "slot_id": reservation.slot_id,
        "client_id": reservation.client_id,
        "now": reservation.created_at,
        "expires_at": reservation.expires_at,
        "bookable_after": bookable_after,
        "max_holds": max_holds,
    }


def _outcome(row: Any) -> Outcome:
    claimed = None
    if row["provider_id"] is not None:
        claimed = ClaimedSlot(row["provider_id"], row["start_time"], row["end_time"])
    return Outcome(
        claimed,
        row["slot_start"],
        bool(row["slot_free"]),
        int(row["holds"]),
        row["client_known"],
        bool(row["in_session"]),
    )


async def reserve(session: AsyncSession, values: dict[str, object]) -> Outcome:
    """Run the statement (`reserve_values`) in the session's transaction."""
    row = (await session.execute(_RESERVE, values)).one()._mapping
    wakeup.mark(session)  # a stale hold's expiry may have been recorded even on refusal
    return _outcome(row)


async def reserve_autocommit(engine: AsyncEngine, values: dict[str, object]) -> Outcome:
    """Run the statement (`reserve_values`) on its own: its own implicit transaction,
    committed when it returns."""
    row = await rawsql.fetch_row(engine, RESERVE_SQL, values)
    wakeup.committed()  # events may have been written (a stale hold's expiry at least)
    return _outcome(row)


# A type's notice (its own, or the service's `:notice_seconds`) and horizon, in SQL
# over the type row `t`, for `rules.starts_bookable` and `rules.starts_within_horizon`.
_TYPE_NOTICE = (
    "(:now + coalesce(make_interval(mins => t.min_notice_minutes),"
    " make_interval(secs => :notice_seconds)))"
)
_TYPE_HORIZON = "(:now + make_interval(days => t.max_advance_days))"

CONFIRM_SQL = f"""
WITH client AS (
    SELECT id FROM clients WHERE id = :client_id
), confirmed AS (
    UPDATE reservations SET status = 'confirmed', confirmed_at = :now
     WHERE id = :reservation_id AND client_id = :client_id
       AND {rules.hold_live()}
    RETURNING *
), seat_session AS (
    SELECT id FROM group_sessions WHERE id IN (SELECT session_id FROM confirmed) FOR UPDATE
), marked AS (
    UPDATE slots SET status = 'confirmed', hold_expires_at = NULL
     WHERE id IN (SELECT slot_id FROM reservation_slots
                   WHERE reservation_id IN (SELECT id FROM confirmed)
                  UNION ALL
                  SELECT slot_id FROM reservation_slots
                   WHERE session_id IN (SELECT id FROM seat_session))
    RETURNING 1
), recorded AS (
    {insert_from_sql("confirmed", EventType.CONFIRMED)}
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM client) AS client_known,
       EXISTS (SELECT 1 FROM confirmed) AS changed,
       r.*
  FROM (SELECT 1) AS one
  LEFT JOIN (
      SELECT * FROM confirmed
      UNION ALL
      SELECT * FROM reservations
       WHERE id = :reservation_id AND client_id = :client_id
         AND NOT EXISTS (SELECT 1 FROM confirmed)
  ) AS r ON true
"""


@dataclass(frozen=True, slots=True)
class ReservationRow:
    """A reservation as the confirm statement returns it: plain values, no ORM object
    (whose construction cost more than the rest of the answer's Python)."""

    id: uuid.UUID
    slot_id: uuid.UUID
    client_id: uuid.UUID
    provider_id: uuid.UUID
    appointment_type_id: uuid.UUID | None
    status: str
    start_time: datetime
    end_time: datetime
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    series_id: uuid.UUID | None
    seats: int
    session_id: uuid.UUID | None


_ROW_FIELDS = ReservationRow.__dataclass_fields__.keys()


@dataclass(frozen=True)
class Confirmation:
    """What the confirm statement found: the client, and the reservation as it stands
    (confirmed by this statement when `changed`), or None when the client has none such."""

    client_known: bool
    changed: bool
    reservation: ReservationRow | None


async def confirm(
    engine: AsyncEngine, *, reservation_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> Confirmation:
    """PostgreSQL: confirm a live hold, confirm its slots and record the event, in one
    statement committing by itself (one round trip, its own transaction)."""
    values = {"reservation_id": reservation_id, "client_id": client_id, "now": now}
    row = await rawsql.fetch_row(engine, CONFIRM_SQL, values)
    reservation = None
    if row["id"] is not None:
        reservation = ReservationRow(*(row[name] for name in _ROW_FIELDS))
    if row["changed"]:
        wakeup.committed()
    return Confirmation(row["client_known"], row["changed"], reservation)


# A seat in the open session of a group type at the slot: the client's lock, the type's
# notice and horizon, the hold limit, the seats taken (the conditional UPDATE that the
# CHECK backs), the hold, its event, and the session's slots held until the latest
# expiry, as one statement. It books only the plain case: a session that is open, with
# room, and none of whose seats has run out unwritten; anything else (a session to
# open, a refusal to explain, run-out seats to write down) inserts nothing, and the
# caller takes the step-by-step path (`booking.sessions`), which decides and explains.
SEAT_SQL = f"""
WITH locked AS (
    SELECT id FROM clients WHERE id = :client_id FOR NO KEY UPDATE
), holds AS (
    SELECT live_holds(:client_id, :now) AS n FROM locked
), place AS (
    SELECT g.id FROM slots AS s
      JOIN appointment_types AS t
        ON t.id = :type_id AND t.provider_id = s.provider_id
       AND t.deleted_at IS NULL AND t.capacity > 1
      JOIN group_sessions AS g
        ON g.provider_id = s.provider_id AND g.appointment_type_id = t.id
       AND g.start_time = s.start_time AND g.seats_taken > 0
     WHERE s.id = :slot_id AND s.status <> 'removed'
       AND {rules.starts_bookable("s", after=_TYPE_NOTICE)}
       AND (t.max_advance_days IS NULL
            OR {rules.starts_within_horizon("s.start_time", latest=_TYPE_HORIZON)})
       AND {rules.holds_within("(SELECT n FROM holds)")}
       AND NOT EXISTS (SELECT 1 FROM reservations AS r
                        WHERE r.session_id = g.id AND {rules.hold_ran_out("r")})
), taken AS (
    UPDATE group_sessions SET seats_taken = seats_taken + :seats
     WHERE id = (SELECT id FROM place) AND seats_taken > 0
       AND {rules.session_has_room(seats=":seats")}
    RETURNING *
), {_seats_held("taken")}, settled AS (
    -- `hold_expires_at IS NOT NULL` is `status = 'reserved'` (a CHECK of slots), but
    -- implies no partial index's predicate: with `status = 'reserved'` the kept plan
    -- scanned the whole index of slots not available, every provider's, filtering by
    -- id (seat joins and opens 0.8 -> 3.1 ms and 2.0 -> 7.3-9.4 ms of PostgreSQL).
    UPDATE slots SET hold_expires_at = greatest(hold_expires_at, :expires_at)
     WHERE hold_expires_at IS NOT NULL
       AND id IN (SELECT slot_id FROM reservation_slots
                   WHERE session_id IN (SELECT session_id FROM inserted))
    RETURNING 1
)
SELECT r.* FROM (SELECT 1) AS one LEFT JOIN inserted AS r ON true
"""


async def reserve_seat_autocommit(
    engine: AsyncEngine, values: dict[str, object]
) -> ReservationRow | None:
    """Run `SEAT_SQL` on its own (its own implicit transaction): the seat held, or None
    when it booked nothing (the caller's step-by-step path decides why)."""
    row = await rawsql.fetch_row(engine, SEAT_SQL, values)
    if row["id"] is None:
        return None
    wakeup.committed()
    return ReservationRow(*(row[name] for name in _ROW_FIELDS))


# The first seats of a group type's session at the slot, opening it, as one statement:
# the client's lock, the type's notice and horizon, the hold limit, room for the seats
# asked (the rule, over the empty session), then the span's slot rows locked in
# ascending start and checked on their locked versions (every one open and available,
# no occupant), the session, its slots held until the expiry, their links, the hold
# and its event. Only the plain case: no session open there (SEAT_SQL joins it), no
# daily cap (its day lock is the step path's), every slot of the span free of any hold
# (run-out holds are written down by the step path first). Anything else inserts
# nothing, and the caller goes step by step, which decides and explains.
SEAT_OPEN_SQL = f"""
WITH locked AS (
    SELECT id FROM clients WHERE id = :client_id FOR NO KEY UPDATE
), holds AS (
    SELECT live_holds(:client_id, :now) AS n FROM locked
), kind AS (
    SELECT t.id AS type_id, t.capacity, s.provider_id, s.start_time,
           s.start_time + make_interval(mins => t.duration_minutes) AS end_time,
           s.start_time - make_interval(mins => t.buffer_before_minutes) AS occupied_start,
           s.start_time + make_interval(mins => t.duration_minutes + t.buffer_after_minutes)
               AS occupied_end,
           (t.buffer_before_minutes + t.duration_minutes + t.buffer_after_minutes)
               / :slot_minutes AS span_slots
      FROM slots AS s
      JOIN appointment_types AS t
        ON t.id = :type_id AND t.provider_id = s.provider_id
       AND t.deleted_at IS NULL AND t.capacity > 1 AND t.max_per_day IS NULL
     CROSS JOIN LATERAL (SELECT 0 AS seats_taken, t.capacity) AS fresh
     WHERE s.id = :slot_id AND s.status <> 'removed'
       AND {rules.starts_bookable("s", after=_TYPE_NOTICE)}
       AND (t.max_advance_days IS NULL
            OR {rules.starts_within_horizon("s.start_time", latest=_TYPE_HORIZON)})
       AND {rules.holds_within("(SELECT n FROM holds)")}
       AND {rules.session_has_room("fresh", seats=":seats")}
       AND NOT EXISTS (SELECT 1 FROM group_sessions AS g
                        WHERE g.provider_id = s.provider_id AND g.appointment_type_id = t.id
                          AND g.start_time = s.start_time AND g.seats_taken > 0)
), targets AS (
    {
    locked_slots(
        "FROM slots AS s, kind AS k WHERE s.provider_id = k.provider_id"
        " AND s.start_time >= k.occupied_start AND s.start_time < k.occupied_end"
    )
}
), ready AS (
    SELECT {takeable("targets")} = k.span_slots AS ok FROM kind AS k
), opened AS (
    INSERT INTO group_sessions
        (id, provider_id, appointment_type_id, slot_id, start_time, end_time,
         occupied_start, occupied_end, capacity, seats_taken, created_at)
    SELECT :session_id, k.provider_id, k.type_id, :slot_id, k.start_time, k.end_time,
           k.occupied_start, k.occupied_end, k.capacity, :seats, :now
      FROM kind AS k
     WHERE (SELECT ok FROM ready)
    RETURNING *
), claimed AS (
    UPDATE slots SET status = 'reserved', hold_expires_at = :expires_at
     WHERE id IN (SELECT id FROM targets) AND EXISTS (SELECT 1 FROM opened)
    RETURNING id, provider_id
), linked AS (
    INSERT INTO reservation_slots (slot_id, session_id, provider_id)
    SELECT c.id, :session_id, c.provider_id FROM claimed AS c
    RETURNING 1
), {_seats_held("opened")}
SELECT r.* FROM (SELECT 1) AS one LEFT JOIN inserted AS r ON true
"""


async def open_session_autocommit(
    engine: AsyncEngine, values: dict[str, object]
) -> ReservationRow | None:
    """Run `SEAT_OPEN_SQL` on its own (its own implicit transaction): the first seats
    held in the session it opened, or None when it opened nothing."""
    row = await rawsql.fetch_row(engine, SEAT_OPEN_SQL, values)
    if row["id"] is None:
        return None
    wakeup.committed()
    return ReservationRow(*(row[name] for name in _ROW_FIELDS))
