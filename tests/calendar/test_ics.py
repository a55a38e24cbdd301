"""Calendar export, parsed back with the `icalendar` package."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import icalendar
from sqlalchemy import insert

from appointments.clock import FrozenClock
from appointments.scheduling.models import Reservation
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


def _past_bookings(api: Api, slot_id: str, client_id: str, provider_id: str, count: int) -> None:
    """`count` confirmed-then-cancelled bookings of the past 60 days, straight in the table."""
    rows = []
    for i in range(count):
        start = START - timedelta(days=60) + timedelta(minutes=15 * i)
        rows.append(
            {
                "id": uuid.uuid4(),
                "slot_id": uuid.UUID(slot_id),
                "provider_id": uuid.UUID(provider_id),
                "client_id": uuid.UUID(client_id),
                "status": "cancelled",
                "start_time": start,
                "end_time": start + timedelta(minutes=15),
                "occupied_start": start,
                "occupied_end": start + timedelta(minutes=15),
                "created_at": start - timedelta(days=2),
                "expires_at": start - timedelta(days=2),
                "confirmed_at": start - timedelta(days=2),
                "cancelled_at": start - timedelta(days=1),
            }
        )

    async def insert_all(session: Any) -> None:
        await session.execute(insert(Reservation), rows)

    api.in_session(insert_all)


def test_every_upcoming_booking_is_in_the_feed_whatever_the_past_holds(api: Api) -> None:
    """5,001 bookings in the past 60 days (more than the old feed's 5,000 from a year
    back, read oldest first) do not push the next appointment out; the past is cut to
    the latest 1,000."""
    provider = api.provider()
    bob = api.customer()
    (slot,) = api.publish(provider["id"], DAY, DAY + timedelta(minutes=15))["slots"]
    _past_bookings(api, slot["id"], bob["id"], provider["id"], 5001)
    upcoming = api.reserve(bob["id"], slot["id"]).json()
    api.confirm(bob["id"], upcoming["id"])
    for path in (
        f"/clients/{bob['id']}/reservations.ics",
        f"/providers/{provider['id']}/reservations.ics",
    ):
        found = events(api.client.get(path).content)
        assert len(found) == 1001, path
        assert str(found[-1]["UID"]) == f"{upcoming['id']}@appointments"
        assert str(found[-1]["STATUS"]) == "CONFIRMED"
        # The past kept is the latest: it ends with the 5,001st.
        last_past = START - timedelta(days=60) + timedelta(minutes=15 * 5000)
        assert found[-2].decoded("DTSTART") == last_past


def test_a_group_session_is_one_event_in_the_provider_feed(api: Api) -> None:
    provider = api.provider()
    kind = api.appointment_type(provider["id"], name="Yoga", duration_minutes=30, capacity=3)
    api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    first = api.slot_at(provider["id"], DAY)
    seated = []
    for name in ("Bob", "Eve"):
        customer = api.customer(name, f"{name.lower()}@example.com")
        response = api.client.post(
            f"/clients/{customer['id']}/reserve",
            json={"slot_id": first, "appointment_type_id": kind["id"], "seats": 1},
        )
        assert response.status_code == 201, response.text
        api.confirm(customer["id"], response.json()["id"])
        seated.append((customer, response.json()))
    (event,) = events(api.client.get(f"/providers/{provider['id']}/reservations.ics").content)
    assert str(event["UID"]) == f"{seated[0][1]['session_id']}@appointments"
    assert str(event["SUMMARY"]) == "Group session: 2 seat(s), Bob, Eve"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event["DTEND"].dt - event["DTSTART"].dt == timedelta(minutes=30)
    # The client's own feed has its seat, named as a group session.
    bob, bobs_seat = seated[0]
    (own,) = events(api.client.get(f"/clients/{bob['id']}/reservations.ics").content)
    assert str(own["UID"]) == f"{bobs_seat['id']}@appointments"
    assert str(own["SUMMARY"]) == "Group session with Dr Ada"
    # Every seat cancelled: the session's event reads cancelled.
    api.ok("POST", f"/providers/{provider['id']}/sessions/{bobs_seat['session_id']}/cancel")
    (gone,) = events(api.client.get(f"/providers/{provider['id']}/reservations.ics").content)
    assert str(gone["STATUS"]) == "CANCELLED"
