"""Group sessions through the API, on SQLite and PostgreSQL: seats up to the capacity,
`session_full` / `already_booked`, the session's slots taken from its first live seat
until its last one ends (cancel, expiry, swept or not), seats left in start times, and
a capacity that cannot drop below the seats taken."""

import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from tests.api import Api, Json, bearer, iso
from tests.conftest import START
from tests.gate import race
from tests.live_server import create_clients, live_server, next_quarter_hour

AT = START + timedelta(days=3, hours=2)  # Thursday 2027-03-04 10:00 UTC


def group(api: Api, capacity: int = 3, **fields: Any) -> tuple[Json, Json, Json]:
    """A provider, a group type of 30 minutes, and its first slot at AT (with an hour of slots)."""
    provider = api.provider()
    kind = api.appointment_type(
        provider["id"], name="Yoga", duration_minutes=30, capacity=capacity, **fields
    )
    created = api.publish(provider["id"], AT, AT + timedelta(hours=1))
    return provider, kind, created["slots"][0]


def seat(api: Api, client_id: str, slot_id: str, type_id: str, seats: int = 1) -> httpx.Response:
    response: httpx.Response = api.client.post(
        f"/clients/{client_id}/reserve",
        json={"slot_id": slot_id, "appointment_type_id": type_id, "seats": seats},
    )
    return response


def clients(api: Api, count: int) -> list[str]:
    return [api.customer(f"C{n}", f"c{n}@example.com")["id"] for n in range(count)]


def statuses(api: Api, provider_id: str) -> list[str]:
    return [slot["status"] for slot in api.slots(provider_id, status="all")]


def seats_taken(api: Api, session_id: str) -> int:
    rows = api.sql(
        "SELECT seats_taken FROM group_sessions WHERE id = :id", id=api.db_id(session_id)
    )
    return int(rows[0][0])


def test_seats_fill_a_session_up_to_its_capacity(api: Api) -> None:
    provider, kind, first = group(api, capacity=3)
    assert kind["capacity"] == 3
    a, b, c = clients(api, 3)
    one = seat(api, a, first["id"], kind["id"])
    assert one.status_code == 201, one.text
    held = one.json()
    assert held["seats"] == 1
    assert held["session_id"] is not None
    assert held["start_time"] == iso(AT)
    assert held["end_time"] == iso(AT + timedelta(minutes=30))
    session_id = held["session_id"]
    # The session's two slots are reserved; the rest of the hour is free.
    assert statuses(api, provider["id"]) == ["reserved", "reserved", "available", "available"]
    two = seat(api, b, first["id"], kind["id"])
    assert two.status_code == 201, two.text
    assert two.json()["session_id"] == session_id
    # Two seats asked, one left.
    full = seat(api, c, first["id"], kind["id"], seats=2)
    assert full.status_code == 409, full.text
    assert full.json()["code"] == "session_full"
    assert full.json()["seats_left"] == 1
    # The same client again: already booked (after session_full's check).
    again = seat(api, a, first["id"], kind["id"])
    assert again.status_code == 409
    assert again.json()["code"] == "already_booked"
    last = seat(api, c, first["id"], kind["id"])
    assert last.status_code == 201
    assert seats_taken(api, session_id) == 3
    over = seat(api, api.customer("D", "d@example.com")["id"], first["id"], kind["id"])
    assert over.status_code == 409
    assert over.json() == over.json() | {
        "code": "session_full",
        "seats_left": 0,
    }
    # Nothing else can take the session's slots: a plain reserve of its first slot.
    plain = api.reserve(api.customer("E", "e@example.com")["id"], first["id"])
    assert plain.status_code == 409
    assert plain.json()["code"] == "slot_unavailable"
    assert api.live_reservations(first["id"]) == 3


def test_more_seats_than_the_capacity_or_on_a_plain_slot_are_refused(api: Api) -> None:
    provider, kind, first = group(api, capacity=2)
    (a,) = clients(api, 1)
    too_many = seat(api, a, first["id"], kind["id"], seats=3)
    assert too_many.status_code == 409
    assert too_many.json()["code"] == "session_full"
    assert too_many.json()["seats_left"] == 2
    plain = api.client.post(f"/clients/{a}/reserve", json={"slot_id": first["id"], "seats": 2})
    assert plain.status_code == 409
    assert plain.json()["seats_left"] == 1
    single = api.appointment_type(provider["id"], name="One to one", duration_minutes=15)
    one_type = seat(api, a, first["id"], single["id"], seats=2)
    assert one_type.status_code == 409
    assert one_type.json()["code"] == "session_full"
    # Nothing was held by any of them.
    assert statuses(api, provider["id"]) == ["available"] * 4
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 0


