"""Calendar export, parsed back with the `icalendar` package."""

from datetime import datetime, timedelta
from typing import Any

import icalendar

from appointments.clock import FrozenClock
from tests.api import Api
from tests.conftest import START

DAY = START + timedelta(days=3)


def events(body: bytes) -> list[Any]:
    calendar = icalendar.Calendar.from_ical(body)
    return [c for c in calendar.walk() if c.name == "VEVENT"]


def test_client_calendar_lists_bookings_in_utc_with_stable_uids(
    api: Api, clock: FrozenClock
) -> None:
    provider = api.provider("Dr Ada; Lovelace, PhD " + "x" * 150)
    bob = api.customer()
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))["slots"]
    kept = api.reserve(bob["id"], slots[0]["id"]).json()
    api.confirm(bob["id"], kept["id"])
    dropped = api.reserve(bob["id"], slots[1]["id"]).json()
    api.confirm(bob["id"], dropped["id"])
    api.client.post(f"/clients/{bob['id']}/reservations/{dropped['id']}/cancel")
    api.reserve(bob["id"], slots[2]["id"])  # only held: not a booking yet

    response = api.client.get(f"/clients/{bob['id']}/reservations.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert all(len(line.encode()) <= 75 for line in response.text.split("\r\n"))
    found = {str(e["UID"]): e for e in events(response.content)}
    assert set(found) == {f"{kept['id']}@appointments", f"{dropped['id']}@appointments"}
    confirmed = found[f"{kept['id']}@appointments"]
    assert str(confirmed["STATUS"]) == "CONFIRMED"
    assert confirmed.decoded("DTSTART") == datetime.fromisoformat(slots[0]["start_time"])
    assert confirmed.decoded("DTSTART").utcoffset() == timedelta(0)
    assert f"DTSTART:{DAY.strftime('%Y%m%dT%H%M%SZ')}\r\n" in response.text
    assert confirmed.decoded("DTEND") - confirmed.decoded("DTSTART") == timedelta(minutes=15)
    assert str(confirmed["SUMMARY"]) == f"Appointment with {provider['name']}"
    assert str(found[f"{dropped['id']}@appointments"]["STATUS"]) == "CANCELLED"

    clock.advance(minutes=5)
    again = api.client.get(f"/clients/{bob['id']}/reservations.ics")
    assert {str(e["UID"]) for e in events(again.content)} == set(found)


def test_provider_calendar_names_the_client(api: Api) -> None:
    provider = api.provider()
    bob = api.customer("Bob Builder", "bob@example.com")
    slot = api.slot(provider["id"], DAY)
    held = api.reserve(bob["id"], slot["id"]).json()
    api.confirm(bob["id"], held["id"])
    response = api.client.get(f"/providers/{provider['id']}/reservations.ics")
    (event,) = events(response.content)
    assert str(event["SUMMARY"]) == "Appointment with Bob Builder"
    assert api.client.get("/providers/nope/reservations.ics").status_code == 404
    empty = api.client.get(
        f"/clients/{bob['id']}/reservations.ics".replace(
            bob["id"], api.customer("E", "e@example.com")["id"]
        )
    )
    assert events(empty.content) == []
