"""Feeds at the sizes the issue names, through the API on SQLite and PostgreSQL: 5,000
events with recurrences read whole (every weekly instance blocks its time), a second
read of the same feed rewrites nothing, and a 50 MB body is cut off at the bound."""

from datetime import datetime, timedelta

from tests.api import Api
from tests.busy.feeds import Feeds, big_feed
from tests.busy.test_calendars import connect, event, feed, states, synced
from tests.conftest import START

FEED_START = START + timedelta(days=1)  # Tuesday 2 March 2027, 08:00 UTC


def expected_busy(begin: datetime, end: datetime) -> list[list[datetime]]:
    """The feed's events merged, counted here without the service's reading: 4,000
    single events and 10 instances of each of 1,000 weekly series from FEED_START on,
    inside [begin, end)."""
    start = FEED_START
    spans = [
        (start + timedelta(hours=4 * i + 1), start + timedelta(hours=4 * i + 1, minutes=45))
        for i in range(4_000)
    ]
    for i in range(1_000):
        first = start + timedelta(days=i % 300, minutes=15 * (i % 40))
        spans += [
            (first + timedelta(weeks=k), first + timedelta(weeks=k, minutes=30)) for k in range(10)
        ]
    merged: list[list[datetime]] = []
    for begins, ends in sorted(s for s in spans if s[1] > begin and s[0] < end):
        if merged and begins <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], ends)
        else:
            merged.append([begins, ends])
    return merged


def test_a_feed_of_5000_events_is_read_whole_and_again_writes_nothing(
    api: Api, feeds: Feeds
) -> None:
    provider = api.provider("Dr Busy", timezone="UTC")["id"]
    # Two mornings: one in the tenth week of the first weekly series, one after it.
    days = [FEED_START + timedelta(weeks=9, days=7), FEED_START + timedelta(weeks=10, days=7)]
    for day in days:
        api.publish(provider, day, day + timedelta(hours=4))
    url = feeds.serve("/big.ics", big_feed(FEED_START))
    calendar = connect(api, provider, url)["id"]
    read = api.ok("GET", f"/providers/{provider}/calendars/{calendar}")
    assert (read["status"], read["last_error"]) == ("ok", None), read
    busy = expected_busy(START, START + timedelta(days=731))
    assert read["busy_count"] == len(busy)
    starts = [day + timedelta(minutes=15 * k) for day in days for k in range(16)]
    expected = [
        "busy" if any(b < s + timedelta(minutes=15) and e > s for b, e in busy) else "available"
        for s in starts
    ]
    assert {"busy", "available"} <= set(expected)  # the mornings tell something
    assert states(api, provider) == expected
    rows = api.sql("SELECT id FROM busy_intervals ORDER BY id")
    synced(api, provider, calendar)
    assert api.sql("SELECT id FROM busy_intervals ORDER BY id") == rows


def test_a_50_mb_body_is_cut_off_at_the_bound(api: Api, feeds: Feeds) -> None:
    provider = api.provider("Dr Busy")["id"]
    url = feeds.serve("/cal.ics", feed(event("a@x", "20270304T080000Z", "20270304T081500Z")))
    calendar = connect(api, provider, url)["id"]
    assert api.ok("GET", f"/providers/{provider}/calendars/{calendar}")["busy_count"] == 1
    head = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
    filler = b"X-FILLER:" + b"x" * 990 + b"\r\n"
    feeds.serve("/cal.ics", head + filler * (50 * 1024))  # 50 MB
    read = synced(api, provider, calendar)
    assert read["status"] == "error", read
    assert read["last_error"] == "the feed is over 10 MB", read
    assert read["busy_count"] == 1  # what it had stands
