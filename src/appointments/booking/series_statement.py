"""A plain weekly series on PostgreSQL in one statement, for the common case: every
occurrence's slot exists, is open (available: no hold on it, run out or not; no busy
time) and past the notice, and the client has room for one more hold. Then the series,
its held occurrences, their links and their events are written by one statement.

Anything else (an occurrence refused, a run-out hold to write down first, a start in
a daylight-saving gap, the hold limit reached) writes nothing here, and the series
goes the step-by-step way (`series.reserve_series`), which answers each refusal as the
contract says: the answer is the step path's either way, at a fraction of its cost when
every week is free (`bench.cpu`'s series x12).

Locks, in the one order: the client's row (taken by the caller), then the occurrences'
slot rows in ascending start (`FOR UPDATE` under the ORDER BY). What the statement
checks is read from the locked rows (their latest versions), so a slot taken by a rival
between the snapshot and the lock is seen taken, and nothing is claimed: all or none.
The rules are the core's (`rules.slot_open`, `rules.starts_bookable`,
`rules.holds_within`, `rules.weeks_later`); an open slot must also be `available` here
(no run-out hold on it), because a run-out hold must be written down (expired, its
event recorded) before its slot is taken again, which the step path does.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.booking.one_statement import locked_slots, takeable
from appointments.scheduling import rules, wakeup
from appointments.scheduling.events import EventType
from appointments.scheduling.outbox import insert_from_sql

SERIES_SQL = f"""
WITH holds AS (
    SELECT live_holds(:client_id, :now) AS n
), anchor AS (
    SELECT s.provider_id, s.start_time, p.timezone AS zone
      FROM slots AS s JOIN providers AS p ON p.id = s.provider_id
     WHERE s.id = :slot_id AND s.status <> 'removed'
), occurrences AS (
    SELECT {rules.weeks_later("postgresql", "a.start_time", "k * :interval_weeks", "a.zone")}
           AS start_time
      FROM anchor AS a CROSS JOIN generate_series(0, :count - 1) AS k
), targets AS (
    {
    locked_slots(
        "FROM slots AS s WHERE s.provider_id = (SELECT provider_id FROM anchor)"
        " AND s.start_time IN (SELECT start_time FROM occurrences)"
    )
}
), bookable AS (
    SELECT * FROM targets AS t WHERE {rules.starts_bookable("t")}
), ready AS (
    SELECT {takeable("bookable")} = :count
       AND (SELECT {rules.holds_within("n")} FROM holds) AS ok
), made AS (
    INSERT INTO series (id, client_id, provider_id, appointment_type_id, interval_weeks,
                        count, policy, first_start, expires_at, created_at)
    SELECT :series_id, :client_id, a.provider_id, NULL, :interval_weeks, :count, :policy,
           a.start_time, :expires_at, :now
      FROM anchor AS a
     WHERE (SELECT ok FROM ready)
    RETURNING id
), claimed AS (
    UPDATE slots SET status = 'reserved', hold_expires_at = :expires_at
     WHERE id IN (SELECT id FROM targets) AND EXISTS (SELECT 1 FROM made)
    RETURNING id, provider_id, start_time, end_time
), inserted AS (
    INSERT INTO reservations
        (id, slot_id, provider_id, client_id, status, start_time, end_time,
         occupied_start, occupied_end, created_at, expires_at, series_id, series_start, seats)
    SELECT gen_random_uuid(), c.id, c.provider_id, :client_id, 'held', c.start_time,
           c.end_time, c.start_time, c.end_time, :now, :expires_at, :series_id,
           c.start_time, 1
      FROM claimed AS c
    RETURNING *
), linked AS (
    INSERT INTO reservation_slots (reservation_id, slot_id, provider_id)
    SELECT id, slot_id, provider_id FROM inserted
    RETURNING 1
), recorded AS (
    {insert_from_sql("inserted", EventType.HELD)}
    RETURNING 1
)
SELECT count(*) AS held FROM inserted
"""

_SERIES = text(SERIES_SQL)


@dataclass(frozen=True)
class Plain:
    """A plain series' terms (no appointment type, one seat)."""

    series_id: uuid.UUID
    client_id: uuid.UUID
    slot_id: uuid.UUID
    interval_weeks: int
    count: int
    policy: str
    now: datetime
    bookable_after: datetime
    expires_at: datetime
    max_holds: int


async def hold_every_week(session: AsyncSession, series: Plain) -> bool:
    """Hold every occurrence in the session's transaction; False (nothing written) when
    one does not pass, for the step path to answer."""
    values = {
        "series_id": series.series_id,
        "client_id": series.client_id,
        "slot_id": series.slot_id,
        "interval_weeks": series.interval_weeks,
        "count": series.count,
        "policy": series.policy,
        "now": series.now,
        "bookable_after": series.bookable_after,
        "expires_at": series.expires_at,
        "max_holds": series.max_holds,
    }
    held = (await session.execute(_SERIES, values)).scalar_one()
    if held:
        wakeup.mark(session)
    return bool(held)
