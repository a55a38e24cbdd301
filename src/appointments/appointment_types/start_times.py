"""Bookable start times of an appointment type, computed by the database.

Over the provider's free slots in start order, `lead(start_time, n - 1)` is the
start of the n-th free slot from here. Slots are unique per start and sit on
one grid, so when that start lies exactly (n - 1) slot lengths ahead, all n
slots of the span exist and are free: an island long enough for the
appointment and its buffers. The appointment itself begins `before` slots into
the span (`lead(.., before)`). The scan starts on the index
`(provider_id, start_time)` at the page's first possible span, and the LIMIT
stops it as soon as the page is full: a page costs the same whatever the table holds.
"""

import functools
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, Interval, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from appointments.appointment_types.rules import BookingRules
from appointments.db import UTCDateTime
from appointments.pagination import Keyset
from appointments.scheduling import rules as core

# The span's last free slot lies exactly (n - 1) slot lengths after its first.
_WHOLE_SPAN = {
    "postgresql": "last_start = first_start + :span_gap",
    "sqlite": "unixepoch(last_start) - unixepoch(first_start) = :span_gap_seconds",
}


@dataclass(frozen=True)
class StartTime:
    slot_id: uuid.UUID
    start_time: datetime
    seats_left: int = 1


@dataclass(frozen=True)
class Repeat:
    """Weekly occurrences after the first: `count` in all, every `interval_weeks`."""

    count: int
    interval_weeks: int = 1


@dataclass(frozen=True)
class Search:
    """Which anchors qualify: `start_from` <= start < `start_before`, start > `after`
    (notice), start <= `latest` (horizon); the day cap is applied when `zone` is given;
    with `repeat`, only anchors whose every later occurrence (the same wall-clock time
    in `zone`, whole weeks on) is bookable too."""

    start_from: datetime | None = None
    start_before: datetime | None = None
    after: datetime | None = None
    latest: datetime | None = None
    zone: str | None = None
    repeat: Repeat | None = None


def search_for(
    rules: BookingRules,
    zone: str,
    start_from: datetime | None,
    start_before: datetime | None,
    now: datetime,
    repeat: Repeat | None = None,
) -> Search:
    """The search a listing of the type's start times makes at `now`: its range, the
    type's notice and horizon, its daily cap in the provider's zone, and the
    occurrences of a series when `repeat` is given."""
    return Search(
        start_from=start_from,
        start_before=start_before,
        after=rules.bookable_after(now),
        latest=rules.horizon(now),
        zone=zone,
        repeat=repeat,
    )


async def find(
    session: AsyncSession,
    provider_id: uuid.UUID,
    rules: BookingRules,
    search: Search,
    now: datetime,
    *,
    limit: int,
    cursor: Keyset | None = None,
    moving: uuid.UUID | None = None,
) -> list[StartTime]:
    """Up to `limit` bookable starts in start order, after `cursor` when given; the
    slots of reservation `moving` count as free (the starts it could be moved to).

    One statement, but for a series, which checks a chunk of starts at a time
    (`Chunks`)."""
    found: list[StartTime] = []
    chunks = Chunks.of(rules, search, limit, cursor)
    while True:
        sql, params, typed = compose_text(
            session.get_bind().dialect.name,
            provider_id,
            rules,
            search,
            now,
            limit=chunks.wanted,
            cursor=chunks.after,
            moving=moving,
            chunk=chunks.size,
        )
        statement = (
            text(sql)
            .bindparams(*(bindparam(name, type_=kind()) for name, kind in typed))
            .columns(anchor_id=Uuid(), anchor_start=UTCDateTime())
        )
        checked_to: datetime | None = None  # the chunk's last row: how far, how many
        checked: int | None = None
        passed = 0
        for row in (await session.execute(statement, params)).all():
            if row[0] is None:
                checked_to, checked = row[1], row[2]
            else:
                found.append(StartTime(slot_id=row[0], start_time=row[1], seats_left=row[2]))
                passed += 1
        if not chunks.go_on(passed, checked, checked_to):
            return found


@dataclass
class Chunks:
    """The chunks of starts a search checks, a statement each: one for a plain search.
    A series statement (`_series_starts`, `_chunked_series_starts`) checks at most
    `size` starts after `after` and answers, beside the starts that pass, how many it
    checked and up to which start: after a full chunk with the page not full, the next
    one goes on from there, twice as large (`chunk_size`), so that a page whose starts
    mostly fail takes few statements. `find` and the JSON page (`start_page`) run them."""

    wanted: int  # starts still wanted: the next statement's limit
    after: Keyset | None  # the page's cursor, then the last start checked
    size: int  # the next chunk's
    rounds: int = 0

    @classmethod
    def of(cls, rules: BookingRules, search: Search, limit: int, cursor: Keyset | None) -> "Chunks":
        """The first chunk: the page's worth, and the starts a later week's missing hour
        near the first start will refuse (`_refused_early`)."""
        return cls(limit, cursor, chunk_size(limit) + _refused_early(rules, search, limit, cursor))

    def go_on(self, passed: int, checked: int | None, checked_to: datetime | None) -> bool:
        """After a chunk that listed `passed` starts and checked `checked` up to
        `checked_to` (None: not a series), whether another follows; the next one if so."""
        if checked is None or checked_to is None or checked < self.size:
            return False
        if passed >= self.wanted:
            return False
        self.wanted -= passed
        self.after = Keyset(at=checked_to, id=uuid.UUID(int=0))  # only its time orders starts
        self.rounds += 1
        self.size = chunk_size(self.wanted, self.rounds)
        return True


