"""The time-dependent booking rules, each written once.

Every rule is a SQL fragment, made by one function here: the statements written in
SQL (the one-statement reserve and confirm, the listing, the start-time search, the
sweep) put it in their text, and the ORM paths take the very same text as a WHERE
clause (`where`). Where Python must decide the same thing about a row already in
hand (answers, pages), its twin is here too, and `tests/scheduling/test_rules.py`
holds each twin to its SQL over the same cases on both databases.

`slot` / `reservation` name the table or alias the columns belong to ("" for an
unqualified column); `now` names the parameter or expression of the moment.

- A slot is **free**: available, or reserved by a hold that has run out.
- A slot is **held**: reserved by a hold that has not run out.
- A hold is **live** until its `expires_at`; from then on it has **run out** (it
  reads `expired`), whether or not a sweep has written that down yet.
- A reservation is **live** (it occupies its slots): confirmed, or a live hold.
- A client may take one more hold only while it has fewer **live holds** than the
  limit (`max_holds_per_client`; confirmed bookings do not count): `holds_within`,
  over `live_hold_count`, which counts a recurring series' held occurrences as one.
- A start is **bookable** only after the booking notice: later than `now + notice`
  (the service's `min_notice_seconds`, or a type's longer one); a refusal is
  `errors.too_late_to_book`.
- A start lies within the **horizon** when it is at most `now + max_advance` (a
  type's `max_advance_days`; none for a plain slot); a refusal is `errors.too_far_ahead`.
- A recurring occurrence starts at the **same wall-clock time** in the provider's
  zone, whole weeks later (`weeks_later`; NULL / None where that time does not exist
  that day, inside a spring-forward gap).
- A type's **daily cap**: an appointment of the type may start on a day of the
  provider's calendar (midnight to midnight in its zone, 23 or 25 hours across a
  daylight-saving change) only while that day has fewer than `max_per_day` live
  appointments of the type (`day_has_room`); a refusal is `errors.daily_limit_reached`.
  The seats of one group session are one appointment.
- A group **session has room** for n more seats while the seats it has taken plus n
  stay within its capacity (`session_has_room`: the condition of the one UPDATE that
  takes seats). Its **seats left**, as listings show them, are its capacity less its
  live seats (`session_seats_left`). Its slots are occupied from its first live seat
  until its last one ends (`scheduling.seats`).
"""

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import TextClause, bindparam, text

from appointments.db import UTCDateTime, wall_clock_weeks_later
from appointments.scheduling.errors import (
    daily_limit_reached,
    session_full,
    too_far_ahead,
    too_late_to_book,
    too_many_holds,
)
from appointments.settings import Settings


def _of(table: str) -> str:
    return f"{table}." if table else ""


def slot_hold_ran_out(slot: str = "", now: str = ":now") -> str:
    """Still marked reserved, but by a hold that has run out (not yet swept)."""
    s = _of(slot)
    return f"({s}status = 'reserved' AND {s}hold_expires_at <= {now})"


def slot_free(slot: str = "", now: str = ":now") -> str:
    """No booking holds the slot (available, or under a hold that ran out): what an
    edit may withdraw. A new booking needs `slot_open`."""
    return f"({_of(slot)}status = 'available' OR {slot_hold_ran_out(slot, now)})"


def slot_open(slot: str = "", now: str = ":now") -> str:
    """A new booking may take the slot: free, and no busy time of the provider's other
    calendar over it."""
    return f"({slot_free(slot, now)} AND NOT {_of(slot)}busy)"


def slot_not_available(slot: str = "") -> str:
    """Not plainly available: taken, withdrawn, under a hold (live or run out), or
    under busy time. Every slot that is not `slot_open` is one of these, whatever the
    moment, and they are few: the index `ix_slots_provider_id_start_time_not_available`
    holds exactly them, so a search for the slots that are not open reads only these
    (`slot_not_available` AND NOT `slot_open`)."""
    s = _of(slot)
    return f"({s}status <> 'available' OR {s}busy)"


def slot_held(slot: str = "", now: str = ":now") -> str:
    s = _of(slot)
    return f"({s}status = 'reserved' AND {s}hold_expires_at > {now})"


