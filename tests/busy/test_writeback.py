"""Bookings written to the provider's CalDAV calendar (a real Radicale server), on SQLite
and PostgreSQL: a confirmed booking appears once under its invite's UID, follows a
reschedule, goes on cancel; a failed write is retried until it lands; a reconnect
writes no second copy; a series is one recurring event with its unbooked weeks
excluded; the service never reads its own events back as busy time."""

from datetime import timedelta
from typing import Any, NamedTuple

import pytest
import recurring_ical_events
from icalendar import Calendar
from sqlalchemy import text

from appointments.busy import writeback
from appointments.settings import Settings
from tests.api import Api, iso
from tests.busy.radicale import Radicale
from tests.busy.test_caldav import connect_caldav, with_key
from tests.busy.test_calendars import DAY, settled, states, synced
from tests.conftest import START


def written(server: Radicale, calendar: str) -> list[tuple[str, str, Any]]:
    """(file name, UID, DTSTART) of each event the calendar holds."""
    return sorted(
        (name, str(event.uid), event.start)
        for name in server.names(calendar)
        for event in server.events(calendar)
        if str(event["UID"]).startswith(name.removesuffix(".ics"))
    )


def deliveries(api: Api) -> list[tuple[Any, ...]]:
    return api.sql(
        "SELECT status, attempts, last_error FROM deliveries WHERE channel = 'calendar'"
        " ORDER BY created_at"
    )


class Writing(NamedTuple):
    """A provider with slots from DAY and a CalDAV calendar that takes its bookings."""

    provider: str
    slots: list[Any]
    calendar: str  # the collection's URL
    calendar_id: str


def writing(api: Api, server: Radicale, minutes: int) -> Writing:
    with_key(api)
    provider = api.provider("Dr Dav")["id"]
    slots = api.publish(provider, DAY, DAY + timedelta(minutes=minutes))["slots"]
    calendar = server.make_calendar()
    added = connect_caldav(api, provider, server, calendar, write_bookings=True)
    return Writing(provider, slots, calendar, added)


def bob_books(api: Api, slot_id: str) -> tuple[str, str]:
    """Bob holds the slot and confirms it: his id and the booking's."""
    bob = str(api.customer()["id"])
    held = api.reserve(bob, slot_id).json()
    api.confirm(bob, held["id"])
    return bob, str(held["id"])


def failed_once(api: Api) -> str:
    """The one calendar write, tried once and due again: why it failed."""
    ((status, attempts, error),) = deliveries(api)
    assert (status, attempts) == ("pending", 1)
    return str(error)


def test_a_booking_is_written_moved_and_removed(api: Api, caldav_server: Radicale) -> None:
    provider, slots, calendar, added = writing(api, caldav_server, 60)
    bob = api.customer()["id"]
    held = api.reserve(bob, slots[0]["id"]).json()
    api.deliver()
    assert caldav_server.names(calendar) == []  # a hold is not written
    api.confirm(bob, held["id"])
    api.deliver()
    assert deliveries(api) == [("delivered", 1, None)]
    assert written(caldav_server, calendar) == [
        (f"{held['id']}.ics", f"{held['id']}@appointments", DAY)
    ]
    (event,) = caldav_server.events(calendar)
    assert str(event["SUMMARY"]) == "Appointment with Bob"
    assert event["SEQUENCE"] == 0
    # Read back: the service's own event is not busy time.
    read = synced(api, provider, added)
    assert (read["status"], read["busy_count"]) == ("ok", 0)
    assert states(api, provider) == ["confirmed", "available", "available", "available"]
    # Moved: the same event, at the new time, its SEQUENCE raised.
    path = f"/clients/{bob}/reservations/{held['id']}/reschedule"
    api.ok("POST", path, 200, json={"slot_id": slots[2]["id"]})
    api.deliver()
    assert written(caldav_server, calendar) == [
        (f"{held['id']}.ics", f"{held['id']}@appointments", DAY + timedelta(minutes=30))
    ]
    assert caldav_server.events(calendar)[0]["SEQUENCE"] == 1
    # Cancelled: gone.
    api.ok("POST", f"/clients/{bob}/reservations/{held['id']}/cancel", 200)
    api.deliver()
    assert caldav_server.names(calendar) == []
    assert [row[0] for row in deliveries(api)] == ["delivered"] * 3