def _first_start(search: Search, cursor: Keyset | None) -> datetime | None:
    """The earliest start the search allows after the cursor, where it has a bound."""
    bounds = [b for b in (search.start_from, search.after) if b is not None]
    if cursor is not None:
        bounds.append(cursor.at)
    return max(bounds) if bounds else None


def _refused_early(rules: BookingRules, search: Search, limit: int, cursor: Keyset | None) -> int:
    """How many of a series' first `limit` starts a later week refuses for its time not
    existing there (a spring-forward gap) or lying off the slots' grid, if the provider's
    slots run back to back from the first start: a first chunk that much larger fills
    such a page in one statement, not two (about one Berlin page in nine). A guess,
    which changes no answer."""
    first = _first_start(search, cursor)
    if search.repeat is None or search.zone is None or first is None:
        return 0
    reach = first + rules.slot_length * (limit + rules.span_slots)
    refused = timedelta(0)
    for lo, hi in _refusing_pieces(search.zone, _day_of(first), search.repeat, rules.slot_length):
        refused += max(min(hi, reach) - max(lo, first), timedelta(0))
    return math.ceil(refused / rules.slot_length)


@functools.lru_cache(maxsize=1024)
def _refusing_pieces(
    zone: str, day: datetime, repeat: Repeat, slot_length: timedelta
) -> tuple[tuple[datetime, datetime], ...]:
    """The pieces of `_week_pieces` whose time does not exist or lies off the slots'
    grid (none in most zones and days), as (start, end)."""
    return tuple(
        (lo, hi)
        for _, lo, hi, shift in _week_pieces(zone, day, repeat)
        if shift is None or shift % slot_length
    )


@dataclass(frozen=True)
class _Shape:
    """What the text of a search depends on (its values are all parameters)."""

    dialect: str
    moving: bool
    lower: bool
    upper: bool
    start_from: bool
    after: bool
    start_before: bool
    latest: bool
    cursor: bool
    capped: bool
    repeats: bool = False
    sessions: bool = False
    # Written into the text, not bound (`_with_repeat`).
    repeat_count: int = 0
    repeat_interval: int = 0
    # PostgreSQL's series text with the weeks checked occurrence by occurrence, not shifted.
    by_occurrence: bool = False


def compose_text(
    dialect: str,
    provider_id: uuid.UUID,
    rules: BookingRules,
    search: Search,
    now: datetime,
    *,
    limit: int,
    cursor: Keyset | None = None,
    moving: uuid.UUID | None = None,
    chunk: int | None = None,
    by_occurrence: bool = False,
) -> tuple[str, dict[str, object], list[tuple[str, Callable[[], TypeEngine[Any]]]]]:
    """The search's SQL text (named parameters), values, and the type of each
    parameter SQLAlchemy must be told (`find`); the statement sent straight to asyncpg
    needs only the first two. Apart from running it, so the benchmark can EXPLAIN it.
    The text depends only on which bounds are given, so it is made once per shape.
    `by_occurrence` asks for PostgreSQL's series text that checks every later week
    occurrence by occurrence, which a search under a daily cap takes anyway."""
    span_slots = rules.span_slots
    gap = rules.slot_length * (span_slots - 1)
    params: dict[str, object] = {
        "provider_id": provider_id,
        "now": now,
        "before_n": rules.buffer_before // rules.slot_length,
        "last_n": span_slots - 1,
        "limit": limit,
        "capacity": rules.capacity,
    }
    typed: list[tuple[str, Callable[[], TypeEngine[Any]]]] = [
        ("provider_id", Uuid),
        ("now", UTCDateTime),
    ]
    if dialect == "postgresql":
        params["span_gap"] = gap
        typed.append(("span_gap", Interval))
    else:
        params["span_gap_seconds"] = int(gap.total_seconds())
    if moving is not None:
        params["moving"] = moving
        typed.append(("moving", Uuid))
    # A series is searched in the provider's zone (its weeks are wall-clock weeks).
    repeat = search.repeat if search.zone is not None else None
    reach = None if repeat is None else _reach(repeat)

    def time_param(name: str, value: datetime) -> None:
        params[name] = value
        typed.append((name, UTCDateTime))

    first_start = _first_start(search, cursor)
    if first_start is not None:
        time_param("scan_from", first_start - rules.buffer_before)
    upper: datetime | None = search.start_before
    if search.latest is not None:
        just_after_latest = search.latest + timedelta(microseconds=1)
        if reach is not None:
            # A series' last occurrence must be within the horizon too.
            just_after_latest -= reach
        upper = just_after_latest if upper is None else min(upper, just_after_latest)
    if upper is not None:
        time_param("scan_to", upper + rules.duration + rules.buffer_after)
    for name in ("start_from", "after", "start_before", "latest"):
        value = getattr(search, name)
        if value is not None:
            time_param(name, value)
    if cursor is not None:
        # Start times are unique per provider, so the time alone orders the keyset.
        time_param("cursor_at", cursor.at)
    capped = search.zone is not None and rules.max_per_day is not None
    capped = capped and rules.type_id is not None
    if capped:
        params.update(zone=search.zone, type_id=rules.type_id, cap=rules.max_per_day)
    sessions = rules.books_sessions and moving is None
    if capped or sessions:
        params["type_id"] = rules.type_id
        typed.append(("type_id", Uuid))
    if reach is not None:
        params.update(zone=search.zone, span_slots=span_slots)
        # How far before the provider's last slot the scan ends (`_BEFORE_LAST_SLOT`).
        if dialect == "postgresql":
            params["scan_end_back"] = reach - gap
            typed.append(("scan_end_back", Interval))
        else:
            params["scan_end_back_seconds"] = int((reach - gap).total_seconds())
        params["chunk"] = chunk_size(limit) if chunk is None else chunk
        params["slot_seconds"] = int(rules.slot_length.total_seconds())
        before, after = rules.buffer_before, rules.duration + rules.buffer_after
        if dialect == "postgresql":
            params["before_gap"] = before
            typed.append(("before_gap", Interval))
        if dialect == "postgresql" and not sessions:
            assert search.zone is not None
            assert repeat is not None
            params["slot_length"] = rules.slot_length
            typed.append(("slot_length", Interval))
            # Without a first start, or under a daily cap, every week goes occurrence by
            # occurrence (`_series_starts`).
            by_occurrence = by_occurrence or first_start is None or capped
            if not by_occurrence:
                assert first_start is not None
                _piece_params(params, typed, rules, search.zone, first_start, repeat)
        if dialect == "postgresql" and (sessions or by_occurrence):
            params["after_gap"] = after
            typed.append(("after_gap", Interval))
        elif dialect == "sqlite":
            before_seconds, after_seconds = before.total_seconds(), after.total_seconds()
            params.update(before_seconds=int(before_seconds), after_seconds=int(after_seconds))
    shape = _Shape(
        dialect,
        moving is not None,
        first_start is not None,
        upper is not None,
        search.start_from is not None,
        search.after is not None,
        search.start_before is not None,
        search.latest is not None,
        cursor is not None,
        capped,
        repeat is not None,
        sessions,
        repeat.count if repeat else 0,
        repeat.interval_weeks if repeat else 0,
        dialect == "postgresql" and repeat is not None and not sessions and by_occurrence,
    )
    return _text(shape), params, typed


