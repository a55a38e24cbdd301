"""A provider's other calendar read as busy time: recurrences expanded (EXDATE, moved
instances), free and cancelled events left out, all-day events over the provider's
local dates, floating times on its wall clock, zones read right, our own events
never read back."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from appointments.busy.ical import Busy, FeedError, busy_times

BERLIN = ZoneInfo("Europe/Berlin")
FEED = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//busy//EN
BEGIN:VEVENT
UID:weekly@example.com
DTSTART;TZID=Europe/Berlin:20270301T100000
DTEND;TZID=Europe/Berlin:20270301T110000
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE;TZID=Europe/Berlin:20270315T100000
SUMMARY:Team meeting
END:VEVENT
BEGIN:VEVENT
UID:weekly@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20270322T100000
DTSTART;TZID=Europe/Berlin:20270323T140000
DTEND;TZID=Europe/Berlin:20270323T150000
SUMMARY:Team meeting, moved
END:VEVENT
BEGIN:VEVENT
UID:free@example.com
DTSTART:20270302T120000Z
DTEND:20270302T130000Z
TRANSP:TRANSPARENT
END:VEVENT
BEGIN:VEVENT
UID:cancelled@example.com
DTSTART:20270302T150000Z
DTEND:20270302T160000Z
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:allday@example.com
DTSTART;VALUE=DATE:20270305
SUMMARY:Holiday
END:VEVENT
BEGIN:VEVENT
UID:floating@example.com
DTSTART:20270303T120000
DTEND:20270303T130000
END:VEVENT
BEGIN:VEVENT
UID:newyork@example.com
DTSTART;TZID=America/New_York:20270304T090000
DTEND;TZID=America/New_York:20270304T093000
END:VEVENT
BEGIN:VEVENT
UID:duration@example.com
DTSTART:20270302T080000Z
DURATION:PT45M
END:VEVENT
BEGIN:VEVENT
UID:0f6b8d1e-1234-4a4e-9a56-0c2a0f5f7a10@appointments
DTSTART:20270302T090000Z
DTEND:20270302T093000Z
SUMMARY:A booking this service wrote back
END:VEVENT
END:VCALENDAR
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_feed_reads_as_exactly_its_busy_time() -> None:
    found = busy_times([FEED], BERLIN, utc("2027-03-01T00:00"), utc("2027-04-30T00:00"))
    assert found == [
        Busy(utc("2027-03-01T09:00"), utc("2027-03-01T10:00")),  # 10:00 Berlin (CET)
        Busy(utc("2027-03-02T08:00"), utc("2027-03-02T08:45")),  # DURATION
        Busy(utc("2027-03-03T11:00"), utc("2027-03-03T12:00")),  # floating: Berlin's 12:00
        Busy(utc("2027-03-04T14:00"), utc("2027-03-04T14:30")),  # New York's 09:00
        Busy(utc("2027-03-04T23:00"), utc("2027-03-05T23:00")),  # all of 5 March in Berlin
        Busy(utc("2027-03-08T09:00"), utc("2027-03-08T10:00")),
        # 15 March: EXDATE'd. 22 March: moved to Tuesday 23 March, 14:00.
        Busy(utc("2027-03-23T13:00"), utc("2027-03-23T14:00")),
        Busy(utc("2027-03-29T08:00"), utc("2027-03-29T09:00")),  # 10:00 in summer time
        Busy(utc("2027-04-05T08:00"), utc("2027-04-05T09:00")),
    ]


def test_busy_time_is_clipped_to_the_window_and_merged() -> None:
    found = busy_times([FEED], BERLIN, utc("2027-03-05T12:00"), utc("2027-03-08T09:30"))
    assert found == [
        Busy(utc("2027-03-05T12:00"), utc("2027-03-05T23:00")),
        Busy(utc("2027-03-08T09:00"), utc("2027-03-08T09:30")),
    ]
    overlapping = FEED.replace(
        "UID:newyork@example.com\nDTSTART;TZID=America/New_York:20270304T090000",
        "UID:newyork@example.com\nDTSTART;TZID=America/New_York:20270304T081500",
    )
    at_once = busy_times([overlapping], BERLIN, utc("2027-03-04T00:00"), utc("2027-03-05T00:00"))
    assert at_once == [Busy(utc("2027-03-04T13:15"), utc("2027-03-04T14:30"))]


@pytest.mark.parametrize(
    "feed",
    [
        "not a calendar",
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2027",  # truncated
        "BEGIN:VEVENT\nUID:x\nDTSTART:20270302T080000Z\nEND:VEVENT\n",
    ],
)
def test_what_is_not_a_calendar_is_refused_in_words(feed: str) -> None:
    with pytest.raises(FeedError):
        busy_times([feed], BERLIN, utc("2027-03-01T00:00"), utc("2027-04-01T00:00"))
