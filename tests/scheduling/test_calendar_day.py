"""The provider's calendar day (the daily cap's unit) has one home,
`scheduling.rules.local_day`: `AT TIME ZONE` on PostgreSQL, functions registered on
every SQLite connection (SQLite knows no zones). Both give zoneinfo's midnights,
across daylight-saving changes, in zones east and west of UTC and with half-hour
offsets."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest

from appointments.db import wall_clock_weeks_later
from appointments.scheduling import rules
from tests.api import Api

# Each zone with a day of its 2027 daylight-saving changes (or none).
ZONES = {
    "Europe/Berlin": ("2027-03-28", "2027-10-31"),
    "America/New_York": ("2027-03-14", "2027-11-07"),
    "Asia/Kolkata": ("2027-03-28",),
    "Australia/Lord_Howe": ("2027-04-04", "2027-10-03"),
    "Pacific/Chatham": ("2027-04-04", "2027-09-26"),
}


def _moments(day: str) -> list[datetime]:
    """Every 45 minutes from the day before to the day after, in UTC."""
    first = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(days=1)
    return [first + timedelta(minutes=45 * i) for i in range(3 * 32)]


def local_day_bounds(moment: datetime, zone: str) -> tuple[datetime, datetime]:
    """The oracle: [midnight, next midnight) of the moment's day in the zone."""
    tz = ZoneInfo(zone)
    day: date = moment.astimezone(tz).date()
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _sqlite_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_the_calendar_day_is_zoneinfos(api: Api, zone: str) -> None:
    start_sql, end_sql = rules.local_day(api.dialect, "anchor_start")
    checked = 0
    for day in ZONES[zone]:
        for moment in _moments(day):
            expected = local_day_bounds(moment, zone)
            if api.dialect == "postgresql":
                query = (
                    f"SELECT {start_sql}, {end_sql} FROM "
                    "(SELECT CAST(:moment AS timestamptz) AS anchor_start) AS given"
                )
                ((start, end),) = api.sql(query, moment=moment, zone=zone)
            else:
                query = f"SELECT {start_sql}, {end_sql} FROM (SELECT :moment AS anchor_start)"
                ((start_text, end_text),) = api.sql(query, moment=_sqlite_text(moment), zone=zone)
                start = datetime.fromisoformat(start_text).replace(tzinfo=UTC)
                end = datetime.fromisoformat(end_text).replace(tzinfo=UTC)
            assert (start, end) == expected, (zone, moment)
            checked += 1
    assert checked >= 96


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_the_same_wall_clock_time_weeks_later_agrees_with_its_twin(api: Api, zone: str) -> None:
    """`rules.weeks_later` (SQL) and `rules.same_time_weeks_later` (Python), over moments
    around each daylight-saving change, one to three weeks on, gaps included."""
    sql = rules.weeks_later(api.dialect, "anchor_start", ":weeks")
    missing = checked = 0
    for day in ZONES[zone]:
        for moment in _moments(day):
            for weeks in (1, 2, 3):
                start = moment - timedelta(weeks=weeks)  # so some land on the change
                expected = rules.same_time_weeks_later(start, zone, weeks)
                if api.dialect == "postgresql":
                    query = (
                        f"SELECT {sql} FROM "
                        "(SELECT CAST(:moment AS timestamptz) AS anchor_start) AS given"
                    )
                    ((found,),) = api.sql(query, moment=start, zone=zone, weeks=weeks)
                else:
                    query = f"SELECT {sql} FROM (SELECT :moment AS anchor_start)"
                    ((text,),) = api.sql(query, moment=_sqlite_text(start), zone=zone, weeks=weeks)
                    found = (
                        None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)
                    )
                assert found == expected, (zone, start, weeks)
                missing += expected is None
                checked += 1
    assert checked >= 288
    if zone != "Asia/Kolkata":
        assert missing > 0  # the gaps were met