def test_confirming_a_seat_confirms_the_sessions_slots(api: Api) -> None:
    provider, kind, first = group(api)
    a, b = clients(api, 2)
    held = seat(api, a, first["id"], kind["id"]).json()
    seat(api, b, first["id"], kind["id"])
    confirmed = api.confirm(a, held["id"])
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["session_id"] == held["session_id"]
    assert statuses(api, provider["id"])[:2] == ["confirmed", "confirmed"]


def test_cancelling_frees_only_its_seats_and_the_last_frees_the_slots(api: Api) -> None:
    provider, kind, first = group(api)
    a, b = clients(api, 2)
    one = seat(api, a, first["id"], kind["id"], seats=2).json()
    two = seat(api, b, first["id"], kind["id"]).json()
    api.confirm(b, two["id"])
    api.ok("POST", f"/clients/{b}/reservations/{two['id']}/cancel")
    assert seats_taken(api, one["session_id"]) == 2
    # The confirmed seat is gone: the slots read reserved again, until the hold's end.
    assert statuses(api, provider["id"])[:2] == ["reserved", "reserved"]
    api.ok("POST", f"/clients/{a}/reservations/{one['id']}/cancel")
    assert statuses(api, provider["id"]) == ["available"] * 4
    assert seats_taken(api, one["session_id"]) == 0
    # A new session opens there: a new one, not the ended one.
    again = seat(api, a, first["id"], kind["id"])
    assert again.status_code == 201
    assert again.json()["session_id"] != one["session_id"]


def test_run_out_seats_free_their_places_at_once_swept_or_not(api: Api, clock: FrozenClock) -> None:
    provider, kind, first = group(api, capacity=2)
    a, b, c = clients(api, 3)
    early = seat(api, a, first["id"], kind["id"]).json()
    clock.advance(minutes=20)
    later = seat(api, b, first["id"], kind["id"]).json()
    assert later["session_id"] == early["session_id"]
    assert seat(api, c, first["id"], kind["id"]).json()["code"] == "session_full"
    clock.advance(minutes=15)  # the first hold ran out, the second has not
    assert statuses(api, provider["id"])[:2] == ["reserved", "reserved"]
    joined = seat(api, c, first["id"], kind["id"])
    assert joined.status_code == 201, joined.text
    assert joined.json()["session_id"] == early["session_id"]
    assert seats_taken(api, early["session_id"]) == 2
    clock.advance(minutes=31)  # every hold ran out: the slots read free, not yet swept
    assert statuses(api, provider["id"]) == ["available"] * 4
    # Any booking may take them: a plain reserve of the first slot.
    plain = api.reserve(api.customer("P", "p@example.com")["id"], first["id"])
    assert plain.status_code == 201, plain.text
    assert seats_taken(api, early["session_id"]) == 0


def test_the_sweep_writes_down_run_out_seats(api: Api, clock: FrozenClock) -> None:
    provider, kind, first = group(api)
    a, b = clients(api, 2)
    one = seat(api, a, first["id"], kind["id"]).json()
    seat(api, b, first["id"], kind["id"])
    clock.advance(minutes=31)
    swept = api.ok("POST", "/admin/expire-reservations")
    assert swept["expired"] == 2
    assert seats_taken(api, one["session_id"]) == 0
    rows = api.sql("SELECT status FROM slots ORDER BY start_time")
    assert [row[0] for row in rows] == ["available"] * 4
    links = api.sql("SELECT count(*) FROM reservation_slots")
    assert links[0][0] == 0


def test_start_times_show_the_seats_left(api: Api) -> None:
    provider, kind, first = group(api, capacity=3)
    path = f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability"
    before = api.ok("GET", path)["items"]
    assert [(i["start_time"], i["seats_left"]) for i in before] == [
        (iso(AT + timedelta(minutes=m)), 3) for m in (0, 15, 30)
    ]
    (a,) = clients(api, 1)
    seat(api, a, first["id"], kind["id"], seats=2)
    after = api.ok("GET", path)["items"]
    # The session's start, with 1 left; the starts overlapping it are gone.
    assert [(i["start_time"], i["seats_left"]) for i in after] == [
        (iso(AT), 1),
        (iso(AT + timedelta(minutes=30)), 3),
    ]
    assert after[0]["slot_id"] == first["id"]
    seat(api, api.customer("Z", "z@example.com")["id"], first["id"], kind["id"])
    full = api.ok("GET", path)["items"]
    assert [i["start_time"] for i in full] == [iso(AT + timedelta(minutes=30))]
    # A plain type's starts have one seat.
    single = api.appointment_type(provider["id"], name="One", duration_minutes=15)
    plain_path = f"/providers/{provider['id']}/appointment-types/{single['id']}/availability"
    assert {i["seats_left"] for i in api.ok("GET", plain_path)["items"]} == {1}