# How far from the day of a page's first possible start its later weeks are shifted
# (`_series_starts`); a chunk's starts beyond wait for the next one.
_SHIFTED_STRETCH = timedelta(days=28)


def _piece_params(
    params: dict[str, object],
    typed: list[tuple[str, Callable[[], TypeEngine[Any]]]],
    rules: BookingRules,
    zone: str,
    shifts_from: datetime,
    repeat: Repeat,
) -> None:
    """The shifted weeks' parameters (`_series_starts`): each later week's pieces over
    the stretch from the day of the first start the search allows, and the span's
    length."""
    day = _day_of(shifts_from)
    weeks, starts, ends, shifts = _piece_arrays(zone, day, repeat)
    params.update(
        piece_weeks=weeks,
        piece_starts=starts,
        piece_ends=ends,
        piece_shifts=shifts,
        shifts_until=day + _SHIFTED_STRETCH,
        span_length=rules.slot_length * rules.span_slots,
    )
    typed.extend(
        (
            ("piece_weeks", lambda: ARRAY(Integer())),
            ("piece_starts", lambda: ARRAY(BigInteger())),
            ("piece_ends", lambda: ARRAY(BigInteger())),
            ("piece_shifts", lambda: ARRAY(BigInteger())),
            ("shifts_until", UTCDateTime),
            ("span_length", Interval),
        )
    )