def slot_shown_status(slot: str = "", now: str = ":now") -> str:
    """The status answers show: a free slot under busy time reads `busy`; a slot under
    a run-out hold reads `available`."""
    s = _of(slot)
    return (
        f"CASE WHEN {slot_free(slot, now)} AND {s}busy THEN 'busy'"
        f" WHEN {slot_hold_ran_out(slot, now)} THEN 'available' ELSE {s}status END"
    )


def hold_live(reservation: str = "", now: str = ":now") -> str:
    r = _of(reservation)
    return f"({r}status = 'held' AND {r}expires_at > {now})"


def hold_ran_out(reservation: str = "", now: str = ":now") -> str:
    r = _of(reservation)
    return f"({r}status = 'held' AND {r}expires_at <= {now})"


def reservation_live(reservation: str = "", now: str = ":now") -> str:
    r = _of(reservation)
    return f"({r}status = 'confirmed' OR {hold_live(reservation, now)})"


def service_notice(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.min_notice_seconds)


def bookable_after(now: datetime, notice: timedelta) -> datetime:
    """Starts later than this are far enough ahead to book."""
    return now + notice


def starts_bookable(slot: str = "", after: str = ":bookable_after", *, start: str = "") -> str:
    """`start` names the start's expression when it is not the `start_time` column."""
    return f"{start or _of(slot) + 'start_time'} > {after}"


def horizon(now: datetime, max_advance: timedelta | None) -> datetime | None:
    """The latest start allowed, or None for no limit."""
    return None if max_advance is None else now + max_advance


def starts_within_horizon(start: str = "start_time", latest: str = ":latest") -> str:
    return f"{start} <= {latest}"


# [local midnight, next local midnight) of a moment's day in a zone. SQLite knows no
# zones: there, functions registered on every connection (db.py) compute the same.
_LOCAL_DAY = {
    "postgresql": (
        "(date_trunc('day', {moment} AT TIME ZONE {zone}) AT TIME ZONE {zone})",
        "((date_trunc('day', {moment} AT TIME ZONE {zone}) + interval '1 day')"
        " AT TIME ZONE {zone})",
    ),
    "sqlite": ("tz_day_start({moment}, {zone})", "tz_day_end({moment}, {zone})"),
}


def local_day(dialect: str, moment: str, zone: str = ":zone") -> tuple[str, str]:
    """The provider's calendar day of the SQL time `moment`, as two SQL times."""
    start, end = _LOCAL_DAY[dialect]
    return start.format(moment=moment, zone=zone), end.format(moment=moment, zone=zone)


# The same wall-clock time in a zone, whole weeks later; NULL when that time does not
# exist that day. (OFFSET 0 keeps each step computed once: inlined, the planner would
# repeat the zone conversions; 7 % of a series' start-times page.) SQLite knows no
# zones: a function registered on every connection (db.py) computes the same.
_WEEKS_LATER = {
    "postgresql": (
        "(SELECT CASE WHEN (shifted AT TIME ZONE {zone}) = wall THEN shifted END"
        " FROM (SELECT ({moment} AT TIME ZONE {zone}) + make_interval(weeks => {weeks})"
        " AS wall OFFSET 0) AS w,"
        " LATERAL (SELECT wall AT TIME ZONE {zone} AS shifted OFFSET 0) AS s)"
    ),
    "sqlite": "tz_weeks_later({moment}, {zone}, {weeks})",
}


def weeks_later(dialect: str, moment: str, weeks: str, zone: str = ":zone") -> str:
    return _WEEKS_LATER[dialect].format(moment=moment, weeks=weeks, zone=zone)


# A zone's offsets from UTC differ between any two moments by less than this (they run
# from UTC-12 to UTC+14, 26 hours apart; Samoa skipped a whole day in 2011), so
# `weeks_later(moment, w)`, when it exists, lies at least w weeks less OFFSET_SWING
# after `moment`: a start that much less than w weeks before the provider's last slot,
# or its horizon, cannot have its w-th week's occurrence (`earliest_weeks_later`).
OFFSET_SWING = timedelta(days=2)


def earliest_weeks_later(weeks: int) -> timedelta:
    """`weeks_later(moment, weeks)` is never sooner than `moment` plus this."""
    return timedelta(weeks=weeks) - OFFSET_SWING