def test_capacity_cannot_drop_below_the_seats_taken(api: Api) -> None:
    provider, kind, first = group(api, capacity=4)
    (a, b) = clients(api, 2)
    one = seat(api, a, first["id"], kind["id"], seats=3).json()
    path = f"/providers/{provider['id']}/appointment-types/{kind['id']}"
    body = {"name": "Yoga", "duration_minutes": 30}
    refused = api.client.put(path, json=body | {"capacity": 2})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "capacity_below_booked"
    assert api.ok("GET", path)["capacity"] == 4
    api.ok("PUT", path, json=body | {"capacity": 3})
    # The session took the new capacity: no seat is left.
    assert seat(api, b, first["id"], kind["id"]).json()["seats_left"] == 0
    rows = api.sql(
        "SELECT capacity FROM group_sessions WHERE id = :id", id=api.db_id(one["session_id"])
    )
    assert rows[0][0] == 3


def test_the_database_refuses_more_seats_than_the_capacity(api: Api) -> None:
    provider, kind, first = group(api, capacity=2)
    (a,) = clients(api, 1)
    one = seat(api, a, first["id"], kind["id"], seats=2).json()
    refused = False
    try:
        api.sql(
            "UPDATE group_sessions SET seats_taken = seats_taken + 1 WHERE id = :id",
            id=api.db_id(one["session_id"]),
        )
    except Exception as exc:  # the CHECK constraint, whichever driver raises it
        refused = "seats_within_capacity" in str(exc) or "CHECK" in str(exc)
    assert refused


def test_a_provider_lists_its_sessions_with_their_seats(api: Api) -> None:
    provider, kind, first = group(api, capacity=4)
    a, b = clients(api, 2)
    one = seat(api, a, first["id"], kind["id"], seats=2).json()
    two = seat(api, b, first["id"], kind["id"]).json()
    later = api.slot_at(provider["id"], AT + timedelta(minutes=30))
    other = seat(api, a, later, kind["id"]).json()
    page = api.ok("GET", f"/providers/{provider['id']}/sessions", params={"limit": 1})
    (listed,) = page["items"]
    assert listed["id"] == one["session_id"]
    assert listed["capacity"] == 4
    assert listed["seats_taken"] == 3
    assert listed["start_time"] == iso(AT)
    assert listed["slot_id"] == first["id"]
    assert {r["id"] for r in listed["reservations"]} == {one["id"], two["id"]}
    rest = api.ok(
        "GET", f"/providers/{provider['id']}/sessions", params={"cursor": page["next_cursor"]}
    )
    assert [s["id"] for s in rest["items"]] == [other["session_id"]]
    assert rest["next_cursor"] is None
    # `to` bounds by start time; one session reads the same alone.
    bounded = api.ok(
        "GET",
        f"/providers/{provider['id']}/sessions",
        params={"to": iso(AT + timedelta(minutes=1))},
    )
    assert [s["id"] for s in bounded["items"]] == [one["session_id"]]
    alone = api.ok("GET", f"/providers/{provider['id']}/sessions/{one['session_id']}")
    assert alone == listed
    stranger = api.provider("Dr Who")
    api.ok("GET", f"/providers/{stranger['id']}/sessions/{one['session_id']}", 404)
    api.ok("GET", f"/providers/{provider['id']}/sessions/not-an-id", 404)


def test_cancelling_a_session_cancels_every_seat_and_frees_its_slots(api: Api) -> None:
    provider, kind, first = group(api)
    a, b = clients(api, 2)
    one = seat(api, a, first["id"], kind["id"]).json()
    two = seat(api, b, first["id"], kind["id"]).json()
    api.confirm(b, two["id"])
    path = f"/providers/{provider['id']}/sessions/{one['session_id']}/cancel"
    cancelled = api.ok("POST", path)
    assert cancelled["seats_taken"] == 0
    assert {r["status"] for r in cancelled["reservations"]} == {"cancelled"}
    assert {r["id"] for r in cancelled["reservations"]} == {one["id"], two["id"]}
    assert statuses(api, provider["id"]) == ["available"] * 4
    assert api.ok("GET", f"/providers/{provider['id']}/sessions")["items"] == []
    # Each client is told, as for any cancel.
    rows = api.sql("SELECT count(*) FROM events WHERE type = 'reservation.cancelled'")
    assert rows[0][0] == 2
    # Again: nothing changes.
    again = api.ok("POST", path)
    assert again["reservations"] == []
    assert api.sql("SELECT count(*) FROM events WHERE type = 'reservation.cancelled'")[0][0] == 2