def test_no_zone_moves_a_later_week_sooner_than_the_series_bound_allows() -> None:
    """`rules.earliest_weeks_later`, which ends a series search's scan: in every zone
    tzdata knows, the same wall-clock time w weeks on lies at least that much later,
    from moments 11 days 5 hours apart over two years (every hour of the day comes up)
    to one week and to 204 weeks on (the longest series: 52 every 4 weeks)."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    for zone in sorted(available_timezones()):
        for hours in range(0, 2 * 365 * 24, 11 * 24 + 5):
            moment = start + timedelta(hours=hours)
            for weeks in (1, 204):
                later = wall_clock_weeks_later(moment, zone, weeks)
                if later is not None:
                    assert later - moment >= rules.earliest_weeks_later(weeks), (zone, moment)


def test_each_change_named_is_one() -> None:
    """`rules.offset_changes`, which the weeks' pieces are cut at: in every zone tzdata
    knows, the offset just before each change named differs from the one at it by the
    change, and between two changes named it holds still (sampled every 12 hours)."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    named = 0
    for zone in sorted(available_timezones()):
        tz = ZoneInfo(zone)
        changes = rules.offset_changes(zone, start, start + timedelta(days=2 * 365))
        for at, moved in changes:
            before = (at - timedelta(seconds=1)).astimezone(tz).utcoffset()
            after = at.astimezone(tz).utcoffset()
            assert before is not None
            assert after is not None
            assert after - before == moved, (zone, at)
        for hours in range(0, 2 * 365 * 24 - 12, 12):
            moment = start + timedelta(hours=hours)
            step = moment + timedelta(hours=12)
            crossed = any(moment < at <= step for at, _ in changes)
            assert (
                crossed or moment.astimezone(tz).utcoffset() == step.astimezone(tz).utcoffset()
            ), (zone, moment)
        named += len(changes)
    assert named > 300


# Moments the pieces are read at: every 20 minutes, every second
# around each cut, and the cuts themselves.
def _read_at(pieces: tuple[tuple[datetime, datetime, timedelta | None], ...]) -> list[datetime]:
    first, until = pieces[0][0], pieces[-1][1]
    moments = [
        first + timedelta(minutes=20 * i)
        for i in range(int((until - first) / timedelta(minutes=20)))
    ]
    for lo, _, _ in pieces:
        moments += [
            lo + timedelta(seconds=s)
            for s in range(-2, 3)
            if first <= lo + timedelta(seconds=s) < until
        ]
    return moments


def test_the_weeks_pieces_are_the_wall_clock_rule() -> None:
    """`rules.weeks_later_pieces`, by which a series search shifts whole pages: in every
    zone tzdata knows, over stretches of 3 days, the 1st, 11th and 51st week's pieces
    give exactly `wall_clock_weeks_later` at every moment read (every 20 minutes, and
    each second around each piece's edge), gaps included; each piece's shift differs
    from its neighbour's (joined otherwise), and they tile the stretch."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    across = 0
    for zone in sorted(available_timezones()):
        changes = rules.offset_changes(zone, start, start + timedelta(days=2 * 365))
        # Stretches around each change (first-week or later-week) and one far from any.
        firsts = {start + timedelta(days=100)}
        for at, _ in changes[:2]:
            for weeks in (0, 1, 11):
                firsts.add((at - timedelta(weeks=weeks, days=1)).replace(minute=0, second=0))
        for first in sorted(firsts):
            until = first + timedelta(days=3)
            for weeks in (1, 11, 51):
                pieces = rules.weeks_later_pieces(zone, first, until, weeks)
                assert (pieces[0][0], pieces[-1][1]) == (first, until), (zone, first)
                for (_, hi, shift), (lo, _, next_shift) in zip(pieces, pieces[1:], strict=False):
                    assert hi == lo, (zone, first, weeks)
                    assert shift != next_shift, (zone, first, weeks)
                across += len(pieces) > 1
                for moment in _read_at(pieces):
                    (shift,) = [s for lo, hi, s in pieces if lo <= moment < hi]
                    exact = wall_clock_weeks_later(moment, zone, weeks)
                    expected = None if exact is None else exact - moment
                    assert shift == expected, (zone, moment, weeks)
    assert across > 500  # many stretches run across some change
