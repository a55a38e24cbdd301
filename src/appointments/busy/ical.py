"""An iCalendar feed read as busy time: the provider's time taken by its other calendar.

Built on the field's own libraries: `icalendar` parses (TZID, VTIMEZONE, DURATION),
`recurring-ical-events` expands (RRULE, RDATE, EXDATE, moved instances by
RECURRENCE-ID) between two moments. What blocks time (RFC 5545 and what the big
calendar apps write):
- every instance of a recurring event, not only the first;
- not an event marked `TRANSP:TRANSPARENT` ("show as free"), nor a `STATUS:CANCELLED`
  one (a cancelled instance of a series, too);
- an all-day event (`DTSTART;VALUE=DATE`) blocks the provider's whole local dates, to
  its DTEND (exclusive; one day without one);
- a floating time (no zone) is the provider's wall-clock time;
- an event this service wrote itself (UID `...@appointments`: write-back) is never
  read back as busy, or each booking would block its own slot.
The answer is merged, sorted UTC intervals, clipped to the window asked for.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

OURS = "@appointments"


class FeedError(ValueError):
    """The feed is not an iCalendar we can read (the calendar's `last_error` says why)."""


@dataclass(frozen=True)
class Busy:
    start: datetime
    end: datetime


def _moment(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # floating: the provider's wall clock
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    # A date: its start in the provider's zone.
    return datetime.combine(value, time(0), zone).astimezone(UTC)


def _span(event: Any, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    start = event.get("DTSTART")
    if start is None:
        return None
    begins = start.dt
    end = event.get("DTEND")
    if end is not None:
        ends = end.dt
    elif event.get("DURATION") is not None:
        ends = begins + event["DURATION"].dt
    elif isinstance(begins, datetime):
        ends = begins  # no length: blocks nothing (RFC 5545 3.6.1)
    else:
        ends = begins + timedelta(days=1)
    if isinstance(begins, datetime) != isinstance(ends, datetime):
        return None  # a date with a date-time: not a valid event
    return _moment(begins, zone), _moment(ends, zone)


def _blocks(event: Any) -> bool:
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return False
    return not str(event.get("UID", "")).endswith(OURS)


def merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[Busy]:
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Busy(start, end) for start, end in merged]


def _events(feed: bytes | str, start: datetime, end: datetime) -> list[Any]:
    try:
        calendar = icalendar.Calendar.from_ical(feed)
    except ValueError as exc:
        raise FeedError(f"not an iCalendar feed: {exc}") from exc
    if calendar.name != "VCALENDAR":
        raise FeedError(f"not an iCalendar feed: it holds a {calendar.name}")
    try:
        return list(recurring_ical_events.of(calendar).between(start, end))
    except Exception as exc:  # the library's errors for a malformed rule or date
        raise FeedError(f"the feed's events cannot be expanded: {exc}") from exc


def busy_times(
    feeds: Iterable[bytes | str], zone: ZoneInfo, start: datetime, end: datetime
) -> list[Busy]:
    """The busy time the feeds say between `start` and `end` (UTC), merged and clipped
    (a published feed is one text; a CalDAV calendar answers one per event)."""
    found = []
    for feed in feeds:
        for event in _events(feed, start, end):
            if not _blocks(event):
                continue
            span = _span(event, zone)
            if span is None:
                continue
            begins, ends = max(span[0], start), min(span[1], end)
            if ends > begins:
                found.append((begins, ends))
    return merge(found)
