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


def test_a_steady_week_is_whole_weeks_less_the_offset_changes_between() -> None:
    """`rules.offset_changes`, by which a series search shifts whole pages: in every
    zone tzdata knows, the same wall-clock time w weeks on is w weeks less the changes
    between, wherever no change lies within `STEADY_MARGIN` of the moment nor of the
    moment so shifted (what the search checks); and each change named is one (the
    offset just before differs by it)."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    margin = rules.STEADY_MARGIN
    shifted = 0
    for zone in sorted(available_timezones()):
        tz = ZoneInfo(zone)
        changes = rules.offset_changes(zone, start, start + timedelta(days=3 * 365))
        for at, moved in changes:
            before = (at - timedelta(seconds=1)).astimezone(tz).utcoffset()
            after = at.astimezone(tz).utcoffset()
            assert before is not None
            assert after is not None
            assert after - before == moved, (zone, at)
        for hours in range(0, 2 * 365 * 24, 13 * 24 + 7):
            moment = start + timedelta(hours=hours)
            for weeks in (1, 11, 51):
                later = moment + timedelta(weeks=weeks)
                between = sum((by for at, by in changes if moment < at <= later), timedelta())
                shift = later - between
                if any(abs(at - t) <= margin for at, _ in changes for t in (moment, shift)):
                    continue
                exact = wall_clock_weeks_later(moment, zone, weeks)
                assert exact == shift, (zone, moment, weeks)
                shifted += exact != later
    assert shifted > 1000  # many of them across some change
