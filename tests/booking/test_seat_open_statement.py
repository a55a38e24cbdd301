"""The one-statement opening of a group session (PostgreSQL): the first seats of a
session whose every slot is free are held by `SEAT_OPEN_SQL` by itself (the session,
its slots, their links, the hold, its event); when anything is not the plain case it
writes nothing at all, and the step path answers."""

import uuid
from datetime import timedelta
from typing import Any

import pytest

from appointments.booking import one_statement
from tests.api import Api
from tests.conftest import START

AT = START + timedelta(days=3, hours=2)


def values(api: Api, client: str, slot: str, type_id: str, seats: int = 1) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "session_id": uuid.uuid4(),
        "client_id": uuid.UUID(client),
        "slot_id": uuid.UUID(slot),
        "type_id": uuid.UUID(type_id),
        "seats": seats,
        "now": START,
        "expires_at": START + timedelta(minutes=30),
        "notice_seconds": 86400.0,
        "max_holds": 5,
        "slot_minutes": 15,
    }


def open_session(api: Api, given: dict[str, Any]) -> one_statement.ReservationRow | None:
    engine = api.client.app.state.engine  # type: ignore[attr-defined]
    portal = api.client.portal
    assert portal is not None
    return portal.call(one_statement.open_session_autocommit, engine, given)


def test_a_free_session_is_opened_by_the_statement(api: Api) -> None:
    if api.dialect != "postgresql":
        pytest.skip("the one-statement open is PostgreSQL's")
    provider = api.provider()["id"]
    kind = api.appointment_type(provider, duration_minutes=45, buffer_after_minutes=15, capacity=8)[
        "id"
    ]
    slots = api.publish(provider, AT, AT + timedelta(hours=2))["slots"]
    bob = api.customer()["id"]
    given = values(api, bob, slots[0]["id"], kind, seats=2)
    seat = open_session(api, given)
    assert seat is not None
    assert (seat.status, seat.seats, seat.session_id) == ("held", 2, given["session_id"])
    assert (seat.start_time, seat.end_time) == (AT, AT + timedelta(minutes=45))
    sessions = api.sql("SELECT capacity, seats_taken FROM group_sessions")
    assert sessions == [(8, 2)]
    # Its four slots (45 minutes and a 15-minute buffer) held until the expiry, linked
    # to the session; the rest free.
    held = api.sql(
        "SELECT s.start_time FROM slots s JOIN reservation_slots l ON l.slot_id = s.id"
        " WHERE l.session_id = :id AND s.status = 'reserved' AND s.hold_expires_at = :at"
        " ORDER BY s.start_time",
        id=given["session_id"],
        at=given["expires_at"],
    )
    assert [row[0] for row in held] == [AT + timedelta(minutes=15 * k) for k in range(4)]
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'available'") == [(4,)]
    assert api.sql("SELECT type, session_id FROM events") == [
        ("reservation.held", given["session_id"])
    ]
    # A second client joins it through the API.
    eve = api.customer("Eve", "eve@example.com")["id"]
    joined = api.reserve_type(eve, slots[0]["id"], kind)
    assert joined.status_code == 201, joined.text
    assert joined.json()["session_id"] == str(given["session_id"])


@pytest.mark.parametrize("obstacle", ["taken", "busy", "capped", "too_many_seats", "limit"])
def test_anything_but_the_plain_case_writes_nothing(api: Api, obstacle: str) -> None:
    if api.dialect != "postgresql":
        pytest.skip("the one-statement open is PostgreSQL's")
    provider = api.provider()["id"]
    fields: dict[str, Any] = {"duration_minutes": 30, "capacity": 4}
    if obstacle == "capped":
        fields["max_per_day"] = 3
    kind = api.appointment_type(provider, **fields)["id"]
    slots = api.publish(provider, AT, AT + timedelta(hours=1))["slots"]
    bob, eve = api.customer()["id"], api.customer("Eve", "eve@example.com")["id"]
    given = values(api, bob, slots[0]["id"], kind)
    if obstacle == "taken":
        assert api.reserve(eve, slots[1]["id"]).status_code == 201
    elif obstacle == "busy":
        api.sql("UPDATE slots SET busy = true WHERE id = :id", id=uuid.UUID(slots[1]["id"]))
    elif obstacle == "too_many_seats":
        given["seats"] = 5
    elif obstacle == "limit":
        given["max_holds"] = 0
    before = api.sql("SELECT count(*) FROM reservations")
    assert open_session(api, given) is None
    assert api.sql("SELECT count(*) FROM group_sessions") == [(0,)]
    assert api.sql("SELECT count(*) FROM reservations") == before
    assert api.sql("SELECT count(*) FROM reservation_slots WHERE session_id IS NOT NULL") == [(0,)]