def test_seat_events_carry_the_session(api: Api) -> None:
    provider, kind, first = group(api)
    (a,) = clients(api, 1)
    one = seat(api, a, first["id"], kind["id"], seats=2).json()
    rows = api.sql(
        "SELECT session_id, seats FROM events WHERE reservation_id = :id", id=api.db_id(one["id"])
    )
    assert [(str(uuid.UUID(str(r[0]))), r[1]) for r in rows] == [(one["session_id"], 2)]


ADMIN = bearer(Role.ADMIN, "sessions-admin")


@pytest.mark.live
def test_racing_clients_on_two_workers_take_exactly_the_capacity(
    database_url: str, api: Api
) -> None:
    """Twelve clients reserve a seat of the same five-seat session at once, through two
    server processes: exactly five win, the others get `session_full`, and the
    database holds one session with five live seats."""
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        provider = http.post("/providers", json={"name": "Dr Group"}).json()
        kind = http.post(
            f"/providers/{provider['id']}/appointment-types",
            json={"name": "Class", "duration_minutes": 30, "capacity": 5},
        ).json()
        start = next_quarter_hour(datetime.now(UTC) + timedelta(days=3))
        http.post(
            f"/providers/{provider['id']}/availability",
            json={"start_time": iso(start), "end_time": iso(start + timedelta(minutes=30))},
        ).raise_for_status()
        first = http.get(f"/providers/{provider['id']}/availability").json()["items"][0]
        racers = create_clients(http, 12)

        def take_seat(client_id: str) -> tuple[int, str]:
            with httpx.Client(base_url=base, timeout=30, headers=ADMIN) as own:
                response = own.post(
                    f"/clients/{client_id}/reserve",
                    json={"slot_id": first["id"], "appointment_type_id": kind["id"]},
                )
                return response.status_code, response.json().get("code", "")

        answers = race(database_url, [functools.partial(take_seat, c["id"]) for c in racers])
        assert sorted(status for status, _ in answers) == [201] * 5 + [409] * 7, answers
    assert {code for status, code in answers if status == 409} == {"session_full"}
    assert api.sql("SELECT count(*), max(seats_taken) FROM group_sessions") == [(1, 5)]
    live = api.sql("SELECT count(*) FROM reservations WHERE status = 'held'")
    assert live == [(5,)]
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'reserved'") == [(2,)]


