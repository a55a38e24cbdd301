"""The provider's calendar day (the daily cap's unit) is computed three ways: zoneinfo
in Python, `AT TIME ZONE` in PostgreSQL's start-time search, and functions registered
on every SQLite connection. All three agree, across daylight-saving changes, in zones
east and west of UTC and with half-hour offsets."""

from datetime import UTC, datetime, timedelta

import pytest

from appointments.appointment_types.rules import local_day_bounds
from appointments.appointment_types.start_times import _DAY
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


def _sqlite_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_the_three_calendar_days_agree(api: Api, zone: str) -> None:
    start_sql, end_sql = _DAY[api.dialect]
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