def _day_of(moment: datetime) -> datetime:
    """The UTC day a moment lies in: where the shifted weeks' pieces begin, so that
    every search of a day shares them."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), UTC)


@functools.lru_cache(maxsize=1024)
def _week_pieces(
    zone: str, day: datetime, repeat: Repeat
) -> tuple[tuple[int, datetime, datetime, timedelta | None], ...]:
    """`core.weeks_later_pieces` of every later week k over [day, day +
    _SHIFTED_STRETCH), as (k, start, end, shift); made once a zone, day and series in a
    process (a few dozen pieces)."""
    until = day + _SHIFTED_STRETCH
    return tuple(
        (k, lo, hi, shift)
        for k in range(1, repeat.count)
        for lo, hi, shift in core.weeks_later_pieces(zone, day, until, k * repeat.interval_weeks)
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


@functools.lru_cache(maxsize=1024)
def _piece_arrays(
    zone: str, day: datetime, repeat: Repeat
) -> tuple[list[int], list[int], list[int], list[int | None]]:
    """`_week_pieces` as the statement takes them: four arrays of integers (the week's
    number; the piece's start and end, seconds since 1970; its shift in seconds). Every
    cut lies on a whole second (tzdata's changes and offsets do). Integers, not times:
    asyncpg checks and encodes each element of an array, and a time costs several
    times an integer (~40 us a page for ~20 pieces); and a shift of seconds is made an
    interval of hours, never of calendar days."""
    pieces = _week_pieces(zone, day, repeat)
    return (
        [k for k, _, _, _ in pieces],
        [(lo - _EPOCH) // _SECOND for _, lo, _, _ in pieces],
        [(hi - _EPOCH) // _SECOND for _, _, hi, _ in pieces],
        [None if shift is None else shift // _SECOND for _, _, _, shift in pieces],
    )


def _reach(repeat: Repeat) -> timedelta:
    """How far after its first occurrence a series' last one lies, at the least."""
    return core.earliest_weeks_later((repeat.count - 1) * repeat.interval_weeks)


# A series' scan stops where no start can have its last occurrence: that far before the
# provider's last slot (whose start the backward index scan finds at once), and the
# span's length on, so that every start before it still sees its whole span. Without
# it, a page near the end of the provider's slots (or a horizon shorter than the
# series) scanned on to the end, testing every start's later weeks one by one.
_BEFORE_LAST_SLOT = {
    "postgresql": (
        "start_time <= (SELECT max(l.start_time) FROM slots AS l"
        " WHERE l.provider_id = :provider_id) - CAST(:scan_end_back AS interval)"
    ),
    "sqlite": (
        "start_time <= time_plus((SELECT max(l.start_time) FROM slots AS l"
        " WHERE l.provider_id = :provider_id), -:scan_end_back_seconds)"
    ),
}

# Each free slot with the start of the slot `before_n` on (the anchor) and `last_n` on.
_RUN = """
                SELECT start_time AS first_start,
                       lead(id, :before_n) OVER w AS anchor_id,
                       lead(start_time, :before_n) OVER w AS anchor_start,
                       lead(start_time, :last_n) OVER w AS last_start
                  FROM slots
                 WHERE {where}
                WINDOW w AS (ORDER BY start_time)
            """


@functools.cache
def _text(shape: _Shape) -> str:
    usable = core.slot_open()
    if shape.moving:
        usable = (
            f"({usable} OR (status <> 'removed' AND id IN (SELECT slot_id FROM reservation_slots"
            " WHERE reservation_id = :moving)))"
        )
    scan_where = [f"provider_id = :provider_id AND {usable}"]
    if shape.lower:
        scan_where.append("start_time >= :scan_from")
    if shape.upper:
        scan_where.append("start_time < :scan_to")
    if shape.repeats:
        scan_where.append(_BEFORE_LAST_SLOT[shape.dialect])
    start_bounds = []
    for given, condition in (
        (shape.start_from, "anchor_start >= :start_from"),
        (shape.after, core.starts_bookable(start="anchor_start", after=":after")),
        (shape.start_before, "anchor_start < :start_before"),
        (shape.latest, core.starts_within_horizon("anchor_start")),
        (shape.cursor, "anchor_start > :cursor_at"),
    ):
        if given:
            start_bounds.append(condition)
    anchor_where = [_WHOLE_SPAN[shape.dialect], *start_bounds]
    if shape.capped:
        anchor_where.append(core.day_has_room(shape.dialect, "anchor_start"))
    run = _RUN.format(where=" AND ".join(scan_where))
    if shape.repeats and shape.sessions:
        return _with_repeat(shape, _group_series_starts(shape, run, anchor_where, start_bounds))
    if shape.repeats and shape.dialect == "postgresql":
        return _with_repeat(shape, _series_starts(shape, run, anchor_where, usable))
    if shape.repeats:
        return _with_repeat(shape, _chunked_series_starts(shape, run, anchor_where))
    free = f"""
            SELECT anchor_id, anchor_start, CAST(:capacity AS integer) AS seats_left FROM (
                {run}
            ) AS run
            WHERE {" AND ".join(anchor_where)}
            ORDER BY first_start
            LIMIT :limit
            """
    if not shape.sessions:
        return free
    # A group type: also the open sessions of the type with a seat left, by the same
    # bounds (no day cap: joining adds no session). A session whose every seat has run
    # out has free slots, so the first branch lists it; this one needs a live seat.
    return f"""
            SELECT anchor_id, anchor_start, seats_left FROM (
                SELECT * FROM ({free}) AS free_starts
                UNION ALL
                {_open_sessions(start_bounds)}
            ) AS found
            ORDER BY anchor_start
            LIMIT :limit
            """


# The most starts a series statement checks (on SQLite, each is probed).
_MOST_CHUNK = 400


def chunk_size(limit: int, rounds: int = 0) -> int:
    """Starts a series statement checks at a time: first the page's worth (a page whose
    starts all pass takes one statement), then twice the last chunk's, up to
    `_MOST_CHUNK`, so that a page whose starts mostly fail takes few statements."""
    return min(max(limit, 1) << rounds, max(limit, _MOST_CHUNK))


def _chunked_series_starts(shape: _Shape, run: str, anchor_where: list[str]) -> str:
    """SQLite: of the first `chunk` starts bookable themselves, those whose every later
    occurrence is bookable too (`_every_occurrence_bookable`), and a last row without a
    slot holding the chunk's last start and its size. SQLite sorts the whole scanned
    range before any LIMIT, so checked in one statement every start up to the scan's
    end was probed week by week (p99 813-903 ms a page over 3,840 slots); this way only
    a chunk's are, and `find` goes on after a full chunk while the page is not."""
    return f"""
            WITH chunk AS (
                SELECT anchor_id, anchor_start, first_start FROM ({run}) AS run
                 WHERE {" AND ".join(anchor_where)}
                 ORDER BY first_start
                 LIMIT :chunk
            )
            SELECT anchor_id, anchor_start, seats_left FROM (
                SELECT anchor_id, anchor_start, seats_left FROM (
                    SELECT anchor_id, anchor_start, CAST(:capacity AS integer) AS seats_left
                      FROM chunk
                     WHERE {_every_occurrence_bookable(shape)}
                     ORDER BY first_start
                     LIMIT :limit
                )
                UNION ALL
                SELECT NULL, max(anchor_start), count(*) FROM chunk
            ) AS found
            ORDER BY anchor_id IS NULL, anchor_start
            """


def _with_repeat(shape: _Shape, text: str) -> str:
    """The series' count and interval written into the text (two small integers: at most
    51 x 4 texts). As parameters, the planner priced `generate_series(1, $n - 1)` at
    1,000 rows in a generic plan, so it never looked cheaper than a custom one, and
    PostgreSQL planned every page anew: 1.0-1.4 ms of planning for 0.9 ms of execution
    (one backend, a page of 12 weeks: 2.4 ms of CPU, 0.8-0.9 with the generic plan
    kept; docs/benchmarks.md)."""
    return text.replace(":repeat_count", str(int(shape.repeat_count))).replace(
        ":repeat_interval", str(int(shape.repeat_interval))
    )


def _open_sessions(start_bounds: list[str]) -> str:
    """The type's sessions with a live seat and a seat left, as starts, by the bounds."""
    bounds = " AND ".join(["seats_left > 0", "seats_left < capacity", *start_bounds])
    return f"""
                SELECT anchor_id, anchor_start, seats_left FROM (
                    SELECT gs.slot_id AS anchor_id, gs.start_time AS anchor_start,
                           gs.capacity AS capacity,
                           {core.session_seats_left("gs")} AS seats_left
                      FROM group_sessions AS gs
                     WHERE gs.provider_id = :provider_id AND gs.appointment_type_id = :type_id
                       AND gs.seats_taken > 0
                ) AS open_sessions
                WHERE {bounds}
            """


_LEAST = {"postgresql": "LEAST({a}, {b})", "sqlite": "min({a}, {b})"}


def _group_series_starts(
    shape: _Shape, run: str, anchor_where: list[str], start_bounds: list[str]
) -> str:
    """A group type's series: starts where every occurrence has a seat, each either a
    whole free span (within the day cap) or an open session of the type with a seat
    left, and `seats_left` the fewest any occurrence has. Per-occurrence probes on both
    databases (no set-based page: group series are the rare search)."""
    session_at = f"""(SELECT {core.session_seats_left("gs")} AS seats, gs.capacity AS capacity
                        FROM group_sessions AS gs
                       WHERE gs.provider_id = :provider_id
                         AND gs.appointment_type_id = :type_id
                         AND gs.seats_taken > 0 AND gs.start_time = o.occ)"""
    open_seats = f"(SELECT j.seats FROM {session_at} AS j WHERE j.seats < j.capacity)"
    occurrences = _OCCURRENCES[shape.dialect].format(
        occurrence=core.weeks_later(shape.dialect, "found.anchor_start", "ks.k * :repeat_interval")
    )
    free_ok = [
        _span_open_at_occurrence(shape.dialect),
        _on_grid(shape.dialect, "found.anchor_start"),
    ]
    if shape.capped:
        free_ok.append(core.day_has_room(shape.dialect, "o.occ"))
    seated = f"(({' AND '.join(free_ok)}) OR coalesce({open_seats}, 0) > 0)"
    bookable = [seated]
    if shape.latest:
        bookable.append(core.starts_within_horizon("o.occ"))
    refused = f"o.occ IS NULL OR NOT ({' AND '.join(bookable)})"
    fewest = f"(SELECT min(coalesce({open_seats}, :capacity)) FROM {occurrences})"
    least = _LEAST[shape.dialect].format(a="found.seats_left", b=f"coalesce({fewest}, :capacity)")
    return f"""
            SELECT anchor_id, anchor_start, {least} AS seats_left FROM (
                SELECT anchor_id, anchor_start, CAST(:capacity AS integer) AS seats_left
                  FROM ({run}) AS run
                 WHERE {" AND ".join(anchor_where)}
                UNION ALL
                {_open_sessions(start_bounds)}
            ) AS found
            WHERE NOT EXISTS (SELECT 1 FROM {occurrences} WHERE {refused})
            ORDER BY anchor_start
            LIMIT :limit
            """


def _series_starts(shape: _Shape, run: str, anchor_where: list[str], usable: str) -> str:
    """PostgreSQL: starts whose every occurrence is bookable, set-based. The first
    `chunk` starts that are bookable themselves (`candidates`) have their later weeks
    checked together, one of two ways:

    - **shifted**: the service cuts each later week into pieces over which the
      wall-clock rule moves a start by one shift (`core.weeks_later_pieces`, over the
      four weeks from the day of the search's first start: `:shifts_until`), so no zone
      is consulted here. A candidate passes when, in each week's piece it lies in, its
      span moved by the piece's shift lies where slot rows exist (`slot_runs`, a few
      rows a piece: `uncovered` is where a piece has none, or the whole piece where its
      time does not exist or lies off the slots' grid) and holds no slot a booking
      cannot take (the index of slots not available, `later_taken`: few rows too), and
      its last occurrence is within the horizon. No free slot of a later week is read,
      where scanning them read every one (~1,100 rows a page of 12 weeks, 3x a plain
      page's cost). Candidates past `:shifts_until` wait for the next chunk.
    - **occurrence by occurrence** (`shape.by_occurrence`: under a daily cap, which
      counts each occurrence's day, or without a first start): each candidate's
      occurrences by `core.weeks_later`; each occurrence's span must lie in one of the
      week's runs (`week_runs`, over the k-th occurrences of the first and the last
      candidate, back-to-back runs joined) and hold none of its slots not open
      (`week_taken`).

    The answer is the candidates that pass (at most `limit`) and a last row without a
    slot holding the start checked to and how many starts were checked (the chunk's
    size where some wait): after a full chunk with the page not full, the next chunk
    goes on from there (`Chunks`). (Probing the starts after a refusal one by one, as
    this did, cost 11 ms a page where one slot in 20 was booked: most candidates of 12
    weeks fail somewhere.)
    """
    candidates = f"""
            WITH candidates AS MATERIALIZED (
                SELECT anchor_id, anchor_start, first_start FROM ({run}) AS run
                 WHERE {" AND ".join(anchor_where)}
                 ORDER BY first_start
                 LIMIT :chunk
            ),"""
    if shape.by_occurrence:
        return candidates + _by_occurrence(shape, usable)
    before = "CAST(:before_gap AS interval)"
    span_length = "CAST(:span_length AS interval)"
    # Each piece's stretch of the candidates' first starts, moved by its shift: the runs
    # of slot rows there (the one holding its start, then those starting inside), as +1
    # at a run's start and -1 at its end, and the slots there no booking may take.
    stretch_lo = "p.stretch_lo + p.shift"
    stretch_hi = f"p.stretch_hi + p.shift + {span_length}"
    # The first starts whose span a slot not open of a piece lies in: the slot's start
    # moved back by the piece's shift and by 0 .. n - 1 slots (one grid: a piece is
    # shifted only by whole slots), looked up by hash, not compared candidate by candidate.
    taken_at = "s.start_time - p.shift - j.j * CAST(:slot_length AS interval)"
    refusals = [
        "EXISTS (SELECT FROM uncovered AS u WHERE u.piece_lo <= c.first_start"
        " AND u.piece_hi > c.first_start"
        f" AND u.lo < c.first_start + {span_length} AND u.hi > c.first_start)",
        "c.first_start IN (SELECT at FROM later_taken)",
    ]
    if shape.latest:
        last_occurrence = "c.anchor_start + p.shift"
        refusals.append(
            "EXISTS (SELECT FROM pieces AS p WHERE p.k = :repeat_count - 1"
            " AND p.lo <= c.first_start AND p.hi > c.first_start"
            f" AND NOT {core.starts_within_horizon(last_occurrence)})"
        )
    checked = "anchor_start < :shifts_until"
    return f"""{candidates}
            span AS MATERIALIZED (
                SELECT min(first_start) AS lo, max(first_start) AS hi FROM candidates
                 WHERE {checked}
            ),
            pieces AS MATERIALIZED (
                -- Each later week's pieces the checked candidates lie in, as first starts
                -- [lo, hi), and the stretch of them there; a piece is usable when its time
                -- exists and it moves starts by whole slots (or every occurrence would lie
                -- between two: `_on_grid`).
                SELECT p.k, p.lo - {before} AS lo, p.hi - {before} AS hi, p.shift,
                       greatest(p.lo - {before}, sp.lo) AS stretch_lo,
                       least(p.hi - {before}, sp.hi + CAST(:slot_length AS interval))
                           AS stretch_hi,
                       p.usable
                  FROM span AS sp
                 CROSS JOIN (
                     SELECT k, to_timestamp(lo) AS lo, to_timestamp(hi) AS hi,
                            make_interval(secs => shift) AS shift,
                            coalesce(shift % :slot_seconds = 0, false) AS usable
                       FROM unnest(CAST(:piece_weeks AS integer[]),
                                   CAST(:piece_starts AS bigint[]),
                                   CAST(:piece_ends AS bigint[]),
                                   CAST(:piece_shifts AS bigint[])) AS q(k, lo, hi, shift)
                 ) AS p
                 WHERE p.lo - {before} <= sp.hi AND p.hi - {before} > sp.lo
            ),
            swept AS MATERIALIZED (
                -- The usable pieces whose stretch no one run holds whole (most are held:
                -- a week's slots back to back), which the sweep reads run by run.
                SELECT p.k, p.lo, p.hi, p.shift, p.stretch_lo, p.stretch_hi FROM pieces AS p
                 WHERE p.usable AND NOT EXISTS (
                     SELECT FROM ({_holding_run(stretch_lo)}) AS h
                      WHERE h.ends >= {stretch_hi}
                 )
            ),
            later_runs AS (
                SELECT p.k, p.lo AS piece_lo, p.hi AS piece_hi,
                       p.stretch_hi + {span_length} AS stretch_end, e.at, e.d
                  FROM swept AS p
                 CROSS JOIN LATERAL ({_runs_over(stretch_lo, stretch_hi)}) AS r
                 CROSS JOIN LATERAL (VALUES (greatest(r.starts - p.shift, p.stretch_lo), 1),
                                            (r.ends - p.shift, -1)) AS e(at, d)
                UNION ALL
                SELECT k, lo, hi, stretch_hi + {span_length}, stretch_lo, 0 FROM swept
            ),
            uncovered AS MATERIALIZED (
                -- Where a piece has no slot rows: between two of its events whose running
                -- sum is 0, or after its last, within the stretch of its candidates' spans
                -- (each candidate scans these rows: the tail after a long run's end would
                -- be one a piece); and the whole of a piece not usable.
                SELECT piece_lo, piece_hi, lo, coalesce(hi, 'infinity') AS hi FROM (
                    SELECT piece_lo, piece_hi, stretch_end, at AS lo, lead(at) OVER o AS hi,
                           sum(d) OVER o AS runs
                      FROM later_runs
                    WINDOW o AS (PARTITION BY k, piece_lo ORDER BY at, d
                                 ROWS UNBOUNDED PRECEDING)
                ) AS x
                WHERE runs < 1 AND (hi IS NULL OR hi > lo) AND lo < stretch_end
                UNION ALL
                SELECT lo, hi, '-infinity', 'infinity' FROM pieces WHERE NOT usable
            ),
            later_taken AS MATERIALIZED (
                SELECT {taken_at} AS at FROM pieces AS p
                 CROSS JOIN LATERAL ({_not_open_over(usable, stretch_lo, stretch_hi)}) AS s
                 CROSS JOIN generate_series(0, :last_n) AS j(j)
                 WHERE p.usable AND {taken_at} >= p.lo AND {taken_at} < p.hi
            ),
            passed AS (
                SELECT anchor_id, anchor_start FROM candidates AS c
                 WHERE {checked} AND NOT ({" OR ".join(refusals)})
                 ORDER BY anchor_start
                 LIMIT :limit
            )
            SELECT anchor_id, anchor_start, seats_left FROM (
                SELECT anchor_id, anchor_start, CAST(:capacity AS integer) AS seats_left
                  FROM passed
                UNION ALL
                -- Checked up to the last start before :shifts_until (or, when none is,
                -- to just before the first one); the chunk's size where some wait.
                SELECT NULL,
                       coalesce(max(anchor_start) FILTER (WHERE {checked}),
                                min(anchor_start) - interval '1 microsecond'),
                       CASE WHEN bool_and({checked}) IS NOT FALSE THEN count(*) ELSE :chunk END
                  FROM candidates
            ) AS found
            ORDER BY anchor_id IS NULL, anchor_start
            """


def _by_occurrence(shape: _Shape, usable: str) -> str:
    """The rest of `_series_starts`' text after its candidates, every later week
    checked occurrence by occurrence."""
    # Each occurrence's span [occ - before, occ + after) lies in one of its week's
    # (joined) runs and holds none of its week's slots not open: a probe of a few rows
    # each (materialised), never a scan of the week's free slots.
    span_lo = "o.occ - CAST(:before_gap AS interval)"
    span_hi = "o.occ + CAST(:after_gap AS interval)"
    bookable = [
        f"EXISTS (SELECT FROM week_runs AS r WHERE r.k = o.k AND r.starts <= {span_lo}"
        f" AND r.ends >= {span_hi})",
        "(o.k, o.occ) NOT IN (SELECT k, at FROM week_taken)",
        _on_grid(shape.dialect, "o.anchor_start"),
    ]
    if shape.latest:
        bookable.append(core.starts_within_horizon("o.occ"))
    if shape.capped:
        bookable.append(core.day_has_room(shape.dialect, "o.occ"))
    occurrence = core.weeks_later(shape.dialect, "c.anchor_start", "ks.k * :repeat_interval")
    week_lo = "b.lo - CAST(:before_gap AS interval)"
    week_hi = "b.hi + CAST(:after_gap AS interval)"
    return f"""
            occurrences AS MATERIALIZED (
                SELECT c.anchor_start, ks.k, {occurrence} AS occ
                  FROM candidates AS c CROSS JOIN generate_series(1, :repeat_count - 1) AS ks(k)
            ),
            bounds AS (
                SELECT k, min(occ) AS lo, max(occ) AS hi FROM occurrences GROUP BY k
            ),
            week_runs AS MATERIALIZED (
                -- The runs over each week's occurrences, back-to-back ones joined.
                SELECT k, min(starts) AS starts, max(ends) AS ends FROM (
                    SELECT k, starts, ends,
                           sum(CASE WHEN starts = before_end THEN 0 ELSE 1 END)
                               OVER (PARTITION BY k ORDER BY starts) AS island
                      FROM (
                          SELECT b.k, r.starts, r.ends,
                                 lag(r.ends) OVER (PARTITION BY b.k ORDER BY r.starts)
                                     AS before_end
                            FROM bounds AS b
                           CROSS JOIN LATERAL ({_runs_over(week_lo, week_hi)}) AS r
                      ) AS ordered
                ) AS numbered
                GROUP BY k, island
            ),
            week_taken AS MATERIALIZED (
                -- The occurrences whose span a slot not open lies in (as `later_taken`).
                SELECT b.k, s.start_time + CAST(:before_gap AS interval)
                            - j.j * CAST(:slot_length AS interval) AS at
                  FROM bounds AS b
                 CROSS JOIN LATERAL ({_not_open_over(usable, week_lo, week_hi)}) AS s
                 CROSS JOIN generate_series(0, :last_n) AS j(j)
            ),
            refused AS (
                SELECT o.anchor_start FROM occurrences AS o
                 WHERE o.occ IS NULL OR NOT ({" AND ".join(bookable)})
            ),
            passed AS (
                SELECT anchor_id, anchor_start FROM candidates
                 WHERE anchor_start NOT IN (SELECT anchor_start FROM refused)
                 ORDER BY anchor_start
                 LIMIT :limit
            )
            SELECT anchor_id, anchor_start, seats_left FROM (
                SELECT anchor_id, anchor_start, CAST(:capacity AS integer) AS seats_left
                  FROM passed
                UNION ALL
                SELECT NULL, max(anchor_start), count(*) FROM candidates
            ) AS found
            ORDER BY anchor_id IS NULL, anchor_start
            """


def _holding_run(at: str) -> str:
    """The provider's last run starting at or before `at` (one backward index step)."""
    return f"""
                         SELECT starts, ends FROM slot_runs
                          WHERE provider_id = :provider_id AND starts <= {at}
                          ORDER BY starts DESC LIMIT 1"""


def _runs_over(lo: str, hi: str) -> str:
    """The provider's runs of slot rows overlapping [lo, hi): the one holding `lo` and
    those starting inside, so that no earlier run is read."""
    return f"""
                     SELECT starts, ends FROM ({_holding_run(lo)}
                     ) AS holding WHERE ends > {lo}
                     UNION ALL
                     SELECT starts, ends FROM slot_runs
                      WHERE provider_id = :provider_id AND starts > {lo} AND starts < {hi}
            """


def _not_open_over(usable: str, lo: str, hi: str) -> str:
    """The provider's slots starting in [lo, hi) that a new booking cannot take, read
    from the index of slots not available."""
    return f"""
                     SELECT start_time FROM slots
                      WHERE provider_id = :provider_id AND {core.slot_not_available()}
                        AND NOT {usable} AND start_time >= {lo} AND start_time < {hi}
            """


# The span around an occurrence starting at `o.occ` holds exactly its free slots.
_SPAN_FREE_AT = {
    "postgresql": (
        "s.start_time >= o.occ - CAST(:before_gap AS interval)"
        " AND s.start_time < o.occ + CAST(:after_gap AS interval)"
    ),
    # Stored times compared as text, by the index (`time_plus`, db.py).
    "sqlite": (
        "s.start_time >= time_plus(o.occ, -:before_seconds)"
        " AND s.start_time < time_plus(o.occ, :after_seconds)"
    ),
}


def _span_open_at_occurrence(dialect: str) -> str:
    """Every slot of the span around the occurrence `o.occ` exists and is open (a probe
    of the slots in the span, counted)."""
    return (
        "(SELECT count(*) FROM slots AS s WHERE s.provider_id = :provider_id"
        f" AND {_SPAN_FREE_AT[dialect]} AND {core.slot_open('s')}) = :span_slots"
    )


def _every_occurrence_bookable(shape: _Shape) -> str:
    """Occurrences 2..n of a series starting at `anchor_start` (the same wall-clock time,
    whole weeks on) each exist and have their whole span free, within the horizon and
    under the daily cap; the first is the anchor itself, checked as any start."""
    occurrence = core.weeks_later(shape.dialect, "anchor_start", "ks.k * :repeat_interval")
    bookable = [_span_open_at_occurrence(shape.dialect), _on_grid(shape.dialect, "anchor_start")]
    if shape.latest:
        bookable.append(core.starts_within_horizon("o.occ"))
    if shape.capped:
        bookable.append(core.day_has_room(shape.dialect, "o.occ"))
    occurrences = _OCCURRENCES[shape.dialect].format(occurrence=occurrence)
    refused = f"o.occ IS NULL OR NOT ({' AND '.join(bookable)})"
    return f"NOT EXISTS (SELECT 1 FROM {occurrences} WHERE {refused})"


_WHOLE_SLOTS_APART = {
    "postgresql": "mod(CAST(extract(epoch FROM {later} - {first}) AS bigint), :slot_seconds) = 0",
    "sqlite": "(unixepoch({later}) - unixepoch({first})) % :slot_seconds = 0",
}


def _on_grid(dialect: str, anchor: str) -> str:
    """The occurrence `o.occ` lies whole slots from the first week's start `anchor`: on
    the slots' grid. Off it (a half-hour change of offset with 20-minute slots), no
    slot starts there, though every slot around it may be free."""
    return _WHOLE_SLOTS_APART[dialect].format(later="o.occ", first=anchor)


# Occurrences 2..n as rows `o.occ` (SQLite has no generate_series without an
# extension, nor LATERAL).
_OCCURRENCES = {
    "postgresql": (
        "generate_series(1, :repeat_count - 1) AS ks(k)"
        " CROSS JOIN LATERAL (SELECT {occurrence} AS occ) AS o"
    ),
    "sqlite": (
        "(WITH RECURSIVE ks(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM ks"
        " WHERE k < :repeat_count - 1) SELECT {occurrence} AS occ FROM ks) AS o"
    ),
}
