"""Weekly rules in the provider's own time zone, expanded into UTC intervals.

Each rule is read as wall-clock time on each matching date. Around daylight-saving
changes this means: in the skipped spring hour nothing is invented (a start or end
that does not exist moves to the first wall time that does), and in the repeated
autumn hour nothing is duplicated (the interval runs from the first occurrence of
its start to the last occurrence of its end, and slots are cut in UTC).
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_STEP = timedelta(minutes=15)  # every real UTC offset is a multiple of 15 minutes


def _exists(local: datetime) -> bool:
    """False for a wall time in a spring-forward gap (it does not round-trip)."""
    round_trip = local.astimezone(UTC).astimezone(local.tzinfo)
    return round_trip.replace(tzinfo=None) == local.replace(tzinfo=None)


def wall_time_to_utc(day: date, at: time | None, zone: ZoneInfo, *, first: bool) -> datetime:
    """The UTC instant of wall time `at` on `day` (None = midnight at the end of the day).

    `first` picks the earlier of two occurrences in a repeated hour, else the later.
    """
    if at is None:
        day, at = day + timedelta(days=1), time(0, 0)
    local = datetime.combine(day, at, tzinfo=zone).replace(fold=0 if first else 1)
    while not _exists(local):
        local = (local.replace(tzinfo=None) + _STEP).replace(tzinfo=zone)
    return local.astimezone(UTC)


def expand(
    rules: Sequence[tuple[str, time, time | None]],
    start_date: date,
    end_date: date,
    zone: ZoneInfo,
) -> Iterator[tuple[datetime, datetime]]:
    """UTC (start, end) of every rule on every matching date from start_date to end_date."""
    day = start_date
    while day <= end_date:
        weekday = WEEKDAYS[day.weekday()]
        for rule_day, start, end in rules:
            if rule_day == weekday:
                begins = wall_time_to_utc(day, start, zone, first=True)
                ends = wall_time_to_utc(day, end, zone, first=False)
                if ends > begins:
                    yield begins, ends
        day += timedelta(days=1)
