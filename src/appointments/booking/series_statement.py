"""A weekly series on PostgreSQL in one statement, for the common case: a plain slot or
a type without seats or a daily cap, every occurrence's span (its slots, buffers
included) exists and is open (available: no hold on it, run out or not; no busy time),
every start is past the notice and within the horizon, and the client has room for one
more hold. Then the series, its held occurrences, their links and their events are
written by one statement.

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
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types.rules import BookingRules
from appointments.booking.one_statement import locked_slots, takeable
from appointments.scheduling import rules, wakeup
from appointments.scheduling.events import EventType
from appointments.scheduling.outbox import insert_from_sql
from appointments.scheduling.rules import horizon as core_horizon

SERIES_SQL = f"""
WITH holds AS (
    SELECT live_holds(:client_id, :now) AS n
), anchor AS (
    SELECT s.provider_id, s.start_time, p.timezone AS zone
      FROM slots AS s JOIN providers AS p ON p.id = s.provider_id
     WHERE s.id = :slot_id AND s.status <> 'removed'
), occurrences AS (
    SELECT o.start_time, o.start_time + CAST(:duration AS interval) AS end_time,
           o.start_time - CAST(:before AS interval) AS occupied_start,
           o.start_time + CAST(:duration AS interval) + CAST(:after AS interval)
               AS occupied_end
      FROM anchor AS a CROSS JOIN generate_series(0, :count - 1) AS k
     CROSS JOIN LATERAL (
         SELECT {rules.weeks_later("postgresql", "a.start_time", "k * :interval_weeks", "a.zone")}
                AS start_time
     ) AS o
), targets AS (
    {
    locked_slots(
        "FROM occurrences AS o JOIN slots AS s"
        " ON s.provider_id = (SELECT provider_id FROM anchor)"
        " AND s.start_time >= o.occupied_start AND s.start_time < o.occupied_end"
    )
}
), ready AS (
    SELECT {takeable("targets")} = :count * :span_slots
       AND (SELECT count(*) FROM occurrences AS o
             WHERE {rules.starts_bookable(start="o.start_time")}
               AND {rules.starts_within_horizon("o.start_time")}) = :count
       AND (SELECT {rules.holds_within("n")} FROM holds) AS ok
), made AS (
    INSERT INTO series (id, client_id, provider_id, appointment_type_id, interval_weeks,
                        count, policy, first_start, expires_at, created_at)
    SELECT :series_id, :client_id, a.provider_id, :type_id, :interval_weeks, :count, :policy,
           a.start_time, :expires_at, :now
      FROM anchor AS a
     WHERE (SELECT ok FROM ready)
    RETURNING id
), claimed AS (
    UPDATE slots SET status = 'reserved', hold_expires_at = :expires_at
     WHERE id IN (SELECT id FROM targets) AND EXISTS (SELECT 1 FROM made)
    RETURNING id, provider_id, start_time
), inserted AS (
    INSERT INTO reservations
        (id, slot_id, provider_id, client_id, appointment_type_id, status, start_time,
         end_time, occupied_start, occupied_end, created_at, expires_at, series_id,
         series_start, seats)
    SELECT gen_random_uuid(), c.id, c.provider_id, :client_id, :type_id, 'held',
           o.start_time, o.end_time, o.occupied_start, o.occupied_end, :now, :expires_at,
           :series_id, o.start_time, 1
      FROM occurrences AS o JOIN claimed AS c ON c.start_time = o.start_time
    RETURNING *
), linked AS (
    INSERT INTO reservation_slots (reservation_id, slot_id, provider_id)
    SELECT i.id, c.id, c.provider_id
      FROM inserted AS i JOIN claimed AS c
        ON c.start_time >= i.occupied_start AND c.start_time < i.occupied_end
    RETURNING 1
), recorded AS (
    {insert_from_sql("inserted", EventType.HELD)}
    RETURNING 1
)
SELECT count(*) AS held FROM inserted
"""

_SERIES = text(SERIES_SQL)

# No horizon: a start no later than this.
_NO_HORIZON = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Weekly:
    """A series' terms: who, from which slot, how often, and the occurrences' shape (a
    plain slot, or a type without seats or a daily cap: its length, buffers, notice and
    horizon, from its `BookingRules`)."""

    series_id: uuid.UUID
    client_id: uuid.UUID
    slot_id: uuid.UUID
    interval_weeks: int
    count: int
    policy: str
    now: datetime
    expires_at: datetime
    max_holds: int
    rules: BookingRules

    def values(self) -> dict[str, object]:
        terms = self.rules
        latest = core_horizon(self.now, terms.max_advance)
        return {
            "series_id": self.series_id,
            "client_id": self.client_id,
            "slot_id": self.slot_id,
            "type_id": terms.type_id,
            "interval_weeks": self.interval_weeks,
            "count": self.count,
            "policy": self.policy,
            "now": self.now,
            "bookable_after": rules.bookable_after(self.now, terms.notice),
            "latest": _NO_HORIZON if latest is None else latest,
            "duration": terms.duration,
            "before": terms.buffer_before,
            "after": terms.buffer_after,
            "span_slots": terms.span_slots,
            "expires_at": self.expires_at,
            "max_holds": self.max_holds,
        }


def takes(terms: BookingRules) -> bool:
    """Whether a series of these terms may be held by the statement: no seats (sessions
    are `booking.sessions`'), no daily cap (its day lock is the step path's)."""
    return not terms.books_sessions and terms.max_per_day is None


async def hold_every_week(session: AsyncSession, series: Weekly) -> bool:
    """Hold every occurrence in the session's transaction; False (nothing written) when
    one does not pass, for the step path to answer."""
    held = (await session.execute(_SERIES, series.values())).scalar_one()
    if held:
        wakeup.mark(session)
    return bool(held)