# Offsets sampled this far apart see every change, since no zone changes twice within
# a day (the closest two, Asia/Gaza's in 2040, six days 23 hours apart; every zone
# scanned hour by hour for 2026-2045).
_CHANGE_SAMPLES = timedelta(days=1)


def offset_changes(zone: str, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """The changes of the zone's offset from UTC in [start, end]: the instant (UTC, the
    first second of the new offset) and how far the offset moved (new less old)."""
    return [
        change
        for year in range(start.year, end.year + 1)
        for change in _changes_in_year(zone, year)
        if start <= change[0] <= end
    ]


@functools.lru_cache(maxsize=4096)
def _changes_in_year(zone: str, year: int) -> tuple[tuple[datetime, timedelta], ...]:
    """`offset_changes` over one UTC year: sampled a day apart, each change then found
    to the second by halving (under a millisecond a zone and year, once a process)."""
    tz = ZoneInfo(zone)

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(tz).utcoffset()

    found: list[tuple[datetime, timedelta]] = []
    at, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    before = offset(at)
    while at < end:
        step = min(at + _CHANGE_SAMPLES, end)
        after = offset(step)
        if after != before:
            assert before is not None  # aware times in a zone
            assert after is not None
            low, high = at, step  # offset(low) == before != offset(high)
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
                low, high = (middle, high) if offset(middle) == before else (low, middle)
            found.append((high, after - before))
            before = after
        at = step
    return tuple(found)


def weeks_later_pieces(
    zone: str, first: datetime, until: datetime, weeks: int
) -> tuple[tuple[datetime, datetime, timedelta | None], ...]:
    """`weeks_later(moment, weeks)` for every moment in [first, until), as pieces
    (lo, hi, shift): over [lo, hi) it is the moment plus `shift`, or NULL throughout
    (None: the wall-clock time does not exist). Set-based searches (`start_times`) shift
    a whole page's starts by them instead of converting each in the zone.

    The shift changes only where the moment's own offset does (a change in [first,
    until)), or where its wall-clock time `weeks` on crosses a change's old or new local
    time (entering or leaving a spring-forward gap, or the repeated hour a fall-back
    reads as its later instant): each such cut is computed from the changes, the rule
    is read once at each piece's start, and equal neighbours are joined."""
    tz = ZoneInfo(zone)
    later = timedelta(weeks=weeks)
    own = offset_changes(zone, first, until)
    own_offsets = {_offset(tz, first), *(_offset(tz, at) for at, _ in own)}
    cuts = {first, until, *(at for at, _ in own)}
    for at, moved in offset_changes(
        zone, first + later - OFFSET_SWING, until + later + OFFSET_SWING
    ):
        new = _offset(tz, at)
        for local in (at + new - moved, at + new):  # the change's old and new local time
            cuts.update(local - offset - later for offset in own_offsets)
    pieces: list[tuple[datetime, datetime, timedelta | None]] = []
    bounds = sorted(cut for cut in cuts if first <= cut <= until)
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        moved_to = wall_clock_weeks_later(lo, zone, weeks)
        shift = None if moved_to is None else moved_to - lo
        if pieces and pieces[-1][2] == shift:
            pieces[-1] = (pieces[-1][0], hi, shift)
        else:
            pieces.append((lo, hi, shift))
    return tuple(pieces)


def _offset(tz: ZoneInfo, moment: datetime) -> timedelta:
    offset = moment.astimezone(tz).utcoffset()
    assert offset is not None  # an aware time in a zone
    return offset


def day_has_room(
    dialect: str,
    start: str,
    *,
    provider: str = ":provider_id",
    type_id: str = ":type_id",
    cap: str = ":cap",
    zone: str = ":zone",
    now: str = ":now",
    excluding: str | None = None,
) -> str:
    """The provider's day of `start` has fewer than `cap` live appointments of the
    type (`excluding` one reservation: a move does not count against itself)."""
    day_start, day_end = local_day(dialect, start, zone)
    others = f" AND r.id <> {excluding}" if excluding else ""
    return (
        "(SELECT count(DISTINCT coalesce(r.session_id, r.id)) FROM reservations AS r"
        f" WHERE r.provider_id = {provider} AND r.appointment_type_id = {type_id}"
        f" AND {reservation_live('r', now)}{others}"
        f" AND r.start_time >= {day_start} AND r.start_time < {day_end}) < {cap}"
    )


def live_hold_count(reservation: str = "") -> str:
    """An aggregate over a client's live holds: how many count against the hold limit
    (the held occurrences of one series count once)."""
    r = _of(reservation)
    return f"count(DISTINCT coalesce({r}series_id, {r}id))"


def session_has_room(session: str = "", seats: str = ":seats") -> str:
    s = _of(session)
    return f"({s}seats_taken + {seats} <= {s}capacity)"


def session_seats_left(session: str, now: str = ":now") -> str:
    """Seats of the session (a `group_sessions` alias) not taken by a live seat."""
    return (
        f"({session}.capacity - (SELECT coalesce(sum(seat.seats), 0) FROM reservations AS seat"
        f" WHERE seat.session_id = {session}.id AND {reservation_live('seat', now)}))"
    )


def holds_within(live_holds: str, limit: str = ":max_holds") -> str:
    """The client's live holds (an SQL expression counting them) leave room for one more."""
    return f"{live_holds} < {limit}"


def where(fragment: str, now: datetime | None = None, **moments: datetime) -> TextClause:
    """A rule's fragment (made with its default parameter names, `:now`,
    `:bookable_after`) as an ORM condition bound to those moments; the binds are
    unique, so one statement can hold several rules (or one rule twice)."""
    if now is not None:
        moments["now"] = now
    return text(fragment).bindparams(
        *(
            bindparam(name, value, type_=UTCDateTime(), unique=True)
            for name, value in moments.items()
        )
    )


# --- Python twins, for a row already in hand ---------------------------------------


def slot_hold_has_run_out(status: str, hold_expires_at: datetime | None, now: datetime) -> bool:
    return status == "reserved" and hold_expires_at is not None and hold_expires_at <= now


def slot_is_free(status: str, hold_expires_at: datetime | None, now: datetime) -> bool:
    return status == "available" or slot_hold_has_run_out(status, hold_expires_at, now)


def slot_is_open(status: str, hold_expires_at: datetime | None, busy: bool, now: datetime) -> bool:
    return slot_is_free(status, hold_expires_at, now) and not busy


def hold_is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    return status == "held" and expires_at > now


def hold_has_run_out(status: str, expires_at: datetime, now: datetime) -> bool:
    return status == "held" and expires_at <= now


def reservation_is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    return status == "confirmed" or hold_is_live(status, expires_at, now)


def may_hold(live_holds: int, limit: int) -> bool:
    """`holds_within`, for a count in hand."""
    return live_holds < limit


def check_hold_limit(live_holds: int, limit: int) -> None:
    """`may_hold`: TooManyHolds unless there is room."""
    if not may_hold(live_holds, limit):
        raise too_many_holds(limit)


def is_bookable(start: datetime, now: datetime, notice: timedelta) -> bool:
    return start > bookable_after(now, notice)


def check_notice(start: datetime, now: datetime, notice: timedelta) -> None:
    """`starts_bookable`, for a start in hand: TooLateToBook unless it is."""
    if not is_bookable(start, now, notice):
        raise too_late_to_book(notice)


def same_time_weeks_later(moment: datetime, zone: str, weeks: int) -> datetime | None:
    """`weeks_later`, for a moment in hand (UTC), or None where the time does not exist."""
    return wall_clock_weeks_later(moment, zone, weeks)


def check_horizon(start: datetime, now: datetime, max_advance: timedelta | None) -> None:
    """`starts_within_horizon`, for a start in hand: TooFarAhead unless it is."""
    latest = horizon(now, max_advance)
    if latest is not None and not start <= latest:
        assert max_advance is not None
        raise too_far_ahead(max_advance)


def check_session_has_room(seats_left: int, asked: int) -> None:
    """`session_has_room`'s refusal: SessionFull, saying how many seats are left."""
    if asked > seats_left:
        raise session_full(seats_left)


def check_day_has_room(has_room: bool, cap: int) -> None:
    """`day_has_room`'s answer, as the refusal: DailyLimitReached unless there is room."""
    if not has_room:
        raise daily_limit_reached(cap)