def test_rescheduling_a_seat_moves_it_to_another_session(api: Api) -> None:
    provider, kind, first = group(api, capacity=2)
    a, b, c = clients(api, 3)
    one = seat(api, a, first["id"], kind["id"]).json()
    two = seat(api, b, first["id"], kind["id"]).json()
    api.confirm(b, two["id"])
    later = api.slot_at(provider["id"], AT + timedelta(minutes=30))
    path = f"/clients/{a}/reservations/{one['id']}/reschedule"
    moved = api.ok("POST", path, json={"slot_id": later})
    assert moved["start_time"] == iso(AT + timedelta(minutes=30))
    assert moved["status"] == "held"
    assert moved["session_id"] not in (None, one["session_id"])
    # The session it left keeps its other seat (confirmed: its slots stay confirmed).
    assert seats_taken(api, one["session_id"]) == 1
    assert statuses(api, provider["id"]) == ["confirmed", "confirmed", "reserved", "reserved"]
    # The other seat follows: it joins the new session, and the old one ends.
    back = api.ok(
        "POST", f"/clients/{b}/reservations/{two['id']}/reschedule", json={"slot_id": later}
    )
    assert back["session_id"] == moved["session_id"]
    assert back["status"] == "confirmed"
    assert seats_taken(api, one["session_id"]) == 0
    assert statuses(api, provider["id"]) == ["available", "available", "confirmed", "confirmed"]
    # The new session is full now: a third client's move there is refused, nothing changes.
    three = seat(api, c, first["id"], kind["id"]).json()
    refused = api.client.post(
        f"/clients/{c}/reservations/{three['id']}/reschedule", json={"slot_id": later}
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "session_full"
    assert seats_taken(api, three["session_id"]) == 1
    assert seats_taken(api, moved["session_id"]) == 2
    events = api.sql("SELECT count(*) FROM events WHERE type = 'reservation.rescheduled'")
    assert events[0][0] == 2


def withdraw(api: Api, provider_id: str, minutes: int, **query: Any) -> httpx.Response:
    """Withdraw [AT, AT + minutes) of the provider's availability."""
    params = {"from": iso(AT), "to": iso(AT + timedelta(minutes=minutes)), **query}
    response: httpx.Response = api.client.delete(
        f"/providers/{provider_id}/availability", params=params
    )
    return response


def test_an_availability_edit_moves_a_session_whole(api: Api) -> None:
    provider, kind, first = group(api, capacity=3)
    a, b = clients(api, 2)
    one = seat(api, a, first["id"], kind["id"]).json()
    two = seat(api, b, first["id"], kind["id"], seats=2).json()
    api.confirm(b, two["id"])
    refused = withdraw(api, provider["id"], 15)
    assert refused.status_code == 409
    assert {c["reservation_id"] for c in refused.json()["conflicts"]} == {one["id"], two["id"]}
    moved = withdraw(api, provider["id"], 15, on_conflict="move")
    assert moved.status_code == 200, moved.text
    to = iso(AT + timedelta(minutes=15))
    assert sorted(m["to_start_time"] for m in moved.json()["moved"]) == [to, to]
    assert moved.json()["cancelled"] == []
    (listed,) = api.ok("GET", f"/providers/{provider['id']}/sessions")["items"]
    assert listed["id"] == one["session_id"]
    assert listed["start_time"] == to
    assert listed["seats_taken"] == 3
    # The first slot is gone; the session's two are confirmed (one seat is), the last free.
    assert statuses(api, provider["id"]) == ["confirmed", "confirmed", "available"]


def test_an_availability_edit_cancels_a_session_whole(api: Api) -> None:
    provider, kind, first = group(api, capacity=3)
    a, b = clients(api, 2)
    seat(api, a, first["id"], kind["id"])
    seat(api, b, first["id"], kind["id"])
    cancelled = withdraw(api, provider["id"], 60, on_conflict="cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert len(cancelled.json()["cancelled"]) == 2
    assert api.ok("GET", f"/providers/{provider['id']}/sessions")["items"] == []
    assert api.sql("SELECT count(*) FROM reservation_slots") == [(0,)]
    assert api.sql("SELECT max(seats_taken) FROM group_sessions") == [(0,)]


def test_a_series_of_a_group_type_takes_a_seat_every_week(api: Api) -> None:
    provider, kind, first = group(api, capacity=2)
    for k in (1, 2):
        api.publish(provider["id"], AT + timedelta(weeks=k), AT + timedelta(weeks=k, hours=1))
    week_one = api.slot_at(provider["id"], AT + timedelta(weeks=1))
    a, b, c = clients(api, 3)
    # Week 1's session is full already (two seats of another client's).
    assert seat(api, c, week_one, kind["id"], seats=2).status_code == 201
    body = {"slot_id": first["id"], "appointment_type_id": kind["id"], "repeat": {"count": 3}}
    refused = api.client.post(f"/clients/{a}/series", json=body)
    assert refused.status_code == 409
    assert refused.json()["code"] == "series_conflict"
    assert [c["code"] for c in refused.json()["conflicts"]] == ["session_full"]
    mine = "SELECT count(*) FROM reservations WHERE client_id = :c"
    assert api.sql(mine, c=api.db_id(a)) == [(0,)]
    booked = api.client.post(f"/clients/{a}/series", json=body | {"policy": "available"})
    assert booked.status_code == 201, booked.text
    series = booked.json()
    starts = [r["start_time"] for r in series["reservations"]]
    assert starts == [iso(AT), iso(AT + timedelta(weeks=2))]
    assert all(r["session_id"] for r in series["reservations"])
    assert [s["code"] for s in series["skipped"]] == ["session_full"]
    # Another client joins week 0's session.
    assert seat(api, b, first["id"], kind["id"]).status_code == 201
    confirmed = api.ok("POST", f"/clients/{a}/series/{series['id']}/confirm")
    assert {r["status"] for r in confirmed["reservations"]} == {"confirmed"}
    assert statuses(api, provider["id"])[:2] == ["confirmed", "confirmed"]
    cancelled = api.ok("POST", f"/clients/{a}/series/{series['id']}/cancel")
    assert {r["status"] for r in cancelled["reservations"]} == {"cancelled"}
    # Week 0 keeps the other client's held seat; week 2's session ended.
    slots = api.slots(provider["id"], status="all")
    assert [s["status"] for s in slots[:2]] == ["reserved", "reserved"]
    assert [s["status"] for s in slots[8:10]] == ["available", "available"]
