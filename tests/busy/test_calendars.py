"""A provider's iCal feed through the API, on SQLite and PostgreSQL: its busy time
keeps slots from being booked (listing, start times, reserve), bookings it overlaps
are kept and listed, an unchanged feed writes nothing, a feed that cannot be read
keeps its busy time and says why (told once), and recovers by itself."""

import time
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from appointments.busy import fetch
from tests.api import Api, iso
from tests.busy.feeds import Feeds
from tests.conftest import START

DAY = START + timedelta(days=3)  # Thursday 4 March 2027, 08:00 UTC


def event(uid: str, start: str, end: str) -> str:
    return f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{start}\r\nDTEND:{end}\r\nEND:VEVENT\r\n"


def feed(*events: str) -> bytes:
    body = "".join(events)
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n{body}END:VCALENDAR\r\n".encode()
    )


def synced(api: Api, provider: str, calendar: str, after: str | None = None) -> Any:
    """Ask for a read and wait until the service's background read of it is done."""
    path = f"/providers/{provider}/calendars/{calendar}"
    api.ok("POST", f"{path}/sync", 202)
    settled(api)
    return api.ok("GET", path)


def settled(api: Api) -> None:
    """Wait for the reads that requests started (the app's own tasks) to end."""
    reads: set[Any] = api.client.app.state.calendar_reads  # type: ignore[attr-defined]
    for _ in range(500):
        if not reads:
            return
        time.sleep(0.01)
    raise AssertionError("a calendar read did not end")


def connect(api: Api, provider: str, url: str, **fields: Any) -> Any:
    added = api.ok(
        "POST", f"/providers/{provider}/calendars", 201, json={"kind": "ics", "url": url, **fields}
    )
    assert added["status"] == "pending"
    settled(api)  # the first read, started by the POST
    return added


def states(api: Api, provider: str) -> list[str]:
    items = api.ok("GET", f"/providers/{provider}/availability", params={"status": "all"})
    return [item["status"] for item in items["items"]]


def test_busy_time_keeps_slots_from_being_booked(api: Api, feeds: Feeds) -> None:
    provider = api.provider("Dr Busy")["id"]
    slots = api.publish(provider, DAY, DAY + timedelta(hours=2))["slots"]
    url = feeds.serve("/cal.ics", feed(event("a@x", "20270304T083000Z", "20270304T090000Z")))
    calendar = connect(api, provider, url)["id"]
    read = synced(api, provider, calendar, after="ok")
    assert (read["status"], read["busy_count"], read["last_error"]) == ("ok", 1, None)
    # 08:30 and 08:45 are busy: shown so, not listed as available, not bookable.
    assert states(api, provider) == ["available"] * 2 + ["busy"] * 2 + ["available"] * 4
    available = api.ok("GET", f"/providers/{provider}/availability")["items"]
    assert [s["start_time"] for s in available] == [
        iso(DAY + timedelta(minutes=m)) for m in (0, 15, 60, 75, 90, 105)
    ]
    bob = api.customer()["id"]
    refused = api.reserve(bob, slots[2]["id"])
    assert (refused.status_code, refused.json()["code"]) == (409, "slot_unavailable")
    # A 45-minute type fits only where no busy slot is.
    kind = api.appointment_type(provider, duration_minutes=45)["id"]
    assert api.start_times(provider, kind) == [iso(DAY + timedelta(minutes=m)) for m in (60, 75)]
    # A window published later under busy time is busy from the start.
    later = DAY + timedelta(days=1)
    feeds.serve(
        "/cal.ics",
        feed(
            event("a@x", "20270304T083000Z", "20270304T090000Z"),
            event("b@x", "20270305T080000Z", "20270305T081500Z"),
        ),
    )
    synced(api, provider, calendar)
    created = api.publish(provider, later, later + timedelta(minutes=30))["slots"]
    assert [s["status"] for s in created] == ["busy", "available"]
    # Disconnected: nothing is busy any more.
    api.ok("DELETE", f"/providers/{provider}/calendars/{calendar}", 204)
    assert set(states(api, provider)) == {"available"}
    assert api.reserve(bob, slots[2]["id"]).status_code == 201