def test_a_failed_write_is_retried_and_a_reconnect_writes_no_copy(
    api: Api, caldav_server: Radicale
) -> None:
    provider, slots, calendar, added = writing(api, caldav_server, 30)
    path = f"/providers/{provider}/calendars/{added}"
    user, password = caldav_server.auth
    body = {"kind": "caldav", "url": calendar, "username": user, "write_bookings": True}
    api.ok("PUT", path, 200, json={**body, "password": "wrong"})
    _, held = bob_books(api, slots[0]["id"])
    api.deliver()
    assert "refused the credentials" in failed_once(api)
    assert caldav_server.names(calendar) == []
    # The password is put right; the retry, when due, lands.
    api.ok("PUT", path, 200, json={**body, "password": password})
    api.client.app.state.clock.advance(minutes=10)  # type: ignore[attr-defined]
    api.deliver()
    assert [row[:2] for row in deliveries(api)] == [("delivered", 2)]
    assert caldav_server.names(calendar) == [f"{held}.ics"]
    # Disconnected and connected again: the booking is written again, as the same
    # object, not a second one.
    api.ok("DELETE", path, 204)
    again = connect_caldav(api, provider, caldav_server, calendar, write_bookings=True)
    api.deliver()
    assert caldav_server.names(calendar) == [f"{held}.ics"]
    assert len(caldav_server.events(calendar)) == 1
    assert api.ok("GET", f"/providers/{provider}/calendars/{again}")["busy_count"] == 0
    # Writing again (a retry after a lost answer) changes nothing either.
    api.sql("UPDATE deliveries SET status = 'pending'")
    api.deliver()
    assert len(caldav_server.events(calendar)) == 1


def test_a_calendar_connected_later_gets_the_bookings_made_before(
    api: Api, caldav_server: Radicale
) -> None:
    with_key(api)
    provider = api.provider("Dr Dav")["id"]
    slots = api.publish(provider, DAY, DAY + timedelta(minutes=45))["slots"]
    bob, eve = api.customer()["id"], api.customer("Eve", "eve@example.com")["id"]
    booked = []
    for client, slot in ((bob, slots[0]), (eve, slots[2])):
        held = api.reserve(client, slot["id"]).json()
        api.confirm(client, held["id"])
        booked.append(held["id"])
    api.reserve(bob, slots[1]["id"])  # a hold: not written
    calendar = caldav_server.make_calendar()
    connect_caldav(api, provider, caldav_server, calendar)  # reads only
    api.deliver()
    assert caldav_server.names(calendar) == []
    listed = api.ok("GET", f"/providers/{provider}/calendars")["items"]
    user, password = caldav_server.auth
    api.ok(
        "PUT",
        f"/providers/{provider}/calendars/{listed[0]['id']}",
        200,
        json={
            "kind": "caldav",
            "url": calendar,
            "username": user,
            "password": password,
            "write_bookings": True,
        },
    )
    # The PUT starts a read, which holds the calendar's row while it writes busy time;
    # a delivery round meanwhile skips the locked calendar's backfill (SKIP LOCKED) and
    # leaves it to the next round. Here, one round after the read.
    settled(api)
    api.deliver()
    assert caldav_server.names(calendar) == sorted(f"{rid}.ics" for rid in booked)