def test_an_unchanged_feed_writes_nothing_and_new_busy_time_keeps_bookings(
    api: Api, feeds: Feeds
) -> None:
    provider = api.provider("Dr Busy")["id"]
    slots = api.publish(provider, DAY, DAY + timedelta(hours=1))["slots"]
    bob = api.customer()["id"]
    held = api.reserve(bob, slots[3]["id"]).json()
    url = feeds.serve("/cal.ics", feed(event("a@x", "20270304T080000Z", "20270304T081500Z")))
    calendar = connect(api, provider, url)["id"]
    synced(api, provider, calendar, after="ok")
    rows = api.sql("SELECT id FROM busy_intervals")
    synced(api, provider, calendar)
    assert api.sql("SELECT id FROM busy_intervals") == rows  # the same rows, not rewritten
    path = f"/providers/{provider}/calendars/{calendar}/conflicts"
    assert api.ok("GET", path)["items"] == []
    # Busy time over a booking: the booking stays, listed as a conflict.
    feeds.serve("/cal.ics", feed(event("a@x", "20270304T080000Z", "20270304T090000Z")))
    synced(api, provider, calendar)
    assert [c["id"] for c in api.ok("GET", path)["items"]] == [held["id"]]
    assert states(api, provider) == ["busy", "busy", "busy", "reserved"]
    status = api.sql(f"SELECT status FROM reservations WHERE id = '{api.db_id(held['id'])}'")
    assert status == [("held",)]


def test_a_feed_that_cannot_be_read_keeps_its_busy_time_and_recovers(
    api: Api, feeds: Feeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = api.provider("Dr Busy")["id"]
    api.publish(provider, DAY, DAY + timedelta(hours=1))
    good = feed(event("a@x", "20270304T080000Z", "20270304T081500Z"))
    url = feeds.serve("/cal.ics", good)
    calendar = connect(api, provider, url)["id"]
    synced(api, provider, calendar, after="ok")
    monkeypatch.setattr(fetch, "MAX_FEED_BYTES", 2000)
    for answer, said in (
        ((500, {}, b"oops"), "the feed answered HTTP 500"),
        ((200, {"Content-Type": "text/html"}, b"<html></html>"), "the feed is text/html"),
        ((302, {"Location": "https://elsewhere.example/cal.ics"}, b""), "the feed redirects"),
        ((200, {}, good[:60]), "not an iCalendar feed"),
        ((200, {}, good + b"X" * 3000), "the feed is over"),
    ):
        feeds.answers["/cal.ics"] = answer
        read = synced(api, provider, calendar)
        assert read["status"] == "error", read
        assert said in read["last_error"], read
        assert states(api, provider) == ["busy"] + ["available"] * 3  # fail closed
    # Told once by webhook event, not at every failed read.
    told = api.sql("SELECT type, detail FROM events WHERE type = 'calendar.sync_failed'")
    assert [row[0] for row in told] == ["calendar.sync_failed"]
    assert "HTTP 500" in told[0][1]
    # The feed is back: so is the calendar, by itself.
    feeds.serve("/cal.ics", feed())
    read = synced(api, provider, calendar)
    assert (read["status"], read["last_error"], read["busy_count"]) == ("ok", None, 0)
    assert set(states(api, provider)) == {"available"}


def test_a_password_is_kept_encrypted_and_never_shown(api: Api, feeds: Feeds) -> None:
    provider = api.provider("Dr Busy")["id"]
    url = feeds.serve("/private.ics", feed(event("a@x", "20270304T080000Z", "20270304T081500Z")))
    body = {"kind": "ics", "url": url, "username": "ada", "password": "s3cret"}
    refused = api.ok("POST", f"/providers/{provider}/calendars", 422, json=body)
    assert refused["code"] == "calendar_not_allowed"
    assert "APPOINTMENTS_SECRETS_KEY" in refused["detail"]
    api.configure(secrets_key=SecretStr(Fernet.generate_key().decode()))
    feeds.auth = "Basic YWRhOnMzY3JldA=="  # ada:s3cret
    added = api.ok("POST", f"/providers/{provider}/calendars", 201, json=body)
    assert "password" not in added
    assert "s3cret" not in str(api.sql("SELECT password_secret FROM calendars"))
    read = synced(api, provider, added["id"], after="ok")
    assert (read["status"], read["busy_count"]) == ("ok", 1)


def test_calendars_it_cannot_take_are_refused(api: Api) -> None:
    provider = api.provider("Dr Busy")["id"]
    path = f"/providers/{provider}/calendars"
    for body in (
        {"kind": "caldav", "url": "ftp://dav.example.com/cal/"},
        {"kind": "ics", "url": "https://example.com/a.ics", "write_bookings": True},
        {"kind": "ics", "url": "ftp://example.com/a.ics"},
    ):
        assert api.ok("POST", path, 422, json=body)["code"] == "calendar_not_allowed", body
    for body in ({"kind": "outlook", "url": "https://example.com/a.ics"}, {"kind": "ics"}):
        assert api.ok("POST", path, 422, json=body)["code"] == "validation_error", body
    assert api.ok("GET", path)["items"] == []
    api.ok("GET", f"{path}/00000000-0000-4000-8000-000000000000", 404)
    api.ok("GET", f"{path}/nope/conflicts", 404)