def test_a_series_is_one_recurring_event(api: Api, caldav_server: Radicale) -> None:
    with_key(api)
    provider = api.provider("Dr Dav", timezone="Europe/Berlin")["id"]
    first = START + timedelta(days=21, hours=1)  # Monday 22 March 2027, 10:00 Berlin (CET)
    # Summer time from 28 March: the same wall-clock hour is an hour earlier in UTC.
    starts = [first] + [first + timedelta(weeks=k, hours=-1) for k in (1, 2)]
    slots = [api.slot(provider, start) for start in starts]
    calendar = caldav_server.make_calendar()
    connect_caldav(api, provider, caldav_server, calendar, write_bookings=True)
    bob = api.customer()["id"]
    series = api.ok(
        "POST",
        f"/clients/{bob}/series",
        201,
        json={"slot_id": slots[0]["id"], "repeat": {"count": 3}},
    )
    api.ok("POST", f"/clients/{bob}/series/{series['id']}/confirm", 200)
    api.deliver()
    name = f"series-{series['id']}"
    assert caldav_server.names(calendar) == [f"{name}.ics"]

    def booked() -> list[str]:
        (text,) = [caldav_server.events(calendar)]
        whole = Calendar()
        for event in text:
            whole.add_component(event)
        found = recurring_ical_events.of(whole).between(first, first + timedelta(weeks=4))
        return sorted(iso(event.start.astimezone(START.tzinfo)) for event in found)

    # 10:00 Berlin each Monday: 09:00 UTC, then 08:00 UTC after the change to summer time.
    assert booked() == [iso(start) for start in starts]
    # One week cancelled: excluded from the one event.
    second = series["reservations"][1]["id"]
    api.ok("POST", f"/clients/{bob}/reservations/{second}/cancel", 200)
    api.deliver()
    assert caldav_server.names(calendar) == [f"{name}.ics"]
    assert booked() == [iso(starts[0]), iso(starts[2])]
    # One week moved: an instance of the one event (RECURRENCE-ID), at its new time.
    later = api.slot(provider, starts[2] + timedelta(minutes=30))
    third = series["reservations"][2]["id"]
    api.ok(
        "POST",
        f"/clients/{bob}/reservations/{third}/reschedule",
        200,
        json={"slot_id": later["id"]},
    )
    api.deliver()
    assert booked() == [iso(starts[0]), iso(starts[2] + timedelta(minutes=30))]
    assert caldav_server.names(calendar) == [f"{name}.ics"]
    # The whole series cancelled: gone.
    api.ok("POST", f"/clients/{bob}/series/{series['id']}/cancel", 200)
    api.deliver()
    assert caldav_server.names(calendar) == []


def test_a_booking_that_changes_while_it_is_written_is_written_again(
    api: Api, caldav_server: Radicale, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, slots, calendar, _ = writing(api, caldav_server, 15)
    _, held = bob_books(api, slots[0]["id"])
    sessionmaker = api.client.app.state.sessionmaker  # type: ignore[attr-defined]
    put = writeback.send
    cancelled = api.db_id(held)

    async def cancelled_meanwhile(settings: Settings, write: writeback.Write) -> None:
        # The client cancels while the confirmed booking is on its way to the server.
        async with sessionmaker() as session:
            await session.execute(
                text("UPDATE reservations SET status = 'cancelled' WHERE id = :id"),
                {"id": cancelled},
            )
            await session.commit()
        await put(settings, write)

    monkeypatch.setattr(writeback, "send", cancelled_meanwhile)
    api.deliver()
    # Written as it was, but not taken as done: the booking no longer reads so.
    assert caldav_server.names(calendar) == [f"{held}.ics"]
    assert [row[0] for row in deliveries(api)] == ["pending"]
    monkeypatch.setattr(writeback, "send", put)
    api.deliver()
    assert caldav_server.names(calendar) == []
    assert [row[0] for row in deliveries(api)] == ["delivered"]


def test_a_password_the_key_no_longer_opens_fails_the_write_with_that_reason(
    api: Api, caldav_server: Radicale
) -> None:
    _, slots, calendar, _ = writing(api, caldav_server, 15)
    with_key(api)  # the key changed: the stored password no longer decrypts
    bob_books(api, slots[0]["id"])
    api.deliver()
    assert "stored password cannot be read with APPOINTMENTS_SECRETS_KEY" in failed_once(api)
    assert caldav_server.names(calendar) == []
